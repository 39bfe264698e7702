"""Serve several vLLM flag sets side by side on one GPU and benchmark them in alternation.

    python3 benchmarks/gpu_ab.py --res /tmp/ab --model-dir /tmp/models/gpt-oss-20b --util 0.30 \
        --server P=--async-scheduling --server "S@0.2=--async-scheduling --stream-interval 20" --reps 3 --c256 P

Runs on the GPU machine (docs/presets.md, 2026-11-28). Each flag set gets its own server
(port 8001, 8002, ...) and a share of the GPU memory (``--util``); servers start one after
another, the next once the previous is ready (``--stagger kv``: once it has allocated its KV
cache, as on 2026-11-28; vLLM's memory profiling counts whatever the device gains meanwhile).
Timed runs go to one server at a time while the others idle, in rounds that alternate the
order (P R S, S R P, ...), so a drift of the machine hits every flag set alike.
``vllm bench serve`` runs in this process (no 25 s import per run): the same code and
arguments as the command line, whose equivalent is logged per run.
Writes RES/summary.txt, RES/NAME.server.log and RES/NAME-LEVEL-rN.json (vLLM's result JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from gpu_presets import milestones, server_facts  # beside this file, here and in the GPU staging folder

PARSERS = ["--tool-call-parser", "openai", "--enable-auto-tool-choice", "--reasoning-parser", "openai_gptoss"]
VLLM = [sys.executable, "-m", "vllm.entrypoints.cli.main"]
SERVE = shlex.split(os.environ.get("AB_SERVE_CMD", "")) or [*VLLM, "serve"]  # AB_SERVE_CMD: a stand-in server for tests
# level -> (concurrency, prompts, input tokens, output tokens, warm-up requests); w* are untimed warm-ups
# that make the Triton JIT of the MoE routing kernels happen before the timed runs at that batch size.
LEVELS = {"b1": (1, 8, 1024, 512, 2), "w64": (64, 64, 1024, 16, 0), "c64": (64, 128, 1024, 1024, 4),
          "w256": (256, 256, 1024, 16, 0), "c256": (256, 256, 1024, 1024, 8)}
KEYS = ("completed", "failed", "duration", "output_throughput", "total_token_throughput", "median_ttft_ms",
        "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_itl_ms", "max_concurrency")
T0 = time.time()


class Run:
    """Where the results go, and the summary log."""

    def __init__(self, res: Path) -> None:
        self.res = res
        res.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def log(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S', time.gmtime())} +{time.time() - T0:5.0f}s] {text}"
        with self.lock, open(self.res / "summary.txt", "a") as f:
            f.write(line + "\n")
        print(line, flush=True)


class Server:
    """One ``vllm serve`` of one flag set on its own port."""

    def __init__(self, spec: str, port: int, args: argparse.Namespace, run: Run) -> None:
        head, self.flags = spec.split("=", 1)
        self.name, _, util = head.partition("@")
        self.util = float(util or args.util)
        self.port, self.run = port, run
        self.model_dir, self.served = args.model_dir, args.served
        self.cmd = ["serve", args.model_dir, "--served-model-name", args.served, "--load-format", "dummy",
                    "--host", "127.0.0.1", "--port", str(port), "--gpu-memory-utilization", str(self.util),
                    *shlex.split(self.flags), *PARSERS]
        self.log_path = run.res / f"{self.name}.server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.t_launch = 0.0
        self.ready_s: float | None = None

    def launch(self) -> None:
        self.run.log(f"{self.name} START: vllm {' '.join(self.cmd)}")
        self.t_launch = time.time()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([*SERVE, *self.cmd[1:]], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def healthy(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
            return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kv_allocated(self) -> bool:
        return "GPU KV cache size" in self.text() or "Graph capturing" in self.text()

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(40)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
        self.run.log(f"{self.name} stopped")

    def facts(self) -> dict[str, object]:
        text = self.text()
        return {**server_facts(text), "at_s": milestones(text, self.t_launch)} if self.t_launch else server_facts(text)


def smi(query: str) -> str:
    """One ``nvidia-smi --query-gpu`` line ("no nvidia-smi" on a machine without it)."""
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return "no nvidia-smi"


def start_all(servers: list[Server], run: Run, timeout: float, on_ready, stagger: str = "ready") -> None:  # noqa: ANN001
    """Launch the servers one after another; call ``on_ready(server)`` as each becomes ready.

    ``stagger="ready"`` launches the next server once the previous one answers; ``"kv"`` already once it
    has allocated its KV cache (faster, but on 2026-11-28 a fourth server started that way failed: vLLM's
    memory profiling, run while the others still grew, computed -108.87 GiB of KV cache memory).
    """
    pending = list(servers)
    launched: list[Server] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pending and (not launched or launched[-1].ready_s is not None or not launched[-1].alive()
                        or (stagger == "kv" and launched[-1].kv_allocated())):
            if launched and launched[-1].kv_allocated() and launched[-1].ready_s is None:
                time.sleep(8)  # the KV cache line comes just before the allocation
            server = pending.pop(0)
            server.launch()
            launched.append(server)
        for server in launched:
            if server.ready_s is None and server.alive() and server.healthy():
                server.ready_s = time.time() - server.t_launch
                others = [s.name for s in launched if s is not server and s.ready_s is None and s.alive()]
                run.log(f"{server.name} READY after {server.ready_s:.1f} s (launch to /health 200; "
                        f"starting beside it: {others or 'none'}) {server.facts()}")
                on_ready(server)
        if all(s.ready_s is not None or (s in launched and not s.alive()) for s in servers):
            break
        time.sleep(0.5)
    for server in servers:
        if server.ready_s is None:
            tail = [ln for ln in server.text().splitlines() if re.search(r"Error|error|memory|Traceback", ln)][-8:]
            run.log(f"{server.name} FAILED (alive={server.alive()}): " + " | ".join(ln[:300] for ln in tail))


def _parser():  # noqa: ANN202
    from vllm.benchmarks import serve as vb

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        try:
            from vllm.utils import FlexibleArgumentParser  # type: ignore[attr-defined,no-redef]
        except ImportError:
            FlexibleArgumentParser = argparse.ArgumentParser  # type: ignore[misc,assignment]  # noqa: N806
    parser = FlexibleArgumentParser()
    vb.add_cli_args(parser)
    return vb, parser


def bench(server: Server, level: str, tag: str, run: Run) -> dict[str, object] | None:
    """Run ``vllm bench serve`` at ``level`` against ``server``; return vLLM's result."""
    c, n, i, o, w = LEVELS[level]
    name = f"{server.name}-{level}-{tag}.json"
    argv = ["--backend", "openai", "--base-url", f"http://127.0.0.1:{server.port}", "--endpoint", "/v1/completions",
            "--model", server.served, "--tokenizer", server.model_dir,
            "--dataset-name", "random", "--random-input-len", str(i), "--random-output-len", str(o), "--ignore-eos",
            "--max-concurrency", str(c), "--num-prompts", str(n), "--num-warmups", str(w), "--request-rate", "inf",
            "--seed", "0", "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
            "--disable-tqdm", "--save-result", "--result-dir", str(run.res), "--result-filename", name]
    run.log(f"{server.name}/{level}/{tag} BENCH: vllm bench serve {' '.join(argv)}")
    t = time.time()
    result: dict[str, object] | None = None
    try:
        vb, parser = _parser()
        result = vb.main(parser.parse_args(argv))
    except Exception as exc:  # noqa: BLE001  (in-process failed: the command line instead)
        run.log(f"{server.name}/{level}/{tag} in-process bench failed ({type(exc).__name__}: {exc}); CLI instead")
        subprocess.run([*VLLM, "bench", "serve", *argv], capture_output=True, timeout=600)
    path = run.res / name
    if path.exists():
        result = json.loads(path.read_text())
    if not result:
        run.log(f"{server.name}/{level}/{tag} NO RESULT after {time.time() - t:.0f} s")
        return None
    run.log(f"{server.name}/{level}/{tag} RESULT ({time.time() - t:.0f} s wall): "
            f"out {_f(result, 'output_throughput', 0)} tok/s, total {_f(result, 'total_token_throughput', 0)} tok/s, "
            f"TTFT med {_f(result, 'median_ttft_ms', 1)} p99 {_f(result, 'p99_ttft_ms', 0)} ms, "
            f"TPOT med {_f(result, 'median_tpot_ms', 2)} ms, done {result.get('completed')} "
            f"failed {result.get('failed')} in {_f(result, 'duration', 1)} s")
    return result


def _spread(rows: list[dict[str, object]]) -> dict[str, object]:
    """Median and [lowest, highest] of each headline figure over the repeats of one server and load."""
    out: dict[str, object] = {"n": len(rows)}
    for k in ("output_throughput", "median_ttft_ms", "median_tpot_ms"):
        values = [float(x[k] or 0) for x in rows]  # type: ignore[arg-type]
        out[k] = statistics.median(values)
        out[f"{k}_range"] = [min(values), max(values)]
    return out


def _f(result: dict[str, object], key: str, digits: int) -> str:
    value = result.get(key)
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def crosscheck(server: Server, run: Run, concurrency: int, requests: int, output_len: int, repeats: int) -> None:
    """The lab's load generator vs ``vllm bench serve``, alternating pairs (gptoss_lab.bench.crosscheck)."""
    os.environ["GPTOSS_LAB_BASE_URL"] = f"http://127.0.0.1:{server.port}/v1"
    call = (f"gptoss_lab.bench.crosscheck(input_len=1024, output_len={output_len}, concurrency={concurrency}, "
            f"requests={requests}, warmup=2, repeats={repeats}, progress=False)")
    run.log(f"{server.name}/crosscheck c{concurrency} START: {call}")
    t = time.time()
    try:
        from gptoss_lab import bench as lab_bench

        cc = lab_bench.crosscheck(input_len=1024, output_len=output_len, concurrency=concurrency,
                                  requests=requests, warmup=2, repeats=repeats, progress=False)
        (run.res / f"crosscheck-c{concurrency}.json").write_text(json.dumps(cc.to_dict(), indent=1, default=str))
        run.log(f"{server.name}/crosscheck c{concurrency} RESULT ({time.time() - t:.0f} s wall): {cc.summary()}\n{cc}")
    except Exception as exc:  # noqa: BLE001
        import traceback

        run.log(f"{server.name}/crosscheck c{concurrency} FAILED: {type(exc).__name__}: {exc}\n"
                + traceback.format_exc()[-1500:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=Path, default=Path("/tmp/ab"))
    ap.add_argument("--model-dir", default="/tmp/models/gpt-oss-20b")
    ap.add_argument("--served", default="openai/gpt-oss-20b")
    ap.add_argument("--util", type=float, default=0.3, help="--gpu-memory-utilization of every server")
    ap.add_argument("--server", action="append", default=[], help="NAME=FLAGS or NAME@UTIL=FLAGS, in launch order")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--b1", default="", help="servers that get b1 each round (default: all; none: no b1)")
    ap.add_argument("--c256", default="", help="servers timed at 256 users (one run each, after the rounds)")
    ap.add_argument("--crosscheck", default="", help="server for lab.bench vs vllm bench serve at 1 and 64 users")
    ap.add_argument("--cc-repeats", type=int, default=2)
    ap.add_argument("--start-timeout", type=float, default=1500)
    ap.add_argument("--port0", type=int, default=8001)
    ap.add_argument("--start-only", action="store_true",
                    help="only start the servers (their start-up figures), then stop them: no benchmark")
    ap.add_argument("--stagger", choices=("ready", "kv"), default="ready",
                    help="launch the next server once the previous is ready (safe) or has its KV cache")
    args = ap.parse_args()
    run = Run(args.res)
    gpu = smi("name,memory.total,driver_version")
    run.log(f"device: {gpu}")
    asked = subprocess.Popen([sys.executable, "-c", "import sys, torch, vllm, triton; print('python', "
                              "sys.version.split()[0], 'torch', torch.__version__, 'vllm', vllm.__version__, "
                              "'triton', triton.__version__)"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)  # beside the first start: importing vLLM takes a while
    servers = [Server(spec, args.port0 + k, args, run) for k, spec in enumerate(args.server)]
    by_name = {s.name: s for s in servers}
    warmed: list[Server] = []
    c256 = [by_name[n] for n in args.c256.split(",") if n]

    def warm(server: Server) -> None:  # untimed: JIT of the MoE kernels at these batch sizes
        warmed.append(server)

    start_all(servers, run, args.start_timeout, warm, args.stagger)
    versions = asked.communicate()[0].strip()
    run.log(f"versions: {versions}")
    up = [s for s in servers if s.ready_s is not None]
    run.log(f"GPU memory with every server up: {smi('memory.used,memory.total')}")
    for s in up if not args.start_only else []:
        bench(s, "w64", "warm", run)
        if s in c256:
            bench(s, "w256", "warm", run)
    b1 = [] if args.b1 == "none" else [by_name[n] for n in args.b1.split(",") if n] or up
    results: dict[str, dict[str, list[dict[str, object]]]] = {s.name: {} for s in up}
    for r in range(1, 0 if args.start_only else args.reps + 1):
        order = up if r % 2 else up[::-1]
        for level in ("b1", "c64"):
            for s in order:
                if level == "b1" and s not in b1:
                    continue
                res = bench(s, level, f"r{r}", run)
                if res:
                    results[s.name].setdefault(level, []).append({k: res.get(k) for k in KEYS})
        run.log(f"ROUND {r} DONE")
    for s in (x for x in up if x in c256):
        res = bench(s, "c256", "r1", run)
        if res:
            results[s.name].setdefault("c256", []).append({k: res.get(k) for k in KEYS})
    if args.crosscheck and by_name.get(args.crosscheck) in up:
        s = by_name[args.crosscheck]
        crosscheck(s, run, 1, 8, 256, args.cc_repeats)
        crosscheck(s, run, 64, 128, 256, args.cc_repeats)
    medians = {name: {level: _spread(rows) for level, rows in levels.items()} for name, levels in results.items()}
    out = {"device": gpu, "versions": versions, "util": args.util,
           "servers": [{"name": s.name, "flags": s.flags, "util": s.util, "command": "vllm " + " ".join(s.cmd),
                        "launch_to_ready_s": s.ready_s, **s.facts()} for s in servers],
           "runs": results, "medians": medians}
    (args.res / "ab.json").write_text(json.dumps(out, indent=1) + "\n")
    run.log("MEDIANS " + json.dumps(medians))
    for s in servers:
        s.stop()
    run.log("ALL DONE")
    (args.res / "DONE").touch()


if __name__ == "__main__":
    main()
