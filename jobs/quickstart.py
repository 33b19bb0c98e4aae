"""`velox quickstart`: dataset → Spark training → published snapshot → the service, in one go."""

from __future__ import annotations

from rich.console import Console

from velox.errors import InvalidInputError
from velox.settings import VeloxSettings

DATASETS = ("synthetic", "movielens-100k")


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


def dashboard_url(port: int) -> str:
    """Where the operator's dashboard of a service on localhost:`port` is."""
    return f"http://127.0.0.1:{port}/dashboard"


def run_quickstart(settings: VeloxSettings, *, dataset: str, port: int, serve: bool) -> None:
    """Train on `dataset` with Spark local, publish and promote, then serve unless told not to."""
    from batch.options import TrainOptions
    from batch.train_command import run_train
    from feature_store.registry import Registry

    if dataset not in DATASETS:
        raise InvalidInputError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    console = Console()
    console.print(f"[bold]Velox quickstart[/bold]: dataset={dataset}, home={settings.home}")
    manifest = run_train(TrainOptions(dataset=dataset, model=settings.model), settings)
    snapshot = Registry(settings.resolved_snapshot_root()).load(settings.model, manifest.version)
    user = next(iter(snapshot.user_index), "new-user")
    item = str(snapshot.item_ids[0])
    console.print(f"published {settings.model} v{manifest.version}: metrics {manifest.metrics}")
    console.print("Try it:" if serve else "Serve it with `velox serve`, then try:")
    for line in curl_examples(port, user, item):
        console.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"Dashboard: {dashboard_url(port)}", highlight=False, markup=False)
    if serve:
        from online.server import run_server

        run_server(settings, host="127.0.0.1", port=port, workers=1)
