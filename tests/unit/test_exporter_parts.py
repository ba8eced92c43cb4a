"""The exporter's scrape: a slow or failing part is reported down without hiding the others,
and what a slow part reads after the scrape's deadline is served at the next scrape."""

from __future__ import annotations

import threading

from prometheus_client.core import GaugeMetricFamily

from monitoring.exporter import PlatformCollector


def _gauge(name: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, name, value=1)


def _scrape(collector: PlatformCollector) -> tuple[set[str], dict[str, float]]:
    """Metric names served, and lf_exporter_part_up by part."""
    metrics = list(collector.collect())
    up = next(m for m in metrics if m.name == "lf_exporter_part_up")
    served = {m.name for m in metrics} - {"lf_exporter_part_up", "lf_feature_freshness_bound_seconds"}
    return served, {s.labels["part"]: s.value for s in up.samples}


def test_a_slow_part_is_served_at_the_next_scrape(settings):
    s = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"scrape_interval_s": 1})})
    release, calls = threading.Event(), []

    def slow():
        calls.append(1)
        release.wait(10)
        return [_gauge("lf_slow")]

    def broken():
        raise ConnectionError("no broker")

    collector = PlatformCollector(s)
    collector.parts = {"slow": slow, "broken": broken, "fast": lambda: [_gauge("lf_fast")]}

    served, up = _scrape(collector)  # the slow part misses the deadline
    assert served == {"lf_fast"}
    assert up == {"slow": 0, "broken": 0, "fast": 1}

    release.set()
    served, up = _scrape(collector)  # its late answer, not a new read
    assert served == {"lf_slow", "lf_fast"}
    assert up == {"slow": 1, "broken": 0, "fast": 1}
    assert len(calls) == 1

    served, _ = _scrape(collector)  # then a new read at each scrape
    assert served == {"lf_slow", "lf_fast"}
    assert len(calls) == 2
