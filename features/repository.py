"""A feature repository: a Python file or package directory that defines `FEATURES` (and
optionally `EVENT_ATTRIBUTES`), read into one object, and the checks it must pass before
anything compiles it. The engines' own checks of its SQL are in streaming/ and batch/."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from features.catalog import ENRICHED_COLUMNS
from features.definitions import (
    ATTRIBUTE_FNS,
    COUNTED_FNS,
    LIST_FNS,
    NUMERIC_FNS,
    DayMeasureFn,
    Feature,
    Hop,
    LastN,
    Latest,
    LatestStateSum,
    Measure,
    MeasureFn,
    RollingStats,
    RollingTopN,
    Session,
    Tumble,
    WindowAggregate,
)
from features.events import (
    ARRIVAL_COLUMN,
    ATTRIBUTE_TYPES,
    EVENT_COLUMNS,
    EVENT_TYPES,
    SOURCE_COLUMNS,
    Column,
    EventAttribute,
)
from features.schema import DerivedColumns, derived_columns

EXAMPLE_MODULE = "features.ecommerce"  # the shipped repository, used when none is configured
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# the stream job's views and the platform's own tables share the feature tables' namespace
RESERVED_NAMES = frozenset(
    {"events", "events_on_time", "raw_events", "checked_events", "dead_letters", "archive", "partials", "daily"}
    | {"reconciled_days", "dq_results", "tiered_partitions", "registry", "stream_job", "online_store"}
)
# <name>_stream, <name>_batch, <name>_tiles_stream, <table>_cold and <name>_input are derived names
RESERVED_SUFFIXES = ("_stream", "_batch", "_tiles", "_cold", "_input")
# columns the views add beside the events' own: no event attribute may take these names
VIEW_COLUMNS = frozenset({"ts", "late", "dt", "hour", "as_of", "reason", "tile", "ws", "rn", "_corrupt_record"})
CATALOG_VIEW_COLUMNS = {c.name: c for c in (*ENRICHED_COLUMNS, Column("catalog_known", "BOOLEAN", "Bool"))}
STREAM_AGGREGATIONS = (WindowAggregate, LatestStateSum, LastN, Latest)
BATCH_AGGREGATIONS = (RollingTopN, RollingStats)
TIME_TYPE = "TIMESTAMP_LTZ(3)"
NUMBER_TYPES = ("BIGINT", "DOUBLE")
CATEGORY_TYPES = ("STRING", "BIGINT")


class RepositoryError(ValueError):
    """The repository cannot be used; `what` names the feature and field, `fix` says how."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what, self.fix = what, fix
        super().__init__(what)


@dataclass(frozen=True)
class FeatureRepository:
    """The features a deployment computes, and the event attributes they add."""

    source: str  # the file or folder it was read from, or the shipped module's name
    features: tuple[Feature, ...]
    event_attributes: tuple[EventAttribute, ...] = ()

    @property
    def stream(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.layer == "stream")

    @property
    def batch(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.layer == "batch")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"unknown feature {name!r}; known: {', '.join(self.names)}")

    @property
    def event_columns(self) -> tuple[Column, ...]:
        """The canonical event's columns and then the repository's attributes, in the order
        staged files, Kafka messages and the archive use."""
        return (*EVENT_COLUMNS, *(a.column for a in self.event_attributes))

    @property
    def event_fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.event_columns)


def _module_name(path: Path) -> str:
    return "lambda_features_repo_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]


def _import(path: Path) -> ModuleType:
    """Execute the repository's file (or package's __init__.py) as a module of its own."""
    name = _module_name(path)
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise RepositoryError(
                f"{path} is a folder without __init__.py", "a package directory defines FEATURES there"
            )
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)])
    elif path.suffix == ".py" and path.is_file():
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        raise RepositoryError(
            f"{path} is neither a .py file nor a package directory",
            "point LAMBDA_FEATURES_FEATURE_REPO at the file or folder that defines FEATURES",
        )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]  # a changed repository is read again, submodules included
    sys.modules[name] = module  # relative imports inside a package need it
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        frames = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename.startswith(str(path))]
        where = f" (line {frames[-1].lineno} of {frames[-1].filename})" if frames else ""
        raise RepositoryError(f"{path} failed to import{where}: {type(e).__name__}: {e}") from None
    return module


def read_repository(path: Path | None) -> FeatureRepository:
    """The repository at `path` (None: the shipped example), not yet checked."""
    if path is None:
        module, source = importlib.import_module(EXAMPLE_MODULE), EXAMPLE_MODULE
    else:
        path = path.expanduser().resolve()
        module, source = _import(path), str(path)
    features = getattr(module, "FEATURES", None)
    if features is None:
        raise RepositoryError(f"{source} defines no FEATURES", "define FEATURES = (Feature(...), ...)")
    if isinstance(features, str | bytes) or not isinstance(features, Sequence):
        raise RepositoryError(f"{source}: FEATURES is a {type(features).__name__}, not a sequence of Feature")
    for i, f in enumerate(features):
        if not isinstance(f, Feature):
            raise RepositoryError(f"{source}: FEATURES[{i}] is a {type(f).__name__}, not a Feature")
    attributes = getattr(module, "EVENT_ATTRIBUTES", ())
    for i, a in enumerate(attributes):
        if not isinstance(a, EventAttribute):
            raise RepositoryError(f"{source}: EVENT_ATTRIBUTES[{i}] is a {type(a).__name__}, not an EventAttribute")
    columns = {a.name: a.column for a in attributes}
    return FeatureRepository(source, tuple(resolved(f, columns) for f in features), tuple(attributes))


def resolved(f: Feature, attributes: dict[str, Column]) -> Feature:
    """The feature with its columns derived from the repository's attributes too, unless given."""
    if not isinstance(f.columns, DerivedColumns) or f.columns.attributes == attributes:
        return f
    return replace(f, columns=derived_columns(f, attributes))


def check_repository(repo: FeatureRepository) -> None:
    """Raise a RepositoryError listing every problem, each naming its feature and field."""
    found = problems(repo)
    if found:
        raise RepositoryError(
            f"{repo.source}: {len(found)} problem(s):\n    " + "\n    ".join(found),
            "fix the definitions named above (docs/features.md describes each field)",
        )


def problems(repo: FeatureRepository) -> list[str]:
    """Every problem of the repository, as `feature.field: what is wrong`."""
    out = _attribute_problems(repo.event_attributes)
    events = {c.name: c for c in repo.event_columns}
    attributes = {a.name: a.column for a in repo.event_attributes}
    seen: set[str] = set()
    for i, f in enumerate(repo.features):
        f = resolved(f, attributes)
        who = f.name if isinstance(f.name, str) and f.name else f"FEATURES[{i}]"
        if f.name in seen:
            out.append(f"{who}.name: defined twice")
        seen.add(f.name)
        # an enriched feature reads the events joined with the item catalogue (features/catalog.py)
        columns = events | CATALOG_VIEW_COLUMNS if f.enriched else events
        out += [f"{who}.{p}" for p in feature_problems(f, columns)]
    return out


def _attribute_problems(attributes: tuple[EventAttribute, ...]) -> list[str]:
    out = []
    taken = {c.name for c in (*EVENT_COLUMNS, *SOURCE_COLUMNS, ARRIVAL_COLUMN)} | VIEW_COLUMNS
    taken |= set(CATALOG_VIEW_COLUMNS)
    for a in attributes:
        who = f"EVENT_ATTRIBUTES {a.name!r}"
        if not NAME.match(a.name):
            out.append(f"{who}.name: not a lower-case identifier")
        elif a.name in taken:
            out.append(f"{who}.name: taken by the canonical event or the platform's views")
        taken.add(a.name)
        if a.type not in ATTRIBUTE_TYPES:
            out.append(f"{who}.type: {a.type!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
    return out


def feature_problems(f: Feature, events: dict[str, Column]) -> list[str]:
    """The problems of one feature, as `field: what is wrong` (`events`: the event columns)."""
    out = _name_problems(f.name)
    names = [c.name for c in f.columns]
    if not f.columns and not isinstance(f.columns, DerivedColumns):
        out.append("columns: empty")
    for n in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"columns: {n!r} twice")
    out += [f"columns: {n!r} is not a lower-case identifier" for n in names if not NAME.match(n)]
    out += [f"keys: {k!r} is not an event column ({_known(events)})" for k in f.keys if k not in events]
    agg = f.aggregation
    if f.layer not in ("stream", "batch"):
        out.append(f"layer: {f.layer!r} is neither 'stream' nor 'batch'")
    elif f.layer == "stream" and not isinstance(agg, STREAM_AGGREGATIONS):
        out.append(
            f"aggregation: the stream layer cannot run {type(agg).__name__} "
            f"(it runs {', '.join(t.__name__ for t in STREAM_AGGREGATIONS)}; "
            "set layer='batch' for a rolling aggregation)"
        )
    elif f.layer == "batch" and not isinstance(agg, BATCH_AGGREGATIONS):
        out.append(
            f"aggregation: a batch-only feature is a {' or '.join(t.__name__ for t in BATCH_AGGREGATIONS)}, "
            f"not a {type(agg).__name__} (stream features are recomputed by the batch layer anyway)"
        )
    else:
        out += _aggregation_problems(f, names, events)
    if f.online_column is not None:
        if f.online_column not in names:
            out.append(f"online_column: {f.online_column!r} is not one of its columns ({', '.join(names)})")
        elif tuple(f.keys) != ("user_id",) or f.windowed:
            out.append("online_column: only a per-user value (keys ('user_id',), not a window) can be online")
    if not f.order_key:
        out.append("order_key: empty; name the columns that identify a row (ClickHouse ORDER BY)")
    out += [f"order_key: {k!r} is not one of its columns" for k in f.order_key if k not in names]
    if f.source_filter is not None and not (isinstance(f.source_filter, str) and f.source_filter.strip()):
        out.append("source_filter: empty; leave it None for every event")
    if isinstance(f.columns, DerivedColumns) and not f.columns:
        # no columns derived: it reads an unknown column, named above; nothing else follows from that
        out = [p for p in out if not p.startswith(("columns:", "order_key:", "online_column:"))]
    return out


def _name_problems(name: object) -> list[str]:
    if not isinstance(name, str) or not NAME.match(name):
        return [f"name: {name!r} is not a lower-case identifier (a-z, 0-9, _; at most 63)"]
    if name in RESERVED_NAMES:
        return [f"name: {name!r} is reserved by the platform"]
    suffix = next((s for s in RESERVED_SUFFIXES if name.endswith(s)), None)
    return [f"name: ends in {suffix!r}, which the platform's derived tables use"] if suffix else []


def _known(events: dict[str, Column] | set[str]) -> str:
    return "known: " + ", ".join(sorted(events))


def _column_problems(where: str, value: str, events: dict[str, Column]) -> list[str]:
    return [] if value in events else [f"{where}: {value!r} is not an event column ({_known(events)})"]


def _time_problems(f: Feature, names: list[str], wanted: list[str]) -> list[str]:
    types = {c.name: c.flink for c in f.columns}
    return [
        f"columns: {n!r} must be {TIME_TYPE}, not {types[n]}" for n in wanted if n in types and types[n] != TIME_TYPE
    ]


def _layout(f: Feature, names: list[str], expected: list[str], what: str) -> list[str]:
    return [] if names == expected else [f"columns: {', '.join(names)}; {what} needs {', '.join(expected)}"]


def _aggregation_problems(f: Feature, names: list[str], events: dict[str, Column]) -> list[str]:
    agg = f.aggregation
    keys = list(f.keys)
    if isinstance(agg, WindowAggregate):
        return _window_problems(f, agg, names, events)
    if isinstance(agg, LatestStateSum):
        out = _column_problems("aggregation.entity", agg.entity, events)
        out += _column_problems("aggregation.value", agg.value, events)
        if agg.member_type not in EVENT_TYPES:
            out.append(f"aggregation.member_type: {agg.member_type!r} is not an event type ({', '.join(EVENT_TYPES)})")
        out += _layout(
            f,
            names,
            [*keys, names[-2] if len(names) > 1 else "<value>", names[-1] if names else "<time>"],
            "a LatestStateSum: the keys, the sum and the update time",
        )
        return out + _time_problems(f, names, names[-1:])
    if isinstance(agg, LastN):
        out = _column_problems("aggregation.value", agg.value, events)
        if agg.n < 1:
            out.append(f"aggregation.n: {agg.n} (at least 1)")
        if len(names) != len(keys) + 2 or names[: len(keys)] != keys:
            out.append(f"columns: {', '.join(names)}; a LastN needs the keys, the list and the update time")
        elif f.columns[-2].flink != "ARRAY<STRING>":
            out.append(f"columns: {names[-2]!r} must be ARRAY<STRING>, not {f.columns[-2].flink}")
        return out + _time_problems(f, names, names[-1:])
    if isinstance(agg, Latest):
        if len(names) != len(keys) + 1 or names[: len(keys)] != keys:
            return [f"columns: {', '.join(names)}; a Latest needs the keys and the latest time"]
        return _time_problems(f, names, names[-1:])
    if isinstance(agg, RollingTopN):
        out = _column_problems("aggregation.value", agg.value, events)
        out += [f"aggregation.{k}: {getattr(agg, k)} (at least 1)" for k in ("n", "days") if getattr(agg, k) < 1]
        count = names[-1] if names else "<count>"
        return out + _layout(
            f,
            names,
            ["as_of", *keys, "rank", agg.value, count],
            "a RollingTopN: as_of, the keys, rank, the value and its count",
        )
    assert isinstance(agg, RollingStats)
    out = [f"aggregation.days: {agg.days} (at least 1)"] if agg.days < 1 else []
    for m in agg.measures:
        who = f"aggregation.measures {m.name!r}"
        if m.fn not in typing.get_args(DayMeasureFn):
            out.append(f"{who}: fn {m.fn!r} is not one of {', '.join(typing.get_args(DayMeasureFn))}")
        elif m.fn != "count" and not m.arg:
            out.append(f"{who}: {m.fn} needs arg")
        elif m.fn not in ("count", "count_distinct") and m.arg not in events:
            out.append(f"{who}.arg: {m.fn} reads an event column; {m.arg!r} is not one ({_known(events)})")
        elif m.fn in NUMERIC_FNS and events[m.arg].flink not in NUMBER_TYPES:
            out.append(f"{who}.arg: {m.fn} needs a number (BIGINT or DOUBLE); {m.arg!r} is {events[m.arg].flink}")
    return out + _layout(
        f, names, ["as_of", *keys, *(m.name for m in agg.measures)], "a RollingStats: as_of, the keys and the measures"
    )


def measure_problems(m: Measure, types: dict[str, Column]) -> list[str]:
    """The problems of one window measure; `types`: the event columns it may read."""
    who = f"aggregation.measures {m.name!r}"
    fn, arg = m.fn, m.arg
    if fn not in typing.get_args(MeasureFn):
        return [f"{who}.fn: {fn!r} is not one of {', '.join(typing.get_args(MeasureFn))}"]
    if fn == "count_if" and not arg:
        return [f"{who}.arg: count_if needs a predicate"]
    if fn in ATTRIBUTE_FNS and arg not in types:
        return [f"{who}.arg: {fn} reads an event column; {arg!r} is not one ({_known(set(types))})"]
    out = []
    kind = types[arg].flink if fn in ATTRIBUTE_FNS else ""
    if fn in NUMERIC_FNS and kind not in NUMBER_TYPES:
        out.append(f"{who}.arg: {fn} needs a number (BIGINT or DOUBLE); {arg!r} is {kind}")
    if fn in COUNTED_FNS and kind not in CATEGORY_TYPES:
        out.append(f"{who}.arg: {fn} counts categories (STRING or BIGINT); {arg!r} is {kind}")
    if fn in (*LIST_FNS,) and m.k < 1:
        out.append(f"{who}.k: {m.k}; {fn} needs k of at least 1 (how many values it keeps)")
    elif fn not in LIST_FNS and m.k:
        out.append(f"{who}.k: {fn} takes no k")
    return out


def _window_problems(f: Feature, agg: WindowAggregate, names: list[str], events: dict[str, Column]) -> list[str]:
    out = []
    types = events
    w = agg.window
    if isinstance(w, Tumble):
        if w.size_s < 1:
            out.append(f"aggregation.window.size_s: {w.size_s} (at least 1)")
    elif isinstance(w, Hop):
        if w.size_s < 1 or w.slide_s < 1:
            out.append(f"aggregation.window: size_s {w.size_s} and slide_s {w.slide_s} must be at least 1")
        elif w.size_s % w.slide_s:
            out.append(
                f"aggregation.window: hop size_s {w.size_s} is not a multiple of its slide_s {w.slide_s} "
                "(the stream builds sliding windows from slide-sized tiles)"
            )
    elif isinstance(w, Session):
        if w.gap_s < 1:
            out.append(f"aggregation.window.gap_s: {w.gap_s} (at least 1)")
    else:
        out.append(f"aggregation.window: {type(w).__name__} is not a Tumble, Hop or Session")
    measures = [m.name for m in agg.measures]
    if not measures:
        out.append("aggregation.measures: empty")
    for m in agg.measures:
        out += measure_problems(m, types)
    bounds = [] if isinstance(w, Session) else ["window_start", "window_end"]
    allowed = set(f.keys) | set(bounds) | set(measures) | ({"rank"} if agg.top_n else set())
    out += [f"columns: {n!r} is neither a key, a window bound nor a measure" for n in names if n not in allowed]
    needed = [*f.keys, *bounds, *measures, *(["rank"] if agg.top_n else [])]
    out += [
        f"columns: {n!r} missing (every key, window bound and measure is a column)" for n in needed if n not in names
    ]
    out += _time_problems(f, names, bounds + [m.name for m in agg.measures if m.fn.endswith("_time")])
    if isinstance(w, Session) and not any(m.fn == "min_time" for m in agg.measures):
        out.append("aggregation.measures: a Session needs a min_time measure (the session start dates its rows)")
    if agg.top_n:
        if not isinstance(w, Tumble):
            out.append(f"aggregation.top_n: the stream ranks only Tumble windows, not a {type(w).__name__}")
        if agg.top_n.n < 1:
            out.append(f"aggregation.top_n.n: {agg.top_n.n} (at least 1)")
        if not agg.top_n.order_by:
            out.append("aggregation.top_n.order_by: empty")
    return out


def fingerprint(f: Feature) -> str:
    """What a feature computes and where it lands: its whole definition but its description."""
    return hashlib.sha256(repr(replace(f, description="")).encode()).hexdigest()[:16]
