"""Sends a sample callback of any source, signed (or deliberately not), so a deployment can be tried without Twilio."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from twilio.request_validator import RequestValidator


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def voice_params(account_sid: str, status: str, recording_sid: str | None = None) -> dict[str, str]:
    sid = recording_sid or new_sid("RE")
    params = {
        "AccountSid": account_sid,
        "CallSid": new_sid("CA"),
        "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Recordings/{sid}",
        "RecordingStatus": status,
        "RecordingChannels": "1",
        "RecordingSource": "OutboundAPI",
        "RecordingStartTime": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "RecordingTrack": "both",
    }
    if status != "in-progress":
        params["RecordingDuration"] = "7"
    if status == "absent":
        params["ErrorCode"] = "16101"
    return params


def video_params(account_sid: str, status: str, recording_sid: str | None = None) -> dict[str, str]:
    """A room's status callback: recording-started/-completed/-failed, or a room event it ignores."""
    params = {
        "AccountSid": account_sid,
        "RoomSid": new_sid("RM"),
        "RoomName": "simulated",
        "RoomStatus": "in-progress",
        "RoomType": "group",
        "StatusCallbackEvent": status,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "SequenceNumber": "1",
    }
    if status.startswith("recording-"):
        sid = recording_sid or new_sid("RT")
        params.update(
            RecordingSid=sid, RecordingUri=f"/v1/Recordings/{sid}", SourceSid=new_sid("MT"), TrackName="microphone",
            Container="mka", Codec="opus", Type="audio",
        )
        if status == "recording-completed":
            params.update(Size="2048", Duration="7", MediaUri=f"/v1/Recordings/{sid}/Media")
        if status == "recording-failed":
            params["FailedOperation"] = "media-upload"
    return params


def media_params(account_sid: str, status: str, recording_sid: str | None = None) -> dict[str, str]:
    """A MediaRecording's status callback (processing, completed, deleted, failed)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {
        "MediaRecordingSid": recording_sid or new_sid("KV"),
        "Status": status,
        "AccountSid": account_sid,
        "ProcessorSid": new_sid("ZX"),
        "SourceSid": new_sid("RM"),
        "Format": "mp4",
        "DateCreated": now,
        "DateUpdated": now,
    }
    if status == "completed":
        params.update(Duration="7", MediaSize="2048")
    if status == "failed":
        params["ErrorCode"] = "53302"
    return params


def legacy_params(account_sid: str, status: str, recording_sid: str | None = None) -> dict[str, str]:
    """A 2008-08-01 `<Record action>` request; `hangup` is the one without a recording."""
    sid = recording_sid or new_sid("RE")
    url = "" if status == "hangup" else f"http://api.twilio.com/2008-08-01/Accounts/{account_sid}/Recordings/{sid}"
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2008-08-01",
        "CallSid": new_sid("CA"),
        "CallStatus": "completed" if status == "hangup" else "in-progress",
        "Digits": "hangup" if status == "hangup" else "#",
        "Duration": "0" if status == "hangup" else "7",
        "RecordingUrl": url,
    }


Builder = Callable[[str, str, "str | None"], dict[str, str]]


# source: (its statuses, the default first; how to build its params; the field naming the recording)
SOURCES: dict[str, tuple[tuple[str, ...], Builder, str]] = {
    "voice": (("completed", "in-progress", "absent", "failed"), voice_params, "RecordingSid"),
    "video": (("recording-completed", "recording-started", "recording-failed", "room-ended"), video_params, "RecordingSid"),
    "media": (("completed", "processing", "deleted", "failed"), media_params, "MediaRecordingSid"),
    "legacy": (("completed", "hangup"), legacy_params, "RecordingUrl"),
}
# The parameter --tamper changes after signing: present in every status of its source.
TAMPERED = {"voice": "CallSid", "video": "RoomSid", "media": "ProcessorSid", "legacy": "CallSid"}


def params_for(source: str, account_sid: str, status: str, recording_sid: str | None = None) -> dict[str, str]:
    _, build, _ = SOURCES[source]
    return build(account_sid, status, recording_sid)


def recording_named(source: str, params: dict[str, str]) -> str:
    """`Field=SID` for the report line; the legacy source names its recording only by URL."""
    field = SOURCES[source][2]
    value = params.get(field, "")
    if field == "RecordingUrl":
        return f"RecordingSid={value.rsplit('/', 1)[-1] or '(none)'}"
    return f"{field}={value}"


def tamper(source: str, params: dict[str, str]) -> dict[str, str]:
    """The same params with one value changed, as a forger or a rewriting proxy would."""
    field = TAMPERED[source]
    return {**params, field: params[field][:-1] + ("0" if params[field][-1:] != "0" else "1")}


def signature(url: str, params: dict[str, str], auth_token: str) -> str:
    return str(RequestValidator(auth_token).compute_signature(url, params))


def send(url: str, params: dict[str, str], auth_token: str | None, timeout: float = 15.0,
         signed_params: dict[str, str] | None = None, signed_url: str | None = None) -> httpx.Response:
    """POST `params` to `url`, signed over `signed_url` and `signed_params` (default: the same) unless
    no token is given."""
    signed = signature(signed_url or url, signed_params or params, auth_token) if auth_token is not None else None
    headers = {} if signed is None else {"X-Twilio-Signature": signed}
    return httpx.post(url, data=params, headers=headers, timeout=timeout)
