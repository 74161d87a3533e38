"""Memory and CPU of a process tree, sampled from /proc: a server, its worker processes, a Ray cluster's processes.

``TreeSampler(server_pid, extra_roots)`` samples every ``SAMPLE_S`` seconds; :func:`cores` gives the cores busy
in a window (the tree's and the whole machine's), :func:`cores_by_role` what each kind of process used.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

SAMPLE_S = 0.2


def _tree(roots: list[int]) -> list[int]:
    """The roots and all their descendants (from /proc/<pid>/task/*/children: every thread's children, so the
    worker processes a server thread spawned are there too)."""
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def _role(pid: int, server_pid: int) -> str | None:
    """What a process of the server's tree (or of the Ray cluster) is, from its command line (None: gone, or a
    zombie without one)."""
    if pid == server_pid:
        return "server (streamlit)"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return None
    line = " ".join(argv)
    if not line:
        return None
    if "multiprocessing.resource_tracker" in line:
        return "resource tracker"
    if "spawn_main" in line:
        return "worker process"  # multiprocessing 'spawn': rnn_core.workers' processes
    if argv[0].startswith("ray::"):
        return "Ray " + argv[0].split()[0]  # ray::HostActor (a run), ray::IDLE, ray::DashboardAgent, ...
    name = Path(argv[0]).name
    if name.startswith("python") and len(argv) > 1:
        name = next((Path(a).name for a in argv[1:] if a.endswith(".py")), " ".join(argv[1:3]))
    return ("Ray " if "/ray/" in line else "") + name


def _jiffies_busy() -> float:
    """The whole machine's busy CPU seconds since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class TreeSampler(threading.Thread):
    """Every SAMPLE_S seconds: the resident memory and CPU seconds of the server's process tree and of any
    other roots (a Ray cluster's processes), and the machine's busy CPU seconds.

    The CPU is summed per process over every process ever seen (by pid and start time), each at the last value
    read: a process that ends keeps what it used, a process that starts adds only its own, so the sum only grows
    and a window's CPU is the difference of two samples."""

    def __init__(self, server_pid: int, extra_roots: list[int] = ()):
        super().__init__(daemon=True)
        self.server_pid, self.roots = server_pid, [server_pid, *extra_roots]
        self.samples: list[tuple[float, float, int, float, float]] = []  # (perf, wall, rss, tree cpu, machine cpu)
        self.cpu: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self.role: dict[tuple[int, int], str] = {}
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.tick, self.page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> tuple[float, float, int, float, float]:
        rss = 0
        with self.lock:
            for p in _tree(self.roots):
                try:
                    stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                    pages = int(Path(f"/proc/{p}/statm").read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                key = (p, int(stat[19]))  # start time: a reused pid is another process
                self.cpu[key] = (int(stat[11]) + int(stat[12])) / self.tick  # utime + stime, its own threads
                # read anew each time: a Ray worker execs setup_worker.py -> default_worker.py, then names
                # itself ray::IDLE, then ray::HostActor (a run's actor)
                self.role[key] = _role(p, self.server_pid) or self.role.get(key, "?")
                rss += pages * self.page
            row = (time.perf_counter(), time.time(), rss, sum(self.cpu.values()), _jiffies_busy())
            self.samples.append(row)
        return row

    def per_process(self) -> dict[tuple[int, int], float]:
        with self.lock:
            return dict(self.cpu)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(SAMPLE_S)


def cores(samples: list, lo: float, hi: float, wall: bool = False) -> dict | None:
    """Cores busy between two times (perf_counter, or time.time() with ``wall``), from the first and last
    sample inside: the tree's and the whole machine's (the others' programs too). None under 1 s of samples."""
    at = 1 if wall else 0
    inside = [s for s in samples if lo <= s[at] <= hi]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 1.0:
        return None
    a, b = inside[0], inside[-1]
    return {"window_s": round(b[0] - a[0], 1), "cores": round((b[3] - a[3]) / (b[0] - a[0]), 2),
            "machine_cores": round((b[4] - a[4]) / (b[0] - a[0]), 2)}


def cores_by_role(cpu0: dict, cpu1: dict, roles: dict, seconds: float) -> dict:
    """Cores each kind of process used between two per-process readings: role -> {processes, cores}."""
    out: dict[str, dict] = {}
    for key, cpu in cpu1.items():
        row = out.setdefault(roles.get(key, "?"), {"processes": 0, "cores": 0.0})
        row["processes"] += 1
        row["cores"] += (cpu - cpu0.get(key, 0.0)) / seconds
    return {k: {**v, "cores": round(v["cores"], 3)}
            for k, v in sorted(out.items(), key=lambda kv: -kv[1]["cores"])}
