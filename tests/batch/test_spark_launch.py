"""When a short job's driver gets C1 only and the serial GC; how big a job's input is."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.datasets.reader import local_bytes
from batch.spark import short_job_options_apply


@pytest.fixture
def no_user_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty SPARK_CONF_DIR, no PYSPARK_SUBMIT_ARGS, not under spark-submit."""
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    return tmp_path


def test_short_job_options_is_for_local_drivers_only(no_user_conf: Path) -> None:
    assert short_job_options_apply("local[*]") and short_job_options_apply("local")
    assert not short_job_options_apply("spark://master:7077")
    assert not short_job_options_apply("yarn")


@pytest.mark.parametrize(
    "line", ["spark.driver.extraJavaOptions -Dx=1", "spark.driver.extraJavaOptions=-Dx=1"]
)
def test_short_job_options_never_replaces_java_options_from_spark_defaults(
    no_user_conf: Path, line: str
) -> None:
    (no_user_conf / "spark-defaults.conf").write_text(f"spark.driver.memory 4g\n{line}\n")
    assert not short_job_options_apply("local[2]")


def test_a_commented_out_option_does_not_count(no_user_conf: Path) -> None:
    (no_user_conf / "spark-defaults.conf").write_text("# spark.driver.extraJavaOptions -Dx=1\n")
    assert short_job_options_apply("local[2]")


def test_short_job_options_never_replaces_java_options_from_submit_args(
    no_user_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-java-options -Dx=1 pyspark-shell")
    assert not short_job_options_apply("local[2]")


def test_a_driver_that_spark_submit_started_keeps_its_jvm(
    no_user_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")
    assert not short_job_options_apply("local[2]")


def test_local_bytes_sums_a_folder_and_skips_uris(tmp_path: Path) -> None:
    (tmp_path / "date=2024-01-01").mkdir()
    (tmp_path / "date=2024-01-01" / "part-0.parquet").write_bytes(b"x" * 100)
    (tmp_path / "part-1.parquet").write_bytes(b"y" * 23)
    assert local_bytes(str(tmp_path)) == 123
    assert local_bytes(str(tmp_path / "part-1.parquet")) == 23
    assert local_bytes("s3a://bucket/events") is None
