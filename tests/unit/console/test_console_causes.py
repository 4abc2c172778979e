"""Grouping failures by cause: what differs between alike failures goes, what tells them apart stays."""

from __future__ import annotations

from console import causes

TRACEBACK = """Traceback (most recent call last):
  File "/work/main/workers/jobs.py", line 109, in _handle_failure
    raise JobFailed(f"{failure.kind}: {failure.reason}") from exc
workers.failures.JobFailed: permanent: Twilio answered 403 (code 20403): Unable to fetch record: Forbidden
"""


def test_the_last_line_without_our_exception_class_is_the_headline() -> None:
    line = causes.last_line(TRACEBACK)
    assert line.startswith("workers.failures.JobFailed: ")
    assert causes.headline(line) == "permanent: Twilio answered 403 (code 20403): Unable to fetch record: Forbidden"
    assert causes.headline(causes.last_line("")) == causes.UNKNOWN
    assert causes.headline("rq.timeouts.JobTimeoutException: Task exceeded maximum timeout value (900 seconds)").startswith("rq.timeouts")


def test_sids_sizes_and_queries_are_normalised_but_statuses_and_codes_kept() -> None:
    a = "workers.failures.JobFailed: transient: media cut short: 1200 of 48000 bytes"
    b = "workers.failures.JobFailed: transient: media cut short: 7 of 99 bytes"
    assert causes.normalise(a) == causes.normalise(b) == "transient: media cut short: N of N bytes"
    sid1, sid2 = "RE" + "a" * 32, "RE" + "b" * 32
    c = f"workers.failures.JobFailed: not_found: Twilio answered 404 (code 20404): /Recordings/{sid1}.json?x=1 not found"
    d = f"workers.failures.JobFailed: not_found: Twilio answered 404 (code 20404): /Recordings/{sid2}.json?x=2 not found"
    assert causes.normalise(c) == causes.normalise(d)
    assert "RE…" in causes.normalise(c) and "404" in causes.normalise(c) and "20404" in causes.normalise(c)
    e = "workers.failures.JobFailed: permanent: Twilio answered 401 (code 20003): Authenticate"
    f = "workers.failures.JobFailed: permanent: Twilio answered 403 (code 20003): Authenticate"
    assert causes.normalise(e) != causes.normalise(f)
    assert causes.cause_id(causes.normalise(a)) == causes.cause_id(causes.normalise(b))
    assert len(causes.cause_id("x")) == 12


def test_each_kind_of_failure_says_what_to_do() -> None:
    assert "Fix the cause, then replay" in causes.explain(causes.last_line(TRACEBACK))
    assert "retries ran out" in causes.explain("workers.failures.JobFailed: transient: network: ReadTimeout")
    assert "worker's logs" in causes.explain("KeyError: 'x'")
