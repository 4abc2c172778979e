"""Encrypted voice recordings end to end: signed callback → worker → stand-in serving Twilio's
ciphertext → plaintext in storage only once its GCM tag checks out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from console import failures
from console.actions import Actions
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support.recording_keys import key_pair
from tests.support.rq_jobs import failure_trace
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog

QUEUE = "recordings"


def folder(settings: Settings) -> Path:
    return settings.storage_path / "voice" / ACCOUNT_SID


def archive(settings: Settings, receiver: Receiver, recording: Any) -> None:
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)


def last_line(redis: Redis, sid: str) -> str:
    job = Job.fetch(f"rr-voice-{sid}-completed", connection=redis, serializer=JSONSerializer)
    return failure_trace(job).strip().splitlines()[-1]


def nothing_archived(settings: Settings, sid: str) -> bool:
    return not folder(settings).exists() or not [p for p in folder(settings).iterdir() if sid in p.name]


def test_an_encrypted_recording_is_archived_decrypted(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, tmp_path: Path,
) -> None:
    settings = pipeline_settings(recording_keys_dir=tmp_path / "keys")
    pair = key_pair()
    sid = standin.state.add_public_key(pair.public_pem)
    pair.install(tmp_path / "keys", sid)
    standin.state.media_size = 200_000  # several download chunks, so the tag arrives in a later one
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)
    assert recording.media != recording.plaintext
    archive(settings, start_receiver(settings), recording)

    media = folder(settings) / f"{recording.sid}.wav"
    assert media.read_bytes() == recording.plaintext
    record = json.loads(media.with_suffix(".json").read_text())
    assert record["media"]["bytes"] == len(recording.plaintext)
    assert record["media"]["sha256"] == hashlib.sha256(recording.plaintext).hexdigest()
    assert record["media"]["encryption"] == {"decrypted": True, "public_key_sid": sid}
    assert record["recording"]["encryption_details"]["encryption_public_key_sid"] == sid
    assert Catalog(redis).get("voice", recording.sid)["media_sha256"] == record["media"]["sha256"]


def test_keep_encrypted_stores_what_twilio_served_with_what_decrypting_takes(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
) -> None:
    settings = pipeline_settings(keep_encrypted=True)
    sid = standin.state.add_public_key(key_pair().public_pem)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)
    archive(settings, start_receiver(settings), recording)

    media = folder(settings) / f"{recording.sid}.wav"
    assert media.read_bytes() == recording.media
    entry = json.loads(media.with_suffix(".json").read_text())["media"]
    assert entry["sha256"] == hashlib.sha256(recording.media).hexdigest()
    assert entry["encryption"]["decrypted"] is False and entry["encryption"]["public_key_sid"] == sid
    assert entry["encryption"]["encryption_details"] == recording.encryption_details


def test_a_missing_key_fails_permanently_and_a_replay_archives_once_it_is_added(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    settings = pipeline_settings(recording_keys_dir=keys, retry_max=5)
    pair = key_pair()
    sid = standin.state.add_public_key(pair.public_pem)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)
    archive(settings, start_receiver(settings), recording)

    job_id = f"rr-voice-{recording.sid}-completed"
    assert FailedJobRegistry(QUEUE, connection=redis, serializer=JSONSerializer).get_job_ids() == [job_id]
    assert last_line(redis, recording.sid) == (
        f"workers.failures.JobFailed: permanent: no private key for {sid}: add {sid}.pem to RECORDING_KEYS_DIR, then replay"
    )
    # Permanent: one attempt, no retries spent.
    assert len(standin.state.requests("GET", f"{recording.sid}.json")) == 1
    assert nothing_archived(settings, recording.sid)
    index = failures.FailureIndex(redis, QUEUE)
    [group] = index.scan().groups
    assert sid in group.example or sid in group.cause

    pair.install(keys, sid)
    Actions(redis, QUEUE, settings.retry_max, index).replay(job_id, "test")
    drain(settings)
    assert (folder(settings) / f"{recording.sid}.wav").read_bytes() == recording.plaintext
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")


def test_tampered_media_fails_the_tag_check_and_nothing_is_archived(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, tmp_path: Path,
) -> None:
    settings = pipeline_settings(recording_keys_dir=tmp_path / "keys")
    pair = key_pair()
    sid = standin.state.add_public_key(pair.public_pem)
    pair.install(tmp_path / "keys", sid)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)
    tampered = bytearray(recording.media)
    tampered[len(tampered) // 2] ^= 0x80
    recording.media = bytes(tampered)
    archive(settings, start_receiver(settings), recording)

    assert "permanent: GCM tag check failed" in last_line(redis, recording.sid)
    assert nothing_archived(settings, recording.sid)  # no media, no record, no temp file
    assert not Catalog(redis).get("voice", recording.sid).get("archived_at")


def test_a_wrong_key_file_is_a_clear_permanent_failure(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, tmp_path: Path,
) -> None:
    settings = pipeline_settings(recording_keys_dir=tmp_path / "keys")
    sid = standin.state.add_public_key(key_pair().public_pem)
    key_pair(1).install(tmp_path / "keys", sid)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, encrypt_with=sid)
    archive(settings, start_receiver(settings), recording)

    line = last_line(redis, recording.sid)
    assert f"permanent: the private key for {sid} does not open this recording's key" in line
    assert "PRIVATE KEY" not in line
    assert nothing_archived(settings, recording.sid)
