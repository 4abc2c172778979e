"""The recording page and deletion at Twilio: "deleted at Twilio on …", "held by … (reason)", hold and release (CSRF)."""

from __future__ import annotations

import json
from collections.abc import Callable

from redis import Redis

from console import audit
from console.replies import mapping, text
from receiver.kernel import holds, keys
from tests.support.console.helpers import USER, csrf_token, seed, sign_in
from workers.commands.settings import Settings
from workers.jobs.deletion_schedule import hold_on


def test_the_page_says_when_a_recording_was_deleted_at_twilio(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    [sid] = seed(redis, 1, offset=1)
    redis.hset(keys.recording_key("voice", sid), "deleted_at_twilio", "1790000000")
    client = sign_in(start_console(console_settings()))
    page = client.get(f"/recordings/voice/{sid}").text
    assert "Deleted at Twilio on 2026-09-21 14:13:20" in page
    assert 'action="/recordings/voice/' + sid + '/hold"' not in page  # nothing left at Twilio to hold


def test_a_recording_is_held_and_released_from_its_page_with_who_and_why(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    [sid] = seed(redis, 1, offset=2)
    client = sign_in(start_console(console_settings()))
    page = client.get(f"/recordings/voice/{sid}").text
    done = client.post(f"/recordings/voice/{sid}/hold", data={"csrf_token": csrf_token(page), "reason": "  case   9 "})
    assert done.status_code == 303 and done.headers["location"] == f"/recordings/voice/{sid}?notice=held"
    hold = holds.holding(redis, [sid])
    assert hold is not None and (hold.by, hold.reason) == (USER, "case 9")

    page = client.get(f"/recordings/voice/{sid}").text
    assert f"Held by {USER} (case 9)" in page and "never deleted at Twilio while held" in page
    timeline = [json.loads(e) for e in redis.lrange(keys.timeline_key("voice", sid), 0, -1)]
    assert timeline[-1]["kind"] == "hold" and timeline[-1]["by"] == USER

    released = client.post(f"/recordings/voice/{sid}/release", data={"csrf_token": csrf_token(page), "sid": sid})
    assert released.headers["location"] == f"/recordings/voice/{sid}?notice=released"
    assert holds.holding(redis, [sid]) is None
    assert "Held by" not in client.get(f"/recordings/voice/{sid}").text


def test_a_hold_on_the_call_shows_on_its_recordings_and_a_hold_needs_a_reason(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    [sid] = seed(redis, 1, offset=3)
    call = redis.hget(keys.recording_key("voice", sid), "call_sid").decode()
    holds.place(redis, call, "counsel", "litigation <b>")
    client = sign_in(start_console(console_settings()))
    page = client.get(f"/recordings/voice/{sid}").text
    assert "Held by counsel (litigation &lt;b&gt;), through" in page and call in page

    [other] = seed(redis, 1, offset=4)
    page = client.get(f"/recordings/voice/{other}").text
    empty = client.post(f"/recordings/voice/{other}/hold", data={"csrf_token": csrf_token(page), "reason": " "})
    assert empty.headers["location"].endswith("notice=hold_needs_reason") and holds.holding(redis, [other]) is None


def test_holding_the_whole_call_from_one_recording_holds_its_siblings(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    first, sibling = seed(redis, 2, offset=5)
    call = text(redis.hget(keys.recording_key("voice", first), "call_sid"))
    redis.hset(keys.recording_key("voice", sibling), "call_sid", call)
    client = sign_in(start_console(console_settings()))
    page = client.get(f"/recordings/voice/{first}").text
    assert f'<option value="{call}">the whole call {call}' in page
    done = client.post(f"/recordings/voice/{first}/hold", data={"csrf_token": csrf_token(page), "reason": "case 12", "on": call})
    assert done.status_code == 303 and done.headers["location"] == f"/recordings/voice/{first}?notice=held"

    assert holds.holding(redis, [first]) is None  # the call is held, not the recording alone
    sibling_fields = mapping(redis.hgetall(keys.recording_key("voice", sibling)))
    hold = hold_on(redis, sibling, sibling_fields)  # what the deletion job asks before deleting at Twilio
    assert hold is not None and (hold.sid, hold.by, hold.reason) == (call, USER, "case 12")
    assert f"Held by {USER} (case 12), through" in client.get(f"/recordings/voice/{sibling}").text
    entry = json.loads(redis.lrange(keys.timeline_key("voice", first), -1, -1)[0])
    assert (entry["kind"], entry["hold"], entry["reason"]) == ("hold", call, "case 12")
    [action] = [a for a in audit.recent(redis) if a.action == "hold"]
    assert (action.sid, action.user, action.detail) == (first, USER, f"{call}: case 12")


def test_only_the_recordings_own_parents_can_be_held_from_its_page(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    mine, other = seed(redis, 2, offset=7)
    stranger = text(redis.hget(keys.recording_key("voice", other), "call_sid"))
    client = sign_in(start_console(console_settings()))
    page = client.get(f"/recordings/voice/{mine}").text
    refused = client.post(f"/recordings/voice/{mine}/hold", data={"csrf_token": csrf_token(page), "reason": "x", "on": stranger})
    assert refused.status_code == 400 and holds.holding(redis, [stranger]) is None
