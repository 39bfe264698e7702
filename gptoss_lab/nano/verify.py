"""Check a freshly trained nano through the vLLM that will serve it.

Training measures its margins in float32 with transformers' eager attention;
vLLM serves the bf16 checkpoint with its own kernels, whose rounding depends on
the CPU (AVX2, AVX-512, AMX) and on how requests are batched. A target token that
wins by a few logits in training can lose by one in serving, and a memorised
model that misses one token drifts for the rest of the reply. So the build
replays every training sequence through a real server (Completions with the
rendered prompt ids, greedy, logprobs of the top two tokens) before the
checkpoint is accepted, and trains on until every target token wins there too.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from gptoss_lab.errors import NanoBuildError
from gptoss_lab.nano.render import Example
from gptoss_lab.nano.script import completion_tokens
from gptoss_lab.server import VLLMServer

SAFETY = 2.0
"""Logits the target must win by in vLLM's own scores, so a different batch shape cannot flip it."""
PARALLEL = 16
"""Requests in flight for the fallback sequences. Scripted ones go one at a time, as the
tests and notebooks send them: a decode step of one sequence runs other kernel shapes than
a batch of sixteen, and the scripted replies are what must come back exactly."""


@dataclass(frozen=True)
class Replay:
    """One training sequence replayed through vLLM."""

    source: str
    position: int
    """Index of the first target token that missed, or -1 when every token matched."""
    margin: float
    """Smallest lead of a target token over the best other token, in vLLM's logprobs."""

    @property
    def ok(self) -> bool:
        return self.position < 0 and self.margin >= SAFETY


def _replay_one(client: httpx.Client, model: str, prompt: list[int], target: list[int]) -> tuple[int, float]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": len(target),
        "temperature": 0.0,
        "ignore_eos": True,  # the target's stop tokens are compared like any other token
        "logprobs": 2,
        "return_tokens_as_token_ids": True,
        "skip_special_tokens": False,
    }
    response = client.post("/completions", json=body)
    if response.status_code != 200:
        raise NanoBuildError(
            f"vLLM refused a replay request while checking nano ({response.status_code}): {response.text[:300]}"
        )
    choice = response.json()["choices"][0]
    tops: list[dict[str, float]] = (choice.get("logprobs") or {}).get("top_logprobs") or []
    margin = float("inf")
    for pos, want in enumerate(target):
        top = {int(k.split(":", 1)[1]): v for k, v in (tops[pos] if pos < len(tops) else {}).items()}
        if want not in top:
            return pos, -float("inf")
        others = [v for k, v in top.items() if k != want]
        lead = top[want] - max(others) if others else float("inf")
        if lead <= 0:
            return pos, lead
        margin = min(margin, lead)
    return -1, margin


def replay(
    server: VLLMServer,
    examples: Sequence[Example],
    encoding: Any,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Replay]:
    """Replay every example's reply through ``server``; return one :class:`Replay` per example."""
    model = server.model_id()
    targets = [completion_tokens(ex.reply, encoding) for ex in examples]
    results: list[Replay | None] = [None] * len(examples)
    scripted = [i for i, ex in enumerate(examples) if ex.source != "fallback"]
    fallback = [i for i, ex in enumerate(examples) if ex.source == "fallback"]
    done = 0
    with httpx.Client(base_url=server.url, timeout=300.0) as client:
        for workers, indices in ((1, scripted), (PARALLEL, fallback)):
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                futures = {pool.submit(_replay_one, client, model, examples[i].prompt, targets[i]): i for i in indices}
                for future in concurrent.futures.as_completed(futures):
                    i = futures[future]
                    position, margin = future.result()
                    results[i] = Replay(examples[i].source, position, margin)
                    done += 1
                    if on_progress:
                        on_progress(done, len(examples))
    return [r for r in results if r is not None]


def summary(replays: Sequence[Replay]) -> str:
    """One line: how many sequences replayed, the weakest margin, and which entries failed."""
    failed = sorted({r.source for r in replays if not r.ok})
    finite = [r.margin for r in replays if r.position < 0]
    weakest = f"{min(finite):.2f}" if finite else "n/a"
    text = f"{len(replays) - sum(not r.ok for r in replays)}/{len(replays)} sequences replay (weakest margin {weakest})"
    if failed:
        text += f"; short of {SAFETY:g} logits or wrong: {', '.join(failed[:12])}"
        if len(failed) > 12:
            text += f" and {len(failed) - 12} more"
    return text
