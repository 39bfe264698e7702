"""Benchmark: gpt-oss-nano build time and vLLM server start times on this machine.

    .venv/bin/python benchmarks/startup.py            # build (cold) + cold/warm/eager starts + connect
    .venv/bin/python benchmarks/startup.py --skip-build

Prints one table and writes benchmarks/results/startup-<date>.json. The cold build
uses an empty lab cache; "cold" server start uses an empty vLLM compile cache
(VLLM_CACHE_ROOT in a temp dir), "warm" the normal one after a first start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import gptoss_lab as lab
from gptoss_lab import process
from gptoss_lab.vllm_cli import vllm_version


def build_cold() -> dict[str, float]:
    from gptoss_lab import nano

    with tempfile.TemporaryDirectory() as cache:
        os.environ["GPTOSS_LAB_CACHE_DIR"] = cache
        started = time.monotonic()
        folder = nano.build()
        total = time.monotonic() - started
        phases = nano.build_info(folder).seconds
        del os.environ["GPTOSS_LAB_CACHE_DIR"]
    return {"total": round(total, 1), **phases}


def start(extra: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Return (seconds to ready, seconds for connect()) for one nano server start."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        t = time.monotonic()
        server = lab.serve("nano", port=process.free_port(), extra_args=extra, warmup=False)
        ready = time.monotonic() - t
        os.environ["GPTOSS_LAB_BASE_URL"] = server.url
        t = time.monotonic()
        lab.connect()
        connect = time.monotonic() - t
        server.stop()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.environ.pop("GPTOSS_LAB_BASE_URL", None)
    return round(ready, 1), round(connect * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "vllm": vllm_version(),
    }
    if not args.skip_build:
        results["nano_build_s"] = build_cold()
        print(f"nano build (cold cache): {results['nano_build_s']}", flush=True)
    with tempfile.TemporaryDirectory() as compile_cache:
        results["ready_cold_s"], _ = start([], {"VLLM_CACHE_ROOT": compile_cache})
    print(f"server ready, cold compile cache: {results['ready_cold_s']} s", flush=True)
    results["ready_warm_s"], results["connect_ms"] = start([])
    print(f"server ready, warm compile cache: {results['ready_warm_s']} s", flush=True)
    results["ready_eager_s"], _ = start(["--enforce-eager"])
    print(f"server ready, --enforce-eager: {results['ready_eager_s']} s", flush=True)
    print(f"connect() to a running server: {results['connect_ms']} ms")
    out = Path(__file__).parent / "results" / f"startup-{dt.date.today()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
