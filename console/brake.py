"""The sign-in brake: failures per client address and per user name, kept in Redis for every console process."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

from receiver.kernel import keys

# What a bearer token is counted under: it names no user, but guessing it is guessing one secret.
TOKEN_NAME = "\0bearer token"  # noqa: S105 -- a label for bearer-token sessions, not a token

# Each failure counts on both records; past its free allowance a record makes the next checked
# attempt wait first·2^k, up to its cap. Refused attempts are not counted, so hammering during a
# wait neither extends it nor costs more than one read. Times are whole milliseconds: Lua prints
# a number with 14 digits, which would round an epoch in seconds past its fraction.
_FAILED = """
for i = 1, 2 do
  local free, cap = tonumber(ARGV[2 * i + 2]), tonumber(ARGV[2 * i + 3])
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  local delay = 0
  if n > free then
    delay = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ (n - free - 1), cap))
    redis.call('HSET', KEYS[i], 'until', string.format('%d', tonumber(ARGV[1]) + delay))
  end
  redis.call('PEXPIRE', KEYS[i], delay + tonumber(ARGV[2]))
end
"""


@dataclass(frozen=True)
class Policy:
    client_free: int = 5
    client_cap: float = 300.0
    # Lower and capped shorter than the client's: it is the one strangers can push on.
    name_free: int = 10
    name_cap: float = 30.0
    first_delay: float = 1.0
    # A record is forgotten this long after its last failure (and its delay).
    forget_seconds: int = 900


@dataclass(frozen=True)
class Standing:
    wait: float  # seconds before this client may try this name again; 0: check it now
    failures: int  # this client's failures on record

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.wait))


def client_key(client: str) -> str:
    return f"{keys.PREFIX}:console:brake:client:{client}"


def name_key(name: str) -> str:
    # Hashed: a user name is whatever a stranger typed, not something to put in a key verbatim.
    return f"{keys.PREFIX}:console:brake:name:{hashlib.sha256(name.encode()).hexdigest()[:32]}"


class Brake:
    def __init__(self, redis: Redis, policy: Policy | None = None, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.policy = policy or Policy()
        self.clock = clock
        self._failed = redis.register_script(_FAILED)

    def standing(self, client: str, name: str) -> Standing:
        """How long this client must wait before its attempt at `name` is even checked.

        The name's delay holds back only clients with failures of their own: a client with a clean
        record is always checked, so strangers hammering a user name from other addresses slow
        themselves, never the real user at their own address. A spread-out attack gets one guess
        per fresh address per `forget_seconds`, instead of `client_free` each.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(client_key(client), "n", "until")
        pipe.hget(name_key(name), "until")
        (count, client_until), name_until = pipe.execute()
        failures = int(count or 0)
        now = _ms(self.clock())
        wait = _int(client_until) - now
        if failures:
            wait = max(wait, _int(name_until) - now)
        return Standing(max(0, wait) / 1000, failures)

    def failed(self, client: str, name: str) -> None:
        p = self.policy
        self._failed(
            keys=[client_key(client), name_key(name)],
            args=[
                _ms(self.clock()), p.forget_seconds * 1000, _ms(p.first_delay),
                p.client_free, _ms(p.client_cap), p.name_free, _ms(p.name_cap),
            ],
        )

    def succeeded(self, client: str, standing: Standing) -> None:
        """A success clears the client's record; the name's stays, strangers may still be at it."""
        if standing.failures:
            self.redis.delete(client_key(client))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _int(value: bytes | str | None) -> int:
    return int(value) if value else 0
