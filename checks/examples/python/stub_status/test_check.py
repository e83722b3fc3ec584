"""stub_status's own tests, run natively: `PYTHONPATH=../../../sdk-python python3 -m unittest`."""

import unittest

import check
from adrt_check.testing import CheckFailed, FakeHost
from adrt_check.host import HostHTTPError

URL = "http://nginx/status"
PAGE = "Active connections: 3 \nserver accepts handled requests\n 10 9 42 \nReading: 0 Writing: 1 Waiting: 2 \n"
TAGS = [f"url:{URL}"]


class StubStatusTest(unittest.TestCase):
    def test_a_page_gives_every_counter_tagged_with_the_url(self):
        host = FakeHost(http={URL: (200, PAGE)})
        host.run(check, {"url": URL})
        expected = {
            ("gauge", "stub_status.connections.active"): 3,
            ("gauge", "stub_status.connections.reading"): 0,
            ("gauge", "stub_status.connections.writing"): 1,
            ("gauge", "stub_status.connections.waiting"): 2,
            ("monotonic_count", "stub_status.connections.accepted"): 10,
            ("monotonic_count", "stub_status.connections.handled"): 9,
            ("monotonic_count", "stub_status.requests"): 42,
        }
        self.assertEqual({(m.kind, m.name): m.value for m in host.metrics}, expected)
        self.assertTrue(all(m.tags == TAGS for m in host.metrics))
        self.assertEqual(host.service_check("stub_status.can_connect").status, check.AgentCheck.OK)

    def test_a_refused_connection_is_critical_with_the_error_and_no_metrics(self):
        host = FakeHost(http={URL: HostHTTPError("connect", f"{URL}: connection refused")})
        with self.assertRaises(CheckFailed) as failed:
            host.run(check, {"url": URL})
        self.assertIn("connection refused", failed.exception.message)
        service_check = host.service_check("stub_status.can_connect")
        self.assertEqual((service_check.status, service_check.tags), (check.AgentCheck.CRITICAL, TAGS))
        self.assertIn("connection refused", service_check.message)
        self.assertEqual(host.metrics, [])

    def test_an_error_status_is_critical(self):
        host = FakeHost(http={URL: (500, "oops")})
        with self.assertRaises(CheckFailed):
            host.run(check, {"url": URL})
        self.assertEqual(host.service_check("stub_status.can_connect").status, check.AgentCheck.CRITICAL)
        self.assertIn("500", host.service_check("stub_status.can_connect").message)

    def test_a_page_that_does_not_parse_fails_the_run_naming_the_url(self):
        host = FakeHost(http={URL: (200, "<html>not it</html>")})
        with self.assertRaises(CheckFailed) as failed:
            host.run(check, {"url": URL})
        self.assertEqual(failed.exception.kind, "run")
        self.assertIn(URL, failed.exception.message)

    def test_the_url_is_required(self):
        with self.assertRaises(CheckFailed) as failed:
            FakeHost().run(check, {})
        self.assertEqual(failed.exception.kind, "config")
        self.assertIn("url", failed.exception.message)


if __name__ == "__main__":
    unittest.main()
