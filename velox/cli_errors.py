"""How the `velox` command ends: usage errors, bad settings and failures as one line each.

- a usage error (unknown command or option, missing or malformed argument): click's usage
  message, exit status 2. typer vendors its own copy of click (`typer._click`) whose
  exceptions are not `click.ClickException`s, so both trees are caught.
- a bad `VELOX_*` variable: one line naming the variable and what is wrong, exit status 2.
- a Velox error: `error: message`, exit status 1.
- anything else (Spark, the JVM, Redis, a bug): one line with the cause and what to do, exit
  status 1; the full traceback goes to `<VELOX_HOME>/logs/cli.log`, and to the terminal too
  with `velox --verbose`.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    import typer
    from pydantic import ValidationError

USAGE_EXIT = 2
FAILURE_EXIT = 1


@dataclass
class CliRun:
    """What the global options of this run asked for (set by the app's callback)."""

    verbose: bool = False
    handlers: list[logging.Handler] = field(default_factory=list)


RUN = CliRun()


def click_exception_types() -> tuple[type[Exception], ...]:
    """`click.ClickException` and, where typer vendors click, its own copy of it."""
    import click

    found: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException
    except ImportError:  # a typer that uses click itself
        pass
    else:
        found.append(VendoredClickException)
    return tuple(found)


def _stop_types() -> tuple[type[BaseException], ...]:
    """`typer.Exit`/`Abort` and click's (both trees): a command that asked to stop."""
    import click
    import typer

    return (typer.Exit, typer.Abort, click.exceptions.Exit, click.Abort)


def log_path() -> Path:
    """Where the full traceback of a failed command goes: `<VELOX_HOME>/logs/cli.log`."""
    home = os.environ.get("VELOX_HOME") or str(Path.home() / ".velox")
    return Path(home).expanduser() / "logs" / "cli.log"


def _write_log(error: BaseException) -> Path | None:
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} velox {' '.join(sys.argv[1:])}\n")
            log.write("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return path


class _OneLineFormatter(logging.Formatter):
    """`message: ErrorType: first line of the error`, without the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += f": {failure_line(record.exc_info[1])}"
        return message


def configure_logging(verbose: bool) -> None:
    """`velox.*` warnings and errors: one line on stderr (all with `--verbose`), all in the log."""
    RUN.verbose = verbose
    logger = logging.getLogger("velox")
    for old in RUN.handlers:
        logger.removeHandler(old)
    RUN.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.WARNING)
    if not verbose:
        terminal.setFormatter(_OneLineFormatter())
    logger.addHandler(terminal)
    RUN.handlers.append(terminal)
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path)
    except OSError:
        return
    to_file.setLevel(logging.WARNING)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(to_file)
    RUN.handlers.append(to_file)


def settings_error_lines(error: ValidationError) -> list[str]:
    """One line per invalid field of a pydantic `ValidationError` over `VELOX_*` settings."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        variable = f"VELOX_{loc[0].upper()}" if loc else "a VELOX_* variable"
        if len(loc) > 1:
            variable += f" [{'.'.join(loc[1:])}]"
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        given = item.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        lines.append(f"{variable}: {message}{shown}")
    return lines


def _is_settings_error(error: BaseException) -> TypeGuard[ValidationError]:
    from pydantic import ValidationError

    return isinstance(error, ValidationError) and error.title.endswith("Settings")


REDIS_UNREACHABLE = {"ConnectionError", "TimeoutError", "BusyLoadingError"}


def failure_line(error: BaseException) -> str:
    """One line saying what failed and what to do, for an error Velox did not raise itself."""
    module = type(error).__module__
    name = type(error).__name__
    text = str(error).strip().splitlines()
    first = text[0].rstrip(".") if text else name
    if module.startswith("redis") and name in REDIS_UNREACHABLE:
        url = os.environ.get("VELOX_REDIS_URL", "the embedded Redis")
        return (
            f"cannot reach Redis at {url}: {first}. Start it, or fix or unset VELOX_REDIS_URL "
            "(unset: Velox starts an embedded Redis)"
        )
    if module.startswith("redis"):
        return f"Redis answered with an error: {name}: {first}"
    if module.startswith(("py4j", "pyspark")):
        return f"Spark failed: {_spark_cause(error, first)}"
    return f"{name}: {first}"


def _spark_cause(error: BaseException, first: str) -> str:
    """The innermost Java cause of a Py4J error (the line that says what went wrong)."""
    java = getattr(error, "java_exception", None)
    cause = None
    if java is not None:
        from py4j.protocol import Py4JError  # only Spark errors carry a java_exception

        while java is not None:
            try:
                cause = java.toString()
                java = java.getCause()
            except Py4JError:  # the JVM may be gone already
                break
    text = cause or first
    return " ".join(text.split())[:400]


def _report_failure(error: Exception) -> int:
    """One line for a failure Velox did not raise itself; the trace to the log (and stderr
    with `--verbose`)."""
    if _is_settings_error(error):
        for line in settings_error_lines(error):
            print(f"error: {line}", file=sys.stderr)
        return USAGE_EXIT
    path = _write_log(error)
    if RUN.verbose:
        traceback.print_exception(error, file=sys.stderr)
    where = f" (full trace in {path}; `velox --verbose …` prints it)" if path else ""
    print(f"error: {failure_line(error)}{where}", file=sys.stderr)
    return FAILURE_EXIT


def run_cli(app: typer.Typer) -> int:
    """Run `app` and turn how it ended into an exit status (and one line on stderr)."""
    from velox.errors import VeloxError

    try:
        result = app(standalone_mode=False)
    except _stop_types() as stop:
        return int(getattr(stop, "exit_code", FAILURE_EXIT) or 0)
    except click_exception_types() as error:
        error.show()  # type: ignore[attr-defined]
        return int(getattr(error, "exit_code", USAGE_EXIT))
    except VeloxError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return FAILURE_EXIT
    except Exception as error:
        return _report_failure(error)
    # Without standalone mode click returns the code of an `Exit` (e.g. after --help).
    return result if isinstance(result, int) else 0
