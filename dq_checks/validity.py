"""Validity of every feature table: value ranges and null rates derived from the feature
definitions, and each ClickHouse table's schema against the definition's columns."""

from __future__ import annotations

from datetime import date

from common.clickhouse import get_client
from common.repository import load_features
from common.settings import Settings
from dq_checks import sources
from dq_checks.result import CheckResult
from features.definitions import (
    Feature,
    Hop,
    LastN,
    RollingStats,
    RollingTopN,
    Tumble,
    WindowAggregate,
)
from warehouse.tables import stream_table


def rules(f: Feature) -> list[tuple[str, str]]:
    """(rule, SQL predicate TRUE for a bad row), from the feature's kind and columns."""
    out = [(f"{c.name} >= 0", f"{c.name} < 0") for c in f.columns if c.clickhouse.startswith("Decimal")]
    agg = f.aggregation
    if isinstance(agg, WindowAggregate):
        counts = [m.name for m in agg.measures if m.fn == "count"]
        for m in agg.measures:
            if m.fn in ("count", "count_distinct"):  # a row exists because an event did
                out.append((f"{m.name} >= 1", f"{m.name} < 1"))
            elif m.fn == "count_if":
                out.append((f"{m.name} >= 0", f"{m.name} < 0"))
                out += [(f"{m.name} <= {c}", f"{m.name} > {c}") for c in counts]
            elif m.fn in ("stddev", "variance"):
                out.append((f"{m.name} >= 0", f"{m.name} < 0"))
            elif m.fn in ("first_k", "last_k", "top_k"):
                out.append((f"length({m.name}) <= {m.k}", f"length({m.name}) > {m.k}"))
            elif m.fn == "histogram":
                bad = f"length({m.name}) > {m.k} OR arrayExists(_c -> _c < 1, mapValues({m.name}))"
                out.append((f"{m.name}: at most {m.k} values, each counted at least once", bad))
        starts = [m.name for m in agg.measures if m.fn == "min_time"]
        ends = [m.name for m in agg.measures if m.fn == "max_time"]
        out += [(f"{e} >= {s}", f"{e} < {s}") for s in starts for e in ends]
        w = agg.window
        if isinstance(w, Tumble | Hop):
            size = w.size_s * 1000
            step = (w.slide_s if isinstance(w, Hop) else w.size_s) * 1000
            span = f"dateDiff('ms', window_start, window_end) != {size}"
            out.append((f"window_end = window_start + {w.size_s}s", span))
            out.append(("window_start aligned", f"toUnixTimestamp64Milli(window_start) % {step} != 0"))
        if agg.top_n:
            out.append((f"rank in 1..{agg.top_n.n}", f"`rank` < 1 OR `rank` > {agg.top_n.n}"))
    elif isinstance(agg, RollingTopN):
        out.append((f"rank in 1..{agg.n}", f"`rank` < 1 OR `rank` > {agg.n}"))
        out += [(f"{c.name} >= 1", f"{c.name} < 1") for c in f.columns if c.name == "purchases"]
    elif isinstance(agg, RollingStats):
        out += [(f"{m.name} >= 0", f"{m.name} < 0") for m in agg.measures if m.fn not in ("min", "max")]
    elif isinstance(agg, LastN):
        lists = [c.name for c in f.columns if c.clickhouse.startswith("Array")]
        out += [(f"length({n}) in 1..{agg.n}", f"length({n}) < 1 OR length({n}) > {agg.n}") for n in lists]
    return out


def values(settings: Settings, f: Feature, day: date) -> CheckResult:
    """Range rules (ERROR) and null rates of nullable columns (WARN above dq.max_null_rate),
    over the day's rows on every side that holds the feature."""
    ch = get_client(settings)
    rs = rules(f)
    nullable = [c.name for c in f.columns if c.clickhouse.startswith("Nullable")]
    metrics: dict[str, float] = {}
    sample: list[str] = []
    broken: list[str] = []
    high_nulls: list[str] = []
    sides = ("stream", "batch") if f.layer == "stream" else ("batch",)
    for side in sides:
        rel = sources.rows(settings, f, side, day)
        exprs = ["count()"] + [f"countIf({bad})" for _, bad in rs] + [f"countIf({n} IS NULL)" for n in nullable]
        row = ch.query(f"SELECT {', '.join(exprs)} FROM {rel}").result_rows[0]
        rows, bad_counts, null_counts = row[0], row[1 : 1 + len(rs)], row[1 + len(rs) :]
        metrics[f"{side}_rows"] = rows
        for (rule, _), n in zip(rs, bad_counts, strict=True):
            if n:
                metrics[f"{side}: not {rule}"] = n
                broken.append(f"{side}: {rule}")
        for name, n in zip(nullable, null_counts, strict=True):
            rate = n / rows if rows else 0.0
            metrics[f"{side}_null_rate_{name}"] = rate
            if rate > settings.dq.max_null_rate:
                high_nulls.append(f"{side}: {name} {rate:.0%} null")
        if any(bad_counts):
            ident = list(f.order_key)
            failing = " OR ".join(f"({bad})" for _, bad in rs)
            reasons = ", ".join(f"if({bad}, '{rule}', '')" for rule, bad in rs)
            found = ch.query(
                f"SELECT {', '.join(ident)}, [{reasons}] FROM {rel} "
                f"WHERE {failing} ORDER BY {', '.join(ident)} LIMIT {settings.dq.sample_size}"
            ).result_rows
            for r in found:
                why = ", ".join(x for x in r[-1] if x)
                sample.append(f"{side}: {sources.describe_key(ident, r[:-1])}: not {why}")
    passed = not broken and not high_nulls
    severity = "ERROR" if broken else "WARN"
    if passed:
        message = f"{len(rs)} range rule(s) hold on every row; null rates within {settings.dq.max_null_rate:.0%}"
    else:
        message = "; ".join(broken + high_nulls)
    sample = sample[: settings.dq.sample_size]
    return CheckResult("validity_values", f.name, day, passed, severity, message, metrics, sample)


def tables_of(settings: Settings, f: Feature) -> list[str]:
    """Every ClickHouse table or view holding the feature's columns."""
    if f.layer == "batch":
        return [f.name]
    names = [stream_table(f), f"{f.name}_stream", f"{f.name}_batch", f.name]
    return list(dict.fromkeys(names))


def schema(settings: Settings, f: Feature, day: date) -> CheckResult:
    """Each table's columns (names, types, order) against the definition in features/."""
    db = settings.clickhouse.database
    tables = tables_of(settings, f)
    listed = ", ".join(f"'{t}'" for t in tables)
    rows = (
        get_client(settings)
        .query(
            f"SELECT table, name, type FROM system.columns WHERE database = '{db}' AND table IN ({listed}) "
            "ORDER BY table, position"
        )
        .result_rows
    )
    found: dict[str, list[tuple[str, str]]] = {t: [] for t in tables}
    for t, name, typ in rows:
        found[t].append((name, typ))
    expected = [(c.name, c.clickhouse) for c in f.columns]
    problems = []
    for t in tables:
        have = found[t]
        if not have:
            problems.append(f"{db}.{t}: missing")
            continue
        have_types = dict(have)
        for name, typ in expected:
            if name not in have_types:
                problems.append(f"{db}.{t}.{name}: missing column ({typ} expected)")
            elif have_types[name] != typ:
                problems.append(f"{db}.{t}.{name}: {have_types[name]}, expected {typ}")
        extra = [n for n, _ in have if n not in dict(expected)]
        problems += [f"{db}.{t}.{n}: not in the definition" for n in extra]
        if set(have_types) == {n for n, _ in expected} and [n for n, _ in have] != [n for n, _ in expected]:
            problems.append(f"{db}.{t}: columns out of order")
    message = "; ".join(problems) if problems else f"{len(tables)} table(s) match the definition"
    return CheckResult(
        "validity_schema", f.name, day, not problems, "ERROR", message, {"tables": len(tables),
        "problems": len(problems)}, problems[: settings.dq.sample_size],
    )  # fmt: skip


def validity(settings: Settings, day: date) -> list[CheckResult]:
    """Per feature (streaming and batch): value ranges and null rates, then the schema."""
    return [r for f in load_features(settings).features for r in (values(settings, f, day), schema(settings, f, day))]
