"""Tests of {{name}}, run natively: `PYTHONPATH=<adrt>/checks/sdk-python python3 -m unittest`."""

import unittest

import check
from adrt_check.testing import CheckFailed, FakeHost

URL = "http://target/status"


class CheckTest(unittest.TestCase):
    def test_a_page_gives_its_size_and_an_ok_service_check(self):
        host = FakeHost(http={URL: (200, "hello")})
        host.run(check, {"url": URL})
        self.assertEqual(host.metric("{{name}}.response_bytes").value, 5)
        self.assertEqual(host.service_check("{{name}}.can_connect").status, check.AgentCheck.OK)

    def test_an_error_status_fails_the_run_with_a_critical_service_check(self):
        host = FakeHost(http={URL: (503, "down")})
        with self.assertRaises(CheckFailed) as failed:
            host.run(check, {"url": URL})
        self.assertIn("503", failed.exception.message)
        self.assertEqual(host.service_check("{{name}}.can_connect").status, check.AgentCheck.CRITICAL)
        self.assertEqual(host.metrics, [])

    def test_the_url_is_required(self):
        with self.assertRaises(CheckFailed) as failed:
            FakeHost().run(check, {})
        self.assertEqual(failed.exception.kind, "config")
        self.assertIn("url", failed.exception.message)


if __name__ == "__main__":
    unittest.main()
