"""The PromQL in deploy/'s alerts and dashboard, and the metric names each expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "recording-receiver.json"
RULE_TESTS = Path(__file__).with_name("alerts_test.yml")

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_GRAFANA_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on", "ignoring",
             "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects: identifiers outside strings, label matchers, ranges and
    grouping clauses that are neither functions, keywords nor parts of numbers and durations."""
    text = expr
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _GROUPING, _GRAFANA_VARIABLES):
        text = pattern.sub(" ", text)
    names: set[str] = set()
    for found in _IDENTIFIER.finditer(text):
        before = text[found.start() - 1] if found.start() else " "
        if before.isdigit() or before == ".":
            continue  # 1e3, 5m
        if text[found.end():].lstrip().startswith("(") or found.group().lower() in _KEYWORDS:
            continue
        names.add(found.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel that shows data (rows only group them), nested ones too."""
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def dashboard_exprs() -> list[str]:
    return [str(target["expr"]) for panel in dashboard_panels() for target in panel.get("targets", [])]


def all_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in alert_rules()] + dashboard_exprs()


def as_prometheus(expr: str) -> str:
    """A dashboard expression as Prometheus itself would get it from Grafana."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
