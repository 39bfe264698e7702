"""The benchmark: metric arithmetic, the roofline, saved results, and real runs against gpt-oss-nano.

The arithmetic is checked on recorded timings (and against vLLM's own
``calculate_metrics``); the load generator runs against the session's real vLLM
server, and against a port where nothing listens.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import threading

import pytest

import gptoss_lab as lab
from gptoss_lab import process
from gptoss_lab.bench import metrics, workloads
from gptoss_lab.bench.metrics import RequestRecord
from gptoss_lab.nano import script

SCRIPT = script.load()


def _recorded() -> list[RequestRecord]:
    """Three requests: two completed (5 and 3 tokens), one failed."""
    return [
        RequestRecord(index=0, ok=True, start=0.0, ttft=0.2, itl=[0.1, 0.1, 0.1, 0.1], latency=0.6,
                      prompt_tokens=10, output_tokens=5, usage_reported=True),
        RequestRecord(index=1, ok=True, start=0.5, ttft=0.4, itl=[0.2, 0.2], latency=0.8,
                      prompt_tokens=10, output_tokens=3, usage_reported=True),
        RequestRecord(index=2, error="HTTP 400: too long", start=0.5),
    ]


# -- arithmetic --------------------------------------------------------------------------
def test_percentile_interpolates_like_numpy() -> None:
    values = [3.0, 1.0, 4.0, 1.5, 9.0]
    assert metrics.percentile(values, 50) == 3.0
    assert metrics.percentile(values, 99) == pytest.approx(9.0 - 0.04 * 5.0)  # rank 3.96 between 4.0 and 9.0
    assert metrics.percentile(values, 0) == 1.0 and metrics.percentile([], 99) == 0.0


def test_metrics_from_recorded_timings() -> None:
    m = metrics.compute(_recorded(), duration=2.0, concurrency=2)
    assert (m.completed, m.failed, m.errors) == (2, 1, {"HTTP 400: too long": 1})
    assert (m.total_input_tokens, m.total_output_tokens) == (20, 8)
    assert m.request_throughput == 1.0 and m.output_throughput == 4.0 and m.total_token_throughput == 14.0
    assert m.users == 2 and m.tokens_per_user == 2.0
    lat = m.latency_ms
    assert lat["ttft"]["mean"] == pytest.approx(300) and lat["ttft"]["median"] == pytest.approx(300)
    assert lat["ttft"]["std"] == pytest.approx(100)  # population std, as np.std
    # TPOT = (e2e - ttft) / (tokens - 1): (0.6-0.2)/4 = 0.1 s and (0.8-0.4)/2 = 0.2 s
    assert lat["tpot"]["mean"] == pytest.approx(150)
    assert lat["itl"]["median"] == pytest.approx(100) and lat["itl"]["mean"] == pytest.approx(800 / 6)
    assert lat["e2el"]["p99"] == pytest.approx(600 + 0.99 * 200)
    assert m.max_concurrent_requests == 2
    flat = m.flat()
    assert flat["median_ttft_ms"] == pytest.approx(300) and flat["errors"] == "1 x HTTP 400: too long"


def test_users_fall_back_to_the_rate_then_the_peak() -> None:
    assert metrics.compute(_recorded(), 2.0, rate=4.0).users == 4.0
    assert metrics.compute(_recorded(), 2.0).users == 2  # two requests in flight in the same second


@pytest.mark.slow
@pytest.mark.vllm
def test_metrics_match_vllm_calculate_metrics() -> None:
    """The same recorded requests through vLLM's own `calculate_metrics` (vllm bench serve) give the same numbers."""
    code = """
import json, sys
from vllm.benchmarks.lib.endpoint_request_func import RequestFuncOutput
from vllm.benchmarks.serve import calculate_metrics
rows = json.loads(sys.stdin.read())
outs = [RequestFuncOutput(success=r["ok"], latency=r["latency"], output_tokens=r["output_tokens"], ttft=r["ttft"],
                          itl=r["itl"], prompt_len=r["prompt_tokens"], start_time=r["start"], error=r["error"])
        for r in rows]
m, _ = calculate_metrics([], outs, 2.0, None, [99.0], {})
print(json.dumps({k: (float(v) if not isinstance(v, list) else v) for k, v in vars(m).items()}))
"""
    records = _recorded()
    rows = [{k: getattr(r, k) for k in ("ok", "latency", "output_tokens", "ttft", "itl", "prompt_tokens", "start",
                                         "error")} for r in records]
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(rows), capture_output=True, text=True,
                          timeout=300, check=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = metrics.compute(records, 2.0, concurrency=2).flat()
    for key in ("completed", "failed", "total_output", "request_throughput", "output_throughput",
                "total_token_throughput", "max_output_tokens_per_s", "max_concurrent_requests"):
        mine = ours["total_output_tokens" if key == "total_output" else key]
        assert mine == pytest.approx(theirs[key]), key
    for name in metrics.METRICS:
        for stat in ("mean", "median", "std"):
            assert ours[f"{stat}_{name}_ms"] == pytest.approx(theirs[f"{stat}_{name}_ms"]), (stat, name)
        assert ours[f"p99_{name}_ms"] == pytest.approx(theirs[f"percentiles_{name}_ms"][0][1]), name


def test_a_reasoning_delta_is_a_token() -> None:
    reasoning = workloads.read_event("chat", {"choices": [{"delta": {"reasoning": "Think"}}]})
    assert reasoning.token and reasoning.reasoning == "Think" and not reasoning.text
    role_only = workloads.read_event("chat", {"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    assert not role_only.token
    usage = workloads.read_event("chat", {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 9}})
    assert usage.usage == {"prompt_tokens": 7, "output_tokens": 9} and not usage.token
    event = workloads.read_event("responses", {"type": "response.reasoning_text.delta", "delta": "Hm"})
    assert event.token and event.reasoning == "Hm"
    done = workloads.read_event("responses", {"type": "response.completed",
                                              "response": {"usage": {"input_tokens": 3, "output_tokens": 4}}})
    assert done.usage == {"prompt_tokens": 3, "output_tokens": 4}
    assert workloads.read_event("completions", {"choices": [{"text": ""}]}).token  # vLLM counts every step


def test_request_bodies() -> None:
    chat = workloads.Workload("chat").body("m")
    assert chat["messages"] == SCRIPT.entry("bench.chat").request["messages"]
    assert chat["reasoning_effort"] == "low" and chat["stream_options"] == {"include_usage": True}
    responses = workloads.Workload("responses").body("m")
    assert {k: responses[k] for k in ("input", "reasoning")} == SCRIPT.entry("bench.responses").request
    completions = workloads.Workload("completions", input_len=32, output_len=8)
    body = completions.body("m", 3)
    assert len(body["prompt"]) == 32 and body["max_tokens"] == 8 and body["ignore_eos"] is True
    assert body == completions.body("m", 3) and body["prompt"] != completions.body("m", 4)["prompt"]


def test_arrivals() -> None:
    assert lab.bench.arrivals(3, None) == [0.0, 0.0, 0.0]
    times = lab.bench.arrivals(20, 4.0, seed=1)
    assert times == sorted(times) and times[-1] == pytest.approx(5.0)  # rescaled to n / rate, as vLLM does
    assert lab.bench.levels(8) == [1, 2, 4, 8] and lab.bench.levels(6) == [1, 2, 4, 6]


# -- roofline ----------------------------------------------------------------------------
def test_roofline_of_gpt_oss_20b_on_h100() -> None:
    r = lab.bench.roofline("openai/gpt-oss-20b", gpu="H100", context=1024, measured=250.0)
    shape = r.model
    attention = 2880 * (4096 + 2 * 512) + 4096 * 2880 + (4096 + 2 * 512 + 2880) + 64
    expert = 3 * 2880 * 2880 + (2 * 2880 + 2880)
    router, norms = 2880 * 32 + 32, 2 * 2880
    assert shape.total_params == 24 * (attention + router + norms + 32 * expert) + 2 * 201088 * 2880 + 2880
    assert shape.total_params == 20_914_757_184  # the published 20.9 B
    active = 24 * (attention + router + norms + 4 * expert) + 201088 * 2880 + 2 * 2880
    assert shape.active_params == active == 3_608_310_144  # the published 3.6 B active
    mxfp4 = 24 * 4 * 3 * 2880 * 2880
    assert shape.weight_bytes("mxfp4") == pytest.approx(mxfp4 * 4.25 / 8 + (active - mxfp4) * 2)
    assert shape.weight_bytes("bf16") == active * 2
    kv = 2 * 8 * 64 * 2 * (12 * 1024 + 12 * 128)  # 12 full layers read 1024 tokens, 12 sliding ones 128
    assert shape.kv_bytes_read(1024) == kv
    assert r.ceiling("mxfp4") == pytest.approx(3.35e12 / (mxfp4 * 4.25 / 8 + (active - mxfp4) * 2 + kv))
    assert round(r.ceiling()) == 897 and r.fraction == pytest.approx(250 / r.ceiling())
    text = str(r)
    assert "3.708 GB" in text and "896.6 tokens/s" in text and "27.9%" in text


def test_roofline_of_120b_and_of_a_config() -> None:
    big = lab.bench.roofline("openai/gpt-oss-120b", gpu="NVIDIA H200", context=0)
    assert big.model.total_params == 116_829_156_672 and big.model.active_params == 5_132_852_352
    assert big.bandwidth == 4.8e12
    config = {"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 128, "num_local_experts": 2,
              "num_experts_per_tok": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64,
              "vocab_size": 201088, "layer_types": ["full_attention"] * 2, "sliding_window": None}
    nano = lab.bench.roofline(config, bandwidth_tbs=0.01, context=100, measured=10.0)
    assert nano.model.format == "bf16"  # no quantization_config: experts are bf16 too
    assert nano.bytes_per_token("bf16") == nano.model.active_params * 2 + 2 * 1 * 64 * 2 * 2 * 100
    with pytest.raises(lab.bench.RooflineError, match="bandwidth_tbs"):
        lab.bench.roofline("openai/gpt-oss-20b", gpu="Radeon 7900")


# -- results -----------------------------------------------------------------------------
def test_save_and_load_keep_metadata(tmp_path) -> None:
    records = _recorded()
    meta = {"date": "2026-11-26T02:00:00+00:00", "vllm_version": "0.32.0", "device": "CPU: x86_64, 2 cores",
            "server_flags": "--max-model-len 4096", "model": "gpt-oss-nano"}
    run = lab.bench.RunResult({"workload": "chat", "concurrency": 2, "requests": 3}, records,
                              metrics.compute(records, 2.0, concurrency=2), meta)
    sweep = lab.bench.Sweep("chat", [2], [run], wall_s=3.5)
    json_path, csv_path = lab.bench.save(sweep, tmp_path / "out" / "sweep.json")
    assert json_path.name == "sweep.json" and csv_path.name == "sweep.csv"
    back = lab.bench.load(json_path)
    assert isinstance(back, lab.bench.Sweep) and back.wall_s == 3.5
    assert back.runs[0].requests == records and back.runs[0].metrics == run.metrics
    [row] = list(csv.DictReader(csv_path.open()))
    assert row["meta_vllm_version"] == "0.32.0" and row["meta_server_flags"] == "--max-model-len 4096"
    assert float(row["output_throughput"]) == 4.0 and row["failed"] == "1"
    assert "1 of 3 requests failed: 1 x HTTP 400: too long" in str(sweep)


# -- failures without a server -----------------------------------------------------------
def test_a_dead_server_gives_all_failed_and_a_clear_message() -> None:
    url = f"http://127.0.0.1:{process.free_port()}/v1"
    result = lab.bench.run("chat", requests=3, base_url=url, progress=False)
    assert result.metrics.completed == 0 and result.failed == 3 and not result.ok
    assert "cannot connect to" in result.message and "gptoss-lab serve" in result.message
    sweep = lab.bench.sweep("chat", [1, 2], requests=2, base_url=url, progress=False)
    assert len(sweep.runs) == 1 and "stopped at concurrency 1" in sweep.note


def test_a_connection_dropped_mid_stream_is_counted() -> None:
    """A server that answers /models, starts a stream and then closes the socket (as a crashed server does)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the test closed the listener
            request = conn.recv(65536).decode()
            if request.startswith("GET"):  # /models, /version
                body = b'{"data": [{"id": "m", "root": "m"}], "version": "none"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
            else:
                chunk = b'data: {"choices": [{"delta": {"reasoning": "Hm"}}]}\n\n'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                             + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    result = lab.bench.run("chat", requests=2, warmup=0, concurrency=1, base_url=f"http://127.0.0.1:{port}/v1",
                           progress=False)
    listener.close()
    assert result.failed == 2
    assert all("closed the connection mid-response" in r.error for r in result.requests)


def test_cli_bench_reports_a_dead_server(tmp_path) -> None:
    url = f"http://127.0.0.1:{process.free_port()}/v1"
    done = subprocess.run([sys.executable, "-m", "gptoss_lab.cli", "bench", "--base-url", url, "--requests", "2",
                           "--out", str(tmp_path / "dead")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "2 of 2 requests failed" in done.stdout
    assert json.loads((tmp_path / "dead.json").read_text())["metrics"]["failed"] == 2


# -- against the real server -------------------------------------------------------------
@pytest.mark.server
@pytest.mark.parametrize("workload", ["chat", "responses"])
def test_scripted_workloads_count_reasoning_as_output(nano_server, workload: str) -> None:
    entry = SCRIPT.entry(f"bench.{workload}")
    result = lab.bench.run(workload, requests=2, concurrency=2, warmup=0, progress=False)
    assert result.ok, result.message
    for r in result.requests:
        assert r.reasoning == entry.reply.reasoning and r.text == entry.reply.final
        assert r.usage_reported and r.output_tokens > len(r.itl)  # usage counts every token, chunks are fewer
        assert r.answer_ttft is not None and r.ttft < r.answer_ttft < r.latency  # the first token is reasoning
    assert result.meta["model"] == "gpt-oss-nano" and result.meta["vllm_version"]
    assert result.metrics.latency_ms["ttft"]["median"] > 0 and result.metrics.output_throughput > 0


@pytest.mark.server
def test_completions_generate_exactly_the_requested_lengths(nano_server) -> None:
    result = lab.bench.run("completions", requests=3, concurrency=3, warmup=1, input_len=32, output_len=12,
                           progress=False)
    assert result.ok, result.message
    assert [(r.prompt_tokens, r.output_tokens) for r in result.requests] == [(32, 12)] * 3
    assert result.metrics.total_output_tokens == 36
    for r in result.requests:  # a busy server may send two tokens in one chunk: at most 11 gaps, not exactly
        assert 1 <= len(r.itl) <= 11 and min(r.itl) >= 0
        assert r.ttft + sum(r.itl) == pytest.approx(r.latency)  # the gaps fill the time from first to last token


@pytest.mark.server
def test_a_request_the_server_rejects_is_counted(nano_server) -> None:
    result = lab.bench.run("completions", requests=2, warmup=0, input_len=5000, output_len=8, progress=False)
    assert result.failed == 2 and result.metrics.completed == 0
    assert result.requests[0].error.startswith("HTTP 400:") and "context" in result.requests[0].error
    assert "2 of 2 requests failed: 2 x HTTP 400" in result.message


@pytest.mark.server
def test_roofline_of_the_served_model(nano_server) -> None:
    r = lab.bench.roofline(bandwidth_tbs=0.01, measured=20.0)
    assert r.model.name == "gpt-oss-nano" and r.model.layers == 2 and r.model.format == "bf16"
    assert r.fraction == pytest.approx(20.0 / r.ceiling())
