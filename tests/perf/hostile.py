"""Hostile traffic: N malformed or forged requests against a real receiver; counts 5xx and queued jobs.

    python -m tests.perf.hostile [--requests 10000]

Every request is wrong in some way: unsigned, signed with the wrong token or over another URL,
a tampered parameter, a bad SID, a wrong method or content type, an oversized, non-UTF-8 or
random body. The run passes when no answer is a 5xx and nothing reached the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import tempfile
from pathlib import Path

import httpx

from tests.perf.harness import start_uvicorn, stop
from tests.support.servers import RedisProcess
from tests.support.twilio_signing import sign
from workers.commands.simulate import new_sid, voice_params

ACCOUNT, TOKEN, PUBLIC = "AC" + "4" * 32, "hostile-token", "https://hooks.example.com"
ROUTE = "/twilio/recordings/voice"


def forged(rng: random.Random) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path+query, headers, body) of one request that must be refused or ignored."""
    params = voice_params(ACCOUNT, rng.choice(["completed", "absent", "in-progress"]), new_sid("RE"))
    form = httpx.QueryParams(params).__str__().encode()
    good = sign(TOKEN, PUBLIC + ROUTE, params.items())
    kind = rng.randrange(10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if kind == 0:
        return "POST", ROUTE, headers, form  # unsigned
    if kind == 1:
        return "POST", ROUTE, {**headers, "X-Twilio-Signature": sign("wrong", PUBLIC + ROUTE, params.items())}, form
    if kind == 2:
        return "POST", ROUTE + "?x=1", {**headers, "X-Twilio-Signature": good}, form  # another URL
    if kind == 3:
        tampered = form.replace(b"RecordingChannels=1", b"RecordingChannels=2")
        return "POST", ROUTE, {**headers, "X-Twilio-Signature": good}, tampered
    if kind == 4:
        bad = dict(params, RecordingSid="RE" + "z" * 32)
        return "POST", ROUTE, {**headers, "X-Twilio-Signature": sign(TOKEN, PUBLIC + ROUTE, bad.items())}, httpx.QueryParams(bad).__str__().encode()
    if kind == 5:
        return rng.choice(["PUT", "DELETE", "PATCH"]), ROUTE, {**headers, "X-Twilio-Signature": good}, form
    if kind == 6:
        return "POST", ROUTE, {"Content-Type": rng.choice(["text/plain", "application/xml", ""]), "X-Twilio-Signature": good}, form
    if kind == 7:
        return "POST", ROUTE, {**headers, "X-Twilio-Signature": good}, form + b"&pad=" + b"x" * 70_000
    if kind == 8:
        return "POST", ROUTE, {**headers, "X-Twilio-Signature": good}, b"RecordingSid=%ff%fe&" + rng.randbytes(40)
    return "POST", ROUTE, {**headers, "X-Twilio-Signature": rng.randbytes(8).hex()}, rng.randbytes(rng.randrange(300))


async def attack(base: str, count: int, concurrency: int) -> collections.Counter[int]:
    rng = random.Random(7)
    requests = [forged(rng) for _ in range(count)]
    statuses: collections.Counter[int] = collections.Counter()
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        async def worker(chunk: list[tuple[str, str, dict[str, str], bytes]]) -> None:
            for method, path, headers, body in chunk:
                response = await client.request(method, path, headers=headers, content=body)
                statuses[response.status_code] += 1

        await asyncio.gather(*(worker(requests[i::concurrency]) for i in range(concurrency)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc = RedisProcess(Path(tmp) / "redis")
        env = {"REDIS_URL": redis_proc.url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": ACCOUNT,
               "TWILIO_AUTH_TOKEN": TOKEN, "DATA_DIR": str(Path(tmp) / "data"), "LOG_LEVEL": "ERROR", **{k: v for k, v in os.environ.items() if k == "PATH"}}
        server = start_uvicorn("receiver.app.factory:create_app", env, factory=True)
        try:
            statuses = asyncio.run(attack(server.base_url, args.requests, args.concurrency))
            redis = redis_proc.client()
            queued = int(redis.llen("rq:queue:recordings"))  # type: ignore[arg-type]
            ledgers = len(list(redis.scan_iter("rr:ledger:*")))
        finally:
            stop(server)
            redis_proc.stop()
    print("answers:", ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    fives = sum(n for code, n in statuses.items() if code >= 500)
    print(f"requests {sum(statuses.values())}  5xx {fives}  queued jobs {queued}  dedupe records {ledgers}")


if __name__ == "__main__":
    main()
