"""OpenAI SDK clients bound to the lab's server. Taught in ``notebooks/02_apis.ipynb``."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gptoss_lab import active
from gptoss_lab.config import settings
from gptoss_lab.errors import HarmonyParseError, LabWarning

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

T = TypeVar("T")

HARMONY_ISSUE = "https://github.com/vllm-project/vllm/issues/51977"
"""vLLM issue 51977: intermittent HTTP 500s when vLLM cannot parse gpt-oss's harmony output."""

# The texts of openai-harmony's HarmonyError, which vLLM returns as the 500's error.message.
_HARMONY_TEXT = re.compile(
    r"HarmonyError|message header|expecting start token|Unexpected token \d+|Unexpected EOS|could not decode header",
    re.IGNORECASE,
)


def server_key() -> str:
    """The API key of the active server (or ``GPTOSS_LAB_API_KEY``; ``EMPTY`` when there is none)."""
    current = active.get()
    return (current.api_key if current else "") or settings().api_key or "EMPTY"


def base_url() -> str:
    """The ``/v1`` URL of the current server (or ``GPTOSS_LAB_BASE_URL``)."""
    current = active.get()
    return current.url if current else settings().url


def client(**kwargs: Any) -> OpenAI:
    """Return ``openai.OpenAI`` pointed at the running vLLM server."""
    from openai import DefaultHttpxClient, OpenAI

    from gptoss_lab import drift

    hooks = drift.http_hooks()
    if hooks and "http_client" not in kwargs:  # the test suite's drift check reads Responses answers
        kwargs["http_client"] = DefaultHttpxClient(event_hooks=hooks)
    return OpenAI(base_url=base_url(), api_key=server_key(), **kwargs)


_SHARED: dict[tuple[str, str], OpenAI] = {}


def _shared() -> OpenAI:
    """One client per server for the helpers: its connection pool is reused across calls."""
    key = (base_url(), server_key())
    if key not in _SHARED:
        _SHARED.clear()
        # No SDK retries: they would resend a failing request twice, silently, with back-off.
        # The helpers retry only the failure known to be transient (see send()).
        _SHARED[key] = client(max_retries=0)
    return _SHARED[key]


def async_client(**kwargs: Any) -> AsyncOpenAI:
    """Return ``openai.AsyncOpenAI`` pointed at the running vLLM server."""
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    from gptoss_lab import drift

    hooks = drift.http_hooks(asynchronous=True)
    if hooks and "http_client" not in kwargs:  # the test suite's drift check reads Responses answers
        kwargs["http_client"] = DefaultAsyncHttpxClient(event_hooks=hooks)
    return AsyncOpenAI(base_url=base_url(), api_key=server_key(), **kwargs)


def model_name() -> str:
    """The model id the current server serves (what to pass as ``model=``)."""
    from gptoss_lab.attach import current

    return current().model_id()


def error_message(exc: BaseException) -> str:
    """The ``error.message`` of an OpenAI SDK status error from vLLM (else ``str(exc)``)."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return inner["message"]
    return str(exc)


def is_harmony_error_text(text: str) -> bool:
    """Whether an error message is openai-harmony's HarmonyError, as vLLM sends it in a 500 (issue 51977)."""
    return bool(_HARMONY_TEXT.search(text))


def is_harmony_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is vLLM's HTTP 500 for a harmony parsing error (vLLM issue 51977)."""
    import openai

    return isinstance(exc, openai.InternalServerError) and bool(_HARMONY_TEXT.search(error_message(exc)))


def raise_if_our_server_died(exc: BaseException, *, settle: float = 20.0) -> None:
    """Raise :class:`~gptoss_lab.errors.ServerError` if ``exc`` came from the death of a server this kernel started.

    A connection error, a stream cut off, or an error in place of the rest of a stream (vLLM's answer once
    its engine process has died) counts when the server's ``/health`` no longer answers: the lab waits up to
    ``settle`` seconds for vLLM to exit (it does within seconds of its engine's death), then raises the
    message of :meth:`~gptoss_lab.server.VLLMServer.check_alive`. Otherwise it returns, and the caller
    raises ``exc`` as it was.
    """
    import httpx
    import openai

    ours = active.get()
    if ours is None or ours.attached or ours.proc is None:
        return
    broken = isinstance(exc, openai.APIConnectionError | httpx.TransportError) or (
        isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIStatusError))  # an error event mid-stream
    dying = isinstance(exc, openai.APIStatusError) and exc.status_code >= 500  # e.g. EngineDeadError
    if not (broken or dying) or ours.is_running():
        return
    deadline = time.monotonic() + settle
    while ours.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    ours.check_alive()  # raises ServerError naming the signal or exit code and the log


def send(create: Callable[..., T], **kwargs: Any) -> T:
    """Call ``create(**kwargs)``; retry once, with a warning, if vLLM fails to parse harmony (HTTP 500).

    Raises:
        HarmonyParseError: the retry failed the same way.
    """
    try:
        return create(**kwargs)
    except Exception as exc:
        raise_if_our_server_died(exc)
        if not is_harmony_failure(exc):
            raise
        first = error_message(exc)
    warnings.warn(
        f"vLLM answered HTTP 500 because it could not parse the model's harmony output ({first}). "
        f"gpt-oss servers do this now and then on tool calls (vLLM issue 51977: {HARMONY_ISSUE}); "
        "retrying the request once.",
        LabWarning,
        stacklevel=3,
    )
    try:
        return create(**kwargs)
    except Exception as exc:
        if not is_harmony_failure(exc):
            raise
        raise HarmonyParseError(
            f"vLLM failed twice to parse the model's harmony output (HTTP 500: {error_message(exc)}). "
            f"This is vLLM issue 51977 ({HARMONY_ISSUE}), an intermittent parser failure on tool calls: "
            "send the request again, and if it keeps failing, upgrade vLLM (`uv pip install -U vllm`) "
            "and look at the issue for the fix in your version."
        ) from exc


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


def usage_counts(usage: Any) -> dict[str, int]:
    """Return the integer fields of an SDK usage object (token counts) as a dict; empty for None."""
    if usage is None:
        return {}
    data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    return {k: v for k, v in data.items() if isinstance(v, int)}


def chat(messages: list[dict[str, Any]], *, effort: str | None = None, **kwargs: Any) -> Result:
    """Send one Chat Completions request to the lab's server and lift out the parts.

    Equivalent to ``lab.client().chat.completions.create(model=..., messages=...,
    reasoning_effort=effort, **kwargs)``, except that a harmony parsing 500 is
    retried once (see :func:`send`). Taught in ``notebooks/02_apis.ipynb``.
    """
    if effort is not None:
        kwargs["reasoning_effort"] = effort
    response = send(_shared().chat.completions.create, model=model_name(), messages=messages, **kwargs)
    message = response.choices[0].message
    calls = tuple(
        ToolCallRequest(c.id, c.function.name, c.function.arguments)
        for c in message.tool_calls or () if c.type == "function"  # vLLM returns no custom tool calls
    )
    return Result(reasoning_of(message), message.content, calls, usage_counts(response.usage), response)


def respond(input: Any, *, effort: str | None = None, **kwargs: Any) -> Result:
    """Send one Responses API request to the lab's server and lift out the parts.

    Equivalent to ``lab.client().responses.create(model=..., input=...,
    reasoning={"effort": effort}, **kwargs)``, except that a harmony parsing 500
    is retried once (see :func:`send`). Taught in ``notebooks/02_apis.ipynb``.
    """
    if effort is not None:
        kwargs["reasoning"] = {"effort": effort}
    response = send(_shared().responses.create, model=model_name(), input=input, **kwargs)
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
    return Result("".join(reasoning) or None, final, calls, usage_counts(response.usage), response)
