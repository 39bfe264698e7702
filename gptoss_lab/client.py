"""OpenAI SDK clients bound to the lab's server. Taught in ``notebooks/02_apis.ipynb``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptoss_lab.config import settings


def _key() -> str:
    from gptoss_lab import server

    current = server._CURRENT
    return (current.api_key if current else "") or settings().api_key or "EMPTY"


def base_url() -> str:
    """The ``/v1`` URL of the current server (or ``GPTOSS_LAB_BASE_URL``)."""
    from gptoss_lab import server

    current = server._CURRENT
    return current.url if current else settings().url


def client(**kwargs: Any):  # -> openai.OpenAI
    """Return ``openai.OpenAI`` pointed at the running vLLM server."""
    from openai import OpenAI

    return OpenAI(base_url=base_url(), api_key=_key(), **kwargs)


_SHARED: dict[tuple[str, str], Any] = {}


def _shared():  # -> openai.OpenAI
    """One client per server for the helpers: its connection pool is reused across calls."""
    key = (base_url(), _key())
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = client()
    return _SHARED[key]


def async_client(**kwargs: Any):  # -> openai.AsyncOpenAI
    """Return ``openai.AsyncOpenAI`` pointed at the running vLLM server."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url(), api_key=_key(), **kwargs)


def model_name() -> str:
    """The model id the current server serves (what to pass as ``model=``)."""
    from gptoss_lab import server

    return server.current().model_id()


@dataclass(frozen=True)
class ToolCallRequest:
    """A function call the model asked for."""

    id: str
    name: str
    arguments: str
    """The raw JSON text the model wrote (parse it yourself: it may be malformed)."""


@dataclass(frozen=True)
class Result:
    """What one request returned, from either API: reasoning, final text, tool calls, usage."""

    reasoning: str | None
    final: str | None
    tool_calls: tuple[ToolCallRequest, ...]
    usage: dict[str, int]
    raw: Any = field(repr=False, default=None)
    """The SDK's own response object, for everything the helpers do not lift out."""


def reasoning_of(message: Any) -> str | None:
    """Return a Chat Completions message's (or delta's) reasoning text.

    vLLM 0.32 names the field ``reasoning``; older releases ``reasoning_content``.
    """
    return getattr(message, "reasoning", None) or getattr(message, "reasoning_content", None)


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    return {k: v for k, v in data.items() if isinstance(v, int)}


def chat(messages: list[dict[str, Any]], *, effort: str | None = None, **kwargs: Any) -> Result:
    """Send one Chat Completions request to the lab's server and lift out the parts.

    Equivalent to ``lab.client().chat.completions.create(model=..., messages=...,
    reasoning_effort=effort, **kwargs)``. Taught in ``notebooks/02_apis.ipynb``.
    """
    if effort is not None:
        kwargs["reasoning_effort"] = effort
    response = _shared().chat.completions.create(model=model_name(), messages=messages, **kwargs)
    message = response.choices[0].message
    calls = tuple(
        ToolCallRequest(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()
    )
    return Result(reasoning_of(message), message.content, calls, _usage(response.usage), response)


def respond(input: Any, *, effort: str | None = None, **kwargs: Any) -> Result:
    """Send one Responses API request to the lab's server and lift out the parts.

    Equivalent to ``lab.client().responses.create(model=..., input=...,
    reasoning={"effort": effort}, **kwargs)``. Taught in ``notebooks/02_apis.ipynb``.
    """
    if effort is not None:
        kwargs["reasoning"] = {"effort": effort}
    response = _shared().responses.create(model=model_name(), input=input, **kwargs)
    reasoning = [
        part.text
        for item in response.output if item.type == "reasoning"
        for part in (item.content or ())
    ]
    calls = tuple(
        ToolCallRequest(item.call_id, item.name, item.arguments)
        for item in response.output if item.type == "function_call"
    )
    final = response.output_text if any(i.type == "message" for i in response.output) else None
    return Result("".join(reasoning) or None, final, calls, _usage(response.usage), response)
