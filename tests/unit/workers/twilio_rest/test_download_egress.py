"""Media downloads never reach internal services: every hop is checked, credentials stay on Twilio's hosts."""

from __future__ import annotations

import shutil
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_sources_pipeline import video_callback
from tests.e2e.test_voice_pipeline import callback as voice_callback
from tests.standin.faults import FOREVER
from tests.support.rq_jobs import failure_trace
from tests.support.servers import serve_app
from workers.commands.settings import Settings

SECRET = b"internal secret"


class _Answer(socketserver.BaseRequestHandler):
    """Counts the connection, then answers whatever came (an HTTP request or a TLS hello) with 200."""

    server: InternalService

    def handle(self) -> None:
        self.server.count()
        self.request.settimeout(5)
        try:
            self.request.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n".encode()
            self.request.sendall(head + SECRET)
        except OSError:
            pass  # a TLS client hangs up on a plain-text answer; the connection is what counts


class InternalService(socketserver.ThreadingTCPServer):
    """Stands for an internal HTTP service (Redis, a metadata endpoint) on loopback."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.port = int(self.server_address[1])
        self.connections = 0
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self.connections += 1


@pytest.fixture
def internal() -> Iterator[InternalService]:
    service = InternalService()
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.shutdown()
        service.server_close()
        thread.join(timeout=10)


@pytest.fixture
def pipeline(pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]) -> tuple[Settings, Receiver]:
    settings = pipeline_settings(retry_max=1)
    return settings, start_receiver(settings)


def _failed_job(redis: Redis, job_id: str) -> Job:
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    return job


def _refusal(redis: Redis, job_id: str) -> str:
    """The job's last line, which the console shows; it must never carry the signed URL's query."""
    trace = failure_trace(_failed_job(redis, job_id))
    assert "Signature" not in trace and "Expires" not in trace
    return trace.strip().splitlines()[-1]


def _archive_video(settings: Settings, receiver: Receiver, standin: Any) -> Any:
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url("video"), video_callback(rec)).status_code == 204
    drain(settings)
    return rec


def _nothing_stored(settings: Settings, source: str) -> bool:
    folder = settings.storage_path / source / ACCOUNT_SID
    return not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


# Where an answer from a configured host may send the download next; each one is internal.
HOPS = {
    "http-loopback": "http://127.0.0.1:{port}/admin",
    "https-loopback": "https://127.0.0.1:{port}/admin",
    "http-localhost": "http://localhost:{port}/",
    "https-localhost": "https://localhost:{port}/",
    "decimal": "https://2130706433:{port}/",
    "octal": "https://0177.0.0.1:{port}/",
    "mapped-v6": "https://[::ffff:127.0.0.1]:{port}/",
    "v6-loopback": "http://[::1]:{port}/",
    "metadata": "http://169.254.169.254:{port}/latest/meta-data/",
}


@pytest.mark.parametrize("hop", sorted(HOPS))
def test_a_signed_url_redirecting_to_an_internal_service_is_refused(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis, internal: InternalService, hop: str
) -> None:
    settings, receiver = pipeline
    target = HOPS[hop].format(port=internal.port)
    standin.state.add_fault("GET", "^/_signed/", 302, times=FOREVER, location=target)
    rec = _archive_video(settings, receiver, standin)
    assert internal.connections == 0
    assert "permanent: refusing media redirect to " in _refusal(redis, f"rr-video-{rec.sid}-completed")
    assert _nothing_stored(settings, "video")


# The signed URL itself, as a hostile `/Media` answer would give it.
SIGNED_BASES = {
    "https-loopback": "https://127.0.0.1:{port}",
    "https-localhost": "https://localhost:{port}",
    "decimal": "https://2130706433:{port}",
    "mapped-v6": "https://[::ffff:127.0.0.1]:{port}",
}


@pytest.mark.parametrize("base", sorted(SIGNED_BASES))
def test_a_redirect_to_an_internal_https_address_is_refused_before_connecting(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis, internal: InternalService, base: str
) -> None:
    settings, receiver = pipeline
    standin.state.public_base_url = SIGNED_BASES[base].format(port=internal.port)
    rec = _archive_video(settings, receiver, standin)
    assert internal.connections == 0
    assert "media URL on https://" in _refusal(redis, f"rr-video-{rec.sid}-completed")
    assert _nothing_stored(settings, "video")


def test_a_redirect_loop_on_a_configured_host_stops_after_five_hops(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    standin.state.add_fault("GET", "^/_signed/", 302, times=FOREVER, location="/_loop")
    standin.state.add_fault("GET", "^/_loop$", 302, times=FOREVER, location="/_loop")
    rec = _archive_video(settings, receiver, standin)
    assert "permanent: refusing media: more than 5 redirects" in _refusal(redis, f"rr-video-{rec.sid}-completed")
    # One attempt: a permanent failure is never retried.
    assert len(standin.state.requests("GET", "/_signed/")) == 1
    assert len(standin.state.requests("GET", "/_loop")) == 5


def _wav_path(rec: Any) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}.wav"


def test_voice_media_redirected_on_its_own_host_keeps_its_credentials_and_downloads(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{rec.sid}\\.wav$", 302, location=_wav_path(rec))
    assert receiver.post(receiver.url(), voice_callback(rec)).status_code == 204
    drain(settings)
    media = settings.storage_path / "voice" / ACCOUNT_SID / f"{rec.sid}.wav"
    assert media.read_bytes() == standin.state.media_bytes(rec, "wav")
    fetches = standin.state.requests("GET", f"{rec.sid}.wav")
    assert [(f["username"], f["status"]) for f in fetches] == [(ACCOUNT_SID, 302), (ACCOUNT_SID, 200)]


def test_voice_credentials_never_follow_a_redirect_to_another_host(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    # The same stand-in under a second configured name: a Twilio host, but not the one asked.
    other = standin.base_url.replace("127.0.0.1", "localhost")
    settings = pipeline_settings(retry_max=1, twilio_media_base_url=other)
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{rec.sid}\\.wav$", 302, location=f"{other}{_wav_path(rec)}")
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    assert "permanent: media answered 401" in _refusal(redis, f"rr-voice-{rec.sid}-completed")
    fetches = standin.state.requests("GET", f"{rec.sid}.wav")
    assert [(f["username"], f["status"]) for f in fetches] == [(ACCOUNT_SID, 302), (None, 401)]


def test_voice_media_redirected_to_an_internal_service_is_refused(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis, internal: InternalService
) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{rec.sid}\\.wav$", 302, times=FOREVER, location=f"http://127.0.0.1:{internal.port}/")
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    assert internal.connections == 0
    assert "permanent: refusing media redirect to http://127.0.0.1" in _refusal(redis, f"rr-voice-{rec.sid}-completed")
    assert _nothing_stored(settings, "voice")


# -- the address check and the resolver seam, for the public HTTPS path tests cannot serve ---------

NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b::7f00:1",
]
# Only plain ones: whether 6to4 and NAT64 prefixes count as global changed between Python releases.
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_internal_addresses_are_not_public(address: str) -> None:
    from workers.twilio_rest import egress

    assert not egress.is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    from workers.twilio_rest import egress

    assert egress.is_public(address)


def _egress(answers: dict[str, list[str]]) -> Any:
    from workers.twilio_rest import egress

    def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    origins = egress.origins(["http://127.0.0.1:8010", "https://api.twilio.com"])
    return egress.Egress(httpx.Client(), origins, resolver)


def test_a_public_name_is_pinned_to_the_address_checked_and_verified_by_its_name() -> None:
    request = _egress({"media.example.test": ["93.184.216.34"]}).request_for(
        httpx.URL("https://media.example.test/x?Signature=s"), ("AC1", "token"))
    assert str(request.url) == "https://93.184.216.34/x?Signature=s"
    assert request.headers["host"] == "media.example.test"
    assert request.extensions["sni_hostname"] == "media.example.test"
    assert "authorization" not in request.headers and request.headers["connection"] == "close"


def test_a_configured_host_is_asked_as_configured_with_the_credentials_given() -> None:
    request = _egress({}).request_for(httpx.URL("https://api.twilio.com/x.wav"), ("AC1", "token"))
    assert request.headers["authorization"].startswith("Basic ") and str(request.url) == "https://api.twilio.com/x.wav"
    assert "sni_hostname" not in request.extensions


@pytest.mark.parametrize("answers", [["127.0.0.1"], ["93.184.216.34", "10.0.0.7"], ["::ffff:192.168.0.1"], []])
def test_a_name_resolving_to_any_internal_address_is_refused(answers: list[str]) -> None:
    from workers.failures import PermanentError

    with pytest.raises(PermanentError) as refused:
        _egress({"media.example.test": answers}).request_for(
            httpx.URL("https://media.example.test/x?Signature=s"), None)
    assert "Signature" not in str(refused.value)


def test_the_system_resolver_sees_localhost_as_loopback() -> None:
    from workers.twilio_rest import egress

    addresses = egress.system_resolver("localhost", 443)
    assert addresses and not any(egress.is_public(a) for a in addresses)


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    return cert, key


def _echo_host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.headers["host"])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a certificate")
def test_a_pinned_address_is_still_verified_against_the_host_name(tmp_path: Path) -> None:
    from workers.twilio_rest.egress import Egress

    cert, key = _certificate(tmp_path, "media.example.test")
    app = Starlette(routes=[Route("/x", _echo_host)])
    with serve_app(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as base, \
            httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
        port = int(base.rsplit(":", 1)[1])
        # Every name resolves to the loopback server, taken for public here: the only way to
        # reach a TLS server by address that tests have.
        egress = Egress(client, frozenset(), lambda host, port: ["127.0.0.1"], lambda address: True)
        with egress.stream(f"https://media.example.test:{port}/x", None) as response:
            assert (response.status_code, response.read()) == (200, f"media.example.test:{port}".encode())
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"), egress.stream(f"https://other.example.test:{port}/x", None):
            pass
