"""Encrypted voice recordings into S3 (moto on loopback): decrypted across multipart parts, and a
failed GCM tag check aborts the upload so no plaintext object ever appears."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_encrypted_recordings import last_line
from tests.e2e.test_voice_pipeline import callback
from tests.support.recording_keys import key_pair
from tests.support.s3_server import Bucket, bucket, s3_server
from workers.commands.settings import Settings
from workers.storage.s3 import PART_BYTES

__all__ = ["bucket", "s3_server"]  # fixtures, used by name


def encrypted(standin: Any, keys: Path) -> Any:
    pair = key_pair()
    sid = standin.state.add_public_key(pair.public_pem)
    pair.install(keys, sid)
    standin.state.media_size = PART_BYTES + 12345  # two parts; the tag ends the second
    return standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)


def settings_for(pipeline_settings: Callable[..., Settings], bucket: Bucket, keys: Path) -> Settings:
    return pipeline_settings(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint, recording_keys_dir=keys)


def test_decrypted_into_s3_in_parts(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    bucket: Bucket, tmp_path: Path,
) -> None:
    settings = settings_for(pipeline_settings, bucket, tmp_path / "keys")
    recording = encrypted(standin, tmp_path / "keys")
    receiver = start_receiver(settings)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)

    folder = f"{bucket.prefix}/voice/{ACCOUNT_SID}"
    objects = bucket.objects()
    assert objects[f"{folder}/{recording.sid}.wav"] == recording.plaintext
    entry = json.loads(objects[f"{folder}/{recording.sid}.json"])["media"]
    assert entry["sha256"] == hashlib.sha256(recording.plaintext).hexdigest() and entry["encryption"]["decrypted"] is True
    assert bucket.unfinished_uploads() == []


def test_a_failed_tag_check_aborts_the_multipart_upload(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    bucket: Bucket, redis: Redis, tmp_path: Path,
) -> None:
    settings = settings_for(pipeline_settings, bucket, tmp_path / "keys")
    recording = encrypted(standin, tmp_path / "keys")
    recording.media = recording.media[:-1] + bytes([recording.media[-1] ^ 0x01])  # the tag's last byte
    receiver = start_receiver(settings)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)

    assert "permanent: GCM tag check failed" in last_line(redis, recording.sid)
    assert bucket.objects() == {} and bucket.unfinished_uploads() == []
