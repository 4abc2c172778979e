"""`recording-receiver simulate`: builds the sample, sends it, and reports the answer in one line."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
import httpx

from workers.commands import simulate
from workers.commands.cli_errors import Mistake
from workers.commands.settings import Settings


def run(settings: Settings, url: str, source: str, status: str | None, recording_sid: str | None,
        unsigned: bool = False, tamper: bool = False) -> int:
    """Send one sample callback; 0 when the receiver answered as it should (2xx, or 403 to --unsigned
    or --tamper), 1 when it did not."""
    statuses = simulate.SOURCES[source][0]
    status = status or statuses[0]
    if status not in statuses:
        raise click.BadParameter(f"{status!r} is not a {source} status: one of {', '.join(statuses)}", param_hint="--status")
    if unsigned and tamper:
        raise click.UsageError("--unsigned and --tamper are two different refusals: choose one")
    _check_url(url)
    if not settings.twilio_account_sid or (not settings.twilio_auth_token and not unsigned):
        raise Mistake("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the receiver's) to sign the callback")
    params = simulate.params_for(source, settings.twilio_account_sid, status, recording_sid)
    token = None if unsigned else settings.twilio_auth_token.get_secret_value()  # type: ignore[union-attr]
    sent = simulate.tamper(source, params) if tamper else params
    try:
        response = simulate.send(url, sent, token, signed_params=params, signed_url=_as_twilio_calls(url, settings))
    except httpx.ConnectError:
        raise Mistake(f"nothing answers at {_origin(url)}: is the receiver running (`up` or `serve`), on that port?") from None
    except httpx.TimeoutException:
        raise Mistake(f"{_origin(url)} did not answer within 15 s") from None
    except httpx.HTTPError as exc:
        raise Mistake(f"could not send to {_origin(url)}: {type(exc).__name__}") from None
    line = f"{response.status_code} {response.reason_phrase}  {simulate.recording_named(source, params)}  status={status}"
    click.echo(line + _verdict(response.status_code, unsigned, tamper))
    if unsigned or tamper:
        return 0 if response.status_code == 403 else 1
    return 0 if response.status_code < 300 else 1


def _as_twilio_calls(url: str, settings: Settings) -> str:
    """The URL to sign: the receiver checks against PUBLIC_BASE_URL and the path, so sign what it rebuilds."""
    if not settings.public_base_url:
        return url
    parts = urlsplit(url)
    return settings.public_base_url + parts.path + (f"?{parts.query}" if parts.query else "")


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{url[:80]!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/twilio/recordings/voice",
                                 param_hint="URL")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _verdict(status: int, unsigned: bool, tamper: bool) -> str:
    """Why the receiver answered so, in a few words after the answer, when it is not plain success."""
    if status == 403:
        if unsigned:
            return "  refused: sent without a signature, as it should be"
        if tamper:
            return "  refused: a parameter was changed after signing, as it should be"
        return "  refused: the signature did not match (is TWILIO_AUTH_TOKEN the receiver's, and the URL the one it is called by?)"
    if status < 300 and (unsigned or tamper):
        return "  ACCEPTED although it should have been refused: check the receiver's signature settings"
    return ""
