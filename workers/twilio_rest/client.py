"""Twilio REST clients built from explicit settings, one per account and thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from receiver.kernel.accounts import Account
from workers.settings import WorkerSettings
from workers.twilio_rest.kinds import RestCall

OnCall = Callable[[RestCall], None]


class _HeaderKeepingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Keeps the last response's headers: TwilioRestException drops Retry-After, we need it.

    Every Twilio REST call, typed or through `client.request()`, passes here, so this is where
    each one is timed and reported, answered or not.
    """

    def __init__(self, on_call: OnCall, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_headers: dict[str, str] = {}
        self._on_call = on_call

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        self.last_headers = {}
        started = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except Exception:
            self._on_call(RestCall(method, url, None, time.monotonic() - started))
            raise
        self.last_headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        self._on_call(RestCall(method, url, response.status_code, time.monotonic() - started))
        return response


class TwilioRest:
    """Hands out a `twilio.rest.Client` per (thread, account) pointed at the configured hosts.

    The client reads TWILIO_REGION/TWILIO_EDGE from the environment and would rewrite every host
    with them, so both are cleared: the hosts come from our settings alone.
    """

    def __init__(self, settings: WorkerSettings, on_call: OnCall = lambda call: None) -> None:
        self._settings = settings
        self._local = threading.local()
        self._on_call = on_call
        # every client built, whichever thread built it, so close() reaches their sessions
        self._built: list[Client] = []
        self._built_lock = threading.Lock()

    def client(self, account: Account) -> Client:
        cache: dict[str, Client] = self._local.__dict__.setdefault("clients", {})
        if account.sid not in cache:
            cache[account.sid] = self._build(account)
        return cache[account.sid]

    def _build(self, account: Account) -> Client:
        username, password = account.rest_credentials()
        http = _HeaderKeepingHttpClient(self._on_call, timeout=self._settings.twilio_timeout_seconds)
        client = Client(username, password, account_sid=account.sid, http_client=http)
        client.region = None
        client.edge = None
        client.api.base_url = self._settings.twilio_api_base_url
        client.video.base_url = self._settings.twilio_video_base_url
        with self._built_lock:
            self._built.append(client)
        return client

    def close(self) -> None:
        """Close every client's connection pool (a thread's clients outlive the thread otherwise)."""
        with self._built_lock:
            built, self._built = self._built, []
        for client in built:
            session = getattr(client.http_client, "session", None)
            if session is not None:
                session.close()

    @staticmethod
    def last_headers(client: Client) -> dict[str, str]:
        http = client.http_client
        return http.last_headers if isinstance(http, _HeaderKeepingHttpClient) else {}
