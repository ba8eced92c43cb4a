"""What a benchmark reports about the machine and about the processes it measures."""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def hardware() -> str:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")))
        / 1024
        / 1024
    )
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_waiting_us() -> int | None:
    """Microseconds during which some runnable task waited for a CPU (Linux PSI, since boot);
    its growth over a run, divided by the run's length, is the CPU pressure of that run."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(some.rsplit("total=", 1)[1])


def stat_cpu_s(stat: str) -> float:
    """utime + stime of a /proc/.../stat line, in seconds."""
    fields = stat.rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of a process's live threads, by name without its numbers ("C2 CompilerThre"
    for the JIT's, "data-plane-kafka-network-thread-1-ListenerName(PLAINTEXT)-PLAINTEXT-" cut
    at 15 characters as the kernel keeps it)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # a thread that ended meanwhile
            continue
        name = re.sub(r"[-\d]+$", "", stat[stat.index("(") + 1 : stat.rindex(")")]).strip()
        out[name] = out.get(name, 0.0) + stat_cpu_s(stat)
    return out


def jit_share(threads: dict[str, float]) -> float:
    """The JIT compilers' CPU seconds among thread_cpu_s's."""
    return sum(v for k, v in threads.items() if "CompilerThre" in k)


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in tree and p not in tree}
        tree |= new
        grew = bool(new)
    return sorted(tree)


@dataclass
class TreeUsage:
    """CPU seconds and peak RSS per process (VmHWM) of a process tree. (A sum of the tree's RSS
    would count the JVM twice whenever it forks a shell, as Hadoop's local file system does.)
    A process is named by `labels`, else by its name when the platform gave it one (lf-...),
    else by its executable."""

    cpu_s: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    hwm_mb: dict[int, float] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)

    def sample(self, root: int) -> None:
        for pid in _descendants(root):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                exe = Path(os.readlink(f"/proc/{pid}/exe")).name
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            kv = {ln.split(":")[0]: ln.split(":", 1)[1].split() for ln in status if ":" in ln}
            self.cpu_s[pid] = stat_cpu_s(stat)
            # java, python3.11 (the process name follows its threads' names), or lf-load-online
            self.names[pid] = self.labels.get(pid) or (comm if comm.startswith("lf-") else exe)
            if "VmHWM" in kv:
                self.hwm_mb[pid] = max(self.hwm_mb.get(pid, 0.0), int(kv["VmHWM"][0]) / 1024)

    def peak_by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, mb in self.hwm_mb.items():
            out[self.names[pid]] = max(out.get(self.names[pid], 0.0), mb)
        return out

    def cpu_by_name(
        self, since: dict[int, float] | None = None, until: dict[int, float] | None = None
    ) -> dict[str, float]:
        """CPU seconds per name (summed over its processes), after the `since` snapshot of cpu_s
        and up to the `until` one (default: now)."""
        out: dict[str, float] = {}
        for pid, cpu in (self.cpu_s if until is None else until).items():
            out[self.names[pid]] = out.get(self.names[pid], 0.0) + cpu - (since or {}).get(pid, 0.0)
        return out


def watch(pid: int, usage: TreeUsage, stop: threading.Event, every_s: float = 0.5) -> threading.Thread:
    """Sample the tree under pid until stop is set."""

    def loop() -> None:
        while not stop.is_set():
            usage.sample(pid)
            time.sleep(every_s)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t
