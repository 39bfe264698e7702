"""Benchmark: the lab's load generator against `vllm bench serve`, and the notebook's sweep, on a real server.

    .venv/bin/python benchmarks/bench_crosscheck.py            # starts a nano server (or uses GPTOSS_LAB_BASE_URL)
    .venv/bin/python benchmarks/bench_crosscheck.py --repeats 2 --concurrency 4 --requests 16

Two measurements, one summary, and benchmarks/results/bench-crosscheck-<date>.json:

1. The sweep of ``notebooks/06_benchmark.ipynb`` (Chat workload, the scripted prompt,
   concurrency 1, 2, 4): its wall time on this machine and its table.
2. The cross-check: the lab's Completions load (``--input-len`` tokens in, exactly
   ``--output-len`` out with ``ignore_eos``, ``--concurrency`` in flight, ``--requests``
   after ``--warmup``), then ``vllm bench serve`` with the same settings (random
   dataset, ``--ignore-eos``, ``--max-concurrency``, ``--num-prompts``); output
   tokens/s and median TTFT must agree within 5 %. The pair runs ``--repeats`` times,
   alternating which tool goes first; the figures are each tool's median over its runs
   (back-to-back runs of one tool differ by several percent on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import gptoss_lab as lab


def notebook_sweep(requests: int) -> dict:
    started = time.perf_counter()
    sweep = lab.bench.sweep("chat", [1, 2, 4], requests=requests, warmup=1, progress=False)
    wall = time.perf_counter() - started
    print(sweep)
    return {"levels": [1, 2, 4], "requests_per_level": requests, "wall_s": round(wall, 1),
            "rows": [{k: r.row()[k] for k in ("concurrency", "completed", "failed", "output_throughput",
                                              "tokens_per_user", "median_ttft_ms", "median_tpot_ms")}
                     for r in sweep.runs]}


def crosscheck(args: argparse.Namespace) -> dict:
    check = lab.bench.crosscheck(input_len=args.input_len, output_len=args.output_len, concurrency=args.concurrency,
                                 requests=args.requests, warmup=args.warmup, repeats=args.repeats, progress=False)
    print(check, end="\n\n")
    return check.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4, help="cross-check pairs (default 4)")
    parser.add_argument("--sweep-requests", type=int, default=4, help="requests per level of the sweep (default 4)")
    args = parser.parse_args()
    from gptoss_lab import process

    attach = bool(os.environ.get("GPTOSS_LAB_BASE_URL"))
    server = lab.serve("nano") if attach else lab.serve("nano", port=process.free_port())
    os.environ["GPTOSS_LAB_BASE_URL"] = server.url  # vllm bench serve's subprocess and the lab hit the same server
    try:
        results = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "meta": lab.bench.environment(server.url), "settings": vars(args),
                   "sweep": notebook_sweep(args.sweep_requests),
                   "crosscheck": crosscheck(args)}
    finally:
        if not server.attached:
            server.stop()
    print(f"notebook sweep (chat, concurrency 1, 2, 4, {args.sweep_requests} requests each): "
          f"{results['sweep']['wall_s']} s wall")
    check = results["crosscheck"]
    for row in check["rows"]:
        if row["figure"] in ("output tokens/s", "median TTFT (ms)"):
            print(f"cross-check, {row['figure']} (median of {args.repeats} runs each): lab {row['lab']:.2f} vs "
                  f"vllm bench serve {row['vllm_bench']:.2f} ({row['diff']:+.1%})")
    for i, pair in enumerate(check["pairs"], 1):
        print(f"  pair {i}: output tokens/s {pair['lab']['output_throughput']:.2f} vs "
              f"{pair['vllm']['output_throughput']:.2f}, median TTFT {pair['lab']['median_ttft_ms']:.1f} vs "
              f"{pair['vllm']['median_ttft_ms']:.1f} ms")
    out = Path(__file__).parent / "results" / f"bench-crosscheck-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
