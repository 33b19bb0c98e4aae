"""The installed `velox` command ends cleanly: usage errors exit 2 with click's usage message,
bad settings and failures print one line, never a traceback (issue 23, items 3 and 4)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from tests.cli_support import run_velox

USAGE_CASES = [
    ([], "Usage: velox"),
    (["nosuchcmd"], "No such command 'nosuchcmd'"),
    (["models", "promote"], "Missing argument"),
    (["models", "promote", "abc"], "Invalid value for 'version'"),
    (["serve", "--port", "abc"], "Invalid value for '--port'"),
    (["train", "--bogus"], "No such option: --bogus"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE_CASES)
def test_usage_errors_exit_2_with_the_usage_message(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """Each usage mistake prints click's message (no traceback) and exits 2."""
    done = run_velox(args, tmp_path)
    assert done.returncode == 2, done.stderr
    assert expected in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if args:
        assert "Usage: velox" in done.stderr
        assert len(done.stderr.splitlines()) <= 6


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    """`velox --version` prints the package version and exits 0."""
    done = run_velox(["--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"velox {version('velox-serving')}"


SETTINGS_CASES = [
    ("VELOX_REDIS_URL", "garbage", "must start with redis://"),
    ("VELOX_POLICY", "bogus", "unknown policy spec 'bogus'"),
    ("VELOX_MAX_BODY_BYTES", "abc", "valid integer"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), SETTINGS_CASES)
def test_bad_settings_print_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    """A bad VELOX_* value stops `velox serve` with one line naming the variable, exit 2."""
    done = run_velox(["serve", "--port", "1"], tmp_path, env={variable: value})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}: ")
    assert expected in lines[0]


@pytest.mark.parametrize("command", [["retrain"], ["materialize"], ["models", "list"]])
def test_a_bad_redis_url_stops_every_command_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    """The jobs read VELOX_REDIS_URL too: refused before they start, as `serve` refuses it."""
    done = run_velox(command, tmp_path, env={"VELOX_REDIS_URL": "garbage"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: VELOX_REDIS_URL: must start with redis://, rediss://, unix:// or (a cluster) "
        "redis+cluster:// (got 'garbage')"
    ]


def test_events_that_are_not_parquet_fail_in_one_line(tmp_path: Path) -> None:
    """`velox train --events random-bytes.parquet` says what is wrong, without Java traces."""
    events = tmp_path / "random-bytes.parquet"
    events.write_bytes(bytes(range(256)) * 20)
    done = run_velox(["train", "--events", str(events)], tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "java" not in done.stderr.lower()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "not a parquet file" in errors[0].lower()
    assert str(events) in errors[0]


def test_unreachable_redis_fails_in_one_line_with_what_to_do(tmp_path: Path) -> None:
    """`velox retrain` against a Redis that refuses connections: one line, not 4 traces."""
    env = {"VELOX_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = run_velox(["retrain", "--dataset", "synthetic"], tmp_path, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in lines[0]
    assert "VELOX_REDIS_URL" in lines[0]


def test_an_unexpected_failure_prints_one_line_and_logs_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failure Velox did not raise: one line naming the log, the trace in the log file;
    `--verbose` prints the trace too."""
    import typer

    from velox.cli_errors import configure_logging, run_cli

    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise RuntimeError("the disk is on fire\nsecond line")

    monkeypatch.setenv("VELOX_HOME", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["velox"])
    for verbose in (False, True):
        configure_logging(verbose)
        assert run_cli(app) == 1
        err = capsys.readouterr().err
        assert ("Traceback" in err) is verbose
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: RuntimeError: the disk is on fire (full trace in ")
    configure_logging(False)
    log = (tmp_path / "logs" / "cli.log").read_text()
    assert log.count("RuntimeError: the disk is on fire") == 2
