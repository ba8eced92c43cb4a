"""Free local ports for the services a test or benchmark starts on its own ports.

A port from `bind(0)` is one the kernel may hand out again the next moment: to the next
`bind(0)`, or as the local end of any outgoing connection, before our service listens on it.
These come from just below the kernel's ephemeral range instead, which neither uses, and a
process never gets one twice."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

SPAN = 12000  # how many ports below the ephemeral range are drawn from
_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _share() -> range:
    """This process's share of the span: pytest-xdist workers each draw from their own."""
    high = _ephemeral_low()
    low = max(1024, high - SPAN)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (high - low) // max(workers, 1)
    return range(low + worker * size, low + (worker + 1) * size)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on, not handed out before in this process."""
    candidates = [p for p in _share() if p not in _given]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free local port left below the ephemeral range")
