"""The ``gptoss-lab`` command: doctor, vocab, nano, serve, stop."""

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

    if args.action == "path":
        print(nano.path(build_if_missing=False))
        return 0
    folder = nano.build(force=args.force)
    print(folder)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gptoss_lab.server import serve

    server = serve(args.model, host=args.host, port=args.port)
    if server.attached:
        print(f"A server is already running at {server.url}; nothing started.")
        return 0
    print(f"Serving {server.model_id()} at {server.url} (log: {server.log_path}). Ctrl-C stops it.")
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()
    return 0


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
    p.set_defaults(func=_nano)
    p = sub.add_parser("serve", help="start vLLM with the recommended model (nano on CPU)")
    p.add_argument("--model", default=None)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_serve)
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
