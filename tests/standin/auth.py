"""HTTP Basic auth against the stand-in's accounts/API keys, plus request helpers shared by routes."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import HTTPConnection

from .errors import ApiError, not_found
from .records import Account
from .state import StandinState

AUTH_FAILED = "Authentication Error - invalid username"


def standin_state(conn: HTTPConnection) -> StandinState:
    state = conn.app.state.standin
    assert isinstance(state, StandinState)
    return state


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic …` header, or None if absent/garbled."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def auth_username(header: str | None) -> str | None:
    creds = basic_credentials(header)
    return creds[0] if creds else None


def require_account(conn: HTTPConnection) -> Account:
    """The account the caller authenticated as; 401 (Twilio code 20003) otherwise."""
    creds = basic_credentials(conn.headers.get("authorization"))
    account = standin_state(conn).authenticate(*creds) if creds else None
    if account is None:
        raise ApiError(401, AUTH_FAILED)
    return account


def require_path_account(conn: HTTPConnection) -> Account:
    """As require_account, and the {account_sid} in the path must be that account (else 404)."""
    account = require_account(conn)
    if conn.path_params.get("account_sid") != account.sid:
        raise not_found(conn.url.path)
    return account


def public_base(conn: HTTPConnection) -> str:
    """Where absolute URLs point: state.public_base_url, else this request's scheme and host."""
    configured = standin_state(conn).public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{conn.url.scheme}://{conn.url.netloc}"
