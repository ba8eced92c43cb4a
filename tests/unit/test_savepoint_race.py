"""A redeploy must not lose its savepoint when the local mini-cluster exits before its
status is read (the REST API goes away right after the job stopped). The race is timing-
dependent on real Flink, so a stand-in REST server plays the exiting cluster here: it
accepts the stop, writes the savepoint as Flink does, and closes."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from streaming.checkpoints import savepoint_on_disk
from streaming.flink_rest import FlinkRest

JOB = "3f2a9c0d1e2b4c5d6e7f8091a2b3c4d5"


def test_savepoint_found_on_disk_when_the_cluster_exits_first(tmp_path):
    target = (tmp_path / "savepoints").as_uri()

    class ExitingCluster(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            done = tmp_path / "savepoints" / f"savepoint-{JOB[:6]}-0123456789ab"
            done.mkdir(parents=True)
            (done / "_metadata").write_bytes(b"flink")
            body = json.dumps({"request-id": "r1"}).encode()
            self.send_response(202)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            threading.Thread(target=lambda: (server.shutdown(), server.server_close())).start()  # it exits

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), ExitingCluster)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        rest = FlinkRest(f"127.0.0.1:{server.server_port}", timeout=2)
        location = rest.stop_with_savepoint(JOB, target, timeout_s=20)
    finally:
        thread.join(10)
    assert location == (tmp_path / "savepoints" / f"savepoint-{JOB[:6]}-0123456789ab").as_uri()


def test_an_older_savepoint_is_not_taken_for_this_one(tmp_path):
    old = tmp_path / f"savepoint-{JOB[:6]}-aaaaaaaaaaaa"
    old.mkdir()
    (old / "_metadata").write_bytes(b"flink")
    os.utime(old / "_metadata", (time.time() - 600, time.time() - 600))
    assert savepoint_on_disk(tmp_path.as_uri(), JOB, since=time.time()) is None
    assert savepoint_on_disk("s3://bucket/savepoints", JOB, since=0) is None
