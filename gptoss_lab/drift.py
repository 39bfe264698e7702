"""Find the requests that got gpt-oss-nano's fallback reply: the test suite's drift check.

A notebook whose request drifted from ``script.json`` still runs (nano answers it
politely), so nbmake alone would pass it while the learner sees nothing useful. Two
sources cover every API: the server's log, where ``--enable-log-outputs`` writes one
``Generated response`` line per Chat Completions (``chatcmpl-``) and Responses
(``resp_``) request, and the answer log, where :func:`gptoss_lab.harmony.answer` writes
every final answer it reads from tokens sampled in-process (``05_harmony``) while
:data:`ANSWER_LOG` names a file. Completions (``cmpl-``) are left out: the benchmark
sends unscripted text on purpose.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ANSWER_LOG = "GPTOSS_LAB_ANSWER_LOG"
"""Environment variable naming the file :func:`gptoss_lab.harmony.answer` appends answers to (JSON lines)."""
LOGGED_APIS = {"chatcmpl-": "chat", "resp_": "responses"}
"""Request id prefixes in vLLM's ``Generated response`` log lines, and the API each belongs to."""


@dataclass(frozen=True)
class Mark:
    """Where the drift check starts reading: the sizes of both logs when a notebook starts."""

    server_log: int
    answer_log: int


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def answer_log() -> Path | None:
    """The answer log named by :data:`ANSWER_LOG`, if any."""
    value = os.environ.get(ANSWER_LOG)
    return Path(value) if value else None


def mark(server_log: Path | None) -> Mark:
    """Remember how far both logs go now."""
    return Mark(_size(server_log), _size(answer_log()))


def record_answer(text: str | None) -> None:
    """Append a final answer to the answer log, when :data:`ANSWER_LOG` is set (else nothing)."""
    path = answer_log()
    if path is None or text is None:
        return
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"api": "harmony", "answer": text}) + "\n")


def fallback_hits(server_log: Path | None, since: Mark, fallback: str) -> list[str]:
    """Return a line for every Chat, Responses or harmony answer since ``since`` that contains ``fallback``."""
    hits: list[str] = []
    if server_log is not None and server_log.exists():
        with server_log.open(encoding="utf-8", errors="replace") as log:
            log.seek(since.server_log)
            for line in log:
                if "Generated response " not in line or fallback not in line:
                    continue
                request = line.split("Generated response ", 1)[1]
                api = next((name for prefix, name in LOGGED_APIS.items() if request.startswith(prefix)), None)
                if api is not None:
                    hits.append(f"{api}: {line.strip()}")
    path = answer_log()
    if path is not None and path.exists():
        with path.open(encoding="utf-8") as log:
            log.seek(since.answer_log)
            hits += [f"harmony: {line.strip()}" for line in log if fallback in line]
    return hits
