"""The lesson's run started from the Training page against the same run through the CLI, on one machine.

``python -m benchmarks.page_vs_cli [--epochs 500] [--rounds 1]``

Each round runs, one after the other:

- CLI: ``python -m rnn_core.train --quiet`` at the lesson's settings (wall time of the process, and the
  training time it reports);
- page: ``streamlit run dashboard/Home.py`` with a headless Chromium (Debian's, via Playwright) on
  ``/training``: Start, then the lecturer's walk while it trains (Data, One-hot & shapes, Inside, back to
  Training), until the progress bar says the run finished. The run's wall time comes from its own
  run.json (start to last epoch), and the ETA the page showed is compared with the time that was
  really left, at 10%, 25%, 75% and 90% of the run. With ``--leave`` the browser closes right after
  Start: the run trains on by itself, as on a class server whose browsers are on other machines.

Prints a table and writes ``artifacts/page_vs_cli.json``. Numbers are measurements, reported in
docs/performance.md, never asserted.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.browser import st_browser as sb  # the browser tests' server start, health wait and stop

REPO_ROOT = Path(__file__).resolve().parents[1]

ARTIFACTS = REPO_ROOT / "artifacts"
ETA_RE = re.compile(r"Epoch (?P<epoch>[\d,]+) of (?P<target>[\d,]+).*?about (?:(?P<min>\d+) min )?(?P<s>\d+) s to go")
# (progress, page): the lecturer's walk while the run trains; the ETA is read on Training before and after it
WALK = [(0.30, "data"), (0.40, "shapes"), (0.50, "inside"), (0.65, "training")]
ETA_AT = (0.10, 0.25, 0.75, 0.90)


def cli_run(epochs: int) -> dict:
    """The lesson's run through the CLI: process wall time and its summary."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rnn_core.train", "--epochs", str(epochs), "--quiet"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), "train_s": round(summary["seconds"], 2),
            "perplexity": round(summary["perplexity"], 4)}


def progress_text(page) -> str:
    bar = page.locator("[data-testid='stProgress']").first
    return bar.inner_text() if bar.count() else ""


def page_run(epochs: int, runs_dir: Path, threads: str | None = None, leave: bool = False) -> dict:
    """The lesson's run started from the Training page, with a walk through other pages while it trains."""
    from playwright.sync_api import sync_playwright

    port = sb.free_port()
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "page_vs_cli_server.log", "w") as log:
        proc = sb.start_server(port, log, env={"RNN_LAB_RUNS": str(runs_dir),
                                               **({"RNN_LAB_TRAIN_THREADS": threads} if threads else {})})
    etas = []
    try:
        sb.wait_healthy(proc, base)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=sb.chromium_path(), args=sb.CHROMIUM_ARGS)
            page = browser.new_context(viewport=sb.VIEWPORT).new_page()
            sb.open_page(page, base, "training", {"epochs": epochs})
            page.get_by_role("button", name=re.compile(r"^\W*start\b", re.I)).first.click()
            t_click = time.perf_counter()
            if leave:  # the browser goes away (or is on another machine): the run trains on by itself
                browser.close()
            walk = [] if leave else list(WALK)
            on_training = not leave
            on_training = True
            while True:
                if not leave:
                    page.wait_for_timeout(1000)
                runs = [d for d in runs_dir.iterdir() if (d / "run.json").exists()]
                meta = json.loads((runs[0] / "run.json").read_text()) if runs else None
                done = meta is not None and meta["status"] != "running"
                epoch = len(meta["records"]) if meta else 0
                if leave:
                    time.sleep(1.0)
                elif on_training:
                    m = ETA_RE.search(progress_text(page))
                    if m:
                        left = int(m["min"] or 0) * 60 + int(m["s"])
                        etas.append((time.perf_counter() - t_click, int(m["epoch"].replace(",", "")), left))
                if done:
                    break
                if walk and epoch >= walk[0][0] * epochs:
                    _, path = walk.pop(0)
                    page.locator(f"[data-testid='stSidebarNav'] a[href$='/{path}']").click()
                    on_training = path == "training"
            t_done = time.perf_counter()
            if not leave:
                browser.close()
    finally:
        sb.stop_server(proc)
    meta = json.loads((runs[0] / "run.json").read_text())
    wall = meta["records"][-1]["wall_s"]
    checks = []
    for fraction in ETA_AT:
        seen = [e for e in etas if e[1] >= fraction * epochs]
        if seen:
            t, epoch, left = seen[0]
            truth = (t_done - t_click) - t
            checks.append({"at_epoch": epoch, "eta_s": left, "true_s": round(truth, 1),
                           "error": round(left / truth - 1, 3) if truth > 0 else None})
    threads = collections.Counter(r.get("threads") for r in meta["records"])
    return {"wall_s": round(wall, 2), "click_to_done_s": round(t_done - t_click, 2), "status": meta["status"],
            "epochs_by_threads": {str(k): v for k, v in sorted(threads.items(), key=lambda kv: str(kv[0]))},
            "perplexity": round(meta["records"][-1]["perplexity"], 4), "eta_checks": checks}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--leave", action="store_true",
                    help="close the browser right after Start (a class on one server: the browsers are elsewhere)")
    ap.add_argument("--threads", default=None, help="fix the server's training threads (RNN_LAB_TRAIN_THREADS); "
                                                    "default: chosen per run")
    args = ap.parse_args(argv)
    from rnn_core import fast

    fast.kernels(block=True)  # built (or loaded) before anything is timed
    rounds = []
    for i in range(args.rounds):
        cli = cli_run(args.epochs)
        with tempfile.TemporaryDirectory(prefix="rnn-lab-bench-runs-") as d:
            page = page_run(args.epochs, Path(d), args.threads, args.leave)
        rounds.append({"cli": cli, "page": page, "ratio": round(page["wall_s"] / cli["wall_s"], 3)})
        print(f"round {i + 1}: CLI {cli['wall_s']:.1f} s (training {cli['train_s']:.1f} s, perplexity "
              f"{cli['perplexity']}); page {page['wall_s']:.1f} s (perplexity {page['perplexity']}, "
              f"{page['status']}, epochs by torch threads {page['epochs_by_threads']}); "
              f"page / CLI = {page['wall_s'] / cli['wall_s']:.2f}")
        for c in page["eta_checks"]:
            print(f"  ETA at epoch {c['at_epoch']}: shown {c['eta_s']} s, really {c['true_s']} s "
                  f"({c['error']:+.0%})")
    result = {"epochs": args.epochs, "cpus": os.cpu_count(), "rounds": rounds}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page_vs_cli.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
