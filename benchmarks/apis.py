"""Benchmark: what the helpers cost on top of the raw SDK, against a real nano server.

    .venv/bin/python benchmarks/apis.py               # starts a nano server (or uses GPTOSS_LAB_BASE_URL)
    .venv/bin/python benchmarks/apis.py --calls 400 --streams 12

Three measurements, one table, and benchmarks/results/apis-<date>.json:

1. Latency of ``lab.chat()`` vs ``client.chat.completions.create()`` on the same
   scripted request, calls interleaved so both see the same server; medians and
   their ratio (target 1.02 or less).
2. Tokens/s of one scripted stream drawn by the notebook renderer
   (``lab.show_stream`` inside a real Jupyter kernel, so the HTML updates go
   over the kernel's message channel as in a notebook) vs plain iteration of
   the same stream in the same kernel; medians and ratio (target 0.98 or more).
3. A tool loop whose turn makes 4 calls that each sleep 1 s: wall time of the
   loop (target: about 1 s of tool time, not 4), with the calls run one after
   another for comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gptoss_lab as lab
from gptoss_lab.nano import script

SCRIPT = script.load()


def latency(calls: int) -> dict[str, float]:
    entry = SCRIPT.entry("serve.attach_check")
    messages = entry.request["messages"]
    raw_client, model = lab.client(), lab.model_name()
    raw, helper = [], []
    for _ in range(5):  # warm both paths (connections, lazy imports)
        raw_client.chat.completions.create(model=model, messages=messages, reasoning_effort="low")
        lab.chat(messages, effort="low")
    for i in range(calls):
        for kind in (("raw", "helper") if i % 2 == 0 else ("helper", "raw")):
            started = time.perf_counter()
            if kind == "raw":
                reply = raw_client.chat.completions.create(model=model, messages=messages, reasoning_effort="low")
                assert reply.choices[0].message.content == entry.reply.final
                raw.append(time.perf_counter() - started)
            else:
                result = lab.chat(messages, effort="low")
                assert result.final == entry.reply.final
                helper.append(time.perf_counter() - started)
    raw_ms, helper_ms = statistics.median(raw) * 1000, statistics.median(helper) * 1000
    return {"calls_each": calls, "raw_median_ms": round(raw_ms, 2), "helper_median_ms": round(helper_ms, 2),
            "ratio": round(helper_ms / raw_ms, 4)}


_KERNEL_CODE = """
import json, statistics, time
import gptoss_lab as lab
from gptoss_lab.nano import script
entry = script.load().entry("apis.cookbook_chat")
client, model = lab.client(), lab.model_name()
def make():
    return client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
                                          **entry.request)
def plain():
    started, tokens = time.perf_counter(), 0
    for chunk in make():
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return tokens / (time.perf_counter() - started)
def rendered():
    started = time.perf_counter()
    result = lab.show_stream(make())
    assert result.final == entry.reply.final, result.final
    return result.completion_tokens / (time.perf_counter() - started)
plain(); rendered()
rates = {"plain": [], "rendered": []}
for i in range(STREAMS):
    for kind in (("plain", "rendered") if i % 2 == 0 else ("rendered", "plain")):
        rates[kind].append(plain() if kind == "plain" else rendered())
print("RESULT " + json.dumps(rates))
"""


def stream_rate(streams: int) -> dict[str, float]:
    from jupyter_client.manager import start_new_kernel

    manager, kernel = start_new_kernel(kernel_name="python3", env={**os.environ})
    try:
        msg_id = kernel.execute(_KERNEL_CODE.replace("STREAMS", str(streams)))
        output, updates = "", 0
        while True:
            msg = kernel.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                output += msg["content"]["text"]
            elif kind in ("display_data", "update_display_data"):
                updates += 1
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    rates = json.loads(output.split("RESULT ", 1)[1])
    plain, rendered = statistics.median(rates["plain"]), statistics.median(rates["rendered"])
    return {"streams_each": streams, "plain_tokens_per_s": round(plain, 1),
            "rendered_tokens_per_s": round(rendered, 1), "ratio": round(rendered / plain, 4),
            "display_messages_per_rendered_stream": round(updates / (streams + 1), 1)}


def parallel_loop() -> dict[str, float]:
    from gptoss_lab.examples import slow_square

    first = SCRIPT.chain("tools.squares")[0]
    lab.run_tools(first.request["messages"], [slow_square])  # warm
    transcript = lab.run_tools(first.request["messages"], [slow_square])
    assert transcript.final == SCRIPT.chain("tools.squares")[-1].reply.final
    calls = transcript.turns[0].result.tool_calls
    started = time.monotonic()
    for call in calls:
        slow_square.run(call.arguments)
    sequential = time.monotonic() - started
    return {"calls": len(calls), "loop_wall_s": round(transcript.seconds, 2),
            "parallel_turn_tools_wall_s": round(transcript.turns[0].tools_seconds, 2),
            "tool_time_sum_s": round(sum(r.seconds for r in transcript.runs), 2),
            "same_calls_one_after_another_s": round(sequential, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="latency calls per variant (default 200)")
    parser.add_argument("--streams", type=int, default=10, help="streams per variant (default 10)")
    parser.add_argument("--only", choices=("latency", "stream", "parallel"), help="run one measurement")
    args = parser.parse_args()
    from gptoss_lab import process

    attach = bool(os.environ.get("GPTOSS_LAB_BASE_URL"))
    server = lab.serve("nano") if attach else lab.serve("nano", port=process.free_port())
    os.environ["GPTOSS_LAB_BASE_URL"] = server.url  # the kernel below attaches to it
    try:
        wanted = [args.only] if args.only else ["latency", "stream", "parallel"]
        measure = {"latency": lambda: latency(args.calls), "stream": lambda: stream_rate(args.streams),
                   "parallel": parallel_loop}
        results = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   **{name: measure[name]() for name in wanted}}
    finally:
        if not server.attached:
            server.stop()
    empty: dict = {}
    lat, stream, par = (results.get(k, empty) for k in ("latency", "stream", "parallel"))
    if lat:
        print(f"helpers vs raw SDK ({lat['calls_each']} calls each): median {lat['helper_median_ms']} ms vs "
              f"{lat['raw_median_ms']} ms, ratio {lat['ratio']} (target <= 1.02)")
    if stream:
        print(f"stream renderer vs plain iteration ({stream['streams_each']} streams each): "
              f"{stream['rendered_tokens_per_s']} vs {stream['plain_tokens_per_s']} tokens/s, ratio {stream['ratio']} "
              f"(target >= 0.98), {stream['display_messages_per_rendered_stream']} display messages per stream")
    if par:
        print(f"tool loop, one turn of {par['calls']} one-second calls: the calls took "
              f"{par['parallel_turn_tools_wall_s']} s wall ({par['tool_time_sum_s']} s of tool time; one after "
              f"another: {par['same_calls_one_after_another_s']} s); whole loop with its two model turns "
              f"{par['loop_wall_s']} s")
    suffix = f"-{args.only}" if args.only else ""
    out = Path(__file__).parent / "results" / f"apis-{results['date']}{suffix}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
