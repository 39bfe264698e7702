"""The ``gptoss-lab`` command: doctor, vocab, nano, serve, host, verify, lab, bench."""

from __future__ import annotations

import argparse
import signal
import sys

from gptoss_lab.errors import LabError


def _doctor(_: argparse.Namespace) -> int:
    from gptoss_lab.doctor import doctor

    report = doctor()
    report.print()
    return 0 if report.ok else 1


def _vocab(args: argparse.Namespace) -> int:
    from gptoss_lab import vocab

    status = vocab.locate(allow_download=not args.offline)
    print(f"{status.path} (verified sha256, from {status.source})")
    print(f"export {vocab.ENV}={status.folder}")
    return 0


def _nano(args: argparse.Namespace) -> int:
    from gptoss_lab import nano

    if args.plain:
        from gptoss_lab.nano import plain

        folder = plain.path(build_if_missing=False) if args.action == "path" else plain.build(force=args.force)
        print(folder)
        return 0
    if args.action == "path":
        print(nano.path(build_if_missing=False))
        return 0
    folder = nano.build(force=args.force, fresh=args.fresh)
    print(folder)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gptoss_lab.launch import serve

    server = serve(args.model, host=args.host, port=args.port, weights="dummy" if args.dummy_weights else "real")
    if server.attached:
        print(f"A server is already running at {server.url}; nothing started.")
        return 0
    print(f"Serving {server.model_id()} at {server.url} (log: {server.log_path}). Ctrl-C stops it.")
    if args.dummy_weights:
        from gptoss_lab.dummy import NOTE

        print(NOTE)
    return server.watch_until_signal()


def _stop(args: argparse.Namespace) -> int:
    from gptoss_lab.registry import orphans, stop_port

    if args.port is None:
        found = orphans()
        for record in found:
            stop_port(int(record["port"]))
            print(f"stopped orphaned server on port {record['port']} ({record['model']})")
        if not found:
            print("no orphaned lab server found")
        return 0
    if stop_port(args.port):
        print(f"stopped the lab server on port {args.port}")
        return 0
    print(f"no server started by the lab is running on port {args.port} (nothing stopped)", file=sys.stderr)
    return 1


def _lab(args: argparse.Namespace) -> int:
    """Start (or attach to) the model server, then JupyterLab, and watch both until Ctrl-C.

    Ctrl-C (or SIGTERM) stops JupyterLab gracefully, as its own SIGTERM handler does (kernels are shut
    down, so they stop the servers they started), then the server this command started (never an
    attached one). If that server dies, the cause and its log are printed at once; JupyterLab keeps
    running so work can be saved, and the command exits 1 when it ends.
    """
    import os
    import secrets

    from gptoss_lab import process
    from gptoss_lab.errors import ServerError
    from gptoss_lab.launch import serve

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # during the server's start: serve() stops what it started

    signal.signal(signal.SIGTERM, _terminate)
    server = serve(args.model)
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(16)
    env = {**os.environ, "GPTOSS_LAB_BASE_URL": server.url, "JUPYTER_TOKEN": token}
    if server.api_key:
        env["GPTOSS_LAB_API_KEY"] = server.api_key
    print(f"Model server: {server.url} ({'attached' if server.attached else 'started'}, log: {server.log_path})")
    print(f"JupyterLab:   http://127.0.0.1:{args.jupyter_port}/lab?token={token}", flush=True)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={args.jupyter_port}",
        "--ip=127.0.0.1", f"--notebook-dir={args.notebooks}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and cloud VMs often run as root
    stops = {signal.SIGINT, signal.SIGTERM}
    died = False
    try:
        # Its own session, so Ctrl-C reaches only this command (JupyterLab would ask "Shut down?"); it dies with us.
        jupyter = process.spawn(command, env=env, log_path=None)
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # after the spawn: children must not inherit the mask
        while True:
            received = signal.sigtimedwait(stops, 1.0)
            if received is not None:
                code = 128 + received.si_signo
                break
            if jupyter.poll() is not None:
                code = jupyter.returncode
                break
            if not died:
                try:
                    server.check_alive()
                except ServerError as error:
                    died = True
                    print(f"\n{error}\n\nJupyterLab keeps running so you can save your work, but the notebooks have "
                          "no model server now. Press Ctrl-C and run `gptoss-lab lab` again to start one.",
                          file=sys.stderr, flush=True)
        print("Stopping JupyterLab (its kernels stop the servers they started)...", file=sys.stderr, flush=True)
        process.stop_group(jupyter.pid, grace=60.0, proc=jupyter)
    except KeyboardInterrupt:
        code = 130
    finally:
        server.stop()  # a no-op for a server this command only attached to
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    return 1 if died else code


def _bench(args: argparse.Namespace) -> int:
    """Benchmark the running server: one run, or a sweep over several concurrencies; print and save."""
    from gptoss_lab import bench

    common = {"requests": args.requests, "rate": args.rate, "warmup": args.warmup, "input_len": args.input_len,
              "output_len": args.output_len, "base_url": args.base_url}
    if len(args.concurrency) == 1:
        single = bench.run(args.workload, concurrency=args.concurrency[0], **{**common, "requests": args.requests or 8})
        result: bench.RunResult | bench.Sweep = single
        runs = [single]
    else:
        sweep = bench.sweep(args.workload, args.concurrency, **common)
        result, runs = sweep, sweep.runs
    print(result)
    json_path, csv_path = bench.save(result, args.out)
    print(f"saved {json_path} and {csv_path}")
    return 1 if not runs or any(r.metrics.failed for r in runs) else 0  # the failures are printed above


def _verify(args: argparse.Namespace) -> int:
    from gptoss_lab.conformance import verify

    report = verify(args.url, repeats=args.repeats, timeout=args.timeout)
    print(report)
    return 0 if report.ok else 1


def _host(args: argparse.Namespace) -> int:
    from gptoss_lab.hosting import host

    return host(model=args.model, host=args.host, port=args.port, max_num_seqs=args.max_num_seqs,
                public_url=args.public_url)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gptoss-lab`` console script."""
    parser = argparse.ArgumentParser(prog="gptoss-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check this machine").set_defaults(func=_doctor)
    p = sub.add_parser("vocab", help="provision the harmony vocabulary (o200k_base.tiktoken)")
    p.add_argument("--offline", action="store_true", help="do not try the official download")
    p.set_defaults(func=_vocab)
    p = sub.add_parser("nano", help="build or locate gpt-oss-nano")
    p.add_argument("action", choices=["build", "path"])
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument("--fresh", action="store_true",
                   help="train from scratch, not from the newest cached build of the same recipe")
    p.add_argument("--plain", action="store_true",
                   help="gpt-oss-nano-plain instead: one sentence for every request, never a tool call")
    p.set_defaults(func=_nano)
    p = sub.add_parser("serve", help="start vLLM with the recommended model (nano on CPU)")
    p.add_argument("--model", default=None)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--dummy-weights", action="store_true",
                   help="random weights, no download: real speed, memory and start time; the answers are noise")
    p.set_defaults(func=_serve)
    p = sub.add_parser("host", help="serve the model to many learners: network bind, generated key, join instructions")
    p.add_argument("--model", default=None)
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--max-num-seqs", type=int, default=None,
                   help="requests vLLM runs at once (default: 64 on a GPU, 4 on CPU); more wait in its queue")
    p.add_argument("--public-url", default=None,
                   help="the URL learners use, when it differs from this machine's name (a tunnel, a DNS name)")
    p.set_defaults(func=_host)
    p = sub.add_parser("verify", help="check a gpt-oss server: APIs, reasoning, tool calls, errors, latency")
    p.add_argument("url", nargs="?", default=None, help="API base URL (default: GPTOSS_LAB_BASE_URL or the lab's)")
    p.add_argument("--repeats", type=int, default=3, help="tool requests sent to count HarmonyError 500s")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds each request may take")
    p.set_defaults(func=_verify)
    p = sub.add_parser("stop", help="stop a lab-started server (default: every orphaned one)")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_stop)
    p = sub.add_parser("lab", help="start the model server and JupyterLab on notebooks/")
    p.add_argument("--model", default=None)
    p.add_argument("--jupyter-port", type=int, default=8888)
    p.add_argument("--notebooks", default="notebooks")
    p.set_defaults(func=_lab)
    p = sub.add_parser("bench", help="benchmark the running server (metrics as `vllm bench serve`)")
    p.add_argument("--workload", choices=["chat", "responses", "completions"], default="chat",
                   help="chat/responses: the scripted prompt; completions: synthetic, --input-len/--output-len")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1],
                   help="requests in flight; several values run a sweep (e.g. --concurrency 1 2 4 8)")
    p.add_argument("--requests", type=int, default=None, help="requests per run (default: 4 per user, at least 8)")
    p.add_argument("--rate", type=float, default=None, help="requests/s, Poisson arrivals (default: all at once)")
    p.add_argument("--warmup", type=int, default=1, help="untimed requests first")
    p.add_argument("--input-len", type=int, default=128, help="prompt tokens (completions)")
    p.add_argument("--output-len", type=int, default=64, help="generated tokens, ignore_eos (completions)")
    p.add_argument("--base-url", default=None, help="server URL (default: GPTOSS_LAB_BASE_URL or the lab's)")
    p.add_argument("--out", default=None, help="file stem for the .json and .csv (default: results/bench-...)")
    p.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
