"""Fault rules (error status, Retry-After, redirect, delay, hang) that the stand-in applies to matching requests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FOREVER = -1


@dataclass
class Fault:
    """One rule; `status` 0 means "no error, answer normally" (useful with delay_s)."""

    method: str | None
    path_regex: str
    status: int
    times: int = 1
    retry_after: str | None = None
    delay_s: float = 0.0
    hang: bool = False
    location: str | None = None  # with a 3xx status: where the answer redirects to
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper() if self.method else None
        self.pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        if self.times == 0:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.pattern.search(path) is not None

    def consume(self) -> None:
        if self.times != FOREVER:
            self.times -= 1

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method, "path_regex": self.path_regex, "status": self.status,
            "times": self.times, "retry_after": self.retry_after,
            "delay_s": self.delay_s, "hang": self.hang, "location": self.location,
        }


def take_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """First matching rule wins; spent rules are dropped so the list stays short."""
    for fault in faults:
        if fault.matches(method, path):
            fault.consume()
            if fault.times == 0:
                faults.remove(fault)
            return fault
    return None
