"""Stream against batch, per feature and day, compared through the feature's definition:
its row identity (order key), value columns and kind. Differences in windowed features
count as explained only when late events in the archive fall in the differing rows."""

from __future__ import annotations

from datetime import date, timedelta

from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from dq_checks import sources
from dq_checks.result import CheckResult
from features.definitions import Feature, Hop, Session, Tumble, WindowAggregate
from features.events import Column
from warehouse.tables import day_column

NUMERIC = ("Int", "UInt", "Decimal", "Float")
# Floating columns (avg, variance, stddev; min, max, first, last of DOUBLE attributes): both
# engines compute the same bits from exact decimal sums (tests/e2e/test_vocabulary.py); the margin is
# for engines of other versions than the tested ones, far below any difference that matters
FLOAT_REL_TOLERANCE = 1e-12


def _numeric(c: Column) -> bool:
    return c.clickhouse.startswith(NUMERIC)


def _equal(c: Column, tol: float) -> str:
    s, b = f"s_{c.name}", f"b_{c.name}"
    if c.clickhouse.startswith("Decimal"):  # money: a relative tolerance
        return f"abs(toFloat64({s}) - toFloat64({b})) <= {tol} * greatest(abs(toFloat64({s})), abs(toFloat64({b})))"
    if c.clickhouse.startswith(("Float", "Nullable(Float")):
        close = f"abs({s} - {b}) <= {FLOAT_REL_TOLERANCE} * greatest(abs({s}), abs({b}))"
        return f"ifNull({close}, {s} IS NULL AND {b} IS NULL)"
    return f"ifNull({s} = {b}, {s} IS NULL AND {b} IS NULL)"


def classified(settings: Settings, f: Feature, day: date) -> str:
    """One row per row identity: presence on each side, both sides' values, and the verdict
    (only_s, only_b, mism); `_id` names the identity."""
    ident = list(f.order_key)
    values = [c for c in f.columns if c.name not in ident]
    cols = ", ".join(f"`{c.name}`" for c in f.columns)
    on = None if f.updating else day  # per-user values: all keys, scoped below
    union = (
        f"SELECT 's' AS _side, {cols} FROM {sources.rows(settings, f, 'stream', on)} UNION ALL "
        f"SELECT 'b' AS _side, {cols} FROM {sources.rows(settings, f, 'batch', on)}"
    )
    sides = ", ".join(f"anyIf(`{c.name}`, _side = '{x}') AS {x}_{c.name}" for c in values for x in "sb")
    grouped = (
        f"SELECT {', '.join(ident)}, countIf(_side = 's') AS ns, countIf(_side = 'b') AS nb, {sides} "
        f"FROM ({union}) GROUP BY {', '.join(ident)}"
    )
    same = " AND ".join(_equal(c, settings.dq.money_rel_tolerance) for c in values) or "1"
    scope = ""
    if f.updating:
        # per-user values: the stream keeps only the latest, so judge keys updated on the day
        # and not after it on either side (a later day judges those)
        v, end, d = day_column(f), sources.day_end(day), day.isoformat()
        scope = f" WHERE (toDate(s_{v}) = '{d}' OR toDate(b_{v}) = '{d}') AND s_{v} < {end} AND b_{v} < {end}"
    return (
        f"SELECT *, toString(tuple({', '.join(ident)})) AS _id, ns > 0 AND nb = 0 AS only_s, "
        f"nb > 0 AND ns = 0 AS only_b, ns > 0 AND nb > 0 AND NOT ({same}) AS mism FROM ({grouped}){scope}"
    )


def _similarity(f: Feature) -> tuple[str, str]:
    """(SMAPE over the numeric value columns, Jaccard over list values) for rows on both sides."""
    values = [c for c in f.columns if c.name not in f.order_key and c.name not in f.keys]
    nums = [c.name for c in values if _numeric(c)]
    terms = [
        f"if(abs(toFloat64(s_{n})) + abs(toFloat64(b_{n})) = 0, 0, 2 * abs(toFloat64(s_{n}) - toFloat64(b_{n})) "
        f"/ (abs(toFloat64(s_{n})) + abs(toFloat64(b_{n}))))"
        for n in nums
    ]
    smape = f"avgIf(({' + '.join(terms)}) / {len(terms)}, ns > 0 AND nb > 0)" if terms else "nan"
    lists = [c.name for c in values if c.clickhouse.startswith("Array")]
    jac = [
        f"if(length(arrayDistinct(arrayConcat(s_{n}, b_{n}))) = 0, 1, "
        f"length(arrayIntersect(s_{n}, b_{n})) / length(arrayDistinct(arrayConcat(s_{n}, b_{n}))))"
        for n in lists
    ]
    jaccard = f"avgIf(({' + '.join(jac)}) / {len(jac)}, ns > 0 AND nb > 0)" if jac else "nan"
    return smape, jaccard


def _topn_jaccard(f: Feature) -> str | None:
    """Top-k lists: Jaccard of the item sets of each window, averaged over windows."""
    agg = f.aggregation
    if not (isinstance(agg, WindowAggregate) and agg.top_n):
        return None
    window = [k for k in f.order_key if k != "rank"]
    items = f"tuple({', '.join(f's_{k}' for k in f.keys)})", f"tuple({', '.join(f'b_{k}' for k in f.keys)})"
    sets = (
        f"SELECT groupArrayIf({items[0]}, ns > 0) AS si, groupArrayIf({items[1]}, nb > 0) AS bi "
        f"FROM c GROUP BY {', '.join(window)}"
    )
    return (
        "SELECT avg(if(length(arrayDistinct(arrayConcat(si, bi))) = 0, 1, "
        f"length(arrayIntersect(si, bi)) / length(arrayDistinct(arrayConcat(si, bi))))) FROM ({sets})"
    )


COUNTS = ("count", "count_distinct", "count_if")  # measures a late event raises by at most 1


def _late_events(settings: Settings, f: Feature, day: date) -> str:
    keys = ", ".join([*f.keys, ""]) if f.keys and not f.enriched else ""
    filt = f" AND ({f.source_filter})" if f.source_filter else ""
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    return (
        f"SELECT {keys}fromUnixTimestamp64Milli(event_time, 'UTC') AS ts FROM {sources.archive(settings, days)} "
        f"WHERE late{filt}"
    )


def _explained(settings: Settings, f: Feature, day: date) -> str | None:
    """Identities of differing rows with late events behind them. The stream's windows drop
    late events, so in a plain window each count may fall short of the batch's by at most the
    late events in it; other measures (a sum of prices, a max) can move by any amount, and
    sessions and top-k lists can change shape, so any late event in them explains. Per-user
    values read late events too: nothing explains a difference there."""
    agg = f.aggregation
    if not isinstance(agg, WindowAggregate):
        return None
    w = agg.window
    if isinstance(w, Session):
        start = next(m.name for m in agg.measures if m.fn == "min_time")
        end = next(m.name for m in agg.measures if m.fn == "max_time")
        lo = f"{start} - toIntervalSecond({w.gap_s})"
        hi = f"greatest(s_{end}, b_{end}) + toIntervalSecond({w.gap_s})"
        in_row = f"l.ts >= {lo} AND l.ts <= {hi}"
    else:
        assert isinstance(w, Tumble | Hop)
        in_row = f"l.ts >= window_start AND l.ts < window_start + toIntervalSecond({w.size_s})"
    # any late click can reorder a top-k list; catalogue keys are not in the archive, so any
    # late event of the window counts for a feature on them
    join_keys = () if agg.top_n or f.enriched else f.keys
    late = f"({_late_events(settings, f, day)})"
    if join_keys:
        key = f"toString(tuple({', '.join(join_keys)}))"
        lkey = f"toString(tuple({', '.join(f'l.{k}' for k in join_keys)}))"
        src = f"(SELECT *, {key} AS _jk FROM diffs) AS d INNER JOIN (SELECT *, {lkey} AS _jk FROM {late} AS l) AS l "
        src += "ON d._jk = l._jk"
    else:
        src = f"diffs AS d CROSS JOIN {late} AS l"
    if isinstance(w, Session) or agg.top_n:
        return f"SELECT DISTINCT d._id FROM {src} WHERE {in_row}"
    short_by_late = (
        " AND ".join(
            f"any(d.s_{m.name}) <= any(d.b_{m.name}) AND any(d.b_{m.name}) - any(d.s_{m.name}) <= count()"
            for m in agg.measures
            if m.fn in COUNTS
        )
        or "1"
    )
    return f"SELECT d._id FROM {src} WHERE {in_row} GROUP BY d._id HAVING {short_by_late}"


def _reconciled(settings: Settings, f: Feature, day: date) -> bool:
    db = settings.clickhouse.database
    q = f"SELECT count() FROM {db}.reconciled_days FINAL WHERE feature = '{f.name}' AND day = '{day.isoformat()}'"
    return get_client(settings).query(q).result_rows[0][0] > 0


def compare(settings: Settings, f: Feature, day: date) -> CheckResult:
    """The consistency result of one feature on one day."""
    ch = get_client(settings)
    dq = settings.dq
    if not _reconciled(settings, f, day):
        return CheckResult(
            "consistency", f.name, day, False, "WARN",
            f"{day} is not reconciled: run `lambda-features batch reconcile --date {day}`",
        )  # fmt: skip
    with_c = f"WITH c AS ({classified(settings, f, day)}), diffs AS (SELECT * FROM c WHERE only_s OR only_b OR mism) "
    smape, jaccard = _similarity(f)
    row = ch.query(
        with_c + "SELECT count(), countIf(ns > 0), countIf(nb > 0), countIf(only_s), countIf(only_b), countIf(mism), "
        f"{smape}, {jaccard} FROM c"
    ).result_rows[0]
    total, n_stream, n_batch, only_s, only_b, mism, smape_v, jaccard_v = row
    metrics: dict[str, float] = {
        "rows": total,
        "stream_rows": n_stream,
        "batch_rows": n_batch,
        "only_stream": only_s,
        "only_batch": only_b,
        "value_mismatches": mism,
    }
    topn = _topn_jaccard(f)
    if topn:
        jaccard_v = ch.query(with_c + topn).result_rows[0][0]
    for name, v in (("smape", smape_v), ("jaccard", jaccard_v)):
        if v is not None and v == v:  # skip NaN: no numeric or list values, or no rows on both sides
            metrics[name] = float(v)
    differing = only_s + only_b + mism
    explained_sql = _explained(settings, f, day)
    explained = 0
    unexplained_where = ""
    if explained_sql and differing:
        explained = ch.query(with_c + f"SELECT count() FROM ({explained_sql})").result_rows[0][0]
        unexplained_where = f" AND _id NOT IN ({explained_sql})"
    late_sql = _late_events(settings, f, day) + f" AND toDate(ts) = '{day.isoformat()}'"
    metrics["late_events"] = ch.query(f"SELECT count() FROM ({late_sql})").result_rows[0][0]
    unexplained = differing - explained
    metrics |= {
        "mismatch_rate": differing / total if total else 0.0,
        "explained_by_late": explained,
        "unexplained": unexplained,
        "unexplained_rate": unexplained / total if total else 0.0,
    }
    sample = []
    if unexplained:
        ident = list(f.order_key)
        rows = ch.query(
            with_c + f"SELECT {', '.join(ident)}, multiIf(only_s, 'only in stream', only_b, 'only in batch', "
            f"'values differ') FROM diffs WHERE 1{unexplained_where} ORDER BY {', '.join(ident)} LIMIT {dq.sample_size}"
        ).result_rows
        sample = [f"{sources.describe_key(ident, r[:-1])}: {r[-1]}" for r in rows]
    passed = metrics["unexplained_rate"] <= dq.max_unexplained_rate
    message = (
        f"{differing:,} of {total:,} rows differ (only stream {only_s:,}, only batch {only_b:,}, "
        f"values {mism:,}); {explained:,} explained by late events, {unexplained:,} unexplained"
    )
    return CheckResult("consistency", f.name, day, passed, dq.consistency_severity, message, metrics, sample)


def consistency(settings: Settings, day: date) -> list[CheckResult]:
    """One result per streaming feature: its stream rows against its batch rows for `day`."""
    return [compare(settings, f, day) for f in load_features(settings).stream]
