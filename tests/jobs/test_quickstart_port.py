"""`velox quickstart` checks its port before training, says how to serve a snapshot it already
has, and ports out of range are usage errors (issue 23, item 8)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from feature_store.registry import Registry
from tests.cli_support import run_velox
from tests.online.synthetic import synthetic_snapshot


def test_quickstart_refuses_a_busy_port_before_training(tmp_path: Path) -> None:
    """With a snapshot published and the port taken: the tip to just serve it, then one error
    line naming the port, exit 1, and nothing trained (still one version)."""
    registry = Registry(str(tmp_path / "home" / "snapshots"))
    registry.publish("default", synthetic_snapshot())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_velox(["quickstart", "--port", str(port)], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert (
        f"already has v1 (current); to serve it without training again: velox serve --port {port}"
        in text
    )
    assert done.stderr.strip().splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port} (Address already in use): give another "
        "--port, or --no-serve to train and publish only"
    ]
    assert "Spark" not in done.stdout
    assert registry.versions("default") == [1]


@pytest.mark.parametrize("command", ["serve", "quickstart"])
@pytest.mark.parametrize("port", ["80000", "0", "-1"])
def test_ports_out_of_range_are_usage_errors(tmp_path: Path, command: str, port: str) -> None:
    """`--port 80000` would listen on a wrapped port: refused with click's message, exit 2."""
    done = run_velox([command, "--port", port], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--port'" in done.stderr
    assert (
        "65535" in done.stderr if port == "80000" else "greater than or equal to 1" in done.stderr
    )
