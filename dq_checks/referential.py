"""Referential completeness: the share of a day's events whose item the catalogue did not know
at the event's time (no version valid then, or deleted), as the stream's temporal join and the
batch see it. Such events are kept with null catalogue attributes; this check counts them."""

from __future__ import annotations

from datetime import date

from common import archive
from common.clickhouse import get_client
from common.settings import Settings
from dq_checks import sources
from dq_checks.result import CheckResult

HISTORY_STRUCTURE = "op String, item_id Int64, changed_at Int64, binlog_file String, binlog_pos Int64, binlog_row Int32"


def versions_sql(settings: Settings) -> str:
    """Per item and change time, the op of the change that wins there (the last in binlog order);
    a change re-archived by a later run of the stream job counts once."""
    glob = archive.catalog_history_parts(settings)
    history = f"file('{glob}', JSONEachRow, '{HISTORY_STRUCTURE}')" if glob else f"null('{HISTORY_STRUCTURE}')"
    order = "(toInt64OrZero(splitByChar('.', binlog_file)[-1]), binlog_pos, binlog_row)"
    return (
        f"SELECT item_id, changed_at, argMax(op, {order}) AS op FROM (SELECT DISTINCT * FROM {history}) "
        "GROUP BY item_id, changed_at"
    )


def unknown_items_sql(settings: Settings, day: date) -> str:
    """(events with an item, of unknown items, the most frequent unknown items with their counts)."""
    # not aliased `item_id`: ClickHouse would read the alias, never NULL, in the WHERE
    events = (
        f"SELECT assumeNotNull(item_id) AS item, event_time FROM {sources.archive(settings, [day])} "
        "WHERE item_id IS NOT NULL"
    )
    joined = (
        f"SELECT e.item AS item_id, v.op IN ('', 'd') AS unknown FROM ({events}) AS e "
        f"ASOF LEFT JOIN ({versions_sql(settings)}) AS v ON e.item = v.item_id AND e.event_time >= v.changed_at"
    )
    return (
        f"SELECT count(), countIf(unknown), topKIf({settings.dq.sample_size})(item_id, unknown) FROM ({joined}) "
        "SETTINGS join_use_nulls = 0"
    )


def referential_completeness(settings: Settings, day: date) -> CheckResult:
    """WARN above DQ__MAX_UNKNOWN_ITEM_RATE_WARN, ERROR above DQ__MAX_UNKNOWN_ITEM_RATE_ERROR;
    INFO while no catalogue change was ever archived (the catalogue is not in use)."""
    if archive.catalog_history_parts(settings) is None:
        return CheckResult(
            "referential_completeness", "catalog", day, True, "INFO",
            f"no catalogue change archived under {settings.catalog_history_dir}: the catalogue is not in use",
        )  # fmt: skip
    total, unknown, top = (
        get_client(settings).query(unknown_items_sql(settings, day), settings=sources.JSON_SETTINGS).result_rows[0]
    )
    rate = unknown / total if total else 0.0
    q = settings.dq
    severity = "ERROR" if rate > q.max_unknown_item_rate_error else "WARN"
    passed = rate <= q.max_unknown_item_rate_warn
    message = (
        f"{unknown:,} of {total:,} events with an item ({rate:.2%}) are of items the catalogue did not know then"
        f" (WARN above {q.max_unknown_item_rate_warn:.2%}, ERROR above {q.max_unknown_item_rate_error:.2%})"
    )
    return CheckResult(
        "referential_completeness", "catalog", day, passed, severity, message,
        {"events_with_item": total, "unknown_item_events": unknown, "unknown_item_rate": rate},
        [f"item_id={i}" for i in top],
    )  # fmt: skip
