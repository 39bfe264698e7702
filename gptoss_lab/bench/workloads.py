"""What a benchmark sends: the request body of each workload, and how its stream is read.

* ``chat``: Chat Completions, the scripted prompt ``bench.chat`` (so gpt-oss-nano answers it).
* ``responses``: the Responses API, the scripted prompt ``bench.responses``.
* ``completions``: the Completions API with a synthetic prompt of exactly ``input_len``
  token ids and ``max_tokens=output_len`` with ``ignore_eos``, so every request
  generates exactly ``output_len`` tokens: the fixed-length run ``vllm bench serve
  --dataset-name random --ignore-eos`` makes.

Every workload streams, and asks for usage where the API needs asking.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

WorkloadName = Literal["chat", "responses", "completions"]
WORKLOADS: tuple[WorkloadName, ...] = ("chat", "responses", "completions")

PROMPT = "Describe the sea in a short paragraph."
"""The user text of the scripted ``bench.chat`` and ``bench.responses`` entries."""

TOKEN_IDS = (1000, 199_000)
"""Range of the synthetic prompt's token ids: ordinary o200k tokens, no harmony special tokens."""


@dataclass(frozen=True)
class Workload:
    """One kind of benchmark request."""

    name: WorkloadName
    input_len: int = 128
    """Prompt tokens of a ``completions`` request (the others send the scripted prompt)."""
    output_len: int = 64
    """Tokens a ``completions`` request generates (``ignore_eos``)."""
    seed: int = 0
    """Seeds the synthetic prompts: request ``i`` of every run gets the same ids."""

    @property
    def path(self) -> str:
        """The endpoint, relative to ``/v1``."""
        return {"chat": "/chat/completions", "responses": "/responses", "completions": "/completions"}[self.name]

    def body(self, model: str, index: int = 0) -> dict[str, Any]:
        """The JSON body of request ``index``."""
        if self.name == "chat":
            return {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                    "reasoning_effort": "low", "stream": True, "stream_options": {"include_usage": True}}
        if self.name == "responses":
            return {"model": model, "input": PROMPT, "reasoning": {"effort": "low"}, "stream": True}
        rng = random.Random(self.seed * 1_000_003 + index)
        prompt = [rng.randrange(*TOKEN_IDS) for _ in range(self.input_len)]
        return {"model": model, "prompt": prompt, "max_tokens": self.output_len, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}


@dataclass
class Event:
    """What one streamed message carries."""

    token: bool = False
    """It carries generated output (reasoning, answer text or tool-call arguments)."""
    reasoning: str = ""
    text: str = ""
    usage: dict[str, int] | None = None
    """``{"prompt_tokens": ..., "output_tokens": ...}`` when the message reports usage."""
    error: str = ""


def _usage(prompt: Any, output: Any) -> dict[str, int]:
    return {"prompt_tokens": int(prompt or 0), "output_tokens": int(output or 0)}


def read_event(name: WorkloadName, data: dict[str, Any]) -> Event:
    """Read one decoded ``data:`` message of a workload's stream."""
    if "error" in data and name != "responses":
        error = data["error"]
        return Event(error=str(error.get("message", error) if isinstance(error, dict) else error))
    if name == "responses":
        return _responses_event(data)
    event = Event()
    if usage := data.get("usage"):
        event.usage = _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    for choice in data.get("choices") or ():
        if name == "completions":
            event.token = True  # one chunk per decoding step, even when its text is empty (vLLM counts it)
            event.text += choice.get("text") or ""
            continue
        delta = choice.get("delta") or {}
        event.reasoning += delta.get("reasoning") or delta.get("reasoning_content") or ""
        event.text += delta.get("content") or ""
        calls = "".join((c.get("function") or {}).get("arguments") or "" for c in delta.get("tool_calls") or ())
        event.text += calls
        event.token = event.token or bool(event.reasoning or event.text or delta.get("tool_calls"))
    return event


def _responses_event(data: dict[str, Any]) -> Event:
    kind = data.get("type", "")
    if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
        return Event(token=True, reasoning=data.get("delta") or "")
    if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
        return Event(token=True, text=data.get("delta") or "")
    if kind in ("response.completed", "response.incomplete"):
        usage = (data.get("response") or {}).get("usage") or {}
        return Event(usage=_usage(usage.get("input_tokens"), usage.get("output_tokens")) if usage else None)
    if kind in ("error", "response.failed"):
        error = data.get("error") or (data.get("response") or {}).get("error") or data
        return Event(error=str(error.get("message", error) if isinstance(error, dict) else error))
    return Event()
