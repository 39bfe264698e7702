"""Benchmark: the phases of `.ci/run` (`make test`) on a fresh clone, with empty caches.

    python3 benchmarks/ci_phases.py                        # every phase of .ci/run (the nano build included)
    python3 benchmarks/ci_phases.py --phases setup         # only `make setup` into a fresh .venv
    python3 benchmarks/ci_phases.py --cache-dir DIR        # reuse a lab cache (nano already built there)
    python3 benchmarks/ci_phases.py --dry-run              # print the plan, run nothing

It clones this repository's HEAD into a temporary folder (uncommitted changes are not
in the clone), points the lab cache (GPTOSS_LAB_CACHE_DIR) and vLLM's cache
(VLLM_CACHE_ROOT) at empty folders, and runs each phase there as its own make
command, timing it: the clone starts without .venv, so `make setup` builds a fresh one.
Each phase's output goes to a log beside the clone; the run stops at the first phase
that fails. Results: benchmarks/results/ci-phases-<date>.json (a subset of phases adds
their names), and a markdown table for the README on stdout. Standard library only: it runs before the .venv exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# (name, make arguments, what the README calls it). `-o TARGET` skips a prerequisite an earlier
# phase already made, so each phase times its own work; together they are `make test`.
PHASES: list[tuple[str, list[str], str]] = [
    ("setup", ["setup"], "`make setup` (uv, fresh `.venv`)"),
    ("nano", ["-o", "setup", "nano"], "gpt-oss-nano build (`make nano`)"),
    ("browser", ["browser"], "Debian's chromium (`make browser`)"),
    ("lint", ["-o", "setup", "lint"], "`make lint` (ruff, output-free notebooks)"),
    ("test", ["-o", "setup", "-o", "nano", "-o", "browser", "-o", "lint", "test"],
     "unit tests + notebooks, one shared server (the pytest session of `make test`)"),
]
EXTRA: dict[str, tuple[list[str], str]] = {
    "test-fast": (["-o", "setup", "test-fast"], "`make test-fast` (no vLLM, no nano)"),
}
"""Phases not in `.ci/run`, run only when named in --phases."""


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def _machine() -> dict[str, object]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "user": "root" if os.geteuid() == 0 else "not root",
            "load_average_1min_at_start": load}


def _plan(names: list[str]) -> list[tuple[str, list[str], str]]:
    known = {name: (args, label) for name, args, label in PHASES} | EXTRA
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown phase(s) {unknown}: choose from {', '.join(known)}")
    return [(n, *known[n]) for n in names]


def _run_phase(name: str, args: list[str], clone: Path, env: dict[str, str], logs: Path) -> dict[str, object]:
    log = logs / f"{name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(["make", *args], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = round(time.monotonic() - started, 1)
    return {"phase": name, "command": "make " + " ".join(args), "seconds": seconds, "exit": code, "log": str(log)}


def _table(rows: list[dict[str, object]], labels: dict[str, str], cores: int | None) -> str:
    lines = [f"| phase of `.ci/run` on {cores} CPU cores (fresh clone, empty caches) | wall time |", "| --- | --- |"]
    for row in rows:
        seconds = float(row["seconds"])  # type: ignore[arg-type]
        shown = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"
        failed = "" if row["exit"] == 0 else f" (failed, exit {row['exit']})"
        lines.append(f"| {labels[str(row['phase'])]} | {shown}{failed} |")
    total = sum(float(r["seconds"]) for r in rows)  # type: ignore[arg-type]
    lines.append(f"| all of the phases above | {total / 60:.1f} min ({total:.0f} s) |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default=",".join(n for n, _, _ in PHASES),
                        help="comma-separated, in order (default: every phase of .ci/run; also: test-fast)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="lab cache to use instead of an empty one (e.g. with nano already built)")
    parser.add_argument("--cold-uv-cache", action="store_true", help="an empty uv cache too (default: uv's own)")
    parser.add_argument("--keep", action="store_true", help="keep the clone, its .venv and the caches")
    parser.add_argument("--out", type=Path, default=None, help="result file (default: results/ci-phases-<date>.json)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = parser.parse_args()

    plan = _plan([p.strip() for p in args.phases.split(",") if p.strip()])
    head = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    work = Path(tempfile.mkdtemp(prefix="ci-phases-"))
    clone, logs = work / "clone", work / "logs"
    cache = args.cache_dir.resolve() if args.cache_dir else work / "lab-cache"
    env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(cache), "VLLM_CACHE_ROOT": str(work / "vllm-cache"),
           "VENV": ".venv"}
    for name in ("VIRTUAL_ENV", "GPTOSS_LAB_BASE_URL", "GPTOSS_LAB_TEST_SERVER", "PYTHONPATH"):
        env.pop(name, None)  # nothing of the caller's environment may point the clone elsewhere
    if args.cold_uv_cache:
        env["UV_CACHE_DIR"] = str(work / "uv-cache")

    print(f"clone of {ROOT} at {head[:12]} in {clone}" + (" (uncommitted changes are NOT in it)" if dirty else ""))
    print(f"GPTOSS_LAB_CACHE_DIR={cache}  VLLM_CACHE_ROOT={env['VLLM_CACHE_ROOT']}"
          + (f"  UV_CACHE_DIR={env['UV_CACHE_DIR']}" if args.cold_uv_cache else ""))
    for name, make_args, _ in plan:
        print(f"  {name:<10} make {' '.join(make_args)}")
    if args.dry_run:
        shutil.rmtree(work)
        return 0

    logs.mkdir(parents=True)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    machine = _machine()
    rows: list[dict[str, object]] = []
    try:
        for name, make_args, _ in plan:
            print(f"[ci-phases] {name}: make {' '.join(make_args)}", flush=True)
            row = _run_phase(name, make_args, clone, env, logs)
            rows.append(row)
            print(f"[ci-phases] {name}: {row['seconds']} s, exit {row['exit']} (log: {row['log']})", flush=True)
            if row["exit"] != 0:
                tail = Path(str(row["log"])).read_text(errors="replace").splitlines()[-30:]
                print("\n".join(tail), file=sys.stderr)
                break
    finally:
        if not args.keep:
            shutil.rmtree(clone, ignore_errors=True)  # the .venv is several GB
            for folder in ("vllm-cache", "uv-cache", "lab-cache"):
                if folder != "lab-cache" or not args.cache_dir:
                    shutil.rmtree(work / folder, ignore_errors=True)

    labels = {name: label for name, _, label in plan}
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "commit": head, "dirty_worktree": dirty,
        "machine": machine, "phases": rows, "total_s": round(sum(float(r["seconds"]) for r in rows), 1),  # type: ignore[arg-type]
        "options": {"phases": [n for n, _, _ in plan], "cache_dir": str(args.cache_dir) if args.cache_dir else "empty",
                    "uv_cache": "empty" if args.cold_uv_cache else "uv's own", "vllm_cache": "empty"},
        "logs": str(logs),
    }
    names = [n for n, _, _ in plan]
    partial = "" if names == [n for n, _, _ in PHASES] else "-" + "-".join(names)
    out = args.out or RESULTS / f"ci-phases-{dt.date.today().isoformat()}{partial}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}\n")
    print(_table(rows, labels, machine["cores"]))  # type: ignore[arg-type]
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
