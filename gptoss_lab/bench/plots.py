"""Benchmark plots (matplotlib): throughput against concurrency, latency distributions, and the
tokens/s-per-user against tokens/s-total curve. Taught in ``notebooks/06_benchmark.ipynb``.

Each function returns a ``matplotlib.figure.Figure`` (Jupyter shows it once: the figure is
closed for pyplot, so it is not drawn a second time at the end of the cell).
"""

from __future__ import annotations

from typing import Any

from gptoss_lab.bench.results import RunResult, Sweep


def _figure(ncols: int = 1, width: float = 5.5) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.6), layout="constrained")
    plt.close(fig)
    return fig, axes


def _done(sweep: Sweep) -> list[RunResult]:
    return [r for r in sweep.runs if r.metrics.completed]


def throughput(sweep: Sweep) -> Any:
    """Output and total tokens/s (left) and requests/s (right) against concurrency."""
    fig, (tokens, requests) = _figure(2, 4.5)
    runs = _done(sweep)
    level = [r.settings["concurrency"] for r in runs]
    tokens.plot(level, [r.metrics.output_throughput for r in runs], "o-", label="output")
    tokens.plot(level, [r.metrics.total_token_throughput for r in runs], "s--", label="input + output")
    requests.plot(level, [r.metrics.request_throughput for r in runs], "o-", color="C2")
    for ax, ylabel in ((tokens, "tokens/s"), (requests, "requests/s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(level, [str(c) for c in level])
        ax.set_xlabel("concurrency (users)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    tokens.legend()
    fig.suptitle(f"{sweep.workload}: throughput")
    return fig


def latency(result: Sweep | RunResult) -> Any:
    """TTFT, TPOT and end-to-end latency: box plots per concurrency (a sweep) or histograms (a run)."""
    fig, axes = _figure(3, 3.8)
    runs = _done(result) if isinstance(result, Sweep) else [result]
    names = (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2el", "end-to-end"))
    for ax, (key, label) in zip(axes, names, strict=True):
        data = [_values(r, key) for r in runs]
        if isinstance(result, Sweep):
            ax.boxplot(data, tick_labels=[str(r.settings["concurrency"]) for r in runs])
            ax.set_xlabel("concurrency")
            ax.set_ylabel(f"{label} (ms)")
        else:
            ax.hist(data[0], bins=20)
            ax.set_xlabel(f"{label} (ms)")
            ax.set_ylabel("requests")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle("latency distributions")
    return fig


def _values(run: RunResult, key: str) -> list[float]:
    done = [r for r in run.requests if r.ok]
    if key == "ttft":
        return [r.ttft * 1000 for r in done]
    if key == "tpot":
        return [t * 1000 for r in done if (t := r.tpot) is not None]
    return [r.latency * 1000 for r in done]


def tradeoff(sweep: Sweep) -> Any:
    """Tokens/s per user (x) against total output tokens/s (y), each point a concurrency.

    Moving right is a faster experience for each user; moving up is more work per GPU.
    Batching buys throughput with per-user speed: the curve shows the price.
    """
    fig, ax = _figure(1, 5.0)
    runs = _done(sweep)
    x = [r.metrics.tokens_per_user for r in runs]
    y = [r.metrics.output_throughput for r in runs]
    ax.plot(x, y, "o-")
    for r, xi, yi in zip(runs, x, y, strict=True):
        ax.annotate(f"c={r.settings['concurrency']}", (xi, yi), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("output tokens/s per user")
    ax.set_ylabel("output tokens/s, all users")
    ax.set_xlim(0, max(x, default=1) * 1.2)
    ax.set_ylim(0, max(y, default=1) * 1.15)
    ax.grid(alpha=0.3)
    ax.set_title(f"{sweep.workload}: speed per user vs total")
    return fig
