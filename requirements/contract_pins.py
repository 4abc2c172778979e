"""For `make contract`: `uv pip install` arguments for the lowest or the newest release pyproject.toml's ranges allow."""

# Runs under the contract venv's Python (3.11+), before anything else is known to be installed:
# the standard library only.
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def ranges() -> dict[str, str]:
    """name -> its specifier in [project] dependencies, e.g. "redis" -> ">=8.1,<8.2"."""
    found = {}
    for requirement in tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*(.*)", requirement.strip())
        if match:
            found[match.group(1).lower()] = match.group(3).replace(" ", "")
    return found


def pins(end: str, names: list[str]) -> list[str]:
    """`low`: name==its lower bound; `high`: the range, each name to upgrade (and nothing else), so
    uv takes the newest release in it."""
    specs = ranges()
    missing = [name for name in names if name not in specs]
    if missing:
        raise SystemExit(f"contract_pins: not in pyproject.toml's dependencies: {', '.join(missing)}")
    if end == "high":
        unbounded = [name for name in names if "<" not in specs[name]]
        if unbounded:
            raise SystemExit(f"contract_pins: no upper bound to test against: {', '.join(unbounded)}")
        return [*(f"--upgrade-package={name}" for name in names), *(name + specs[name] for name in names)]
    lows = {name: re.search(r">=([0-9][^,]*)", specs[name]) for name in names}
    unbounded = [name for name, low in lows.items() if low is None]
    if unbounded:
        raise SystemExit(f"contract_pins: no lower bound to test against: {', '.join(unbounded)}")
    return [f"{name}=={low.group(1)}" for name, low in lows.items() if low is not None]


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("low", "high"):
        raise SystemExit("usage: contract_pins.py low|high NAME...")
    print(" ".join(pins(sys.argv[1], sys.argv[2:])))
