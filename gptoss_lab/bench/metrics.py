"""Serving metrics from per-request timings, as ``vllm bench serve`` defines them.

Pure functions over :class:`RequestRecord` lists, so the arithmetic can be checked on
recorded timings. The definitions follow vLLM's ``vllm/benchmarks/serve.py``
(``calculate_metrics``) and ``vllm/benchmarks/sweep/plot_pareto.py``:

* **TTFT**: from sending the request to the first chunk that carries a token. gpt-oss
  reasons first, so a reasoning delta counts: waiting for ``content`` would add the
  whole reasoning to the TTFT.
* **ITL**: the gap before each later token-carrying chunk (one value per chunk).
* **TPOT**: ``(e2e - ttft) / (output_tokens - 1)`` per request with more than one token.
* **E2E latency**: from sending to the last token-carrying chunk.
* **Throughputs**: completed requests, output tokens and input + output tokens over the
  run's wall time; output tokens come from the usage the server reports.
* **Tokens/s per user**: output tokens/s divided by the number of users (the
  concurrency, else the request rate, else the peak of requests in flight).

Mean, median, std (population) and percentiles (linear interpolation, NumPy's default).
Taught in ``notebooks/06_benchmark.ipynb``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

METRICS = ("ttft", "tpot", "itl", "e2el")
"""The latency metrics, with vLLM's names (``e2el``: end-to-end latency)."""


@dataclass
class RequestRecord:
    """What one benchmark request did, in seconds from when it was sent."""

    index: int
    ok: bool = False
    error: str = ""
    """Why it failed (empty when ``ok``)."""
    start: float = 0.0
    """When it was sent, seconds after the run started."""
    ttft: float = 0.0
    answer_ttft: float | None = None
    """When the first answer token (not reasoning) came: what a TTFT that waits for ``content`` would say."""
    itl: list[float] = field(default_factory=list)
    latency: float = 0.0
    """End-to-end: sending to the last token-carrying chunk."""
    prompt_tokens: int = 0
    output_tokens: int = 0
    """From the server's usage (reasoning tokens included)."""
    usage_reported: bool = False
    """False when the stream carried no usage and ``output_tokens`` counts chunks instead."""
    reasoning: str = ""
    text: str = ""
    """The answer (or generated text); tool-call arguments for a tool call."""

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first, or None with one token or fewer."""
        if not self.ok or self.output_tokens <= 1:
            return None
        return (self.latency - self.ttft) / (self.output_tokens - 1)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile with linear interpolation (``numpy.percentile``'s default); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats_ms(values: Sequence[float], percentiles: Sequence[float] = (99,)) -> dict[str, float]:
    """Mean, median, std and percentiles of seconds, in milliseconds (vLLM's keys without the metric name)."""
    out = {
        "mean": statistics.fmean(values) * 1000 if values else 0.0,
        "median": statistics.median(values) * 1000 if values else 0.0,
        "std": statistics.pstdev(values) * 1000 if values else 0.0,
    }
    for p in percentiles:
        out[f"p{int(p) if int(p) == p else p}"] = percentile(values, p) * 1000
    return out


@dataclass
class Metrics:
    """The summary of one run; the field names are those of ``vllm bench serve --save-result``."""

    completed: int
    failed: int
    duration: float
    """Seconds from the first request sent to the last response finished (warm-up excluded)."""
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    users: float
    """Who shares the server: the concurrency, else the request rate, else the peak in flight."""
    tokens_per_user: float
    """``output_throughput / users``: the speed one user sees."""
    max_output_tokens_per_s: float
    max_concurrent_requests: int
    latency_ms: dict[str, dict[str, float]]
    """``{"ttft": {"mean": ..., "median": ..., "std": ..., "p99": ...}, "tpot": ..., "itl": ..., "e2el": ...}``."""
    errors: dict[str, int] = field(default_factory=dict)
    """Each distinct error text and how many requests got it."""
    usage_missing: int = 0
    """Completed requests whose stream carried no usage (their tokens were counted as chunks)."""

    def flat(self) -> dict[str, Any]:
        """One flat dict (``mean_ttft_ms``, ``p99_itl_ms``, ...), the shape of vLLM's result JSON; for CSV rows."""
        data = {k: v for k, v in asdict(self).items() if k not in ("latency_ms", "errors")}
        for metric, values in self.latency_ms.items():
            for stat, value in values.items():
                data[f"{stat}_{metric}_ms"] = value
        data["errors"] = "; ".join(f"{n} x {text}" for text, n in self.errors.items())
        return data


def peak(records: Sequence[RequestRecord]) -> tuple[float, int]:
    """Peak output tokens in one second, and peak requests in flight, from 1-second buckets (as vLLM does)."""
    done = [r for r in records if r.ok]
    if not done:
        return 0.0, 0
    first = min(r.start for r in done)
    seconds = int(math.ceil(max(r.start + r.latency for r in done) - first)) + 1
    tokens, flying = [0] * seconds, [0] * seconds
    for r in done:
        t = r.start + r.ttft
        times = [t]
        for gap in r.itl:
            t += gap
            times.append(t)
        for moment in times:
            bucket = int(moment - first)
            if 0 <= bucket < seconds:
                tokens[bucket] += 1
        for second in range(int(r.start - first), int(r.start + r.latency - first) + 1):
            flying[second] += 1
    return float(max(tokens)), max(flying)


def compute(records: Sequence[RequestRecord], duration: float, *, concurrency: int | None = None,
            rate: float | None = None, percentiles: Sequence[float] = (99,)) -> Metrics:
    """Summarise a run's requests the way ``vllm bench serve`` does.

    Args:
        records: every request of the run, failed ones included.
        duration: the run's wall time in seconds.
        concurrency: the run's concurrency limit (the number of users), if any.
        rate: the run's request rate (requests/s), if any.
        percentiles: which percentiles to report (vLLM's default: 99).
    """
    done = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    outputs = [r.output_tokens for r in done]
    total_in, total_out = sum(r.prompt_tokens for r in done), sum(outputs)
    latencies = {
        "ttft": [r.ttft for r in done],
        "tpot": [t for r in done if (t := r.tpot) is not None],
        "itl": [gap for r in done for gap in r.itl],
        "e2el": [r.latency for r in done],
    }
    max_tokens, max_flying = peak(records)
    users = float(concurrency or (rate if rate and math.isfinite(rate) else 0) or max_flying or 1)
    per_s = (lambda n: n / duration) if duration > 0 else (lambda n: 0.0)
    return Metrics(
        completed=len(done), failed=len(failed), duration=duration,
        total_input_tokens=total_in, total_output_tokens=total_out,
        request_throughput=per_s(len(done)), output_throughput=per_s(total_out),
        total_token_throughput=per_s(total_in + total_out),
        users=users, tokens_per_user=per_s(total_out) / users,
        max_output_tokens_per_s=max_tokens, max_concurrent_requests=max_flying,
        latency_ms={name: stats_ms(values, percentiles) for name, values in latencies.items()},
        errors=dict(Counter(r.error for r in failed)),
        usage_missing=sum(1 for r in done if not r.usage_reported),
    )
