"""Server-side records of console sessions in Redis, so signing out ends a session everywhere it was copied."""

from __future__ import annotations

import hashlib
import secrets

from redis import Redis

from receiver.kernel import keys

# The session remembers the user's generation when it began; "sign out everywhere" bumps it.
_START = """
redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]) or '0', 'EX', ARGV[1])
"""


def session_key(session_id: str) -> str:
    return f"{keys.PREFIX}:console:session:{session_id}"


def generation_key(user: str) -> str:
    # No TTL on purpose: were it to lapse, sessions begun after a bump would all be refused.
    return f"{keys.PREFIX}:console:generation:{hashlib.sha256(user.encode()).hexdigest()[:32]}"


class Sessions:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = max(1, ttl_seconds)
        self._start = redis.register_script(_START)

    def start(self, user: str) -> str:
        """A new session id for `user`, recorded until the cookie would expire anyway."""
        session_id = secrets.token_urlsafe(24)
        self._start(keys=[session_key(session_id), generation_key(user)], args=[self.ttl])
        return session_id

    def alive(self, session_id: str, user: str) -> bool:
        if not session_id:
            return False
        record, generation = self.redis.mget(session_key(session_id), generation_key(user))
        return record is not None and _text(record) == _text(generation or b"0")

    def end(self, session_id: str) -> None:
        if session_id:
            self.redis.delete(session_key(session_id))

    def end_all(self, user: str) -> None:
        """Every session of `user`, in every browser and every console process."""
        self.redis.incr(generation_key(user))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
