"""deploy/prometheus/alerts.yml and deploy/grafana/recording-receiver.json: valid for promtool, alerts that fire."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring import promql


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    return found


def test_promtool_check_rules_accepts_the_alerts() -> None:
    checked = subprocess.run([_promtool(), "check", "rules", str(promql.ALERTS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(promql.alert_rules())} rules found" in checked.stdout


def test_each_alert_fires_on_its_trouble_and_not_on_a_healthy_fleet() -> None:
    tested = subprocess.run([_promtool(), "test", "rules", promql.RULE_TESTS.name], capture_output=True, text=True,
                            timeout=120, cwd=promql.RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    unit_tests = yaml.safe_load(promql.RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    exercised = {case["alertname"] for test in unit_tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert exercised == {rule["alert"] for rule in promql.alert_rules()} - {"RecordingReceiverMetricsUnavailable",
                                                                             "RecordingReceiverReconcilerStalled"}


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses a rule file's expressions: the dashboard's, as recording rules, are checked the same way.
    rules = [{"record": f"dashboard:query_{i}", "expr": promql.as_prometheus(e)} for i, e in enumerate(promql.dashboard_exprs())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    checked = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_panel_and_alert_queries_some_metric() -> None:
    panels = promql.dashboard_panels()
    assert panels and all(panel.get("targets") for panel in panels)
    for expr in promql.all_exprs():
        assert promql.metric_names(expr), expr


def test_metric_names_are_the_selected_series_only() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, source) (rate(a_seconds_bucket{source="voice",x=~"b|c"}[$__rate_interval])))'
            " / ignoring(le) group_left b_total offset 5m > 1e3 and on (job) time() - c_timestamp unless absent(d)")
    assert promql.metric_names(expr) == {"a_seconds_bucket", "b_total", "c_timestamp", "d"}
