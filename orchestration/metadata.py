"""Dagster metadata from ClickHouse: row counts and previews analysts can read in the UI."""

from __future__ import annotations

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

PREVIEW_ROWS = 5


def preview(client, query: str) -> MetadataValue:
    """The first rows of a query as a Dagster table."""
    result = client.query(f"{query} LIMIT {PREVIEW_ROWS}")
    schema = TableSchema(columns=[TableColumn(name) for name in result.column_names])
    records = [
        TableRecord({k: (v if isinstance(v, int | float | bool) or v is None else str(v)) for k, v in row.items()})
        for row in result.named_results()
    ]
    return MetadataValue.table(records=records, schema=schema)
