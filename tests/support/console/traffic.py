"""Real traffic of two sources through a receiver, workers (with a webhook endpoint), a reconciler pass and a deletion at Twilio, and the /metrics it leaves."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import SecretStr
from redis import Redis

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_sources_pipeline import video_callback
from tests.e2e.test_voice_pipeline import callback
from tests.support.console.helpers import TOKEN
from tests.support.servers import wait_for
from tests.support.webhook_sink import new_secret, running_sink
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params
from workers.jobs import deletion_schedule
from workers.reconcile import reconciler


def scrape_after_traffic(settings: Settings, receiver: Receiver, console: str, standin: Any) -> str:
    """/metrics once voice and video callbacks went through `receiver`, workers and a reconciler pass."""
    voice, video = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_video(account_sid=ACCOUNT_SID)
    standin.state.add_voice(account_sid=ACCOUNT_SID)  # no callback: the reconciler finds it
    assert receiver.post(receiver.url(), callback(voice)).status_code == 204
    assert receiver.post(receiver.url("video"), video_callback(video)).status_code == 204
    # A recording Twilio does not know (a 4xx to time) and a forged callback (a signature failure).
    assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "completed", new_sid("RE"))).status_code == 204
    assert receiver.post(receiver.url(), callback(voice), token="forged").status_code == 403
    with running_sink() as sink:  # each archive's event delivered to an endpoint (a delivery counted)
        endpoints = json.dumps([{"name": "crm", "url": sink.url("/crm"), "secret": new_secret(1)}])
        drain(settings.model_copy(update={"webhook_endpoints": SecretStr(endpoints), "webhook_allow_private": True}))
    assert reconciler.run_once(settings, sources=["voice", "video"]).ok
    # And the video recording deleted at Twilio once archived (a deletion counted).
    deleting = settings.model_copy(update={"delete_at_twilio": "after-archive", "delete_delay": "0"})
    redis = Redis.from_url(settings.redis_url or "")
    try:
        assert deletion_schedule.schedule(deleting, redis, "video", ACCOUNT_SID, video.sid)
    finally:
        redis.close()
    drain(settings)

    def text() -> str:
        body = httpx.get(f"{console}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10).text
        # The receiver writes its enqueue latencies every few seconds: wait for both sources'.
        done = all(f'recording_receiver_enqueue_seconds_count{{source="{s}"}}' in body for s in ("voice", "video"))
        return body if done else ""

    body: str = wait_for(text, timeout=30, what="both sources' enqueue latencies in /metrics")
    return body
