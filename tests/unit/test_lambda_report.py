"""The local runner's REPORT line reads like Lambda's, so a run's cost can be read off its output."""

from promptlab.local.lambdas import report_line


def test_the_report_line_bills_every_started_millisecond() -> None:
    line = report_line("req-1", 2001.2, 512)
    assert line == "REPORT RequestId: req-1\tDuration: 2001.20 ms\tBilled Duration: 2002 ms\tMemory Size: 512 MB"


def test_a_cold_start_reports_its_init_duration() -> None:
    assert report_line("req-2", 10, 128, init_ms=345.678).endswith("\tInit Duration: 345.68 ms")
