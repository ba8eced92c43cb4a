"""Every CREATE statement of the platform's ClickHouse schema, and creating it. Tiering adds
its own tables and keeps the cold views current (tiering/)."""

from __future__ import annotations

from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from warehouse.tables import hop_of, table_ddl
from warehouse.views import serving_view, tiles_view


def ddl(settings: Settings) -> list[str]:
    """The database, the tables (created when missing) and the views (rebuilt), in order."""
    db = settings.clickhouse.database
    out = [f"CREATE DATABASE IF NOT EXISTS {db}", *table_ddl(settings)]
    for f in load_features(settings).stream:
        hop = hop_of(f)
        if hop:
            out.append(tiles_view(settings, f, hop))
        out.append(serving_view(settings, f))
    return out


def create_tables(settings: Settings) -> None:
    """Create what is missing and rebuild the views."""
    client = get_client(settings)
    for stmt in ddl(settings):
        client.command(stmt)
