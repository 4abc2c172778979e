"""A real S3-compatible server on loopback for the storage tests: moto's, with a gate that can hold
chosen requests, and a client and settings that point at it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from pathlib import Path

    from types_boto3_s3 import S3Client

# Keys moto accepts while its IAM checks are off (the default); never real ones.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass
class Gate:
    """Holds every request `matches` picks until `opened` is set; `reached` says one arrived.
    A held request is then dropped with a 503, never forwarded: its sender is meant to be dead."""

    matches: Callable[[Environ], bool] = lambda environ: False
    # Answers to requests this picks have their first byte flipped: storage that lies.
    corrupts: Callable[[Environ], bool] = lambda environ: False
    reached: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def holds(self, environ: Environ, start_response: StartResponse) -> bool:
        if not self.matches(environ):
            return False
        self.reached.set()
        self.opened.wait(120)
        start_response("503 Service Unavailable", [("Content-Length", "0")])
        return True


class _QuietHandler(MotoRequestHandler):
    """No line per request: a test's captured output shows what the code under test logged."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class GatedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app sits behind a `Gate`."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.gate = Gate()

    def _server_entry(self) -> None:
        moto = DomainDispatcherApplication(create_backend_app)
        # moto checks If-None-Match and then writes, unlocked, where S3 does both atomically: one
        # write at a time here, so two racing create-only writes meet S3's answer (one 412).
        writes = threading.Lock()

        def app(environ: Environ, start_response: StartResponse) -> Any:
            if self.gate.holds(environ, start_response):
                return [b""]
            if self.gate.corrupts(environ):
                body = b"".join(moto(environ, start_response))
                return [bytes([body[0] ^ 0xFF]) + body[1:]] if body else [body]
            if environ["REQUEST_METHOD"] not in ("PUT", "POST"):
                return moto(environ, start_response)
            with writes:
                return list(moto(environ, start_response))

        self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def require_auth(self, on: bool) -> None:
        """moto's IAM checks (process-wide): on, an unknown access key is refused as AWS would."""
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=b"0" if on else b"inf", timeout=10).raise_for_status()


@dataclass
class Bucket:
    """A fresh bucket of this test's own on the shared server."""

    server: GatedMotoServer
    name: str
    prefix: str = "archive"

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    def client(self) -> S3Client:
        return client(self.server.endpoint)

    def objects(self) -> dict[str, bytes]:
        s3 = self.client()
        listed = s3.list_objects_v2(Bucket=self.name).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=self.name, Key=o["Key"])["Body"].read() for o in listed}

    def versions(self) -> dict[str, int]:
        """How many versions each key has had (versioning is on): 1 means never replaced."""
        counts: dict[str, int] = {}
        for version in self.client().list_object_versions(Bucket=self.name).get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
        return counts

    def unfinished_uploads(self) -> list[str]:
        return [u["Key"] for u in self.client().list_multipart_uploads(Bucket=self.name).get("Uploads", [])]

    def env(self) -> dict[str, str]:
        """What a worker process needs to archive into this bucket."""
        return {"STORAGE_URL": self.url, "STORAGE_ENDPOINT_URL": self.server.endpoint, **CREDENTIALS}


def client(endpoint: str) -> S3Client:
    config = Config(s3={"addressing_style": "path"})
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1").client(
        "s3", endpoint_url=endpoint, config=config
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[GatedMotoServer]:
    server = GatedMotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: GatedMotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Bucket]:
    """A new versioned bucket, this process's AWS credentials pointed at the test keys (no
    profile or config file of the machine's is read), and the gate reset afterwards."""
    isolate_aws(monkeypatch, tmp_path, CREDENTIALS)
    made = Bucket(s3_server, f"rec-{uuid.uuid4().hex[:12]}")
    s3 = made.client()
    s3.create_bucket(Bucket=made.name)
    s3.put_bucket_versioning(Bucket=made.name, VersioningConfiguration={"Status": "Enabled"})
    yield made
    s3_server.gate.opened.set()
    s3_server.gate = Gate()
    s3_server.require_auth(False)


def worker_env(base: dict[str, str], made: Bucket, tmp_path: Any) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update(made.env(), **no_machine_aws(tmp_path))
    return env


def no_machine_aws(tmp_path: Path) -> dict[str, str]:
    """Environment that keeps botocore off this machine's AWS files and instance metadata."""
    return {"AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"), "AWS_EC2_METADATA_DISABLED": "true"}


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: dict[str, str] | None) -> None:
    """This process's AWS settings: the given keys (or none at all), no profile, session or
    endpoint from outside, and nothing of the machine's (see `no_machine_aws`)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**(credentials or {}), **no_machine_aws(tmp_path)}.items():
        monkeypatch.setenv(name, value)


__all__ = ["Bucket", "GatedMotoServer", "bucket", "isolate_aws", "no_machine_aws", "s3_server", "worker_env"]
