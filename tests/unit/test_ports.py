"""The test and benchmark ports: free, outside the ephemeral range, never handed out twice."""

from __future__ import annotations

import socket

import pytest

from common import ports


def test_ports_are_below_the_ephemeral_range_and_never_repeat():
    got = [ports.free_port() for _ in range(200)]
    assert len(set(got)) == len(got)
    assert all(p < ports._ephemeral_low() for p in got)


def test_a_port_something_listens_on_is_skipped(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        span = [taken, next(p for p in ports._share() if p not in ports._given)]
        monkeypatch.setattr(ports, "_share", lambda: span)
        assert ports.free_port() == span[1]
        with pytest.raises(RuntimeError, match="no free local port"):
            ports.free_port()


def test_xdist_workers_draw_from_disjoint_shares(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = ports._share()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    second = ports._share()
    assert first.stop <= second.start and len(first) == len(second) > 1000
