"""Every `velox …` command shown in README.md and docs/*.md exists, with the options it shows:
the documentation cannot drift from the CLI again (issue 23).

Commands are found in fenced code blocks and in inline code, split at `|`, `&&` and `;`,
comments dropped. Each one's command path must be a command of the installed `velox` (its
`--help` is run through the entry point, outside the checkout) and each `--option` it shows
must be an option of that command.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.cli_support import run_velox
from velox.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`(velox [^`\n]+)`")
SEPARATORS = re.compile(r"\|\||&&|\||;")
ELLIPSES = {"…", "...", "[…]", "[...]"}


def _commands_in(text: str) -> list[str]:
    """The `velox …` commands in the code blocks and inline code of one Markdown text."""
    found = []
    blocks = FENCE.findall(text)
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.split(" #", 1)[0].strip().removeprefix("$ ")
            parts = (part.strip() for part in SEPARATORS.split(line))
            found += [part for part in parts if part.startswith("velox ") or part == "velox"]
    outside = FENCE.sub("", text)
    found += [match.split(" #", 1)[0].strip() for match in INLINE.findall(outside)]
    return found


def documented_commands() -> list[tuple[str, str]]:
    """(file name, command) for every documented `velox` command, without repeats."""
    seen: dict[str, str] = {}
    for doc in DOCS:
        for command in _commands_in(doc.read_text()):
            seen.setdefault(command, doc.name)
    return [(name, command) for command, name in seen.items()]


@cache
def _tree() -> Any:
    return typer.main.get_command(app)


def resolve(words: list[str]) -> tuple[list[str], Any, list[str]]:
    """The command path among `words`, its click command, and the `--options` shown."""
    command, path = _tree(), []
    rest = list(words)
    # typer vendors click (typer._click): its groups are not click.Group, so duck-type them.
    while rest and rest[0] in getattr(command, "commands", {}):
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    options = [word.split("=", 1)[0] for word in rest if word.startswith("--")]
    return path, command, options


def _words(command: str) -> list[str]:
    words = shlex.split(command, posix=True)[1:]
    return [word for word in words if word not in ELLIPSES]


def test_the_docs_show_commands() -> None:
    """The parser finds the README's commands (a guard against it silently finding none)."""
    shown = {command for _, command in documented_commands()}
    assert "velox quickstart" in shown
    assert any(command.startswith("velox scheduler ") for command in shown)
    assert any(command.startswith("velox models promote") for command in shown)


@pytest.mark.parametrize(("doc", "command"), documented_commands())
def test_documented_command_exists_with_its_options(doc: str, command: str) -> None:
    """The path is a command and every option shown is one of its options."""
    path, found, options = resolve(_words(command))
    known = {opt for param in found.params for opt in (*param.opts, *param.secondary_opts)}
    known |= {"--help"}
    if not path:  # `velox --version`, `velox --verbose …`: the group's own options
        known |= {"--version", "--verbose"}
    unknown = [option for option in options if option not in known]
    assert not unknown, f"{doc}: `{command}` shows {unknown}, not options of velox {' '.join(path)}"
    if hasattr(found, "commands") and path:
        assert len(_words(command)) == len(path) or options, f"{doc}: `{command}` names no command"


def test_every_documented_command_path_has_help(tmp_path: Path) -> None:
    """`velox PATH --help` exits 0 through the installed entry point for each documented path."""
    paths = sorted({" ".join(resolve(_words(cmd))[0]) for _, cmd in documented_commands()})
    for path in paths:
        done = run_velox([*path.split(), "--help"], tmp_path)
        assert done.returncode == 0, f"velox {path} --help: {done.stderr}"
        assert "Usage: velox" in done.stdout
