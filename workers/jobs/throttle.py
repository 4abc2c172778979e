"""One Twilio rate-limit throttle per account, shared through Redis by every worker on every host."""

from __future__ import annotations

import time

from redis import Redis

from workers.failures import Deferred

# A throttle this close to lapsing is waited out in the job: RQ keeps a retry's time in whole
# seconds, so a retry timed to the throttle can start up to a second before it lapses.
THROTTLE_WAIT_SECONDS = 2.0

# Extend the hold only: a short Retry-After from one worker never shortens a longer one.
_HOLD = """
local current = redis.call('PTTL', KEYS[1])
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return redis.call('PTTL', KEYS[1])
"""


class AccountThrottle:
    """After a 429, nobody calls Twilio for that account until the hold expires: a storm of 429s
    slows every worker down together instead of every worker hammering on its own schedule."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._hold = redis.register_script(_HOLD)

    @staticmethod
    def key(account_sid: str) -> str:
        return f"rr:throttle:{account_sid}"

    def remaining(self, account_sid: str) -> float:
        pttl = int(self._redis.pttl(self.key(account_sid)))  # type: ignore[arg-type]
        return pttl / 1000 if pttl > 0 else 0.0

    def hold(self, account_sid: str, seconds: float) -> None:
        self._hold(keys=[self.key(account_sid)], args=[max(1, int(seconds * 1000))])

    def respect(self, account_sid: str) -> None:
        """Return when the account may call Twilio; raise Deferred (run again later, no retry
        spent) while a hold has more than a moment left."""
        remaining = self.remaining(account_sid)
        if 0 < remaining <= THROTTLE_WAIT_SECONDS:
            time.sleep(remaining)
            remaining = self.remaining(account_sid)
        if remaining > 0:
            raise Deferred(f"account throttled by Twilio for {remaining:.1f}s more", wait=remaining)
