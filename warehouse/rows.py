"""One way to name the rows of a feature table, wherever each day lives: in MergeTree, or,
once tiering moved it, in the cold tier (through the table's cold view). The serving views
and the data-quality checks both read tables through it."""

from __future__ import annotations

from datetime import date

from common.settings import Settings
from warehouse.tables import cold_view, day_column, feature_tables, tiered_tables


def hot_days_sql(db: str, table: str) -> str:
    """The days a table holds in MergeTree (its active partitions)."""
    return f"SELECT toDate(partition) FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active"


def rows(settings: Settings, table: str, days: list[date] | None = None) -> str:
    """A relation (for FROM) over the table's rows as FINAL gives them, hot and cold alike;
    a day in MergeTree is read there only, so a move never shows a day twice or not at all.
    `days`: only the rows of those days (by `day_column`; the cold tier prunes by `dt`)."""
    db = settings.clickhouse.database
    f = feature_tables(settings)[table]
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    listed = ", ".join(f"'{d.isoformat()}'" for d in days or [])
    on_days = f" WHERE toDate({day_column(f)}) IN ({listed})" if days else ""
    if table not in tiered_tables(settings):
        return f"(SELECT {cols} FROM {db}.{table} FINAL{on_days})" if days else f"{db}.{table} FINAL"
    cold_on_days = f" AND dt IN ({listed})" if days else ""
    return (
        f"(SELECT {cols} FROM {db}.{table} FINAL{on_days} UNION ALL SELECT {cols} FROM {db}.{cold_view(table)} "
        f"WHERE dt NOT IN ({hot_days_sql(db, table)}){cold_on_days})"
    )
