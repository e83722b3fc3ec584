"""Datadog's OpenMetrics v2 check (datadog-checks-base) on one page, outside the agent.

Usage: datadog_openmetrics.py URL RUNS. Without the `datadog_agent` module, datadog_checks.base
submits to its stubs aggregator, so the check runs as it does in the agent minus the hand-over to
the Go side. Prints one JSON object: {"median_ms", "series", "runs"}, or {"error"} when the package
cannot be imported or a run fails (the bench shows the reason instead of a figure).
"""

import json
import statistics
import sys
import time

try:
    from datadog_checks.base import OpenMetricsBaseCheckV2
    from datadog_checks.base.stubs import aggregator
except ImportError as error:
    print(json.dumps({"error": f"datadog_checks.base cannot be imported ({error}): run scripts/setup"}))
    sys.exit(0)


def main(url: str, runs: int) -> dict:
    instance = {
        "openmetrics_endpoint": url,
        "namespace": "bench",
        "metrics": [".*"],
        "max_returned_metrics": 100000,
    }
    check = OpenMetricsBaseCheckV2("openmetrics", {}, [instance])
    timings, series = [], 0
    # The first run also builds the HTTP session and the scraper's caches: not timed, as the
    # bench does not time adrt's first runs either.
    check.run()
    for _ in range(runs):
        aggregator.reset()
        started = time.perf_counter()
        # `run` is what the agent calls: it returns the failure as JSON text rather than raising.
        failure = check.run()
        timings.append(time.perf_counter() - started)
        if failure:
            return {"error": f"check run failed: {json.loads(failure)[0]['message']}"}
        # Series as the aggregator keys contexts: one per metric name and tag set.
        series = len({(name, tuple(sorted(m.tags))) for name in aggregator.metric_names for m in aggregator.metrics(name)})
    return {"median_ms": statistics.median(timings) * 1e3, "series": series, "runs": runs}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
