"""Collect a `scripts/gpu-lane.sh perf` run into one JSON file and a Markdown table.

    python benchmarks/gpu_presets.py RESULTS_DIR... [--out benchmarks/results/presets-h100-DATE.json]

Each RESULTS_DIR is one perf stage run's $RES (summary.txt, PHASE-LEVEL.json from `vllm bench serve`,
PHASE.server.log). Each row is one server start of one flag set: its launch-to-ready seconds
and, per load level, the figures `vllm bench serve` saved. docs/presets.md shows the table.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

LEVELS = ("b1", "c64")  # w64 only warms the JIT at 64 users; it is kept in the JSON, not the table
FIELDS = ("completed", "duration", "output_throughput", "total_token_throughput", "median_ttft_ms",
          "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_itl_ms", "max_concurrency")


def collect(res: Path) -> dict[str, object]:
    """Return the run's device, versions, and one record per server start in ``res``."""
    summary = (res / "summary.txt").read_text()
    device = re.search(r"device: (.*)", summary)
    versions = re.search(r"versions: (.*)", summary)
    starts: list[dict[str, object]] = []
    for m in re.finditer(r"(\S+) START: vllm (.*)\n(?:.*\n)*?.*?\1 (READY|FAILED) after ([\d.]+) s", summary):
        name, command, state, seconds = m.groups()
        record: dict[str, object] = {"phase": name, "command": f"vllm {command}", "ready": state == "READY",
                                     "launch_to_ready_s": float(seconds)}
        record.update(_server_facts(res / f"{name}.server.log"))
        for level in (*LEVELS, "w64"):
            path = res / f"{name}-{level}.json"
            if path.exists():
                data = json.loads(path.read_text())
                record[level] = {k: data.get(k) for k in FIELDS}
        starts.append(record)
    return {"device": device.group(1) if device else None, "versions": versions.group(1) if versions else None,
            "starts": starts}


FACT_PATTERNS = (
    ("torch_compile_s", r"torch\.compile (?:takes|took) ([\d.]+) s in total"),
    ("graph_capture_s", r"Graph capturing finished in ([\d.]+) secs"),
    ("init_engine_s", r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+)"),
    ("kv_cache_tokens", r"GPU KV cache size: ([\d,]+) tokens"),
    ("model_load_s", r"Model loading took [\d.]+ GiB memory and ([\d.]+) seconds"),
)
"""What a vLLM 0.26 server log says about its start, as (key, regex with one number)."""


def server_facts(text: str) -> dict[str, object]:
    """Start-up figures and the count of Triton JIT compiles after start, read from a server log's text."""
    facts: dict[str, object] = {}
    for key, pattern in FACT_PATTERNS:
        found = re.findall(pattern, text)
        if found:
            facts[key] = float(found[-1].replace(",", ""))
    # Triton JIT compiles after start (MoE routing kernels); the server log says when, the summary which bench ran then.
    facts["triton_jit_after_start"] = len(re.findall(r"JIT compilation during inference", text))
    return facts


MILESTONES = (
    ("api_args", r"non-default args"),
    ("engine_init", r"Initializing a V1 LLM engine"),
    ("weights_loaded", r"Model loading took"),
    ("compiled", r"torch\.compile (?:takes|took) [\d.]+ s in total"),
    ("kv_cache", r"GPU KV cache size"),
    ("graphs_captured", r"Graph capturing finished"),
    ("engine_ready", r"init engine \(profile, create kv cache, warmup model\) took"),
    ("api_up", r"Application startup complete"),
)
"""Where a vLLM 0.26 start is, in order: the API server parsed its arguments (its imports done), the engine
process began, weights loaded, torch.compile done, KV cache sized, CUDA graphs captured, engine ready, HTTP up."""
LOG_TIME = re.compile(r"\b(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? \[")


def milestones(text: str, launch: float) -> dict[str, float]:
    """Seconds from ``launch`` (epoch seconds, this machine's clock) to the first log line of each milestone.

    vLLM stamps its lines in local time to the second; the launch is taken to the second too, so each
    figure is good to about 1 s.
    """
    import datetime as dt

    start = dt.datetime.fromtimestamp(int(launch))
    found: dict[str, float] = {}
    for line in text.splitlines():
        stamp = LOG_TIME.search(line)
        if not stamp:
            continue
        for key, pattern in MILESTONES:
            if key not in found and re.search(pattern, line):
                mo, d, h, mi, sec = (int(x) for x in stamp.groups())
                when = dt.datetime(start.year, mo, d, h, mi, sec)
                found[key] = round((when - start).total_seconds(), 1)
    return {key: found[key] for key, _ in MILESTONES if key in found}


def _server_facts(log: Path) -> dict[str, object]:
    return server_facts(log.read_text(errors="replace") if log.exists() else "")


def table(run: dict[str, object]) -> str:
    """Return one Markdown row per start and load level."""
    rows = ["| phase | ready s | load | output tok/s | total tok/s | median TTFT ms | median TPOT ms |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for s in run["starts"]:  # type: ignore[union-attr]
        if not s["ready"]:
            rows.append(f"| {s['phase']} | failed after {s['launch_to_ready_s']:.0f} | | | | | |")
            continue
        for level in LEVELS:
            b = s.get(level)
            if not b:
                continue
            rows.append(f"| {s['phase']} | {s['launch_to_ready_s']:.0f} | {level} | {b['output_throughput']:,.0f} | "
                        f"{b['total_token_throughput']:,.0f} | {b['median_ttft_ms']:,.0f} | "
                        f"{b['median_tpot_ms']:.2f} |")
        if not any(s.get(level) for level in LEVELS):
            rows.append(f"| {s['phase']} | {s['launch_to_ready_s']:.0f} | (start only) | | | | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("res", type=Path, nargs="+", help="one $RES per run, in the order they ran")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--date", default="2026-11-27")
    args = parser.parse_args()
    runs = [{"results_dir": str(res), **collect(res)} for res in args.res]
    out = args.out or Path(__file__).parent / "results" / f"presets-h100-{args.date}.json"
    out.write_text(json.dumps({"date": args.date, "runs": runs}, indent=1) + "\n")
    for run in runs:
        print(f"{run['results_dir']}: {run['device']}; {run['versions']}")
        print(table(run))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
