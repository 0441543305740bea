"""Row counts and on-disk size of each table of a database (PostgreSQL or SQLite), for the retention bench.

    python -m bench.table_sizes postgresql://postgres@127.0.0.1:5432/sanji_x [TABLE ...]

prints one JSON object: ``{table: {"rows": n, "bytes": b}}``. Rows are an exact ``COUNT(*)``. Bytes are what the
table occupies with its indexes and TOAST: ``pg_total_relation_size`` on PostgreSQL (deleted rows' space counts
until vacuum makes it reusable, so a table whose bytes stay flat is one whose space is being reused); on SQLite
the pages of the table and its indexes from the ``dbstat`` virtual table (None where SQLite lacks it).
"""

from __future__ import annotations

import json
import sys

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from shared.db import normalise_url


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bytes_postgres(connection, table: str) -> int:
    return int(connection.execute(text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                                  {"name": _quoted(table)}).scalar())


def _bytes_sqlite(connection, table: str) -> int | None:
    try:
        return int(connection.execute(
            text("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = :table OR name IN (SELECT name FROM "
                 "sqlite_master WHERE type = 'index' AND tbl_name = :table)"), {"table": table}).scalar())
    except Exception:  # noqa: BLE001 - an SQLite built without dbstat: rows only
        return None


def table_sizes(engine: Engine, tables: list[str] | None = None) -> dict[str, dict[str, int | None]]:
    """``{table: {"rows": n, "bytes": b}}`` for the given tables (default: every table but alembic's)."""
    names = tables or sorted(name for name in inspect(engine).get_table_names() if name != "alembic_version")
    sizes = {}
    with engine.connect() as connection:
        postgres = engine.dialect.name == "postgresql"
        for name in names:
            rows = int(connection.execute(text(f"SELECT COUNT(*) FROM {_quoted(name)}")).scalar())
            size = _bytes_postgres(connection, name) if postgres else _bytes_sqlite(connection, name)
            sizes[name] = {"rows": rows, "bytes": size}
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m bench.table_sizes DATABASE_URL [TABLE ...]", file=sys.stderr)
        return 2
    engine = create_engine(normalise_url(args[0]))
    try:
        print(json.dumps(table_sizes(engine, args[1:] or None)))
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
