"""Before `make` installs: is python3 new enough, and was an existing .venv made by a Python that still works?"""

# Runs under whatever `python3` is, possibly an old one, so it must parse there: no newer syntax
# (typing's List and Tuple, not list[str]).
import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def required() -> Tuple[int, int]:
    """The minimum from pyproject.toml's requires-python (">=3.11")."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', f.read(), re.MULTILINE)
    if found is None:
        return (3, 11)
    return (int(found.group(1)), int(found.group(2)))


def venv_python_version(venv: str) -> Optional[str]:
    """The venv's own Python version ("3.11.7"), or None when it has none that runs."""
    python = os.path.join(venv, "bin", "python")
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode().strip() if done.returncode == 0 else None


def stale_reason(venv: str, minimum: Tuple[int, int]) -> Optional[str]:
    """Why an existing venv cannot be used (its Python is gone, broken or too old), or None."""
    if not os.path.isdir(venv):
        return None
    version = venv_python_version(venv)
    if version is None:
        return "its Python no longer runs (%s)" % os.path.realpath(os.path.join(venv, "bin", "python"))
    if tuple(int(part) for part in version.split(".")[:2]) < minimum:
        return "it was made by Python %s, older than %d.%d" % ((version,) + minimum)
    return None


def main(argv: List[str], running: Optional[Tuple[int, ...]] = None) -> int:
    minimum = required()
    running = running or tuple(sys.version_info[:3])
    if argv[:1] == ["--stale"]:
        # For the Makefile's parse step: print something only when the venv must be rebuilt.
        reason = stale_reason(argv[1], minimum)
        print(reason or "")
        return 0
    venv = argv[0]
    if running[:2] < minimum:
        sys.stderr.write(
            "recording-receiver needs Python %d.%d or newer; %s is Python %s.\n"
            "Install a newer Python and point make at it, e.g.: make up PYTHON=python3.%d\n"
            % (minimum + (sys.executable, ".".join(str(n) for n in running), minimum[1])))
        return 1
    reason = stale_reason(venv, minimum)
    if reason is not None:
        print("==> rebuilding %s: %s" % (venv, reason))
        shutil.rmtree(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
