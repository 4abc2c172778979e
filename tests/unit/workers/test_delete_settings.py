"""DELETE_AT_TWILIO, DELETE_DELAY and DELETE_TRANSCRIPTION_WAIT: what they accept and what they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workers.settings import WorkerSettings, delay_seconds


@pytest.mark.parametrize(("text", "seconds"), [("0", 0), ("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800), (" 7D ", 604800)])
def test_a_delay_is_zero_or_a_number_with_a_unit(text: str, seconds: int) -> None:
    assert delay_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "7w", "-1d", "1.5h", "soon", "7 d", "d"])
def test_anything_else_is_refused_naming_the_setting_and_never_its_value(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkerSettings(delete_delay=text)
    [error] = caught.value.errors(include_input=False)
    assert error["loc"] == ("delete_delay",) and "0 or a number with a unit" in error["msg"]


def test_the_policy_is_off_unless_asked_and_takes_only_its_two_values() -> None:
    assert WorkerSettings().delete_at_twilio == "off"
    assert WorkerSettings(delete_at_twilio="after-archive", delete_delay="0").delete_delay_seconds == 0
    with pytest.raises(ValidationError):
        WorkerSettings(delete_at_twilio="always")
    assert WorkerSettings(delete_transcription_wait="0").delete_transcription_wait_seconds == 0
