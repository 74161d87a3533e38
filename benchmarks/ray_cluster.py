"""A local Ray cluster of two nodes on this machine (a head and a second node), for a benchmark to train on.

``with local_cluster(cpus=1) as cluster:`` starts ``ray start --head`` and ``ray start --address`` (``cpus``
logical CPUs each, the smallest object store Ray accepts, no dashboard, no usage stats) and stops them with
``ray stop --force`` afterwards, whatever happened; ``cluster.address`` is the head's ``host:port``,
``cluster.pids()`` the Ray processes of this cluster (every one names its temp dir; the actors' worker
processes are their raylets' children).

Ray's sockets live under its temp dir and a Unix socket's path is at most 107 bytes, so the temp dir is a short
``/tmp/ray-*``. ``ray stop --force`` ends every Ray process of the machine: a command that starts or stops Ray
runs under ``flock /tmp/ray.lock`` (:func:`hold_ray_lock` checks, and takes the lock where no caller holds it).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from tests.browser.st_browser import free_port

RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python
OBJECT_STORE = str(80 * 1024 * 1024)  # the smallest Ray accepts is 75 MB
LOCK = Path("/tmp/ray.lock")
START_TIMEOUT_S, STOP_TIMEOUT_S = 120, 300


def _ancestors(pid: int) -> list[int]:
    """pid's parent, its parent, ... up to (not including) pid 1."""
    out = []
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return out
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return out
        out.append(pid)


def held_by_caller(lock: Path = LOCK) -> bool:
    """Whether a process this one runs under is ``flock <lock> ...`` (the caller holds the lock)."""
    for pid in _ancestors(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and Path(argv[0].decode(errors="replace")).name == "flock" and str(lock).encode() in argv:
            return True
    return False


@contextlib.contextmanager
def hold_ray_lock(lock: Path = LOCK):
    """The machine's Ray lock for the block: already held by a ``flock`` this process runs under, or taken here
    (waiting while another Ray user holds it)."""
    if held_by_caller(lock):
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Cluster:
    address: str  # the head's host:port
    temp_dir: Path
    cpus_per_node: int
    nodes: int = 2

    def pids(self) -> list[int]:
        """The cluster's own processes (GCS, raylets, monitors, agents): each names the temp dir on its command
        line. The actors' processes are not among them: they are the raylets' children."""
        needle = str(self.temp_dir).encode()
        out = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if needle in (proc / "cmdline").read_bytes():
                        out.append(int(proc.name))
                except OSError:
                    pass
        return out


@contextlib.contextmanager
def local_cluster(cpus: int = 1, env: dict | None = None):
    """A head and a second node, ``cpus`` logical CPUs each, under the machine's Ray lock; both stopped after."""
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    common = ["--num-cpus", str(cpus), "--object-store-memory", OBJECT_STORE, "--disable-usage-stats"]
    with hold_ray_lock():
        try:
            for cmd in (["start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                         "--include-dashboard", "false", "--temp-dir", str(temp), *common],
                        ["start", "--address", address, "--node-ip-address", "127.0.0.1", *common]):
                proc = subprocess.run([*RAY, *cmd], env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
                if proc.returncode:
                    raise RuntimeError(f"`ray {' '.join(cmd[:2])}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            yield Cluster(address, temp, cpus)
        finally:
            try:  # both nodes: `ray stop` ends every Ray process of this machine
                subprocess.run([*RAY, "stop", "--force"], env=env, capture_output=True, timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # a loaded machine: said, not raised over the caller's own result
                warnings.warn(f"`ray stop --force` did not end within {STOP_TIMEOUT_S} s", RuntimeWarning)
            shutil.rmtree(temp, ignore_errors=True)
