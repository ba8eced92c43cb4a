"""Online/offline consistency of a day: every feature value the API logged as served
(batch/serving_log.py) against the value the training-set code gives for the same user as
known at the request time (batch/training_set.py, `--as-known-at`). The per-feature results
go to ClickHouse `features.serving_consistency`; dq_checks/serving.py judges them.

A difference is explained, and reported apart, when the API had flagged the value STALE, or
when an event of the feature reached the platform within DQ__SERVING_IN_FLIGHT_MS of the
request (before it, it may not have been in the online store yet; after it, the clocks of
the stream and the API may disagree by that much). Any other difference is unexplained."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from batch import serving_log
from batch.training_set import build, out_name
from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from features.definitions import Feature, RollingStats, RollingTopN
from features.events import ARRIVAL_COLUMN, Column
from warehouse.schema import create_tables
from warehouse.tables import SERVING_CONSISTENCY, SERVING_COUNTS

log = logging.getLogger(__name__)
WORST = 10  # users shown per feature


@dataclass
class FeatureConsistency:
    """One feature's comparison over a day's logged values."""

    feature: str
    counts: Counter = field(default_factory=Counter)
    smape_sum: float = 0.0
    smape_n: int = 0
    numeric: bool = False
    by_user: Counter = field(default_factory=Counter)  # unexplained differences per user

    @property
    def equal_rate(self) -> float:
        return self.counts["equal"] / self.counts["values"] if self.counts["values"] else 1.0

    @property
    def unexplained_rate(self) -> float:
        return self.counts["unexplained"] / self.counts["values"] if self.counts["values"] else 0.0

    @property
    def smape(self) -> float | None:
        return self.smape_sum / self.smape_n if self.numeric and self.smape_n else None

    def worst_users(self) -> list[str]:
        return [f"user {u}: {n} unexplained" for u, n in self.by_user.most_common(WORST)]


@dataclass
class ConsistencyRun:
    day: date
    run_id: str
    requests: int = 0
    features: dict[str, FeatureConsistency] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per step, and per feature of "offline"


# --- values in one shape: what the API serves, decoded --------------------------------


def _kind(c: Column) -> str:
    ch = c.clickhouse.removeprefix("Nullable(").rstrip(")")
    for prefix, kind in (("Decimal", "money"), ("DateTime64", "time"), ("Array", "list"), ("Float", "number")):
        if ch.startswith(prefix):
            return kind
    return "number" if ch.startswith(("Int", "UInt")) else "text"


def _column(f: Feature, name: str) -> Column:
    return next(c for c in f.columns if c.name == name)


def _epoch_ms(v) -> int:
    if isinstance(v, str):  # the API's ISO-8601 text
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return int((v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp() * 1000)


def _norm(kind: str, v):
    if v is None:
        return None
    if kind == "money":
        return Decimal(str(v))
    if kind == "time":
        return _epoch_ms(v)
    if kind == "list":
        return list(v)
    return v


def served_value(f: Feature, text: str | None):
    """A logged value (JSON text) in the comparison's shape."""
    if text is None:
        return None
    v = orjson.loads(text)
    agg = f.aggregation
    if isinstance(agg, RollingStats):
        return {m.name: _norm(_kind(_column(f, m.name)), v.get(m.name)) for m in agg.measures}
    if isinstance(agg, RollingTopN):
        return list(v)
    return _norm(_kind(_column(f, f.online_column)), v)  # type: ignore[arg-type]


def offline_value(f: Feature, row: dict):
    """A training-set row's value of f in the comparison's shape (None: the user had none)."""
    agg = f.aggregation
    if isinstance(agg, RollingStats):
        values = {m.name: _norm(_kind(_column(f, m.name)), row[out_name(f, m.name)]) for m in agg.measures}
        return None if all(v is None for v in values.values()) else values
    if isinstance(agg, RollingTopN):
        ranked = row[f.name]
        return None if not ranked else [r[agg.value] for r in sorted(ranked, key=lambda r: r["rank"])]
    return _norm(_kind(_column(f, f.online_column)), row[out_name(f, f.online_column)])  # type: ignore[arg-type]


def numeric(f: Feature) -> bool:
    agg = f.aggregation
    if isinstance(agg, RollingStats):
        return all(_kind(_column(f, m.name)) in ("money", "number") for m in agg.measures)
    if isinstance(agg, RollingTopN):
        return False
    return _kind(_column(f, f.online_column)) in ("money", "number")  # type: ignore[arg-type]


def smape(a, b) -> float:
    """2|a - b| / (|a| + |b|) (0 to 2), averaged over the measures of an object."""
    if isinstance(a, dict):
        return sum(smape(a[k], b[k]) for k in a) / len(a) if a else 0.0
    a, b = float(a or 0), float(b or 0)
    return 0.0 if abs(a) + abs(b) == 0 else 2 * abs(a - b) / (abs(a) + abs(b))


# --- the run ----------------------------------------------------------------------------


def _in_flight(spark, settings: Settings, features: list[Feature], spine: Path, day: date) -> set[tuple[str, int]]:
    """(feature, spine row) pairs with an event of the feature (its source filter) for the
    row's user that arrived within DQ__SERVING_IN_FLIGHT_MS of the row's ts: as an as-of join,
    since the newest arrival up to ts + w is at or after ts - w exactly when one arrived within
    w of ts (a join of every request with every event of its user grows with the square of a
    busy user's events)."""
    from pyspark.sql import functions as F

    from batch.archive import load_events
    from batch.asof import running

    w = settings.dq.serving_in_flight_ms
    days = [d for d in (day - timedelta(days=1), day, day + timedelta(days=1)) if d <= datetime.now(UTC).date()]
    events = load_events(spark, settings, days, [])
    rows = spark.read.parquet(str(spine)).select(
        "user_id", (F.col("ts") + w).alias("_ts"), F.col("request").alias("_row")
    )
    out: set[tuple[str, int]] = set()
    for f in features:
        if f.layer != "stream":
            continue
        ev = events.where(f.source_filter) if f.source_filter else events
        arrivals = ev.select("user_id", F.col(ARRIVAL_COLUMN.name).alias("_a")).where(F.col("_a").isNotNull())
        newest = running(rows, arrivals, "_a", {"_m": (F.col("_a"), F.max)})
        near = newest.where(F.col("_m") >= F.col("_ts") - 2 * w).select("_row")
        out |= {(f.name, r[0]) for r in near.collect()}
    return out


def compare(settings: Settings, day: date, *, run_id: str | None = None) -> ConsistencyRun:
    """Archive the serving log, recompute the day's logged requests as known at their times,
    compare, and record the results in ClickHouse."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch.spark import spark_session

    started = time.monotonic()
    run = ConsistencyRun(day, run_id or uuid.uuid4().hex[:12])
    serving_log.archive(settings)
    logged = serving_log.read_day(settings, day)
    online = {f.name: f for f in load_features(settings).features if f.online_column}
    run.features = {name: FeatureConsistency(name, numeric=numeric(f)) for name, f in online.items()}
    run.seconds["log"] = time.monotonic() - started
    if logged.num_rows == 0:
        log.info("serving consistency %s: nothing logged", day)
        record(settings, run)
        return run
    requests = logged.group_by(["user_id", "requested_at"]).aggregate([]).sort_by([("requested_at", "ascending")])
    run.requests = requests.num_rows
    (settings.home / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-consistency-", dir=settings.home / "tmp"))
    try:
        spine = work / "spine.parquet"
        spine_rows = pa.table(
            {
                "user_id": requests["user_id"],
                "ts": requests["requested_at"],
                "request": pa.array(range(requests.num_rows), pa.int64()),
            }
        )
        pq.write_table(spine_rows, spine)
        names = sorted(set(logged["feature"].to_pylist()) & set(online))
        t0 = time.monotonic()
        built = build(settings, spine, names, work / "offline", as_known_at=True)
        run.seconds["offline"] = time.monotonic() - t0
        run.seconds |= {f"offline {name}": built.seconds[name] for name in names}
        t0 = time.monotonic()
        in_flight = _in_flight(spark_session(settings), settings, [online[n] for n in names], spine, day)
        run.seconds["in_flight"] = time.monotonic() - t0
        offline = {(r["user_id"], r["ts"]): r for r in pq.read_table(work / "offline").to_pylist()}
        rows_of = {(r["user_id"], r["ts"]): r["request"] for r in spine_rows.to_pylist()}
        t0 = time.monotonic()
        for e in logged.to_pylist():
            f = online.get(e["feature"])
            if f is None:
                continue
            key = (e["user_id"], e["requested_at"])
            _judge(run.features[f.name], f, e, offline[key], (f.name, rows_of[key]) in in_flight)
        run.seconds["compare"] = time.monotonic() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.seconds["total"] = time.monotonic() - started
    record(settings, run)
    log.info("serving consistency %s: %d requests in %.0fs", day, run.requests, run.seconds["total"])
    return run


def _judge(fc: FeatureConsistency, f: Feature, e: dict, row: dict, in_flight: bool) -> None:
    served, offline = served_value(f, e["value"]), offline_value(f, row)
    fc.counts["values"] += 1
    if served is not None and offline is not None and fc.numeric:
        fc.smape_sum += smape(served, offline)
        fc.smape_n += 1
    if served == offline:
        fc.counts["equal"] += 1
        return
    if offline is None:
        fc.counts["served_not_offline"] += 1
    elif served is None:
        fc.counts["offline_not_served"] += 1
    else:
        fc.counts["value_mismatches"] += 1
    if e["status"] == "STALE":
        fc.counts["explained_stale"] += 1
    elif in_flight:
        fc.counts["explained_in_flight"] += 1
    else:
        fc.counts["unexplained"] += 1
        fc.by_user[e["user_id"]] += 1


# --- ClickHouse ---------------------------------------------------------------------------


def record(settings: Settings, run: ConsistencyRun) -> None:
    """One row per feature of the run."""
    create_tables(settings)
    now = datetime.now(UTC)
    columns = ["run_id", "checked_at", "day", "feature", "requests", *SERVING_COUNTS, "equal_rate", "unexplained_rate"]
    columns += ["smape", "worst_users"]
    rows = [
        [run.run_id, now, run.day, name, run.requests, *(fc.counts[c] for c in SERVING_COUNTS), fc.equal_rate]
        + [fc.unexplained_rate, fc.smape, fc.worst_users()]
        for name, fc in run.features.items()
    ]
    get_client(settings).insert(f"{settings.clickhouse.database}.{SERVING_CONSISTENCY}", rows, column_names=columns)
