"""/metrics after real traffic of two sources: every histogram series complete and consistent, promtool content."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from console.metrics import BOUNDS
from receiver.settings import Settings
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER
from tests.servers import wait_for
from tests.test_sources_pipeline import video_callback
from tests.test_voice_pipeline import callback
from workers import reconciler
from workers.simulate import new_sid, voice_params

BEARER = {"authorization": f"Bearer {TOKEN}"}
LE = [("+Inf" if b == float("inf") else repr(b)) for b in BOUNDS]
Labels = tuple[tuple[str, str], ...]


@pytest.fixture
def scraped(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str], standin: Any,
) -> str:
    """/metrics once voice and video callbacks went through a receiver, workers and a reconciler pass."""
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_token=TOKEN, admin_secret_key=SECRET_KEY)
    receiver, console = start_receiver(settings), start_console(settings)
    voice, video = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_video(account_sid=ACCOUNT_SID)
    standin.state.add_voice(account_sid=ACCOUNT_SID)  # no callback: the reconciler finds it
    assert receiver.post(receiver.url(), callback(voice)).status_code == 204
    assert receiver.post(receiver.url("video"), video_callback(video)).status_code == 204
    # A recording Twilio does not know (a 4xx to time) and a forged callback (a signature failure).
    assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "completed", new_sid("RE"))).status_code == 204
    assert receiver.post(receiver.url(), callback(voice), token="forged").status_code == 403
    drain(settings)
    assert reconciler.run_once(settings, sources=["voice", "video"]).ok
    drain(settings)

    def text() -> str:
        body = httpx.get(f"{console}/metrics", headers=BEARER, timeout=10).text
        # The receiver writes its enqueue latencies every few seconds: wait for both sources'.
        done = all(f'recording_receiver_enqueue_seconds_count{{source="{s}"}}' in body for s in ("voice", "video"))
        return body if done else ""

    body: str = wait_for(text, timeout=30, what="both sources' enqueue latencies in /metrics")
    return body


def _histograms(text: str) -> dict[str, dict[str, dict[Labels, list[tuple[str, float]]]]]:
    """name -> sample kind (bucket, count, sum) -> label set without `le` -> [(le, value)]."""
    found: dict[str, dict[str, dict[Labels, list[tuple[str, float]]]]] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "histogram":
            continue
        kinds: dict[str, dict[Labels, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
        for sample in family.samples:
            kind = sample.name.removeprefix(family.name + "_")
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            kinds[kind][labels].append((sample.labels.get("le", ""), sample.value))
        found[family.name] = kinds
    return found


def test_every_histogram_label_set_has_every_bucket_and_the_counts_add_up(scraped: str) -> None:
    histograms = _histograms(scraped)
    sources = {dict(labels)["source"] for labels in histograms["recording_receiver_enqueue_seconds"]["bucket"]}
    assert sources == {"voice", "video"}
    observed = {name for name, kinds in histograms.items() if kinds["bucket"]}
    assert observed >= {"recording_receiver_enqueue_seconds", "recording_receiver_job_duration_seconds",
                        "recording_receiver_twilio_rest_seconds", "recording_receiver_callback_to_archived_seconds"}
    for name in observed:
        buckets, counts = histograms[name]["bucket"], histograms[name]["count"]
        by_le: dict[str, float] = defaultdict(float)
        for labels, series in buckets.items():
            assert [le for le, _ in series] == LE, (name, labels)
            values = [value for _, value in series]
            assert values == sorted(values), (name, labels)  # cumulative: never smaller at a larger `le`
            assert values[-1] == counts[labels][0][1], (name, labels)  # +Inf is _count
            for le, value in series:
                by_le[le] += value
        summed = [by_le[le] for le in LE]  # sum by (le) across every label set
        assert summed == sorted(summed), name
        assert summed[-1] == sum(series[0][1] for series in counts.values()) > 0, name


def test_twilio_rest_latency_is_by_source_endpoint_kind_and_status_class(scraped: str) -> None:
    rest = _histograms(scraped)["recording_receiver_twilio_rest_seconds"]["count"]
    seen = {(d["source"], d["endpoint"], d["status_class"]) for d in map(dict, rest)}
    assert {("voice", "metadata", "2xx"), ("voice", "metadata", "4xx"), ("voice", "list", "2xx"),
            ("video", "metadata", "2xx"), ("video", "media", "3xx")} <= seen, seen


def test_promtool_check_metrics_accepts_the_scrape(scraped: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    checked = subprocess.run([promtool, "check", "metrics"], input=scraped, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
