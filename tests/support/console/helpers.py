"""Helpers for console tests: sign in like a browser, read CSRF tokens, seed the catalog fast."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from redis import Redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from receiver.kernel import keys

USER = "operator"
PASSWORD = "correct horse battery staple"
TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-console-secret-key"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


class Clock:
    """A clock the sign-in brake reads, moved only by the test: delays play out without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


# Every client sign_in made, closed after each test by the console conftest (an unclosed one
# leaks its sockets, a ResourceWarning and so an error).
signed_in: list[httpx.Client] = []


def sign_in(base_url: str, username: str = USER, password: str = PASSWORD) -> httpx.Client:
    """A client holding a session, as a browser would after the login form."""
    client = httpx.Client(base_url=base_url, timeout=10)
    signed_in.append(client)
    form = client.get("/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(form.text), "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return client


def session_csrf(client: httpx.Client) -> str:
    return csrf_token(client.get("/").text)


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


# Writes what the receiver and workers write for one recording, server-side, so that seeding
# 100,000 takes a couple of seconds instead of Python packing a million commands.
# ARGV: recording key prefix, timeline key prefix, related key prefix, all index, source index,
#       status index prefix, account, with timeline (0/1), then (sid, call, score ms, status) groups.
_SEED = """
for i = 9, #ARGV, 4 do
  local sid, call, score, status = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local member, seen, key = 'voice:' .. sid, score / 1000, ARGV[1] .. sid
  redis.call('HSET', key, 'status', status, 'rank', 1, 'source', 'voice', 'sid', sid, 'account_sid', ARGV[7],
             'call_sid', call, 'first_seen_at', seen, 'updated_at', seen)
  if status == 'completed' then
    redis.call('HSET', key, 'archived_at', seen + 2, 'media_path', '/data/voice/' .. sid .. '.wav')
  end
  redis.call('ZADD', ARGV[4], score, member)
  redis.call('ZADD', ARGV[5], score, member)
  redis.call('ZADD', ARGV[6] .. status, score, member)
  redis.call('SADD', ARGV[3] .. call, member)
  if ARGV[8] == '1' then
    redis.call('RPUSH', ARGV[2] .. sid, cjson.encode({at = seen, kind = 'callback', status = status, verdict = 'queued'}))
  end
end
"""


def seed(
    redis: Redis, count: int, start_ms: int | None = None, batch: int = 5_000, offset: int = 0, ties: int = 1,
    timeline: bool = True,
) -> list[str]:
    """`count` voice recordings as the receiver and workers leave them; returns their SIDs, newest first.

    Recording i is seen (i // ties) ms before `start_ms` (so `ties` recordings share each first-seen
    time); every 10th is absent, the rest completed and archived; each belongs to its own call CA…i.
    """
    start_ms = start_ms or int(time.time() * 1000)
    script = redis.register_script(_SEED)
    head = [keys.recording_key("voice", ""), keys.timeline_key("voice", ""), keys.related_key(""),
            keys.RECORDINGS_INDEX, keys.source_index("voice"), keys.status_index(""), sid("AC", 1), int(timeline)]
    sids: list[str] = []
    for first in range(offset, offset + count, batch):
        args: list[Any] = list(head)
        for i in range(first, min(first + batch, offset + count)):
            recording = sid("RE", i)
            args += [recording, sid("CA", i), start_ms - (i - offset) // ties, "absent" if i % 10 == 0 else "completed"]
            sids.append(recording)
        script(args=args)
    return sids


def fail_job(redis: Redis, recording: str, reason: str, source: str = "voice", status: str = "completed", queue: str = "recordings") -> str:
    """A job of ours that failed the way a worker leaves it: status, failed registry, result, exc_info."""
    job_id = f"rr-{source}-{recording}-{status}"
    payload = {"v": 1, "source": source, "sid": recording, "status": status, "account_sid": sid("AC", 1),
               "origin": "callback", "related": {}, "details": {}}
    job = Queue(queue, connection=redis, serializer=JSONSerializer).create_job(
        keys.JOB_FUNCTION, args=[payload], job_id=job_id, description=f"{source} {recording} {status}",
    )
    job.retries_left = 0
    exc = f"Traceback (most recent call last):\n  File \"workers/jobs/entry.py\", line 1\nworkers.failures.JobFailed: {reason}\n"
    pipe = redis.pipeline()
    job.set_status(JobStatus.FAILED, pipeline=pipe)
    job.save(pipeline=pipe)
    FailedJobRegistry(queue, connection=redis, serializer=JSONSerializer).add(job, exc_string=exc, pipeline=pipe)
    Result.create_failure(job, ttl=3600, exc_string=exc, pipeline=pipe)
    pipe.execute()
    return job_id
