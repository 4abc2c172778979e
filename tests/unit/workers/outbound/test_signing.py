"""Our signatures verify with the Standard Webhooks spec's own library, with every secret of a rotation."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from receiver.kernel.webhook_endpoints import parse
from tests.support.webhook_sink import new_secret
from workers.outbound import signing

OLD, NEW = new_secret(7), new_secret(8)


def _endpoint_secrets(*secrets: str) -> tuple[bytes, ...]:
    return parse(f'[{{"name": "x", "url": "https://x.example", "secrets": {list(secrets)!r}}}]'.replace("'", '"'))[0].secrets


def test_every_secret_of_a_rotation_verifies_and_no_other() -> None:
    body = b'{"type":"recording.archived","data":{"recording_sid":"RE1"}}'
    headers = signing.headers(_endpoint_secrets(OLD, NEW), "msg_1", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (OLD, NEW):
        assert Webhook(secret).verify(body, headers)["data"]["recording_sid"] == "RE1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret(9)).verify(body, headers)


@pytest.mark.parametrize("change", ["body", "id", "timestamp"])
def test_a_changed_body_id_or_timestamp_fails_verification(change: str) -> None:
    body, now = b'{"a":1}', int(time.time())
    headers = signing.headers(_endpoint_secrets(OLD), "msg_1", now, body)
    if change == "body":
        body = b'{"a":2}'
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    else:
        headers["webhook-timestamp"] = str(now - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(body, headers)
