"""Reads README.md the way a newcomer does: its sections, code blocks, inline commands and tables."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    """A fenced code block: the section it is in, its info string (`sh`, or empty) and its lines."""

    section: str
    lang: str
    lines: tuple[str, ...]


def text() -> str:
    return README.read_text(encoding="utf-8")


def blocks() -> list[Block]:
    found: list[Block] = []
    section, lang, inside, lines = "", "", False, []
    for line in text().splitlines():
        if not inside and line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.startswith("```"):
            if inside:
                found.append(Block(section, lang, tuple(lines)))
                inside, lines = False, []
            else:
                inside, lang = True, line[3:].strip()
            continue
        if inside:
            lines.append(line)
    return found


def block_after(marker: str) -> Block:
    """The first fenced block that follows the line containing `marker`."""
    body = text()
    start = body.index(marker)
    rest = body[start:]
    opening = rest.index("```")
    closing = rest.index("```", opening + 3)
    inner = rest[opening + 3 : closing]
    lang, _, content = inner.partition("\n")
    return Block("", lang.strip(), tuple(content.rstrip("\n").splitlines()))


def prose() -> str:
    """Everything outside fenced blocks."""
    return re.sub(r"^```.*?^```", "", text(), flags=re.S | re.M)


def inline_code() -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose())


def shell_commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of every `sh` block, comments and prompts removed."""
    found = []
    for block in blocks():
        if block.lang != "sh":
            continue
        for line in block.lines:
            command = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if command:
                found.append((f"sh block in '{block.section}'", command))
    return found


def table(header_start: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header row starts with `header_start`."""
    lines = text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def codes_in(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)
