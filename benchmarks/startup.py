"""Benchmark: gpt-oss-nano build time and vLLM server start times on this machine.

    .venv/bin/python benchmarks/startup.py            # build (cold), then server starts by flag set, connect
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


def start(flags: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Return (seconds to ready, ms for connect()) for one nano server started with ``flags``."""
    from gptoss_lab import nano, presets
    from gptoss_lab.server import VLLMServer

    preset = presets.PRESETS["nano-cpu"]
    server = VLLMServer(
        str(nano.path()), args=[*flags, *presets.PARSER_FLAGS], port=process.free_port(),
        env={**preset.env, **(env or {})},
    )
    t = time.monotonic()
    server.start()
    try:
        server.wait(progress=False)
        ready = time.monotonic() - t
        os.environ["GPTOSS_LAB_BASE_URL"] = server.url
        t = time.monotonic()
        lab.connect()
        connect = time.monotonic() - t
    finally:
        server.stop()
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
    from gptoss_lab.presets import NANO_ARGS, PRESETS

    base = list(NANO_ARGS)
    uni = ["--distributed-executor-backend", "uni"]
    with tempfile.TemporaryDirectory() as compile_cache:
        results["ready_compiled_cold_s"], _ = start(base, {"VLLM_CACHE_ROOT": compile_cache})
    print(f"ready, vLLM defaults, cold compile cache: {results['ready_compiled_cold_s']} s", flush=True)
    results["ready_compiled_warm_s"], _ = start(base)
    print(f"ready, vLLM defaults, warm compile cache: {results['ready_compiled_warm_s']} s", flush=True)
    results["ready_eager_s"], _ = start([*base, "--enforce-eager"])
    print(f"ready, --enforce-eager: {results['ready_eager_s']} s", flush=True)
    results["ready_uni_warm_s"], _ = start([*base, *uni])
    print(f"ready, one process for engine and worker, warm cache: {results['ready_uni_warm_s']} s", flush=True)
    results["ready_preset_s"], results["connect_ms"] = start(list(PRESETS["nano-cpu"].args))
    print(f"ready, nano-cpu preset: {results['ready_preset_s']} s", flush=True)
    print(f"connect() to a running server: {results['connect_ms']} ms")
    out = Path(__file__).parent / "results" / f"startup-{dt.date.today()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
