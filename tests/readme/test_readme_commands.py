"""Every command the README shows runs as written after the Quick start: executable, subcommand, options."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import click
import pytest

from tests.support import readme
from workers.commands.cli import main as cli

ROOT = readme.ROOT
VENV_BIN = Path(sys.executable).parent
# Tools the README tells people to install from elsewhere, and shell builtins: not ours to check.
EXTERNAL = {"apt-get", "npm", "export"}
# Executables the Quick start does not put on PATH: the README must name them by their venv path.
VENV_ONLY = {"recording-receiver", "python", "python3", "rq", "pytest", "mypy"}
PLACEHOLDER = re.compile(r"^<.*>$")


def _commands() -> list[tuple[str, str, bool]]:
    """(where, command, is_synopsis) for every command in an `sh` block or an inline code span."""
    found = [(where, command, _is_synopsis(command)) for where, command in readme.shell_commands()]
    starts = ("recording-receiver ", ".venv/bin/", "python ", "python3 ", "rq ", "make ", "PRISM_BIN=")
    for code in readme.inline_code():
        if code.startswith(starts) and " " in code.strip():
            found.append(("inline code", code, _is_synopsis(code)))
    return found


def _is_synopsis(command: str) -> bool:
    return "[" in command or "…" in command or "<" in command


def _words(command: str) -> list[str]:
    words = command.replace("…", " ").replace("[", " ").replace("]", " ").split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words.pop(0)  # VAR=value before the command
    return words


def _executable(where: str, command: str) -> str:
    """The program a command runs; a bare name the Quick start leaves off PATH is an error."""
    first = _words(command)[0]
    if first.startswith(".venv/bin/"):
        name = first.removeprefix(".venv/bin/")
        assert (VENV_BIN / name).is_file(), f"{where}: `{command}` runs {first}, which `make up`/`make test` do not install"
        return name
    bare_allowed = where == "inline code" and first == "recording-receiver"
    assert first not in VENV_ONLY or bare_allowed, (
        f"{where}: `{command}` needs `.venv/bin/{first}`: nothing puts {first} on PATH after the Quick start"
    )
    return first


def _options(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]


def _check_cli(where: str, command: str, synopsis: bool) -> str | None:
    """The subcommand named (it must exist, and take every option shown); None for a placeholder."""
    words = _words(command)[1:]
    if not words or PLACEHOLDER.match(words[0]):
        return None
    name, rest = words[0], words[1:]
    assert name in cli.commands, f"{where}: `{command}`: no subcommand {name!r} (there are {sorted(cli.commands)})"
    sub = cli.commands[name]
    known = {opt: param for param in sub.params for opt in (*param.opts, *param.secondary_opts)}
    for option in _options(rest):
        assert option in known, f"{where}: `{command}`: {name} has no option {option} (it has {sorted(known)})"
    if synopsis:
        # `--source voice|video|…`: every value shown must be one the option accepts.
        for option, value in itertools.pairwise(rest):
            param = known.get(option)
            if param is not None and isinstance(param.type, click.Choice) and "|" in value:
                assert set(value.split("|")) <= set(param.type.choices), f"{where}: `{command}`: {value}"
    else:
        try:
            sub.make_context(name, list(rest))
        except click.exceptions.Exit:
            pass
        except click.ClickException as exc:
            raise AssertionError(f"{where}: `{command}` is rejected: {exc.format_message()}") from None
    return name


@cache
def _help(*program: str) -> str:
    done = subprocess.run([*program, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"`{' '.join(program)} --help` failed: {done.stderr[-2000:]}"
    return done.stdout


def _check_module(where: str, command: str) -> None:
    words = _words(command)
    module, rest = words[words.index("-m") + 1], words[words.index("-m") + 2 :]
    assert importlib.util.find_spec(module) is not None, f"{where}: `{command}`: no module {module}"
    if module.startswith("tests."):
        shown = _help(sys.executable, "-m", module)
        for option in _options(rest):
            assert option in shown, f"{where}: `{command}`: {module} has no option {option}"
    for word in rest:
        if word.startswith("tests/"):
            assert (ROOT / word).exists(), f"{where}: `{command}`: no file {word}"


def test_every_command_in_the_readme_runs_as_written_after_the_quick_start() -> None:
    commands = _commands()
    assert len(commands) >= 20, commands  # the extraction itself must keep finding them
    subcommands: set[str] = set()
    for where, command, synopsis in commands:
        program = _executable(where, command)
        if program in EXTERNAL:
            continue
        if program == "make":
            continue  # test_make_targets_named_in_the_readme_exist
        if program == "recording-receiver":
            name = _check_cli(where, command, synopsis)
            if name:
                subcommands.add(name)
        elif program in ("python", "python3"):
            _check_module(where, command)
        elif program == "rq":
            words = _words(command)
            shown = _help(str(VENV_BIN / "rq"), words[1])
            for option in [w for w in words[2:] if w.startswith("-") and not w.startswith("$")]:
                assert re.search(rf"(^|[\s,]){re.escape(option)}[\s,]", shown), f"{where}: `{command}`: rq {words[1]} has no {option}"
        elif program == "pip":
            # What the README has people install beside us is what the test extra installs (and tests).
            for name in [w for w in _words(command)[2:] if not w.startswith("-")]:
                assert importlib.metadata.distribution(name), f"{where}: `{command}`: {name} is not in the test extra"
        elif program == "rq-dashboard":
            shown = _help(str(VENV_BIN / "rq-dashboard"))
            for option in [w for w in _words(command)[1:] if w.startswith("-")]:
                assert re.search(rf"(^|[\s,]){re.escape(option)}[\s,]", shown), f"{where}: `{command}`: rq-dashboard has no {option}"
        else:
            raise AssertionError(f"{where}: `{command}`: this test does not know how to check {program}")
    # The entry point the README names really starts, for every subcommand it shows.
    assert subcommands >= {"up", "serve", "worker", "admin", "reconcile", "simulate", "check"}, subcommands
    for name in sorted(subcommands):
        assert "Usage: recording-receiver " + name in _help(str(VENV_BIN / "recording-receiver"), name)


def test_the_commands_table_lists_every_subcommand_with_its_options() -> None:
    rows = readme.table("| command | does |")
    shown = {}
    for cell, _ in rows:
        [synopsis] = readme.codes_in(cell)
        words = _words(synopsis)
        shown[words[1]] = set(_options(words[2:]))
    assert set(shown) == set(cli.commands), "a subcommand is missing from the table, or the table names one that is gone"
    for name, options in shown.items():
        real = {opt for p in cli.commands[name].params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}
        # The table may leave out an option's positive twin (`--scheduler` of `--no-scheduler`) and `--help`.
        untold = {o for o in real - options if not any(o == "--" + x.removeprefix("--no-") for x in options)}
        assert not untold, f"{name}: options not in the README's table: {sorted(untold)}"


@pytest.mark.parametrize(("name", "option", "default"), [("up", "--port", 8000), ("up", "--workers", 2)])
def test_defaults_shown_in_the_commands_table_are_the_real_ones(name: str, option: str, default: int) -> None:
    [param] = [p for p in cli.commands[name].params if option in p.opts]
    assert param.default == default
    [cell] = [row[0] for row in readme.table("| command | does |") if f"recording-receiver {name} " in row[0]]
    assert f"[{option} {default}]" in cell


def test_make_targets_named_in_the_readme_exist_and_do_what_it_says() -> None:
    targets = {c.split()[1] for _, c, _ in _commands() if c.startswith("make ")}
    assert targets == {"up", "test", "lock"}
    # Dry runs (-n) against a venv path that does not exist: every recipe is printed, none run.
    venv = "/nonexistent/readme-check-venv"
    plans = {}
    for target in targets:
        # Under `make test` (CI) this make is nested: without the parent's variables it prints
        # only its plan, not "Entering directory" lines.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"make {target}: {done.stderr}"
        plans[target] = done.stdout
    pip = f"{venv}/bin/python -m pip install --disable-pip-version-check"
    for target in ("up", "test"):
        # "creates .venv, installs": from the hash-locked service requirements, then the project itself
        assert f"python3 -m venv {venv}" in plans[target]
        assert f"{pip} --require-hashes -r requirements/service.txt" in plans[target]
        assert f"{pip} -q --no-deps -e ." in plans[target]
    # "show each step and pip's progress": numbered steps, and no -q on the locks' installs (above)
    assert all(f"==> [{n}/3]" in plans["up"] for n in (1, 2, 3))
    # "with the test extra" is `make test`'s alone: `up` installs only what the service needs
    assert f"{pip} --require-hashes -r requirements/test.txt" in plans["test"]
    assert "requirements/test.txt" not in plans["up"] and "[test]" not in plans["up"]
    assert f"{venv}/bin/recording-receiver up" in plans["up"]
    # "re-resolves the locks": both, from pyproject.toml, with hashes
    for lock in ("requirements/service.txt", "requirements/test.txt"):
        assert re.search(rf"uv pip compile pyproject.toml .*--generate-hashes[^\n]* -o {lock}$", plans["lock"].replace("\\\n", ""), re.M), lock
    assert plans["test"].rstrip().endswith(f"{venv}/bin/python -m pytest")


def test_files_the_readme_points_to_exist() -> None:
    for name in ("deploy/README.md", "deploy/PROXIES.md", "DESIGN.md", "CHANGELOG.md", "tests/e2e/test_prism_reconcile.py",
                 "tests/support/twilio_signing.py", "tests/standin", "tests/perf", "deploy"):
        assert (ROOT / name).exists(), name


def test_the_tests_sign_with_an_implementation_independent_of_twilio_and_ours() -> None:
    source = (ROOT / "tests" / "support" / "twilio_signing.py").read_text()
    imports = set(re.findall(r"^(?:from|import) ([\w.]+)", source, flags=re.M))
    assert not {m for m in imports if m.split(".")[0] in ("twilio", "receiver", "workers")}, imports


def test_the_python_the_quick_start_asks_for_is_the_one_the_package_requires() -> None:
    said = re.search(r"You need Python (\d+\.\d+)\+", readme.text())
    assert said
    assert f'requires-python = ">={said.group(1)}"' in (ROOT / "pyproject.toml").read_text()
