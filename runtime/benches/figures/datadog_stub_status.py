"""checks/examples/python/stub_status run in-process on Datadog's datadog-checks-base, as the
Datadog agent runs a custom check (minus the hand-over to its Go side): the bench's baseline for
the same check sandboxed by adrt.

Usage: datadog_stub_status.py CHECK_DIR URL RUNS. Prints one JSON object: {"median_ms", "metrics"},
or {"error"} when the package cannot be imported or a run fails.
"""

import json
import statistics
import sys
import time

try:
    from datadog_checks.base.stubs import aggregator
except ImportError as error:
    print(json.dumps({"error": f"datadog_checks.base cannot be imported ({error}): run scripts/setup"}))
    sys.exit(0)


def main(check_dir: str, url: str, runs: int) -> dict:
    sys.path.insert(0, check_dir)
    import check as module

    stub_status = module.StubStatusCheck("stub_status", {}, [{"url": url}])
    # The first runs also build the HTTP session: not timed, as adrt's first runs are not either.
    for _ in range(20):
        stub_status.run()
    timings = []
    for _ in range(runs):
        aggregator.reset()
        started = time.perf_counter()
        failure = stub_status.run()
        timings.append(time.perf_counter() - started)
        if failure:
            return {"error": f"check run failed: {json.loads(failure)[0]['message']}"}
    return {"median_ms": statistics.median(timings) * 1e3, "metrics": len(aggregator.metric_names)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
