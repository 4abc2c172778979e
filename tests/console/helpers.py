"""Helpers for console tests: sign in like a browser, read CSRF tokens, seed the catalog fast."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
from redis import Redis

from receiver import keys

USER = "operator"
PASSWORD = "correct horse battery staple"
TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-console-secret-key"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(base_url: str, username: str = USER, password: str = PASSWORD) -> httpx.Client:
    """A client holding a session, as a browser would after the login form."""
    client = httpx.Client(base_url=base_url, timeout=10)
    form = client.get("/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(form.text), "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return client


def session_csrf(client: httpx.Client) -> str:
    return csrf_token(client.get("/").text)


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


def seed(redis: Redis, count: int, start_ms: int | None = None, batch: int = 5_000, **fields: Any) -> list[str]:
    """`count` voice recordings written as the receiver and workers write them; returns their SIDs.

    Recording i is seen i ms before `start_ms`; every 10th is absent, the rest completed; every
    recording belongs to call CA…i.
    """
    start_ms = start_ms or int(time.time() * 1000)
    sids = []
    pipe = redis.pipeline(transaction=False)
    for i in range(count):
        recording, call = sid("RE", i), sid("CA", i)
        status = "absent" if i % 10 == 0 else "completed"
        member, score = f"voice:{recording}", start_ms - i
        pipe.hset(keys.recording_key("voice", recording), mapping={
            "status": status, "rank": 1, "source": "voice", "sid": recording, "account_sid": sid("AC", 1),
            "call_sid": call, "first_seen_at": score / 1000, "updated_at": score / 1000,
            **({"archived_at": score / 1000 + 2, "media_path": f"/data/voice/{recording}.wav"} if status == "completed" else {}),
            **fields,
        })
        pipe.zadd(keys.RECORDINGS_INDEX, {member: score})
        pipe.zadd(keys.source_index("voice"), {member: score})
        pipe.zadd(keys.status_index(status), {member: score})
        pipe.sadd(keys.related_key(call), member)
        pipe.rpush(keys.timeline_key("voice", recording), json.dumps({"at": score / 1000, "kind": "callback", "status": status, "verdict": "queued"}))
        sids.append(recording)
        if len(pipe) >= batch * 6:
            pipe.execute()
    pipe.execute()
    return sids
