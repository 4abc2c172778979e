"""Each Twilio REST call through the workers' clients is reported once, timed, answered or not."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

from receiver.kernel.accounts import load_accounts
from tests.conftest import ACCOUNT_SID
from workers.commands.settings import Settings
from workers.twilio_rest.client import TwilioRest
from workers.twilio_rest.kinds import RestCall
from workers.twilio_rest.sources import voice


def _calls(settings: Settings) -> tuple[TwilioRest, list[RestCall]]:
    calls: list[RestCall] = []
    return TwilioRest(settings, on_call=calls.append), calls


def test_answered_calls_are_reported_with_their_status(pipeline_settings: Callable[..., Settings], standin: Any) -> None:
    settings = pipeline_settings()
    rest, calls = _calls(settings)
    client = rest.client(load_accounts(settings).default)  # type: ignore[arg-type]
    known = standin.state.add_voice(account_sid=ACCOUNT_SID)
    voice.fetch(client, ACCOUNT_SID, known.sid)
    with pytest.raises(Exception):  # noqa: B017 -- any error: the test counts the call, not its type
        voice.fetch(client, ACCOUNT_SID, "RE" + "0" * 32)
    assert [(c.status, c.labels) for c in calls] == [(200, "voice|metadata|2xx"), (404, "voice|metadata|4xx")]
    assert all(c.seconds >= 0 for c in calls)


def test_a_call_nobody_answers_is_reported_as_an_error(make_settings: Callable[..., Settings]) -> None:
    # A port held but not listening: the connection is refused, and no other process can take it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        settings = make_settings(twilio_api_base_url=f"http://127.0.0.1:{held.getsockname()[1]}", twilio_timeout_seconds=5)
        rest, calls = _calls(settings)
        client = rest.client(load_accounts(settings).default)  # type: ignore[arg-type]
        with pytest.raises(requests.ConnectionError):
            voice.fetch(client, ACCOUNT_SID, "RE" + "1" * 32)
    assert [(c.status, c.labels) for c in calls] == [(None, "voice|metadata|error")]
