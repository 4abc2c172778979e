"""Which Twilio accounts we serve and the secrets each one signs callbacks and REST calls with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from receiver.kernel.errors import BadSetting
from receiver.kernel.settings import SharedSettings
from receiver.kernel.sids import is_sid


@dataclass(frozen=True)
class Account:
    """One account: auth tokens by label (`primary`, `secondary`), optional API key for REST."""

    sid: str
    tokens: tuple[tuple[str, SecretStr], ...]
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = None

    def rest_credentials(self) -> tuple[str, str]:
        """Username and password for REST: the API key when set, else the account and its token."""
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret.get_secret_value()
        if not self.tokens:
            raise LookupError(f"account {self.sid} has no credentials for REST calls")
        return self.sid, self.tokens[0][1].get_secret_value()


class AccountBook:
    """Looks up the account a callback names; unknown accounts fall back to the main one's tokens."""

    def __init__(self, accounts: list[Account], default: Account | None) -> None:
        self._by_sid = {account.sid: account for account in accounts}
        self.default = default

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_sid.values())

    def get(self, account_sid: str | None) -> Account | None:
        if account_sid and account_sid in self._by_sid:
            return self._by_sid[account_sid]
        return None

    def tokens_for(self, account_sid: str | None) -> tuple[tuple[str, SecretStr], ...]:
        account = self.get(account_sid)
        if account is not None:
            return account.tokens
        return self.default.tokens if self.default else ()

    def __repr__(self) -> str:
        return f"AccountBook(accounts={sorted(self._by_sid)})"


def _tokens(primary: SecretStr | str | None, secondary: SecretStr | str | None) -> tuple[tuple[str, SecretStr], ...]:
    pairs = [("primary", primary), ("secondary", secondary)]
    return tuple((label, SecretStr(str(v.get_secret_value() if isinstance(v, SecretStr) else v))) for label, v in pairs if v)


def _read_file(path: Path) -> dict[str, dict[str, str]]:
    """The file's JSON object, or a BadSetting naming the variable and what is wrong."""
    where = f"TWILIO_ACCOUNTS_FILE {path}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadSetting(f"{where}: {exc.strerror or type(exc).__name__}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The message only: the text around the error may hold a token.
        raise BadSetting(f"{where}: not JSON ({getattr(exc, 'msg', 'not UTF-8')})") from None
    if not isinstance(raw, dict) or not all(isinstance(entry, dict) for entry in raw.values()):
        raise BadSetting(f'{where}: expected a JSON object {{"AC…": {{"auth_token": "…"}}, …}}')
    return raw


def _from_file(path: Path) -> list[Account]:
    raw = _read_file(path)
    accounts = []
    for sid, entry in raw.items():
        if not is_sid(sid, "AC"):
            raise BadSetting(f"TWILIO_ACCOUNTS_FILE {path}: {sid!r} is not an account SID")
        key_secret = entry.get("api_key_secret")
        accounts.append(
            Account(
                sid=sid,
                tokens=_tokens(entry.get("auth_token"), entry.get("auth_token_secondary")),
                api_key_sid=entry.get("api_key_sid"),
                api_key_secret=SecretStr(key_secret) if key_secret else None,
            )
        )
    return accounts


def has_tokens(book: AccountBook, settings: SharedSettings) -> bool:
    """Whether any callback could pass a signature check: some auth token or webhook shared key."""
    return bool(settings.twilio_webhook_shared_keys) or any(account.tokens for account in book)


def load_accounts(settings: SharedSettings) -> AccountBook:
    accounts = _from_file(settings.twilio_accounts_file) if settings.twilio_accounts_file else []
    default = None
    if settings.twilio_account_sid:
        default = Account(
            sid=settings.twilio_account_sid,
            tokens=_tokens(settings.twilio_auth_token, settings.twilio_auth_token_secondary),
            api_key_sid=settings.twilio_api_key_sid,
            api_key_secret=settings.twilio_api_key_secret,
        )
        accounts.append(default)
    return AccountBook(accounts, default)
