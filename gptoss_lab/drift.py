"""Find the requests that got gpt-oss-nano's fallback reply: the test suite's drift check.

A notebook whose request drifted from ``script.json`` still runs (nano answers it
politely), so nbmake alone would pass it while the learner sees nothing useful. Two
sources cover every API:

- the server's log, where ``--enable-log-outputs`` writes one ``Generated response``
  line per Chat Completions request (``chatcmpl-``). vLLM 0.32 logs no Responses output
  for gpt-oss (only its non-harmony path calls the output logger);
- the answer log, a file named by :data:`ANSWER_LOG`: while it is set, the lab's OpenAI
  clients (:func:`gptoss_lab.client` and ``async_client``, which the notebooks, the
  helpers and the Agents SDK models use) append the text of every Responses answer, and
  :func:`gptoss_lab.harmony.answer` every final answer it reads from tokens sampled
  in-process (``05_harmony``).

Completions (``cmpl-``) are left out: the benchmark sends unscripted text on purpose. So are
the lab's own diagnostic requests (``lab.verify``): they send an ``X-Request-Id`` starting with
:data:`DIAGNOSTIC_ID`, which vLLM puts into the request id of its log lines. A notebook's own
requests never carry it (the SDK sends no ``X-Request-Id``), so they are still checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANSWER_LOG = "GPTOSS_LAB_ANSWER_LOG"
"""Environment variable naming the file :func:`gptoss_lab.harmony.answer` appends answers to (JSON lines)."""
DIAGNOSTIC_ID = "gptoss-lab-diagnostic-"
"""Prefix of the ``X-Request-Id`` the lab's diagnostic requests send (``lab.verify``): the drift check skips them,
since they test the server, not a lesson (their prompts are not in nano's script)."""
LOGGED_APIS = {"chatcmpl-": "chat", "resp_": "responses"}
"""Request id prefixes in vLLM's ``Generated response`` log lines, and the API each belongs to (Responses
lines appear only for models vLLM does not run through harmony)."""


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


def record_answer(text: str | None, api: str = "harmony") -> None:
    """Append a final answer to the answer log, when :data:`ANSWER_LOG` is set (else nothing)."""
    path = answer_log()
    if path is None or text is None:
        return
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"api": api, "answer": text}) + "\n")


def responses_text(body: bytes) -> str | None:
    """The answer text of a Responses API reply body (its message items), or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    parts = [part.get("text", "") for item in data.get("output") or () if item.get("type") == "message"
             for part in item.get("content") or ()]
    return "".join(parts) if parts else None


def http_hooks(asynchronous: bool = False) -> dict[str, list[Callable[[Any], Any]]] | None:
    """httpx event hooks that record every Responses answer, or None when :data:`ANSWER_LOG` is not set."""
    if answer_log() is None:
        return None

    def wanted(response: Any) -> bool:  # an httpx response of the client the OpenAI SDK builds
        request = response.request
        kind = response.headers.get("content-type", "")
        marked = request.headers.get("x-request-id", "").startswith(DIAGNOSTIC_ID)
        return request.url.path.endswith("/responses") and kind.startswith("application/json") and not marked

    if asynchronous:
        async def record_async(response: Any) -> None:
            if wanted(response):
                record_answer(responses_text(await response.aread()), "responses")

        return {"response": [record_async]}

    def record(response: Any) -> None:
        if wanted(response):
            record_answer(responses_text(response.read()), "responses")

    return {"response": [record]}


def diagnostic_headers() -> dict[str, str]:
    """The ``X-Request-Id`` header that marks one of the lab's diagnostic requests (a fresh id each call)."""
    import uuid

    return {"X-Request-Id": f"{DIAGNOSTIC_ID}{uuid.uuid4().hex}"}


def diagnostic(request_id: str) -> bool:
    """Whether a logged request id (``chatcmpl-...``) is one of the lab's diagnostic requests."""
    return any(request_id.startswith(prefix + DIAGNOSTIC_ID) for prefix in LOGGED_APIS)


def fallback_hits(server_log: Path | None, since: Mark, fallback: str) -> list[str]:
    """Return a line for every Chat, Responses or harmony answer since ``since`` that contains ``fallback``.

    The lab's diagnostic requests (:data:`DIAGNOSTIC_ID`) are left out.
    """
    hits: list[str] = []
    if server_log is not None and server_log.exists():
        with server_log.open(encoding="utf-8", errors="replace") as log:
            log.seek(since.server_log)
            for line in log:
                if "Generated response " not in line or fallback not in line:
                    continue
                request = line.split("Generated response ", 1)[1]
                api = next((name for prefix, name in LOGGED_APIS.items() if request.startswith(prefix)), None)
                if api is not None and not diagnostic(request):
                    hits.append(f"{api}: {line.strip()}")
    path = answer_log()
    if path is not None and path.exists():
        with path.open(encoding="utf-8") as log:
            log.seek(since.answer_log)
            for line in log:
                if fallback in line:
                    hits.append(f"{json.loads(line).get('api', 'harmony')}: {line.strip()}")
    return hits
