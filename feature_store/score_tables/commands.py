"""`velox query --user U [--where EXPR] [-k K] [--json]`: a user's top-k from the score table.

Answers from the table alone (no model, no Redis): when the table cannot give the exact
answer (a user it lacks, or a filter leaving fewer than k of the user's top-N rows) the
answer says `complete: false`; `GET /recommendations` completes such answers online.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from feature_store.score_tables.engine import TableAnswer
from feature_store.score_tables.engines import open_score_engine
from velox.settings import VeloxSettings


def answer_json(user: str, answer: TableAnswer) -> dict[str, Any]:
    """The answer as `/recommendations` writes a table answer."""
    return {
        "user": user,
        "model": answer.model,
        "table_version": answer.table_version,
        "snapshot_version": answer.snapshot_version,
        "source": "table",
        "fresh": False,
        "complete": answer.complete,
        "items": [{"item": row.item, "score": row.score} for row in answer.rows],
    }


def _print_table(user: str, answer: TableAnswer) -> None:
    console = Console()
    table = Table(
        title=f"top items for {user!r}",
        caption=f"{answer.model}: table {answer.table_version}, "
        f"snapshot v{answer.snapshot_version}",
    )
    for column in ("#", "item", "score"):
        table.add_column(column, justify="right" if column != "item" else "left")
    for position, row in enumerate(answer.rows, start=1):
        table.add_row(str(position), row.item, f"{row.score:.6g}")
    console.print(table)
    if not answer.user_known:
        console.print(f"user {user!r} is not in the table (GET /recommendations answers online)")
    elif not answer.complete:
        console.print(
            f"incomplete: the filter keeps {len(answer.rows)} of this user's materialized rows "
            "(GET /recommendations completes the answer online)"
        )


def run_query(
    settings: VeloxSettings, user: str, k: int, where: str | None, *, as_json: bool
) -> None:
    """Print `user`'s filtered top-k from the current score table of `settings.model`."""
    engine = open_score_engine(settings)
    try:
        answer = engine.top_k(settings.model, user, k, where)
    finally:
        engine.close()
    if as_json:
        print(json.dumps(answer_json(user, answer)))
    else:
        _print_table(user, answer)
