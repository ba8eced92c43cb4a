"""A Kafka broker (the platform's own, common/services.py) in a network namespace of the
test's own, reached from the host over a veth pair, for the network-partition drill; the test
is skipped with the reason where namespaces cannot be made (not root, no iproute2, no
CAP_NET_ADMIN)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PORT = 9092


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextmanager
def broker_in_a_namespace(workdir: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """(bootstrap address, cut, heal): cut() takes the namespace's end of the link down (packets
    to the broker are lost, as in a partition), heal() brings it back."""
    if not shutil.which("ip"):
        pytest.skip("the network-partition drill needs iproute2 (`ip`)")
    from common.services import kafka_service
    from common.settings import load_settings

    n = os.getpid() % 60000
    ns, host_if, ns_if = f"lfd{n}", f"lfd{n}h", f"lfd{n}n"
    host_ip, ns_ip = f"10.213.{n % 250}.1", f"10.213.{n % 250}.2"
    made = False
    broker = None
    try:
        try:
            _ip("netns", "add", ns)
            made = True
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
            _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        except (subprocess.CalledProcessError, OSError) as e:
            reason = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
            pytest.skip(f"cannot make a network namespace with a veth pair here: {reason}")
        conf = load_settings(home=workdir / "netns", kafka={"local_port": PORT, "local_controller_port": PORT + 1})
        svc = kafka_service(conf, host=ns_ip)
        svc.prepare()  # its data directory, formatted
        log = (workdir / "netns-broker.log").open("ab")
        broker = subprocess.Popen(
            ["ip", "netns", "exec", ns, *svc.command], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((ns_ip, PORT)) == 0:
                    break
            assert broker.poll() is None and time.monotonic() < deadline, "the broker in the namespace did not start"
            time.sleep(0.2)
        yield (
            f"{ns_ip}:{PORT}",
            lambda: _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "down"),
            lambda: _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up"),
        )
    finally:
        if broker is not None and broker.poll() is None:
            os.killpg(broker.pid, signal.SIGTERM)
            try:
                broker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(broker.pid, signal.SIGKILL)
                broker.wait()
        if made:
            subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)  # and its peer
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
