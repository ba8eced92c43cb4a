"""`sql QUERY`: a query against the platform's ClickHouse."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from cli.console import console, settings
from common.errors import PlatformError


def sql(
    query: str,
    fmt: Annotated[str, typer.Option("--format", help="pretty | csv | tsv")] = "pretty",
) -> None:
    """Print a query's result from the platform's ClickHouse (server or embedded chDB)."""
    import csv

    from common.clickhouse import get_client
    from warehouse.schema import create_tables

    s = settings()
    if fmt not in ("pretty", "csv", "tsv"):
        raise PlatformError(f"unknown --format {fmt!r}", "use pretty, csv or tsv")
    create_tables(s)
    try:
        result = get_client(s).query(query)
    except Exception as e:
        raise PlatformError(f"query failed: {str(e).splitlines()[0]}") from None
    if fmt == "pretty":
        t = Table()
        for name in result.column_names:
            t.add_column(name)
        for row in result.result_rows:
            t.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(t)
    else:
        w = csv.writer(sys.stdout, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        w.writerow(result.column_names)
        w.writerows(result.result_rows)
