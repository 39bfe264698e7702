"""Benchmark: rebuild gpt-oss-nano after one script entry changed (issue #16's "rebuild after one entry").

    .venv/bin/python benchmarks/nano_rebuild.py                      # playground.hello, one word added
    .venv/bin/python benchmarks/nano_rebuild.py --entry apis.effort_low

Needs gpt-oss-nano built for the packaged script (`make nano`). It hard-links that build
(and the vocabulary files) into an empty lab cache in a temporary folder beside the lab's
(one disk, so links work), writes a copy of ``script.json`` whose entry ``--entry`` has one
word added to its first answer (its reasoning, if that turn calls a tool), and builds nano for
that script there, as `gptoss-lab nano build` would after the edit: training starts from the
copied build (``warm_start`` in nano.json) and the same replay check follows. The lab's own
builds are not touched; the temporary folder is removed afterwards, also after a failure.

Prints the wall time and the build's phases, and writes them to
benchmarks/results/nano-rebuild-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ADDED = "own"
"""The word added to the entry's first answer, or its reasoning when that turn calls a tool (after the fourth word)."""


def edited_script(entry_id: str, out: Path) -> str:
    """Write the packaged script with one word added to ``entry_id``'s first answer; return the new answer."""
    data = json.loads((ROOT / "gptoss_lab" / "nano" / "script.json").read_text())
    entry = next((e for e in data["entries"] if e["id"] == entry_id), None)
    if entry is None:
        ids = ", ".join(e["id"] for e in data["entries"][:8])
        raise SystemExit(f"no entry {entry_id!r} in script.json (entries look like: {ids}, ...)")
    turn = entry.get("reply") or entry["turns"][0]
    field = "final" if isinstance(turn.get("final"), str) else "reasoning"  # a tool-calling turn has no answer
    words = turn[field].split(" ")
    turn[field] = " ".join([*words[:4], ADDED, *words[4:]])
    out.write_text(json.dumps(data, indent=1) + "\n")
    return str(turn[field])


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", default="playground.hello", help="the script entry whose first answer changes")
    args = parser.parse_args()

    from gptoss_lab import nano
    from gptoss_lab.config import default_cache_dir
    from gptoss_lab.errors import LabError

    try:
        built = nano.path(build_if_missing=False)
    except LabError as error:
        raise SystemExit(f"{error}\nThis benchmark rebuilds from that build: run `make nano` first.") from None

    with tempfile.TemporaryDirectory(prefix="nano-rebuild-", dir=default_cache_dir()) as tmp:  # links need one disk
        cache = Path(tmp) / "lab-cache"
        shutil.copytree(built, cache / "nano" / built.name, copy_function=_link_or_copy)
        for name in ("tiktoken",):
            if (default_cache_dir() / name).is_dir():
                shutil.copytree(default_cache_dir() / name, cache / name, copy_function=_link_or_copy)
        script = Path(tmp) / "script.json"
        answer = edited_script(args.entry, script)
        print(f"[rebuild] {args.entry}'s first answer is now: {answer!r}", flush=True)
        env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(cache)}
        code = (f"from pathlib import Path; from gptoss_lab import nano; "
                f"print(nano.build(script_path=Path({str(script)!r})))")
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        seconds = round(time.monotonic() - started, 1)
        if done.returncode != 0:
            print(f"[rebuild] the build failed after {seconds} s (exit {done.returncode})", file=sys.stderr)
            return 1
        folder = Path(done.stdout.strip().splitlines()[-1])
        info = json.loads((folder / "nano.json").read_text())

    result = {
        "date": dt.date.today().isoformat(),
        "entry": args.entry,
        "answer": answer,
        "from": built.name,
        "wall_seconds": seconds,
        "phases": info["seconds"],
        "train": info["train"],
        "warm_start": info["warm_start"],
        "served_margin": info["served_margin"],
        "cores": os.cpu_count(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"nano-rebuild-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    phases = ", ".join(f"{k} {v} s" for k, v in info["seconds"].items())
    print(f"rebuild after one entry changed: {seconds} s on {os.cpu_count()} cores ({phases}; "
          f"{int(info['train']['steps'])} training steps from {built.name}) -> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
