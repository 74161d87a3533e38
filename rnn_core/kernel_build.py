"""The fast engine's C++ kernels (``rnn_core/csrc/rnn_cpu.cpp``, CPU, float32): compiled once per source,
flags, torch version and checkout with torch's extension loader, cached by torch, and loaded at most once per
process, in the caller's thread or in the background. Whatever goes wrong (no compiler, no ninja, a compile
error, ``RNN_LAB_NO_EXT=1``) leaves the kernels off and the fast engine on its Python path (same results)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
import warnings
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc" / "rnn_cpu.cpp"


def _build_spec(source: Path = CSRC) -> tuple[str, list[str], Path]:
    """Module name, compiler flags and build folder. The name carries a hash of the source, the flags, torch's
    version and the source's path, so a changed source or another torch builds anew instead of loading a
    stale module."""
    flags = ["-O3", "-fopenmp"]  # OpenMP: the same runtime (libgomp) as torch's, so one pool of threads
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]  # the tiled kernels; without them only the ATen loop is compiled
    # The source's path is in the digest too: torch's build file names it, so two checkouts sharing one build
    # folder would each find the other's build stale and compile again, back and forth.
    digest = hashlib.sha1(source.read_bytes() + " ".join(flags + [torch.__version__, str(source.resolve())]).encode()
                          ).hexdigest()[:10]
    name = f"rnn_lab_cpu_{digest}"
    from torch.utils.cpp_extension import get_default_build_root
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return name, flags, Path(root) / name


@contextlib.contextmanager
def _build_lock(folder: Path, timeout_s: float = 600.0):
    """Hold an exclusive lock on the build folder across processes. The OS releases it when its holder dies,
    so a build killed halfway (e.g. a dashboard server stopped) never blocks the next one; torch's own lock
    file, which a killed build leaves behind, is then known to be stale and removed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's lock file alone
        yield
        return
    with open(folder / "rnn_lab.lock", "w") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # another process is building: wait for it
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process held {folder} for {timeout_s:.0f} s") from None
                time.sleep(0.2)
        try:
            (folder / "lock").unlink(missing_ok=True)  # torch's lock: stale, as no live process holds ours
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compile_kernels(announce=None, source: Path = CSRC):
    """Compile (or load torch's cached build of) the C++ kernels of ``source`` and return the module; raises if
    it cannot."""
    from torch.utils.cpp_extension import is_ninja_available, load
    compiler = os.environ.get("CXX", "c++")  # what torch compiles with
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler}) found")
    if not is_ninja_available():
        raise RuntimeError("ninja, which torch builds extensions with, was not found")
    name, flags, folder = _build_spec(source)
    folder.mkdir(parents=True, exist_ok=True)
    if announce is not None and not (folder / f"{name}.so").exists():
        announce(f"building the fast engine's C++ kernels (once, ~30 s; cached in {folder.parent})")
    with _build_lock(folder):
        return load(name, sources=[str(source)], extra_cflags=flags, extra_ldflags=["-fopenmp"],
                    build_directory=str(folder), verbose=False)


class KernelBuild:
    """The C++ kernels of one process: built at most once, in the caller's thread or in the background.

    ``compile(announce) -> module`` does the work (default :func:`compile_kernels`); whatever it raises makes
    the build failed for good, with one warning, and the Python path runs from then on.
    """

    def __init__(self, compile=compile_kernels):
        self.compile = compile
        self.module = None  # the loaded extension
        self.failed: str | None = None  # why it could not be built
        self.started = False  # a build was started, in this thread or in the background
        self.done = threading.Event()  # set when it ended, either way
        self._lock = threading.Lock()

    def _run(self, background: bool = False, announce=None) -> None:
        try:
            if background:
                # Compile at low priority: on Linux the nice value is per thread, and the compiler inherits it
                # from this thread alone, so a dashboard's training and pages keep the CPU meanwhile.
                with contextlib.suppress(OSError, AttributeError):
                    os.nice(10)
            module = self.compile(announce)
        except Exception as exc:  # no compiler, no ninja, a compile error, an unwritable cache: the Python path
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            line = next((line for line in lines if "error:" in line), lines[-1] if lines else "")  # a compiler's
            self.failed = f"{type(exc).__name__}: {line[:300]}"
            warnings.warn(f"The fast engine's C++ kernels could not be built ({self.failed}); it runs its Python "
                          "path (same results, slower).", RuntimeWarning, stacklevel=3)
        else:
            self.module = module
        finally:
            self.done.set()

    def get(self, block: bool = False, announce=None):
        """The module, or None while it is not available; see :func:`kernels`."""
        if os.environ.get("RNN_LAB_NO_EXT") == "1":
            return None
        if self.module is not None or self.failed is not None:
            return self.module
        with self._lock:
            start, self.started = not self.started, True
        if start and block:
            self._run(announce=announce)
        elif start:
            threading.Thread(target=self._run, args=(True,), name="rnn-lab-build-kernels", daemon=True).start()
        elif block:
            self.done.wait()  # another thread is building
        return self.module

    def status(self) -> str:
        """One line for logs: whether the C++ kernels are in use."""
        if os.environ.get("RNN_LAB_NO_EXT") == "1":
            return "C++ kernels off (RNN_LAB_NO_EXT=1)"
        if self.module is not None:
            return "C++ kernels in use"
        return f"C++ kernels not available ({self.failed})" if self.failed else "C++ kernels not built yet"


_kernel_build = KernelBuild()  # this process's; reset_kernels puts another in its place


def kernels(block: bool = False, announce=None):
    """The compiled C++ kernels, or None while they are not available (the caller runs the Python path).

    ``block=True`` builds (tens of seconds the first time, then cached by torch) or loads them now, and
    calls ``announce(line)`` first if it is going to compile; ``block=False`` starts that in a background
    thread and returns None until it is done. Never raises: a failed build warns once and returns None from
    then on. ``RNN_LAB_NO_EXT=1`` turns the kernels off.
    """
    return _kernel_build.get(block, announce)


def kernel_status() -> str:
    """One line for logs: whether the C++ kernels are in use."""
    return _kernel_build.status()


def reset_kernels(build: KernelBuild | None = None) -> KernelBuild:
    """Put ``build`` (default: a fresh one, as in a new process) in place of this process's C++ kernel build;
    returns the one it replaced, so a caller (a test) can put it back."""
    global _kernel_build
    previous, _kernel_build = _kernel_build, build if build is not None else KernelBuild()
    return previous
