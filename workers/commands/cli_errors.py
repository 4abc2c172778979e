"""A user's mistake on the command line as one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import re
import sys
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from receiver.kernel.errors import BadSetting, RecordingReceiverError

PROG = "recording-receiver"
# Exit code of every user mistake (what click uses for bad arguments); 1 stays "ran, found a problem".
MISTAKE = 2


class Mistake(RecordingReceiverError, click.ClickException):
    """Something the user can fix, said in one line."""

    exit_code = MISTAKE


class Commands(click.Group):
    """The `recording-receiver` group: runs a command and turns what a user can fix into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ValidationError, SettingsError, BadSetting) as exc:
            raise _named(Mistake(settings_problem(exc)), ctx) from None
        except click.ClickException as exc:
            raise _named(exc, ctx) from None

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Abort:  # Ctrl-C or end of input at a prompt
            sys.exit(130)
        except click.ClickException as exc:
            hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
            fail(getattr(exc, "command", None), exc.format_message() + hint, exc.exit_code)
        # With standalone_mode off, --help and a plain return come back as an exit code or None.
        sys.exit(code if isinstance(code, int) else 0)


def _named(exc: click.ClickException, ctx: click.Context) -> click.ClickException:
    """Remember which subcommand failed, for the one line that reports it."""
    if getattr(exc, "command", None) is None:
        exc.command = ctx.invoked_subcommand  # type: ignore[attr-defined]
    return exc


def fail(command: str | None, message: str, code: int = MISTAKE) -> NoReturn:
    """Print `recording-receiver <command>: message` on stderr and exit (2 unless told otherwise)."""
    click.echo(f"{PROG}{' ' + command if command else ''}: {' '.join(message.split())}", err=True)
    sys.exit(code)


def settings_problem(exc: Exception) -> str:
    """A settings error as one line naming each variable and what it expects, never its value."""
    if isinstance(exc, ValidationError):
        return "; ".join(_one_error(error) for error in exc.errors(include_input=False, include_url=False))
    if isinstance(exc, SettingsError):
        # pydantic-settings: 'error parsing value for field "x" from source "…"' (a JSON setting).
        field = re.search(r'field "(\w+)"', str(exc))
        name = field.group(1).upper() if field else "a setting"
        return f"{name}: not valid JSON"
    return str(exc)


def _one_error(error: Any) -> str:
    name = str(error["loc"][0]).upper() if error.get("loc") else "settings"
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return message if message.startswith(name) else f"{name}: {message}"
