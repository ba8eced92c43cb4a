"""The local ClickHouse service: one process owns the chDB data path and serves the
ClickHouse HTTP interface on 127.0.0.1, so every process of the platform (stream loader,
Dagster runs and sensor, `lambda-features sql`) uses it at once through clickhouse-connect.

Run by `common.services.clickhouse_service`: python -m common.chdb_server --path P --port N
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from common.chdb_http import ClickHouseError, Engine, bad_request, parse_call

log = logging.getLogger("chdb-service")
STATS_EVERY_S = 60
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
}


class Stats:
    """Counters of the service, logged every STATS_EVERY_S at info level."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries = self.errors = self.inserted_rows = self.in_flight = 0
        self.idle = threading.Condition(self.lock)

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1

    def end(self, ok: bool, inserted: int) -> None:
        with self.lock:
            self.in_flight -= 1
            self.queries += 1
            self.errors += not ok
            self.inserted_rows += inserted
            self.idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.lock:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout)


class StatsCollector(Collector):
    """The service's counters as Prometheus metrics, read at each scrape."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self):
        s = self.stats
        with s.lock:
            queries, errors, inserted, in_flight = s.queries, s.errors, s.inserted_rows, s.in_flight
        done = CounterMetricFamily(
            "lf_clickhouse_queries", "Requests the local ClickHouse service answered", labels=["status"]
        )
        done.add_metric(["ok"], queries - errors)
        done.add_metric(["error"], errors)
        yield done
        yield CounterMetricFamily("lf_clickhouse_inserted_rows", "Rows inserted through the service", value=inserted)
        yield GaugeMetricFamily("lf_clickhouse_queries_in_flight", "Requests being answered now", value=in_flight)


METRICS = CollectorRegistry()
QUERY_SECONDS = Histogram(
    "lf_clickhouse_query_seconds",
    "Time to answer one request, by kind (insert: a request with data)",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=METRICS,
)


def _read_chunked(rfile) -> bytes:
    parts = []
    while True:
        size = int(rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65536) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline(3)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect pools its connections
    server_version = "lambda-features-chdb"
    timeout = 600  # an idle keep-alive connection frees its thread after this
    engine: Engine
    stats: Stats

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("%s " + format, self.client_address[0], *args)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._send(200, b"", {"Content-Type": "text/plain; charset=UTF-8"})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/ping" or (url.path == "/" and "query=" not in url.query):
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        else:
            self.do_POST()

    def do_POST(self) -> None:
        started = time.monotonic()
        self.stats.begin()
        ok, inserted, query_id, kind = False, 0, "", "query"
        try:
            body = self._body()
            if self.headers.get("Content-Encoding", "identity") != "identity":
                raise bad_request("compressed request bodies are not supported; create the client with compress=False")
            call = parse_call(urlsplit(self.path).query, body, self.headers.get("Content-Type", ""))
            query_id = call.query_id
            kind = "insert" if call.data is not None else "query"
            log.debug("query %s: %s", query_id, call.sql[:300].replace("\n", " "))
            reply = self.engine.run(call)
            headers = {
                "Content-Type": _CONTENT_TYPES.get(reply.fmt or "", "application/octet-stream"),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Timezone": self.engine.timezone,
                "X-ClickHouse-Server-Display-Name": "lambda-features-chdb",
                "X-ClickHouse-Summary": json.dumps(reply.summary),
            }
            if reply.fmt:
                headers["X-ClickHouse-Format"] = reply.fmt
            self._send(200, reply.body, headers)
            ok, inserted = True, int(reply.summary.get("written_rows", 0)) if call.data is not None else 0
        except ClickHouseError as e:
            log.debug("query %s failed: %s", query_id, e.message)
            self._send(e.http_status, (e.message + "\n").encode(), _error_headers(e, query_id))
        except (ValueError, UnicodeDecodeError) as e:
            err = bad_request(f"cannot read the request: {e}")
            self._send(err.http_status, (err.message + "\n").encode(), _error_headers(err, query_id))
        except (BrokenPipeError, ConnectionResetError):
            log.debug("query %s: the client went away", query_id)
        except Exception as e:  # a bug here must not look like a dropped connection to the client
            log.exception("query %s: internal error", query_id)
            err = ClickHouseError(f"Code: 1001. DB::Exception: internal error in the local chDB service: {e!r}", 1001)
            self._send(err.http_status, (err.message + "\n").encode(), _error_headers(err, query_id))
        finally:
            self.stats.end(ok, inserted)
            QUERY_SECONDS.labels(kind).observe(time.monotonic() - started)
            log.debug("query %s: %s in %.1f ms", query_id, "ok" if ok else "error", (time.monotonic() - started) * 1e3)


def _error_headers(e: ClickHouseError, query_id: str) -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(e.code)} | (
        {"X-ClickHouse-Query-Id": query_id} if query_id else {}
    )


def _report(stats: Stats, stop: threading.Event) -> None:
    last, last_t = 0, time.monotonic()
    while not stop.wait(STATS_EVERY_S):
        now = time.monotonic()
        if stats.queries != last:
            log.info(
                "%d queries (%.1f/s over the last %.0f s), %d errors, %d rows inserted",
                stats.queries,
                (stats.queries - last) / (now - last_t),
                now - last_t,
                stats.errors,
                stats.inserted_rows,
            )
        last, last_t = stats.queries, now


def serve(path: Path, port: int, pidfile: Path | None, metrics_port: int | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then let running queries finish, close chDB, remove the pidfile."""
    try:
        engine = Engine(path)
    except ClickHouseError as e:
        log.error("cannot open chDB at %s: %s", path, e.message)
        return 1
    stats = Stats()
    handler = type("BoundHandler", (Handler,), {"engine": engine, "stats": stats})
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        engine.close()
        log.error("cannot listen on 127.0.0.1:%d: %s", port, e)
        return 1
    server.daemon_threads = True  # idle keep-alive threads must not hold up the exit
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    threading.Thread(target=_report, args=(stats, stop), daemon=True).start()
    metrics = None
    if metrics_port:
        from common.metrics import MetricsServer

        METRICS.register(StatsCollector(stats))
        try:
            metrics = MetricsServer(metrics_port, METRICS)
            log.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
        except OSError as e:  # metrics must not keep the store from serving
            log.warning("no metrics: cannot listen on 127.0.0.1:%d (%s)", metrics_port, e)
    log.info("serving chDB at %s over the ClickHouse HTTP interface on http://127.0.0.1:%d", path, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        if metrics:
            metrics.stop()
        server.server_close()
        if not stats.wait_idle(30):
            log.warning("stopping with %d queries still running", stats.in_flight)
        engine.close()
        if pidfile and pidfile.is_file() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()
        log.info(
            "stopped after %d queries (%d errors, %d rows inserted)", stats.queries, stats.errors, stats.inserted_rows
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", type=Path, required=True, help="the chDB data directory")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pidfile", type=Path)
    p.add_argument("--log-level", default="INFO", help="DEBUG logs every request")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1 at this port")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.path.mkdir(parents=True, exist_ok=True)
    return serve(args.path, args.port, args.pidfile, args.metrics_port)


if __name__ == "__main__":
    sys.exit(main())
