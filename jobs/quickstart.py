"""`velox quickstart`: dataset → Spark training → published snapshot → the service, in one go."""

from __future__ import annotations

import shlex
import socket
from typing import TYPE_CHECKING
from urllib.parse import quote

from rich.console import Console

from velox.errors import InvalidInputError
from velox.settings import VeloxSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATASETS = ("synthetic", "movielens-100k")
DEFAULT_MODEL = VeloxSettings.model_fields["model"].default
SERVE_HOST = "127.0.0.1"


def check_port_free(host: str, port: int) -> None:
    """Refuse (one line) a port another process listens on, or that cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InvalidInputError(
                f"cannot serve on {host}:{port} ({error.strerror}): give another --port, or "
                "--no-serve to train and publish only"
            ) from None


def curl_examples(port: int, user: str, item: str) -> list[str]:
    """Ready-to-paste requests against a service on localhost:`port`."""
    base = f"http://127.0.0.1:{port}"
    body = f'{{"user": "{user}", "item": "{item}", "reward": 5.0}}'
    return [
        f"curl '{base}/predict?user={user}&k=5'",
        f"curl '{base}/predict?user={user}&item={item}'",
        f"curl -X POST '{base}/observe' -H 'content-type: application/json' -d '{body}'",
        f"curl '{base}/models'",
    ]


def score_table_examples(port: int, user: str, model: str) -> list[str]:
    """A `velox query` and a `/recommendations` request for `user`'s top 5 of `model`'s table."""
    query = ["velox", "query", "--user", user, "-k", "5"]
    if model != DEFAULT_MODEL:
        query += ["--model", model]
    model_param = "" if model == DEFAULT_MODEL else f"&model={quote(model, safe='')}"
    return [
        shlex.join(query),
        f"curl 'http://127.0.0.1:{port}/recommendations?user={quote(user, safe='')}&k=5"
        f"{model_param}'",
    ]


def build_score_table(
    settings: VeloxSettings, version: int, console: Console, spark: SparkSession
) -> None:
    """Materialize `version`'s top-N score table as `velox materialize` does, on `spark`."""
    from batch.materialize.command import run_materialize
    from batch.materialize.job import MaterializeOptions

    options = MaterializeOptions(model=settings.model, version=version)
    run_materialize(options, settings, console, spark=spark)


def dashboard_url(port: int) -> str:
    """Where the operator's dashboard of a service on localhost:`port` is."""
    return f"http://127.0.0.1:{port}/dashboard"


def run_quickstart(settings: VeloxSettings, *, dataset: str, port: int, serve: bool) -> None:
    """Train on `dataset` with Spark local, publish and promote, then serve unless told not to."""
    from batch.options import TrainOptions
    from batch.spark import get_spark
    from batch.train_command import run_train
    from feature_store.registry import Registry

    if dataset not in DATASETS:
        raise InvalidInputError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    console = Console()
    console.print(f"[bold]Velox quickstart[/bold]: dataset={dataset}, home={settings.home}")
    current = Registry(settings.resolved_snapshot_root()).current(settings.model)
    if current is not None:
        console.print(
            f"model {settings.model} already has v{current} (current); to serve it without "
            f"training again: velox serve --port {port}",
            highlight=False,
            markup=False,
        )
    if serve:
        check_port_free(SERVE_HOST, port)  # before a minute of training, not after
    spark = get_spark(app_name="velox-quickstart", short_job=True)  # train + materialize
    try:
        manifest = run_train(TrainOptions(dataset=dataset, model=settings.model), settings)
        build_score_table(settings, manifest.version, console, spark)
    finally:
        spark.stop()
    snapshot = Registry(settings.resolved_snapshot_root()).load(settings.model, manifest.version)
    user = next(iter(snapshot.user_index), "new-user")
    item = str(snapshot.item_ids[0])
    console.print(f"published {settings.model} v{manifest.version}: metrics {manifest.metrics}")
    console.print("Try it:" if serve else "Serve it with `velox serve`, then try:")
    for line in curl_examples(port, user, item) + score_table_examples(port, user, settings.model):
        console.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"Dashboard: {dashboard_url(port)}", highlight=False, markup=False)
    if serve:
        from online.server import run_server

        run_server(settings, host=SERVE_HOST, port=port, workers=1)
