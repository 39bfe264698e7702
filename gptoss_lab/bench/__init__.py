"""Benchmark the running server: load, metrics, plots, the roofline, and a cross-check with vLLM's own tool.

    result = lab.bench.run("chat", requests=8, concurrency=2)   # one run: metrics as `vllm bench serve` has them
    sweep = lab.bench.sweep("chat", [1, 2, 4])                 # the same at rising concurrency
    lab.bench.plots.throughput(sweep); lab.bench.plots.tradeoff(sweep)
    lab.bench.roofline("openai/gpt-oss-20b", gpu="H100")        # the batch-1 decode ceiling, arithmetic shown
    lab.bench.save(sweep, "results/sweep")                      # JSON + CSV, with what produced them
    lab.bench.crosscheck(concurrency=4, requests=16)            # the lab vs `vllm bench serve`, same load

Importing it is cheap (httpx only); matplotlib, numpy and tqdm load when used.
Taught in ``notebooks/06_benchmark.ipynb``; ``gptoss-lab bench`` runs it from a terminal.
"""

from gptoss_lab.bench import plots
from gptoss_lab.bench.loadgen import arrivals, arun, levels, run, sweep
from gptoss_lab.bench.metrics import Metrics, RequestRecord, compute, percentile
from gptoss_lab.bench.results import RunResult, Sweep, environment, load, save
from gptoss_lab.bench.roofline import (
    GPT_OSS_20B,
    GPT_OSS_120B,
    ModelShape,
    Roofline,
    RooflineError,
    decode_speed,
    measure_bandwidth,
    roofline,
)
from gptoss_lab.bench.vllm_bench import CrossCheck, CrossCheckError, crosscheck, run_vllm_bench, vllm_bench_command
from gptoss_lab.bench.workloads import PROMPT, WORKLOADS, Workload

__all__ = [
    "GPT_OSS_20B",
    "GPT_OSS_120B",
    "PROMPT",
    "WORKLOADS",
    "CrossCheck",
    "CrossCheckError",
    "Metrics",
    "ModelShape",
    "RequestRecord",
    "Roofline",
    "RooflineError",
    "RunResult",
    "Sweep",
    "Workload",
    "arrivals",
    "arun",
    "compute",
    "crosscheck",
    "decode_speed",
    "environment",
    "levels",
    "load",
    "measure_bandwidth",
    "percentile",
    "plots",
    "roofline",
    "run",
    "run_vllm_bench",
    "save",
    "sweep",
    "vllm_bench_command",
]
