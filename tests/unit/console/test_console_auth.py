"""Auth at the HTTP level: default deny, CSRF on every action, login, tokens, cookies, unsafe binds."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from console import bind, server
from console.app import create_app
from console.auth import Authenticator
from console.brake import Policy
from tests.support.console.helpers import (
    PASSWORD,
    SECRET_KEY,
    TOKEN,
    USER,
    Clock,
    csrf_token,
    fail_job,
    seed,
    sign_in,
)
from workers.commands.settings import Settings

PUBLIC = {"/login", "/healthz", "/favicon.ico"}
SAMPLE_PARAMS = {
    "source": "voice", "sid": "RE" + "0" * 32, "cause_id": "0123456789ab",
    "job_id": "rr-voice-RE" + "0" * 32 + "-completed", "verb": "replay", "msg_id": "msg_" + "0" * 32, "name": "crm",
}


def _routes(settings: Settings) -> list[tuple[str, str]]:
    """Every (method, concrete path) the console serves, read from the app itself."""
    found = []
    for route in create_app(settings).routes:
        if isinstance(route, Route) and route.methods:
            path = route.path_format.format(**{k: SAMPLE_PARAMS[k] for k in route.param_convertors})
            found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
    return found


def test_every_page_and_endpoint_refuses_a_request_without_a_session(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    settings = console_settings()
    base = start_console(settings)
    routes = _routes(settings)
    assert len(routes) >= 20
    with httpx.Client(base_url=base, timeout=10) as client:
        for method, path in routes:
            if path in PUBLIC:
                continue
            response = client.request(method, path, data={"csrf_token": "x"} if method == "POST" else None)
            if path.startswith(("/api/", "/metrics")):
                assert response.status_code == 401, (method, path)
                assert response.headers["www-authenticate"].startswith("Bearer")
            else:
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/login?next=%2F"), (method, path)
        assert client.get("/healthz").text == "ok\n"
        assert client.get("/static/console.css").status_code == 200


def test_every_action_refuses_a_missing_or_wrong_csrf_token(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    settings = console_settings()
    base = start_console(settings)
    client = sign_in(base)
    actions = [(m, p) for m, p in _routes(settings) if m == "POST" and p != "/login"]
    assert {p for _, p in actions} >= {"/logout", f"/jobs/{SAMPLE_PARAMS['job_id']}/replay", "/failures/0123456789ab/replay"}
    for _, path in actions:
        for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}):
            response = client.post(path, data=data)
            assert response.status_code == 403, (path, data)
        assert client.post(path, headers={"x-csrf-token": "forged"}).status_code == 403
    # The login form has its own token (double submit), so a forged login is refused too.
    with httpx.Client(base_url=base) as stranger:
        refused = stranger.post("/login", data={"username": USER, "password": PASSWORD})
        assert refused.status_code == 403 and "rr_console_session" not in refused.headers.get("set-cookie", "")
    # Still signed in: nothing above logged us out.
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_fails_and_guessing_is_slowed(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    base = start_console(console_settings(), clock=Clock())
    with httpx.Client(base_url=base, timeout=10) as client:
        token = csrf_token(client.get("/login").text)
        wrong = client.post("/login", data={"username": USER, "password": "guess", "csrf_token": token})
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
        assert "rr_console_session" not in client.cookies
        assert client.get("/", follow_redirects=False).status_code == 303
        for _ in range(Policy().client_free):
            client.post("/login", data={"username": USER, "password": "guess", "csrf_token": token})
        blocked = client.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": token})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert "Too many failed attempts" in blocked.text and "rr_console_session" not in client.cookies


def test_session_cookie_is_httponly_samesite_strict_and_secure_over_https(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str],
) -> None:
    base = start_console(console_settings())
    for proto, secure in (("http", False), ("https", True)):
        # As if a TLS proxy on this host forwarded the requests (uvicorn trusts loopback proxies).
        with httpx.Client(base_url=base, headers={"x-forwarded-proto": proto}) as client:
            form = client.get("/login")
            token = csrf_token(form.text)
            login_cookie = form.headers["set-cookie"].split(";")[0]
            assert ("Secure" in form.headers["set-cookie"]) is secure
            response = client.post(
                "/login", data={"username": USER, "password": PASSWORD, "csrf_token": token, "next": "/recordings"},
                headers={"cookie": login_cookie},  # httpx itself keeps Secure cookies for https URLs
            )
            assert response.status_code == 303 and response.headers["location"] == "/recordings"
            cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("rr_console_session="))
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ("Secure" in cookie) is secure
            assert response.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in response.headers["content-security-policy"]


def test_login_never_redirects_off_the_console(console_settings: Callable[..., Settings], start_console: Callable[[Settings], str]) -> None:
    base = start_console(console_settings())
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        with httpx.Client(base_url=base) as client:
            token = csrf_token(client.get("/login").text)
            response = client.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": token, "next": target})
            assert response.headers["location"] == "/", target


def test_logout_ends_the_session(console_settings: Callable[..., Settings], start_console: Callable[[Settings], str]) -> None:
    base = start_console(console_settings())
    client = sign_in(base)
    page = client.get("/")
    response = client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login?notice=logged_out"
    assert client.get("/").status_code == 303


def test_bearer_token_and_basic_auth_for_scripts(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Any,
) -> None:
    seed(redis, 3)
    base = start_console(console_settings())
    bearer = {"authorization": f"Bearer {TOKEN}"}
    basic = {"authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert len(client.get("/api/recordings", headers=bearer).json()["recordings"]) == 3
        assert client.get("/metrics", headers=bearer).status_code == 200
        assert client.get("/api/recordings", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/overview", headers=basic).status_code == 200
        # A browser resends Basic credentials by itself, so they never authorise an action.
        assert client.post(f"/api/jobs/{SAMPLE_PARAMS['job_id']}/replay", headers=basic).status_code == 401
        # A bearer token is never ambient: it needs no CSRF token. (The job is not failed: 409.)
        assert client.post(f"/api/jobs/{SAMPLE_PARAMS['job_id']}/replay", headers=bearer).status_code == 409


def test_no_secret_is_ever_rendered(console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Any) -> None:
    seed(redis, 5)
    settings = console_settings(twilio_auth_token="twilio-secret-token-value")
    base = start_console(settings)
    client = sign_in(base)
    bodies = [client.get(p).text for p in ("/", "/recordings", "/failures", "/workers", "/api/overview", "/api/workers", "/metrics", "/login")]
    for secret in (PASSWORD, TOKEN, SECRET_KEY, "twilio-secret-token-value"):
        assert not any(secret in body for body in bodies), secret


def test_auth_off_is_refused_unless_bound_to_loopback(console_settings: Callable[..., Settings]) -> None:
    open_settings = console_settings(admin_insecure_no_auth=True, admin_username=None, admin_password=None, admin_token=None)
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.internal"):
        assert any("ADMIN_INSECURE_NO_AUTH" in p for p in bind.problems(open_settings, host)), host
        with pytest.raises(SystemExit, match="ADMIN_INSECURE_NO_AUTH is honoured only on a loopback"):
            server.run(open_settings, host, 1)
        with pytest.raises(ValueError):
            create_app(open_settings.model_copy(update={"admin_host": host}))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert bind.problems(open_settings, host) == [], host


def test_no_credentials_is_refused_and_says_what_to_set(console_settings: Callable[..., Settings]) -> None:
    bare = console_settings(admin_username=None, admin_password=None, admin_token=None)
    with pytest.raises(SystemExit, match=r"no console credentials on 0\.0\.0\.0.*ADMIN_USERNAME and ADMIN_PASSWORD"):
        server.run(bare, "0.0.0.0", 1)
    assert bind.problems(bare, "127.0.0.1")  # no way to sign in: refused on loopback too
    assert bind.problems(console_settings(admin_password=None, admin_token=None), "127.0.0.1") != []
    assert bind.problems(console_settings(admin_username=None, admin_password=None), "0.0.0.0") == []  # token only


def test_auth_off_on_loopback_still_needs_csrf_and_a_loopback_host_header(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Any,
) -> None:
    settings = console_settings(admin_insecure_no_auth=True, admin_username=None, admin_password=None, admin_token=None)
    job_id = fail_job(redis, "RE" + "1" * 32, "permanent: Twilio answered 403 (code 20003): Authenticate")
    base = start_console(settings)
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Authentication is off" in page.text
        assert client.post(f"/jobs/{job_id}/discard", data={}).status_code == 403
        confirm = client.get(f"/jobs/{job_id}/discard")
        ok = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": csrf_token(confirm.text)})
        assert ok.status_code == 303 and "notice=discarded" in ok.headers["location"]
        assert "by local (no auth)" in client.get("/recordings/voice/RE" + "1" * 32).text
        # A page on another site that rebinds its name to 127.0.0.1 arrives with its own Host.
        assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def test_changing_the_credentials_ends_existing_sessions(console_settings: Callable[..., Settings]) -> None:
    before = Authenticator(console_settings(), open_access=False)
    cookie, _ = before.issue(USER)
    assert before.session(cookie) is not None
    assert Authenticator(console_settings(), open_access=False).session(cookie) is not None
    assert Authenticator(console_settings(admin_password="a new password"), open_access=False).session(cookie) is None
    assert Authenticator(console_settings(admin_secret_key="another key"), open_access=False).session(cookie) is None
    assert before.session(cookie[:-2] + "xx") is None


def test_a_shared_token_still_records_who_signed_in(console_settings: Callable[..., Settings]) -> None:
    auth = Authenticator(console_settings(), open_access=False)
    assert auth.check_login("alice", TOKEN) == "alice (token)"
    assert auth.check_login("", TOKEN) == "token"
    assert auth.check_login(USER, PASSWORD) == USER
    assert auth.check_login(USER, "nope") is None
