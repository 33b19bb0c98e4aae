"""The PostgreSQL engine's top-10 statement under `pgbench`: the server's latency, C client.

`bench.bench_score_queries` times the engine from Python threads in one process, so at 16
concurrent queries its tail is mostly the client's own GIL and scheduling. Here the very
statement the engine sends (`top_rows_sql` with the compiled filter, prepared, the user id a
parameter) runs under pgbench (`-M prepared`, 16 clients, 2 threads) against the same table,
every transaction's latency logged, p50 and p99 computed from the log.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from feature_store.score_tables.postgres_engine import PostgresEngine
from feature_store.score_tables.postgres_schema import qualified, relation_name
from feature_store.score_tables.sql_filter import compile_sql_filter, top_rows_sql


def _literal(value: object) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no literal for {value!r} in this bench")
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def pgbench_script(
    source: str, where: str | None, columns: dict[str, str], users: int, k: int
) -> str:
    """A pgbench script: a random user (ids `u` + 7 digits), the engine's statement."""
    condition = compile_sql_filter(where, columns, "postgres") if where else None
    sql = top_rows_sql(source, condition, "postgres")
    user = "('u' || lpad((:uid)::text, 7, '0'))"
    values = [user, *(_literal(p) for p in (condition.params if condition else ())), str(k)]
    for value in values:
        sql = sql.replace("%s", value, 1)
    return f"\\set uid random(0, {users - 1})\n{sql};\n"


def pgbench_latencies(
    url: str, engine: PostgresEngine, model: str, where: str | None, users: int, seconds: int
) -> tuple[float, float, float]:
    """p50 ms, p99 ms and transactions/s of the engine's statement at 16 clients."""
    manifest = engine.served(model)
    source = qualified(engine.config.schema_name, relation_name(model, manifest.table_version))
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "top.sql"
        script.write_text(pgbench_script(source, where, manifest.columns, users, 10))
        command = ["pgbench", "-n", "-M", "prepared", "-c", "16", "-j", "2", "-T", str(seconds),
                   "-f", str(script), "-l", "--log-prefix", f"{folder}/log", url]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, text=True)
        micros = sorted(
            int(line.split()[2])
            for log in Path(folder).glob("log*")
            for line in log.read_text().splitlines()
        )
    count = len(micros)
    return (
        micros[count // 2] / 1e3,
        micros[min(count - 1, count * 99 // 100)] / 1e3,
        count / seconds,
    )
