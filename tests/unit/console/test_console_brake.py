"""The sign-in brake and server-side sessions, played as attacks on real consoles under uvicorn over real Redis."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable

import httpx

from console import client
from console.brake import Policy
from tests.support.console.helpers import PASSWORD, TOKEN, USER, Clock, csrf_token, session_csrf, sign_in
from workers.commands.settings import Settings

POLICY = Policy()
# Checked before the first refusal: the free failures, then the one that arms the first delay.
CHECKED = POLICY.client_free + 1


def _basic(password: str, user: str = USER) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _from(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


def _form_login(http: httpx.Client, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    token = csrf_token(http.get("/login", headers=headers).text)
    return http.post("/login", data={"username": USER, "password": password, "csrf_token": token}, headers=headers)


def test_wrong_basic_passwords_are_refused_with_retry_after_across_two_console_processes(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    clock = Clock()
    settings = console_settings()
    first, second = start_console(settings, clock=clock), start_console(settings, clock=clock)
    statuses = []
    with httpx.Client(timeout=10) as http:
        for i in range(20):
            response = http.get(f"{(first, second)[i % 2]}/api/overview", headers=_basic(f"guess {i}"))
            statuses.append(response.status_code)
        assert statuses == [401] * CHECKED + [429] * (20 - CHECKED)
        assert response.headers["retry-after"] == "1" and response.json()["retry_after"] == 1
        # During the wait even the right password is not looked at.
        assert http.get(f"{first}/api/overview", headers=_basic(PASSWORD)).status_code == 429
        page = http.get(f"{second}/", headers=_basic("guess"))
        assert page.status_code == 429 and page.headers["retry-after"] == "1"
        clock.advance(1)
        assert http.get(f"{second}/api/overview", headers=_basic("one more")).status_code == 401
        doubled = http.get(f"{first}/api/overview", headers=_basic(PASSWORD))
        assert doubled.status_code == 429 and doubled.headers["retry-after"] == "2"
        clock.advance(2)
        assert http.get(f"{first}/api/overview", headers=_basic(PASSWORD)).status_code == 200
        # The success cleared this client's record: the next mistake is free again.
        assert http.get(f"{second}/api/overview", headers=_basic("typo")).status_code == 401
        assert http.get(f"{second}/api/overview", headers=_basic(PASSWORD)).status_code == 200


def test_the_delay_grows_exponentially_up_to_its_cap(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    clock = Clock()
    base = start_console(console_settings(), clock=clock)
    waits: list[int] = []
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(100):  # bounded: a console that never refuses fails here instead of hanging
            if len(waits) == 12:
                break
            response = http.get("/api/overview", headers=_basic("guess"))
            if response.status_code == 429:
                waits.append(int(response.headers["retry-after"]))
                clock.advance(waits[-1])
            else:
                assert response.status_code == 401
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert max(waits) == POLICY.client_cap and waits[-1] == POLICY.client_cap


def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_reset_the_brake(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    base = start_console(console_settings(), clock=Clock())
    with httpx.Client(base_url=base, timeout=10) as http:
        statuses = [_form_login(http, "guess", _from(f"10.9.0.{i}")).status_code for i in range(12)]
    assert statuses == [401] * CHECKED + [429] * (12 - CHECKED)


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    base = start_console(console_settings(admin_trusted_proxies="127.0.0.1, 10.0.0.0/8"), clock=Clock())
    attacker = "198.51.100.7"
    with httpx.Client(base_url=base, timeout=10) as http:
        statuses = [http.get("/api/overview", headers={**_basic("guess"), **_from(attacker)}).status_code for _ in range(10)]
        assert statuses == [401] * CHECKED + [429] * (10 - CHECKED)
        # What the attacker writes to the left of the proxies' entries changes nothing.
        forged = {"x-forwarded-for": f"203.0.113.{len(statuses)}, {attacker}, 10.1.2.3"}
        assert http.get("/api/overview", headers={**_basic(PASSWORD), **forged}).status_code == 429
        # Another client behind the same proxy is not held back by the attacker's failures.
        assert http.get("/api/overview", headers={**_basic(PASSWORD), **_from("198.51.100.8")}).status_code == 200
        assert _form_login(http, PASSWORD, _from("198.51.100.9")).status_code == 303


def test_wrong_bearer_tokens_count(console_settings: Callable[..., Settings], start_console: Callable[..., str]) -> None:
    clock = Clock()
    base = start_console(console_settings(), clock=clock)
    with httpx.Client(base_url=base, timeout=10) as http:
        statuses = [http.get("/api/recordings", headers={"authorization": f"Bearer wrong-{i}"}).status_code for i in range(10)]
        assert statuses == [401] * CHECKED + [429] * (10 - CHECKED)
        right = {"authorization": f"Bearer {TOKEN}"}
        refused = http.get("/metrics", headers=right)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        clock.advance(1)
        assert http.get("/metrics", headers=right).status_code == 200


def test_the_real_user_signs_in_from_a_clean_address_while_an_attacker_hammers_the_name(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    clock = Clock()
    base = start_console(console_settings(admin_trusted_proxies="127.0.0.1"), clock=clock)
    bots = [f"203.0.113.{i}" for i in range(1, 31)]  # each stays under the per-address allowance
    seen: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(3):
            for bot in bots:
                seen[http.get("/api/overview", headers={**_basic("guess"), **_from(bot)}).status_code] += 1
        # Each address's first guess was checked; once the name was hot, no address got a second.
        assert seen == {401: len(bots), 429: 2 * len(bots)}
        held = http.get("/api/overview", headers={**_basic(PASSWORD), **_from(bots[0])})
        assert held.status_code == 429 and int(held.headers["retry-after"]) <= POLICY.name_cap
        # The real user, at an address with no failures, is let straight through.
        assert _form_login(http, PASSWORD, _from("192.0.2.10")).status_code == 303
        assert http.get("/", headers=_from("192.0.2.10")).status_code == 200
        assert http.get("/api/overview", headers={**_basic(PASSWORD), **_from("192.0.2.11")}).status_code == 200
        # And the name's delay only delays: past its cap, a client with failures is checked again.
        clock.advance(POLICY.name_cap)
        assert http.get("/api/overview", headers={**_basic(PASSWORD), **_from(bots[0])}).status_code == 200


def test_an_old_cookie_is_refused_after_logout(console_settings: Callable[..., Settings], start_console: Callable[..., str]) -> None:
    base = start_console(console_settings())
    browser = sign_in(base)
    copied = browser.cookies["rr_console_session"]
    assert browser.post("/logout", data={"csrf_token": session_csrf(browser)}).status_code == 303
    with httpx.Client(base_url=base, timeout=10, cookies={"rr_console_session": copied}) as replay:
        assert replay.get("/").status_code == 303
        assert replay.get("/api/overview").status_code == 401


def test_sign_out_everywhere_ends_the_other_browsers_sessions(
    console_settings: Callable[..., Settings], start_console: Callable[..., str],
) -> None:
    settings = console_settings()
    first, second = start_console(settings), start_console(settings)
    laptop, phone = sign_in(first), sign_in(second)
    page = laptop.get("/")
    assert "Sign out everywhere" in page.text and phone.get("/").status_code == 200
    response = laptop.post("/logout/everywhere", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login?notice=logged_out_everywhere"
    assert phone.get("/").status_code == 303 and laptop.get("/").status_code == 303
    with httpx.Client(base_url=first, timeout=10, cookies={"rr_console_session": phone.cookies["rr_console_session"]}) as copy:
        assert copy.get("/").status_code == 303
    # A sign-in after that is a new session and works.
    assert sign_in(second).get("/").status_code == 200


def test_the_client_is_the_right_most_address_no_trusted_proxy_vouches_for() -> None:
    trusted = Settings(admin_trusted_proxies="10.0.0.0/8").trusted_proxies

    def scope(peer: str, forwarded: str) -> dict[str, object]:
        return {"client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]}

    assert client.address(scope("192.0.2.1", "198.51.100.1"), trusted) == "192.0.2.1"
    assert client.address(scope("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3"), trusted) == "198.51.100.1"
    assert client.address(scope("10.0.0.2", "10.0.0.9"), trusted) == "10.0.0.9"
    assert client.address(scope("10.0.0.2", "junk, 198.51.100.1"), trusted) == "198.51.100.1"
    assert client.address(scope("10.0.0.2", "198.51.100.1, junk"), trusted) == "10.0.0.2"
    # One host commonly holds a whole IPv6 /64: rotating within it is one client.
    assert client.address(scope("2001:db8::1", ""), trusted) == client.address(scope("2001:db8::ffff:1", ""), trusted)
