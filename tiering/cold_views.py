"""What ClickHouse reads the cold tier through: a named collection with the bucket URL and
credentials (so no secret appears in a view), and each tiered table's cold view over the days
the manifest records as cold, which warehouse.rows (the serving views, the checks) reads."""

from __future__ import annotations

from common.clickhouse import get_client
from common.settings import Settings
from tiering import manifest
from tiering.layout import bucket_url, cold_reader, collection_name
from warehouse.tables import cold_view, no_cold_days, tiered_tables


def create_collection(settings: Settings, credentials: dict[str, str]) -> None:
    """(Re)create the named collection the views' s3() calls use."""
    params = {"url": bucket_url(settings), **credentials}
    quoted = ", ".join(f"{k} = '{_escape(v)}'" for k, v in params.items())
    client = get_client(settings)
    client.command(f"DROP NAMED COLLECTION IF EXISTS {collection_name(settings)}")
    client.command(f"CREATE NAMED COLLECTION {collection_name(settings)} AS {quoted}")


def view_sql(settings: Settings, table: str, days: list) -> str:
    """The cold view of a table over these cold days (no rows when there are none)."""
    f = tiered_tables(settings)[table]
    source = f"SELECT * FROM {cold_reader(settings, table, days, f)}" if days else no_cold_days(f)
    return f"CREATE OR REPLACE VIEW {settings.clickhouse.database}.{cold_view(table)} AS {source}"


def refresh(settings: Settings, tables: list[str] | None = None) -> None:
    """Rebuild the cold views (of these tables, default all) from the manifest."""
    cold = manifest.cold_days(settings)
    client = get_client(settings)
    for table in tables or list(tiered_tables(settings)):
        client.command(view_sql(settings, table, cold.get(table, [])))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
