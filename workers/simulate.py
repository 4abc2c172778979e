"""Sends a correctly signed sample callback, so a deployment can be tried without Twilio."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

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
        "RecordingStartTime": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "RecordingTrack": "both",
    }
    if status != "in-progress":
        params["RecordingDuration"] = "7"
    if status == "absent":
        params["ErrorCode"] = "16101"
    return params


def send(url: str, params: dict[str, str], auth_token: str, timeout: float = 15.0) -> httpx.Response:
    signature = RequestValidator(auth_token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=timeout)
