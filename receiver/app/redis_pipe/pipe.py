"""What the Enqueuer needs from a Redis transport: send commands, get their replies in order."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Pipe(Protocol):
    """Sends commands in one round trip on one connection (WAIT must follow its write there).

    `send` returns at once with the future of the replies in order; an error reply fails it with
    redis-py's error class (NoScriptError, ...), a lost or silent connection with a RedisError.
    """

    def send(self, *commands: tuple[Any, ...]) -> asyncio.Future[list[Any]]: ...

    async def aclose(self) -> None: ...
