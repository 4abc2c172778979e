"""What `check` says about the settings that make or break signatures and delivery, a line each."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from receiver.kernel.accounts import AccountBook, has_tokens
from workers.commands.settings import Settings


@dataclass(frozen=True)
class Finding:
    """One line of the report; `ok` False makes `check` exit 1."""

    line: str
    ok: bool = True


def accounts(book: AccountBook, settings: Settings) -> Finding:
    sids = [account.sid for account in book]
    if not sids:
        return Finding("accounts   none configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                       "(or TWILIO_ACCOUNTS_FILE for many accounts)", ok=False)
    if not has_tokens(book, settings):
        return Finding(f"accounts   {', '.join(sids)} without an auth token: set TWILIO_AUTH_TOKEN "
                       "(or auth_token in TWILIO_ACCOUNTS_FILE); every callback would get 403", ok=False)
    return Finding(f"accounts   {', '.join(sids)}")


def public_base_url(settings: Settings) -> Finding | None:
    """Twilio calls HTTPS; plain HTTP is only accepted for a receiver on this machine, with a warning."""
    if not settings.public_base_url:
        return None
    parts = urlsplit(settings.public_base_url)
    if parts.scheme == "https":
        return None
    if _is_loopback(parts.hostname or ""):
        return Finding("warning    PUBLIC_BASE_URL is http:// on this machine: fine for `simulate`, "
                       "but Twilio needs an https:// URL it can reach")
    return Finding("public     PUBLIC_BASE_URL must be https://: Twilio reaches the receiver over HTTPS "
                   "(put it behind a TLS-terminating proxy or a tunnel, see deploy/)", ok=False)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def storage(settings: Settings) -> Finding | None:
    """Object storage is probed (a probe object written and deleted); a local directory is not,
    `up` and the first job create it."""
    if settings.storage_bucket is None:
        return None
    from receiver.kernel.errors import RecordingReceiverError
    from workers.storage import open_store

    store = open_store(settings)
    try:
        return Finding(store.probe())
    except RecordingReceiverError as exc:
        return Finding(f"storage    {exc}", ok=False)
    finally:
        store.close()


def recording_keys(settings: Settings) -> Finding | None:
    """The private keys for encrypted recordings: how many and their SIDs, never their contents."""
    if settings.recording_keys_dir is None:
        return None
    from workers.encryption.private_keys import UnusableKey, check

    try:
        sids = check(settings.recording_keys_dir)
    except UnusableKey as exc:
        return Finding(f"keys       {exc}", ok=False)
    if not sids:
        return Finding(f"warning    RECORDING_KEYS_DIR {settings.recording_keys_dir} holds no <CR sid>.pem file: "
                       "encrypted recordings will fail until their key is added")
    return Finding(f"keys       {len(sids)} private key(s) for encrypted recordings: {', '.join(sids)}")
