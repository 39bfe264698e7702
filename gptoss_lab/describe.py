"""Say what the model did, read off a run: the tools it called, the turns it took, why it stopped.

A notebook may show what the model did, but never depends on it: gpt-oss-20b may answer
without a tool where nano calls one, or stop at ``max_tokens`` inside its reasoning. These
helpers turn a run into the sentence a cell prints, true for whichever model answered.
Taught in ``notebooks/02_apis.ipynb`` and ``notebooks/04_agents.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gptoss_lab.client import reasoning_of


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe_calls(names: Sequence[str], turns: int | None = None) -> str:
    """One sentence saying which tools the model called, and in how many model turns.

    Args:
        names: the name of each tool call, in the order the model made them.
        turns: model responses in the run (a call and the answer after it are two).
    """
    within = f" in {_plural(turns, 'turn')}" if turns is not None else ""
    if not names:
        return f"the model answered without calling a tool{within}"
    return f"the model made {_plural(len(names), 'tool call')} ({', '.join(names)}){within}"


def reasoning_tokens(usage: Any, text: str | None) -> tuple[int, str]:
    """How many of the generated tokens were reasoning, and where that number comes from.

    vLLM reports it in the usage (``completion_tokens_details.reasoning_tokens`` for Chat,
    ``output_tokens_details.reasoning_tokens`` for Responses) when its reasoning parser is
    on; otherwise the reasoning text is encoded with harmony.
    """
    for name in ("completion_tokens_details", "output_tokens_details"):
        counted = getattr(getattr(usage, name, None), "reasoning_tokens", None)
        if counted:
            return int(counted), "the server's count"
    if not text:
        return 0, "no reasoning text"
    from gptoss_lab import harmony

    return len(harmony.encoding().encode(text, allowed_special="all")), "its text encoded with harmony"


def describe_finish(response: Any) -> str:
    """Why generation stopped, read off a Chat Completions or Responses API response.

    gpt-oss writes its reasoning first, and reasoning tokens count against
    ``max_tokens``: a request that runs out while the model still reasons ends with
    ``finish_reason="length"`` (Responses: ``status="incomplete"``) and an empty answer.
    """
    if hasattr(response, "choices"):
        choice = response.choices[0]
        reason, answer = choice.finish_reason, choice.message.content or ""
        reasoning = reasoning_of(choice.message)
        called = bool(choice.message.tool_calls)
        generated = getattr(response.usage, "completion_tokens", None)
        field, stopped, cut, answer_name, limit = "finish_reason", "stop", "length", "`content`", "max_tokens"
    else:
        details = getattr(response, "incomplete_details", None)
        reason = response.status
        if reason == "incomplete":
            reason = f"incomplete ({getattr(details, 'reason', '')})"
        answer = response.output_text or ""
        reasoning = "".join(part.text for item in response.output if item.type == "reasoning"
                            for part in (item.content or ()))
        called = any(item.type == "function_call" for item in response.output)
        generated = getattr(response.usage, "output_tokens", None)
        field, stopped, cut, answer_name = "status", "completed", "incomplete", "`output_text`"
        limit = "max_output_tokens"
    head = f"{field}={reason!r}"
    spent = f" after {_plural(generated, 'token')}" if generated is not None else ""
    if str(reason).startswith(cut):
        if not answer:
            return (f"{head}: generation hit {limit}{spent} while the model was still reasoning, so {answer_name} "
                    f"is empty and only the reasoning came back. Raise {limit} or lower the reasoning effort.")
        return f"{head}: the answer was cut off at {limit}{spent}. Raise {limit}."
    if called:
        return (f"{head}: the model stopped{spent} to call a tool (harmony's <|call|> stop token); the answer "
                "comes in a later turn, once the tool's result is sent back.")
    cost, source = reasoning_tokens(response.usage, reasoning)
    if reason != stopped:
        return f"{head}: generation stopped{spent}."
    if not cost:
        return f"{head}: the model finished on its own{spent}, with no reasoning before the answer."
    return (f"{head}: the model finished on its own{spent}, {cost} of them reasoning ({source}). With "
            f"{limit} below about {cost}, this request would have stopped inside the reasoning: "
            f"{field}={cut!r} and an empty {answer_name}.")
