"""The platform's exporter process: one /metrics endpoint on 127.0.0.1 (MONITORING__EXPORTER_PORT)
for what no long-running process of the platform owns: the autoscaler's view of the Flink job,
Kafka lag, the stream's dead letters and late events, the latest data-quality and tiering
results (the job's own metrics come from Flink's Prometheus reporter). Every part is read at
scrape time; a part whose source is down is reported as lf_exporter_part_up 0, and the others
are still served.

Run by `common.services.exporter_service`: python -m monitoring.exporter --settings FILE
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.metrics import MetricsServer
from common.settings import Settings
from monitoring.outputs import StreamOutputs
from monitoring.results import dq_metrics, freshness_bounds, tiering_metrics
from monitoring.stream import FlinkPart, kafka_lag

log = logging.getLogger("exporter")


def deadline_s(settings: Settings) -> float:
    """How long a scrape waits for the parts: within Prometheus's scrape timeout (the interval, at most 10 s)."""
    return 0.8 * min(10, settings.monitoring.scrape_interval_s)


class PlatformCollector(Collector):
    """Every part of the exporter, read at each scrape, in parallel. A part that does not answer
    within the deadline (a broker that does not answer) is reported down and left out, so the
    others are still served; it is not started again while it still runs, and what it reads
    late is served at the next scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.flink = FlinkPart(settings)
        self.outputs = StreamOutputs(settings.archive_dir, settings.dead_letter_dir)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="exporter-part")
        self.running: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.parts: dict[str, Callable[[], Iterable[Metric]]] = {
            "flink": self.flink.collect,
            "kafka": lambda: [kafka_lag(settings)],
            "stream_outputs": self._outputs,
            "dq": lambda: dq_metrics(settings),
            "tiering": lambda: tiering_metrics(settings),
        }

    def describe(self) -> list[Metric]:
        return []  # registering must not read every source

    def _outputs(self) -> Iterator[Metric]:
        self.outputs.poll()
        yield CounterMetricFamily(
            "lf_stream_archived_events", "Events in the archive files committed since the exporter started",
            value=self.outputs.archived,
        )  # fmt: skip
        yield CounterMetricFamily(
            "lf_stream_late_events", "Late events in the archive files committed since the exporter started",
            value=self.outputs.late,
        )  # fmt: skip
        dead = CounterMetricFamily(
            "lf_stream_dead_letters", "Dead letters written since the exporter started, by stage and reason",
            labels=["stage", "reason"],
        )  # fmt: skip
        for (stage, reason), n in sorted(self.outputs.dead_letters.items()):
            dead.add_metric([stage, reason], n)
        yield dead

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            for name, part in self.parts.items():
                if name not in self.running:  # else: a read started by an earlier scrape, served when done
                    self.running[name] = self.pool.submit(lambda part=part: list(part()))
            futures = dict(self.running)
        wait(futures.values(), timeout=deadline_s(self.settings))
        up = GaugeMetricFamily("lf_exporter_part_up", "1 when the part could read its source", labels=["part"])
        for name, future in futures.items():
            metrics: list[Metric] = []
            ok = False
            if future.done():
                with self.lock:  # a concurrent scrape may have served it and started the next read
                    if self.running.get(name) is future:
                        del self.running[name]
                try:
                    metrics, ok = future.result(), True
                except Exception as e:  # one source down must not hide the others
                    log.warning("%s: %s", name, str(e).splitlines()[0][:300] if str(e) else repr(e))
            else:
                log.warning("%s: no answer within %.1f s; served at a later scrape", name, deadline_s(self.settings))
            up.add_metric([name], int(ok))
            yield from metrics
        yield up
        yield freshness_bounds(self.settings)


def serve(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT."""
    registry = CollectorRegistry()
    registry.register(PlatformCollector(settings))
    port = settings.monitoring.exporter_port
    try:
        server = MetricsServer(port, registry)
    except OSError as e:
        log.error("cannot listen on 127.0.0.1:%d: %s", port, e)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("exporting on http://127.0.0.1:%d/metrics", port)
    while not stop.wait(1):
        pass
    server.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", type=Path, required=True, help="the platform settings, as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(Settings.model_validate_json(args.settings.read_text()))


if __name__ == "__main__":
    sys.exit(main())
