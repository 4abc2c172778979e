"""The hash-locked requirements/*.txt agree with pyproject.toml, and every install path uses them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
LOCKS = {"service": ROOT / "requirements" / "service.txt", "test": ROOT / "requirements" / "test.txt"}


def _pins(path: Path) -> dict[str, str]:
    """name -> pinned version; every entry must be an exact pin carrying at least one hash."""
    logical = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pins: dict[str, str] = {}
    for raw in logical.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line.split(" --hash=", 1)[0])
        [spec] = list(requirement.specifier)
        assert spec.operator == "==", f"{path.name}: {line[:60]} is not an exact pin"
        assert "--hash=sha256:" in line, f"{path.name}: {requirement.name} has no hash"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _project() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    service = [Requirement(r) for r in project["dependencies"]]
    return {"service": service, "test": service + [Requirement(r) for r in project["optional-dependencies"]["test"]]}


def test_every_pyproject_dependency_is_locked_within_its_range() -> None:
    wanted = _project()
    for lock, path in LOCKS.items():
        pins = _pins(path)
        for requirement in wanted[lock]:
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{requirement.name} is in pyproject.toml but not in {path.name}: run `make lock`"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{path.name} pins {name}=={pins[name]}, outside pyproject.toml's {requirement}: run `make lock`")


def test_the_service_lock_holds_no_test_tool_and_the_test_lock_agrees_with_it() -> None:
    service, test = _pins(LOCKS["service"]), _pins(LOCKS["test"])
    # (not the whole test extra: uvicorn[standard] needs pyyaml too)
    assert not {"pytest", "mypy", "playwright", "hypothesis"} & set(service), "the service lock carries test tools"
    assert {name: test.get(name) for name in service} == service, "service and test locks pin different versions"


def test_make_ci_and_the_image_install_from_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/service.txt" in makefile
    assert "--require-hashes -r requirements/test.txt" in makefile
    assert "-e '.[" not in makefile, "the Makefile installs the project's dependencies around the lock"
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements/service.txt" in dockerfile and "pip install --require-hashes -r" in dockerfile
    # deploy/README.md's plain-pip installs too: every `pip install` of the project follows the lock
    guide = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    installs = [line for line in guide.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes -r requirements/service.txt" in line or "--no-deps" in line for line in installs)
    assert "!requirements/service.txt" in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
