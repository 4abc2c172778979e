"""Every Twilio REST call is sorted by source, endpoint kind and status class, whatever host serves the API."""

from __future__ import annotations

import pytest

from workers.twilio_rest.kinds import RestCall, endpoint_kind, source, status_class

AC, BASE = "AC" + "0" * 32, "http://127.0.0.1:8080/prefix"


@pytest.mark.parametrize(("method", "path", "labels"), [
    ("GET", f"/2010-04-01/Accounts/{AC}/Recordings/RE1.json", "voice|metadata"),
    ("GET", f"/2010-04-01/Accounts/{AC}/Recordings.json", "voice|list"),
    ("DELETE", f"/2010-04-01/Accounts/{AC}/Recordings/RE1.json", "voice|delete"),
    ("GET", f"/2008-08-01/Accounts/{AC}/Recordings/RE1.xml", "legacy|metadata"),
    ("GET", f"/2008-08-01/Accounts/{AC}/Recordings", "legacy|list"),
    ("GET", f"/2008-08-01/Accounts/{AC}/Recordings/RE1.wav", "legacy|media"),
    ("GET", "/v1/Recordings/RT1", "video|metadata"),
    ("GET", "/v1/Recordings/RT1/Media", "video|media"),
    ("GET", "/v1/Recordings", "video|list"),
    ("GET", "/v1/MediaRecordings/KV1", "media|metadata"),
    ("GET", "/v1/MediaRecordings/KV1/Media", "media|media"),
    ("GET", "/v1/MediaRecordings", "media|list"),
    ("GET", "/v1/Somewhere/Else", "other|metadata"),
])
def test_source_and_endpoint_kind_come_from_the_path(method: str, path: str, labels: str) -> None:
    url = f"{BASE}{path}?PageSize=50"
    assert f"{source(url)}|{endpoint_kind(method, url)}" == labels


@pytest.mark.parametrize(("status", "expected"), [
    (200, "2xx"), (204, "2xx"), (302, "3xx"), (404, "4xx"), (429, "429"), (503, "5xx"), (None, "error"), (99, "error"),
])
def test_status_classes(status: int | None, expected: str) -> None:
    assert status_class(status) == expected


def test_a_call_without_an_answer_is_an_error() -> None:
    assert RestCall("GET", f"{BASE}/v1/Recordings/RT1", None, 10.0).labels == "video|metadata|error"
