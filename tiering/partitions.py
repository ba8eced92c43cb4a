"""Reading one day of a feature table: its fingerprint (rows and an order-independent content
checksum) hot or cold, its export to Parquet files, and which days are due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from common.clickhouse import get_client, row_checksum
from common.errors import PlatformError
from common.settings import Settings
from features.definitions import Feature
from tiering.layout import cold_reader, uri
from warehouse.tables import first_time_column, tiered_tables


@dataclass(frozen=True)
class Partition:
    """A hot day of a table, with its size in MergeTree (rows before FINAL)."""

    table: str
    day: date
    rows: int
    bytes: int


def feature_of(settings: Settings, table: str) -> Feature:
    tables = tiered_tables(settings)
    if table not in tables:
        raise PlatformError(f"{table!r} is not a tiered table", f"use one of: {', '.join(sorted(tables))}")
    return tables[table]


def _fingerprint_sql(f: Feature) -> str:
    return f"SELECT count(), {row_checksum(c.name for c in f.columns)}"


def hot_fingerprint(settings: Settings, table: str, day: date) -> tuple[int, int]:
    """(rows, checksum) of the day as FINAL returns it from MergeTree."""
    f = feature_of(settings, table)
    db = settings.clickhouse.database
    row = get_client(settings).query(
        f"{_fingerprint_sql(f)} FROM {db}.{table} FINAL WHERE toDate({first_time_column(f)}) = '{day.isoformat()}'"
    )
    rows, checksum = row.result_rows[0]
    return int(rows), int(checksum)


def cold_fingerprint(settings: Settings, table: str, day: date) -> tuple[int, int]:
    """(rows, checksum) of the day read back from the object store through ClickHouse."""
    f = feature_of(settings, table)
    try:
        rows, checksum = (
            get_client(settings).query(f"{_fingerprint_sql(f)} FROM {cold_reader(settings, table, [day], f)}")
        ).result_rows[0]
    except PlatformError:
        raise
    except Exception as e:
        raise PlatformError(
            f"cannot read back {uri(settings, table, day)}: {str(e).splitlines()[0][:400]}",
            "the hot data is untouched; re-run `lambda-features tier run` (or `tier restore`) once the store is fixed",
        ) from None
    return int(rows), int(checksum)


def export(settings: Settings, table: str, day: date, out_dir: Path) -> list[Path]:
    """Write the day (FINAL, in key order) as Parquet files of at most rows_per_object rows."""
    import pyarrow.parquet as pq

    f = feature_of(settings, table)
    db = settings.clickhouse.database
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    query = (
        f"SELECT {cols} FROM {db}.{table} FINAL WHERE toDate({first_time_column(f)}) = '{day.isoformat()}' "
        f"ORDER BY {', '.join(f.order_key)}"
    )
    limit = settings.tiering.rows_per_object
    files: list[Path] = []
    writer = None
    in_file = 0
    with get_client(settings).query_arrow_stream(query) as stream:
        for batch in stream:
            offset = 0
            while offset < batch.num_rows:
                if writer is None:
                    files.append(out_dir / f"part-{len(files):05d}.parquet")
                    writer = pq.ParquetWriter(files[-1], batch.schema, compression="zstd")
                take = min(batch.num_rows - offset, limit - in_file)
                writer.write_batch(batch.slice(offset, take))
                offset += take
                in_file += take
                if in_file == limit:
                    writer.close()
                    writer, in_file = None, 0
    if writer is not None:
        writer.close()
    return files


def due(settings: Settings, today: date) -> list[Partition]:
    """Every hot day of a tiered table older than hot_days (D < today - hot_days), oldest first."""
    cutoff = today - timedelta(days=settings.tiering.hot_days)
    names = ", ".join(f"'{t}'" for t in tiered_tables(settings))
    rows = (
        get_client(settings)
        .query(
            f"SELECT table, toDate(partition) AS day, sum(rows), sum(bytes_on_disk) FROM system.parts "
            f"WHERE database = '{settings.clickhouse.database}' AND table IN ({names}) AND active "
            f"AND day < '{cutoff.isoformat()}' GROUP BY table, day ORDER BY day, table"
        )
        .result_rows
    )
    return [Partition(t, d, int(r), int(b)) for t, d, r, b in rows]
