"""What the benchmark reports from recorded runs: the cross-check's verdict and the plots.

No server is needed: the runs are built from recorded request timings (as in test_bench.py),
and the ``vllm bench serve`` results are the JSON fields that command saves. The plots are
drawn with matplotlib's Agg backend, saved to a file, and read back from their axes.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # draw to files only, before pyplot is imported

from gptoss_lab.bench import metrics, plots  # noqa: E402
from gptoss_lab.bench.metrics import RequestRecord  # noqa: E402
from gptoss_lab.bench.results import RunResult, Sweep  # noqa: E402
from gptoss_lab.bench.vllm_bench import CrossCheck, vllm_bench_command  # noqa: E402


def _run(concurrency: int, ttfts: list[float], tokens: int = 10, duration: float = 1.0,
         failed: int = 0) -> RunResult:
    """A run whose requests each produced ``tokens`` tokens, request i one every 20 + 5 i ms after its TTFT."""
    records = [
        RequestRecord(index=i, ok=True, start=0.0, ttft=ttft, itl=[0.02 + 0.005 * i] * (tokens - 1),
                      latency=ttft + (0.02 + 0.005 * i) * (tokens - 1), prompt_tokens=8, output_tokens=tokens,
                      usage_reported=True)
        for i, ttft in enumerate(ttfts)
    ]
    records += [RequestRecord(index=len(records) + i, error="HTTP 400: too long") for i in range(failed)]
    m = metrics.compute(records, duration, concurrency=concurrency)
    return RunResult({"workload": "completions", "concurrency": concurrency}, records, m, {"model": "m"})


def _vllm(output_throughput: float, median_ttft_ms: float, failed: int = 0) -> dict:
    """The fields of a ``vllm bench serve --save-result`` JSON that the cross-check reads."""
    return {"completed": 4 - failed, "failed": failed, "output_throughput": output_throughput,
            "median_ttft_ms": median_ttft_ms, "total_input_tokens": 32, "total_output_tokens": 40,
            "duration": 1.0, "request_throughput": 4.0, "total_token_throughput": 72.0,
            "p99_ttft_ms": median_ttft_ms, "median_tpot_ms": 20.0, "median_itl_ms": 20.0, "median_e2el_ms": 380.0}


# -- the cross-check's verdict -----------------------------------------------------------------------
def test_difference_is_the_lab_relative_to_vllm() -> None:
    lab = _run(4, [0.2] * 4, duration=0.5)  # 40 tokens in 0.5 s: 80 tokens/s, median TTFT 200 ms
    check = CrossCheck([lab], [_vllm(output_throughput=100.0, median_ttft_ms=160.0)], [], 1.0)
    assert (check.lab_value("output_throughput"), check.lab_value("median_ttft_ms")) == pytest.approx((80.0, 200.0))
    assert check.difference("output_throughput") == pytest.approx(-0.2)
    assert check.difference("median_ttft_ms") == pytest.approx(0.25)
    assert not check.agrees()
    assert "output_throughput: lab 80.00 vs vllm 100.00 (-20.0%)" in check.summary()
    assert check.summary().endswith("-> differ by more than 5%")


def test_agrees_within_the_tolerance_only() -> None:
    lab = _run(4, [0.2] * 4, duration=0.4)  # 100 tokens/s, 200 ms
    check = CrossCheck([lab], [_vllm(output_throughput=97.0, median_ttft_ms=204.0)], [], 1.0)
    assert check.agrees() and check.agrees(tolerance=0.031)  # +3.1% and -2.0%
    assert not check.agrees(tolerance=0.03)
    assert check.summary().endswith("-> agree within 5%") and check.to_dict()["agrees_within_5pct"] is True


def test_a_failed_request_on_either_side_means_no_agreement() -> None:
    same = _vllm(output_throughput=100.0, median_ttft_ms=200.0)
    assert CrossCheck([_run(4, [0.2] * 4, duration=0.4)], [same], [], 1.0).agrees()
    lab_failed = _run(4, [0.2] * 4, duration=0.4, failed=1)
    assert not CrossCheck([lab_failed], [same], [], 1.0).agrees()
    vllm_failed = _vllm(output_throughput=100.0, median_ttft_ms=200.0, failed=1)
    assert not CrossCheck([_run(4, [0.2] * 4, duration=0.4)], [vllm_failed], [], 1.0).agrees()


def test_repeats_compare_medians() -> None:
    labs = [_run(4, [0.2] * 4, duration=d) for d in (0.5, 0.4, 0.25)]  # 80, 100 and 160 tokens/s
    vllms = [_vllm(output_throughput=t, median_ttft_ms=200.0) for t in (99.0, 101.0, 60.0)]
    check = CrossCheck(labs, vllms, [], 1.0)
    assert check.lab_value("output_throughput") == pytest.approx(100.0)
    assert check.vllm_value("output_throughput") == pytest.approx(99.0)
    assert check.agrees() and check.summary().startswith("median of 3 runs each: ")


def test_vllm_that_completed_nothing_is_reported_not_a_crash() -> None:
    nothing = {"completed": 0, "failed": 4, "output_throughput": 0.0, "median_ttft_ms": 0.0}
    check = CrossCheck([_run(4, [0.2] * 4, duration=0.4)], [nothing], [], 1.0)
    assert not check.agrees() and math.isnan(check.difference("output_throughput"))
    assert "differ by more than 5%" in str(check)
    assert {label: diff for label, _, _, diff in check.rows()}["completed requests"] is None  # 0 on vLLM's side


def test_the_vllm_command_is_the_same_load() -> None:
    command = vllm_bench_command("http://127.0.0.1:8000/v1", input_len=128, output_len=64, concurrency=4,
                                 requests=16, warmup=2, seed=0, result_file=Path("/tmp/r/result.json"))
    check = CrossCheck([], [], command, 1.0)
    shown = check.vllm_command
    assert shown.startswith("vllm bench serve --backend openai --base-url http://127.0.0.1:8000 ")
    for flag in ("--random-input-len 128", "--random-output-len 64", "--ignore-eos", "--max-concurrency 4",
                 "--num-prompts 16", "--num-warmups 2", "--endpoint /v1/completions"):
        assert flag in shown
    assert "--save-result" not in shown and "--result-dir /tmp/r" in " ".join(command)


# -- plots -------------------------------------------------------------------------------------------
@pytest.fixture
def sweep() -> Sweep:
    """Concurrency 1, 2 and 4 (faster per user, more in total), and 8, where every request failed."""
    runs = [_run(1, [0.1], duration=0.25), _run(2, [0.1, 0.3], duration=0.4), _run(4, [0.2] * 3 + [0.6], duration=0.8)]
    broken = RunResult({"workload": "completions", "concurrency": 8}, [RequestRecord(0, error="HTTP 500")],
                       metrics.compute([RequestRecord(0, error="HTTP 500")], 1.0, concurrency=8), {})
    return Sweep("completions", [1, 2, 4, 8], [*runs, broken], wall_s=3.0)


def _saved(fig, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    return path


def test_throughput_plot_has_one_point_per_completed_run(sweep: Sweep, tmp_path: Path) -> None:
    fig = plots.throughput(sweep)
    _saved(fig, tmp_path, "throughput")
    tokens, requests = fig.axes
    output, total = tokens.get_lines()
    assert list(output.get_xdata()) == [1, 2, 4]  # the failed run at 8 is left out
    assert list(output.get_ydata()) == pytest.approx([40.0, 50.0, 50.0])  # 10, 20, 40 tokens in .25, .4, .8 s
    assert list(total.get_ydata()) == pytest.approx([72.0, 90.0, 90.0])  # 8 prompt tokens a request too
    assert list(requests.get_lines()[0].get_ydata()) == pytest.approx([4.0, 5.0, 5.0])
    assert [t.get_text() for t in tokens.get_xticklabels()] == ["1", "2", "4"]
    assert (tokens.get_ylabel(), requests.get_ylabel()) == ("tokens/s", "requests/s")
    assert fig.get_suptitle() == "completions: throughput"


def test_tradeoff_plot_puts_speed_per_user_against_the_total(sweep: Sweep, tmp_path: Path) -> None:
    fig = plots.tradeoff(sweep)
    _saved(fig, tmp_path, "tradeoff")
    (ax,) = fig.axes
    (curve,) = ax.get_lines()
    assert list(curve.get_xdata()) == pytest.approx([40.0, 25.0, 12.5])  # per user: total / concurrency
    assert list(curve.get_ydata()) == pytest.approx([40.0, 50.0, 50.0])
    assert [t.get_text() for t in ax.texts] == ["c=1", "c=2", "c=4"]
    assert ax.get_xlim() == pytest.approx((0, 48.0)) and ax.get_ylim() == pytest.approx((0, 57.5))


def test_latency_plot_of_a_sweep_has_a_box_per_concurrency(sweep: Sweep, tmp_path: Path) -> None:
    fig = plots.latency(sweep)
    _saved(fig, tmp_path, "latency-sweep")
    ttft, tpot, e2el = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["TTFT", "TPOT", "end-to-end"]
    assert [t.get_text() for t in ttft.get_xticklabels()] == ["1", "2", "4"]
    medians = [line.get_ydata()[0] for line in ttft.get_lines() if line.get_color() == "C1"]
    assert medians == pytest.approx([100.0, 200.0, 200.0])  # ms: the median TTFT of each run
    assert ttft.get_ylabel() == "TTFT (ms)" and e2el.get_ylabel() == "end-to-end (ms)"


def test_latency_plot_of_one_run_is_a_histogram_of_its_requests(sweep: Sweep, tmp_path: Path) -> None:
    run = sweep.runs[2]
    fig = plots.latency(run)
    _saved(fig, tmp_path, "latency-run")
    ttft = fig.axes[0]
    heights = [bar.get_height() for bar in ttft.patches]
    assert sum(heights) == len(run.requests) and max(heights) == 3  # three requests at 200 ms, one at 600
    assert ttft.get_xlabel() == "TTFT (ms)" and ttft.get_ylabel() == "requests"


def test_vllm_bench_gets_the_lab_servers_key_never_an_openai_key(monkeypatch) -> None:
    from gptoss_lab.bench import vllm_bench

    monkeypatch.setenv("OPENAI_API_KEY", "sk-a-real-openai-key")
    assert vllm_bench.bench_env("lab-key")["OPENAI_API_KEY"] == "lab-key"
    assert vllm_bench.bench_env("")["OPENAI_API_KEY"] == "EMPTY"
