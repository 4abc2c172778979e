"""/metrics after real traffic of two sources: every histogram series complete and consistent, promtool content."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from console.metrics import BOUNDS
from tests.monitoring import promql

LE = [("+Inf" if b == float("inf") else repr(b)) for b in BOUNDS]
Labels = tuple[tuple[str, str], ...]


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


def test_the_dashboard_and_the_alerts_query_only_metrics_that_metrics_exposes(scraped: str) -> None:
    exposed = {line.split("{")[0].split(" ")[0] for line in scraped.splitlines() if line and not line.startswith("#")}
    named = {name: expr for expr in promql.all_exprs() for name in promql.metric_names(expr)}
    assert {name: expr for name, expr in named.items() if name not in exposed} == {}
    # Each metric family the console exports is on the dashboard, so a new one is not forgotten there.
    families = {family.name for family in text_string_to_metric_families(scraped)}
    on_dashboard = {name for expr in promql.dashboard_exprs() for name in promql.metric_names(expr)}
    assert {f for f in families if not any(n == f or n.startswith(f + "_") for n in on_dashboard)} == set()
