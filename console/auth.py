"""Who is asking: signed session cookies, the API's bearer token, constant-time credential checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

from console.brake import TOKEN_NAME
from console.settings import ConsoleSettings

SESSION_COOKIE = "rr_console_session"
LOGIN_COOKIE = "rr_console_login"
OPEN_USER = "local (no auth)"
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Identity:
    user: str
    via: str  # "session", "open" (auth off), "token" (bearer), "basic" (reads only)
    csrf: str = field(default="", repr=False)  # the session's CSRF token; empty where no cookie is involved
    session: str = field(default="", repr=False)  # the server-side session's id; likewise


@dataclass(frozen=True)
class Presented:
    """Credentials in the Authorization header, not yet checked: the brake looks first."""

    via: str  # "token" (bearer) or "basic"
    name: str  # what the brake counts failures under
    user: str = ""
    secret: str = field(default="", repr=False)


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Authenticator:
    def __init__(self, settings: ConsoleSettings, open_access: bool) -> None:
        self.username = settings.admin_username or ""
        self.password = settings.admin_password.get_secret_value() if settings.admin_password else ""
        self.token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        self.open = open_access
        self.ephemeral_key = settings.admin_secret_key is None
        secret = settings.admin_secret_key.get_secret_value() if settings.admin_secret_key else secrets.token_urlsafe(32)
        self.max_age = int(settings.admin_session_hours * 3600)
        self.force_secure = settings.admin_secure_cookies
        self._sessions = URLSafeTimedSerializer(secret, salt="recording-receiver console session")
        # Sessions carry a digest of the credentials they were issued under: changing the
        # password or token ends every session made with the old ones.
        material = "\0".join((self.username, self.password, self.token, str(open_access))).encode()
        self._generation = hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()[:16]

    @property
    def has_password(self) -> bool:
        return bool(self.username and self.password)

    @property
    def has_token(self) -> bool:
        return bool(self.token)

    def check_login(self, username: str, password: str) -> str | None:
        """The user to record in the audit trail, or None. Both comparisons always run."""
        user_ok = _equal(username, self.username)
        password_ok = _equal(password, self.password)
        if self.has_password and user_ok and password_ok:
            return self.username
        if self.has_token and _equal(password, self.token):
            # A shared token still lets people say who they are in the audit trail.
            return f"{username.strip()[:40]} (token)" if username.strip() else "token"
        return None

    def presented(self, request: Request) -> Presented | None:
        """Header credentials this request would be judged by; None sends it to its session cookie."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self.has_token:
            return Presented("token", TOKEN_NAME, secret=credentials.strip())
        if scheme.lower() == "basic" and request.method in _READ_METHODS:
            # Browsers resend Basic credentials on their own, so they are good for reads only.
            user, password = _basic(credentials)
            return Presented("basic", user, user, password)
        return None

    def verify(self, presented: Presented) -> Identity | None:
        if presented.via == "token":
            return Identity("token", "token") if _equal(presented.secret, self.token) else None
        user = presented.user
        return Identity(user, "basic") if self.has_password and self.check_login(user, presented.secret) == user else None

    def session(self, cookie: str) -> Identity | None:
        """The identity a signed cookie claims; whether its session still exists is `Sessions`' to say."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("g") != self._generation:
            return None
        user, csrf, session = data.get("u"), data.get("c"), data.get("s", "")
        if not isinstance(user, str) or not isinstance(csrf, str) or not csrf or not isinstance(session, str):
            return None
        return Identity(user, "open" if self.open else "session", csrf, session)

    def issue(self, user: str, session: str = "") -> tuple[str, Identity]:
        """A new cookie (and so a new CSRF token) for `user` and its server-side session id."""
        csrf = secrets.token_urlsafe(32)
        value = self._sessions.dumps({"u": user, "c": csrf, "g": self._generation, "s": session})
        return value, Identity(user, "open" if self.open else "session", csrf, session)

    def cookie(self, request: Request, name: str, value: str, max_age: int | None = None) -> str:
        """A Set-Cookie value: HttpOnly, SameSite=Strict, and Secure over HTTPS or when configured."""
        age = self.max_age if max_age is None else max_age
        secure = self.force_secure or request.url.scheme == "https"
        return f"{name}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password
