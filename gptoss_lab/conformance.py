"""Check any OpenAI-compatible gpt-oss server, row by row: ``lab.verify()`` and ``gptoss-lab verify``.

Each row is true for any model: a row *fails* only when the server is at fault (a route
missing, a flag missing, an error it should not send). What depends on the model's
choices (did it reason, did it call the tool) is reported as a *note*, never a failure.
Every request carries the lab's diagnostic request id (:data:`gptoss_lab.drift.DIAGNOSTIC_ID`),
so the test suite's drift check knows it is no notebook's lesson. Taught in
``notebooks/09_verify_and_host.ipynb``.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from gptoss_lab import drift, parsers, reach
from gptoss_lab.api import auth_headers
from gptoss_lab.redact import redact

Status = Literal["pass", "fail", "note", "skip"]

HARMONY_ISSUE = "https://github.com/vllm-project/vllm/issues/51977"
QUESTION = "What is the weather in Paris?"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
REASONING_FIELDS = ("reasoning", "reasoning_content")
"""Where OpenAI-compatible servers put gpt-oss's reasoning in a Chat message (vLLM 0.32: ``reasoning``;
older vLLM and other servers: ``reasoning_content``)."""


@dataclass(frozen=True)
class Row:
    """One check: its name, pass/fail/note/skip, what was found, and (for a failure) the fix."""

    check: str
    status: Status
    found: str
    fix: str = ""


@dataclass
class Verification:
    """The rows of one :func:`verify` run; a table in Jupyter (HTML) and in the terminal."""

    url: str
    model: str = ""
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row failed (notes and skips are not failures)."""
        return not self.failed

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.status == "fail"]

    def row(self, check: str) -> Row:
        """The row named ``check``."""
        return next(row for row in self.rows if row.check == check)

    def __str__(self) -> str:
        width = max((len(row.check) for row in self.rows), default=5)
        lines = [f"gptoss-lab verify {self.url}" + (f" ({self.model})" if self.model else "")]
        for row in self.rows:
            lines.append(f"  {row.status.upper() if row.status == 'fail' else row.status:<4}  "
                         f"{row.check:<{width}}  {row.found}")
            if row.fix:
                lines.append(f"  {'':<4}  {'':<{width}}  fix: {row.fix}")
        verdict = "every row passed or is a note" if self.ok else f"{len(self.failed)} row(s) failed"
        lines.append(f"  -> {verdict}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"pass": "#1a7f37", "fail": "#cf222e", "note": "#57606a", "skip": "#9a6700"}
        rows = "".join(
            f"<tr><td>{html.escape(row.check)}</td><td style='color:{colour[row.status]}'><b>{row.status}</b></td>"
            f"<td style='text-align:left'>{html.escape(row.found)}</td>"
            f"<td style='text-align:left'>{html.escape(row.fix)}</td></tr>"
            for row in self.rows
        )
        verdict = "every row passed or is a note" if self.ok else f"{len(self.failed)} row(s) failed"
        return (f"<p><b>{html.escape(self.url)}</b> {html.escape(self.model)}: {verdict}</p>"
                "<table><tr><th>check</th><th></th><th style='text-align:left'>found</th>"
                f"<th style='text-align:left'>fix</th></tr>{rows}</table>")


class _Session:
    """The HTTP side of one verification: every request marked as the lab's diagnostic, the key never shown."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        self.url, self.key, self.timeout = url, api_key, timeout
        self.http = httpx.Client(timeout=timeout)

    def headers(self) -> dict[str, str]:
        return {**auth_headers(self.key), **drift.diagnostic_headers()}

    def post(self, path: str, body: dict[str, Any]) -> tuple[httpx.Response | None, float, str]:
        """POST and return (response or None, seconds, the error in words)."""
        started = time.monotonic()
        try:
            response = self.http.post(f"{self.url}{path}", json=body, headers=self.headers())
        except httpx.HTTPError as error:
            return None, time.monotonic() - started, self.hide(f"{type(error).__name__}: {error}")
        return response, time.monotonic() - started, ""

    def hide(self, text: str) -> str:
        return redact(text, [self.key])


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = None
    return str(message or response.text)[:240]


def _harmony_500(response: httpx.Response) -> bool:
    from gptoss_lab.client import is_harmony_error_text

    return response.status_code == 500 and is_harmony_error_text(_error_text(response))


def verify(url: str | None = None, *, api_key: str | None = None, repeats: int = 3,
           timeout: float = 120.0) -> Verification:
    """Check a gpt-oss server row by row and return the table (``.ok`` is False when a row failed).

    Args:
        url: the API base URL (``http://host:port/v1``); default ``GPTOSS_LAB_BASE_URL`` or the lab's.
        api_key: default ``GPTOSS_LAB_API_KEY``; sent as a bearer token, never shown.
        repeats: how many tool requests to send to count HarmonyError 500s (vLLM issue 51977).
        timeout: seconds each request may take.

    Taught in ``notebooks/09_verify_and_host.ipynb``.
    """
    from gptoss_lab.config import settings

    cfg = settings()
    url = (url or cfg.url).rstrip("/")
    session = _Session(url, cfg.api_key if api_key is None else api_key, timeout)
    result = Verification(url)
    try:
        _run(session, result, repeats)
    finally:
        session.http.close()
    return result


def _run(session: _Session, result: Verification, repeats: int) -> None:
    rows = result.rows
    rows.append(_health(session))
    found = reach.probe(session.url, session.key, timeout=min(session.timeout, 10.0))
    if not found.ok:
        rows.append(Row("models", "fail", found.got, found.fix))
        rows.extend(Row(name, "skip", "needs the model list") for name, _ in _CHECKS)
        return
    result.model = str(found.models[0].get("id"))
    rows.append(Row("models", "pass", f"serves {', '.join(str(m.get('id')) for m in found.models)}"))
    length = found.models[0].get("max_model_len")
    rows.append(Row("context length", "pass", f"{length:,} tokens (max_model_len)") if isinstance(length, int)
                else Row("context length", "note", "not reported in /v1/models (vLLM reports max_model_len)"))
    figures: dict[str, Any] = {}
    for _name, check in _CHECKS:
        rows.append(check(session, result.model, figures, repeats))


def _health(session: _Session) -> Row:
    root = session.url.removesuffix("/v1")
    started = time.monotonic()
    try:
        status = session.http.get(f"{root}/health", timeout=min(session.timeout, 10.0)).status_code
    except httpx.HTTPError as error:
        return Row("health", "fail", session.hide(f"{root}/health: {type(error).__name__}: {error}"),
                   "Start the server, or check the URL (GPTOSS_LAB_BASE_URL ends in /v1).")
    ms = (time.monotonic() - started) * 1000
    if status == 200:
        return Row("health", "pass", f"/health answered 200 in {ms:.0f} ms")
    return Row("health", "note", f"/health answered {status} (vLLM serves it; other servers may not)")


Check = Callable[[_Session, str, dict[str, Any], int], Row]
HELLO = [{"role": "user", "content": "Say hello."}]


def _failed_request(check: str, response: httpx.Response | None, error: str, fix: str) -> Row:
    if response is None:
        return Row(check, "fail", error, "Check that the server is up and reachable.")
    if _harmony_500(response):
        return Row(check, "note", f"HTTP 500: vLLM could not parse the model's harmony output "
                   f"({_error_text(response)[:120]}); intermittent, vLLM issue 51977 ({HARMONY_ISSUE})")
    return Row(check, "fail", f"HTTP {response.status_code}: {_error_text(response)}", fix)


def _chat(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    response, seconds, error = session.post("/chat/completions", {"model": model, "messages": HELLO,
                                                                  "max_tokens": 64})
    figures["chat_s"] = seconds
    if response is None or response.status_code != 200:
        return _failed_request("chat completion", response, error, "Look at the server's log for this request.")
    body = response.json()
    figures["chat_tokens"] = float((body.get("usage") or {}).get("completion_tokens") or 0)
    message = body["choices"][0]["message"]
    field_names = [name for name in REASONING_FIELDS if name in message]
    figures["reasoning"] = {"present": [n for n in field_names if message.get(n)], "keys": field_names}
    return Row("chat completion", "pass", f"HTTP 200 in {seconds:.2f} s, finish_reason "
               f"{body['choices'][0].get('finish_reason')}, {int(figures['chat_tokens'])} tokens")


def _reasoning(_session: _Session, _model: str, figures: dict[str, Any], _repeats: int) -> Row:
    found = figures.get("reasoning")
    if found is None:
        return Row("reasoning field", "skip", "needs a chat completion")
    if found["present"]:
        return Row("reasoning field", "pass", f"reasoning comes back under `{found['present'][0]}`")
    if found["keys"]:
        return Row("reasoning field", "note", f"the message has `{found['keys'][0]}`, empty in this answer (the "
                   "model answered without reasoning, or it was cut off by max_tokens)")
    return Row("reasoning field", "note", "no reasoning field in this answer: either the model did not reason, or "
               "the server returns none (vLLM needs --reasoning-parser openai_gptoss)")


def _responses(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    response, seconds, error = session.post("/responses", {"model": model, "input": "Say hello.",
                                                           "max_output_tokens": 64})
    if response is None or response.status_code != 200:
        if response is not None and response.status_code in (404, 405):
            return Row("responses API", "fail", f"HTTP {response.status_code}: no /v1/responses route",
                       "Serve with a vLLM release that has the Responses API (0.10.1 or later).")
        return _failed_request("responses API", response, error, "Look at the server's log for this request.")
    kinds = sorted({str(item.get("type")) for item in response.json().get("output") or ()})
    return Row("responses API", "pass", f"HTTP 200 in {seconds:.2f} s, output items: {', '.join(kinds) or 'none'}")


def _stream(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    body = {"model": model, "messages": HELLO, "max_tokens": 64, "stream": True,
            "stream_options": {"include_usage": True}}
    started, first, chunks, done = time.monotonic(), None, 0, False
    try:
        with session.http.stream("POST", f"{session.url}/chat/completions", json=body,
                                 headers=session.headers()) as response:
            if response.status_code != 200:
                response.read()
                return _failed_request("streaming", response, "", "Look at the server's log for this request.")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                if line.strip() == "data: [DONE]":
                    done = True
                    continue
                chunk = json.loads(line[5:])
                delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
                if first is None and any(delta.get(k) for k in ("content", *REASONING_FIELDS, "tool_calls")):
                    first = time.monotonic() - started
                chunks += 1
    except httpx.HTTPError as error:
        return Row("streaming", "fail", session.hide(f"{type(error).__name__}: {error}"),
                   "Check that nothing between you and the server (a proxy) buffers server-sent events.")
    total = time.monotonic() - started
    figures["stream_s"] = total
    if first is not None:
        figures["ttft_s"] = first
    if not done:
        return Row("streaming", "fail", f"{chunks} chunks and no `data: [DONE]`",
                   "Check that nothing between you and the server (a proxy) cuts server-sent events.")
    return Row("streaming", "pass", f"{chunks} chunks, ended with [DONE] after {total:.2f} s")


def _effort(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    chat, _, chat_error = session.post("/chat/completions", {"model": model, "messages": HELLO, "max_tokens": 16,
                                                             "reasoning_effort": "low"})
    if chat is None or chat.status_code != 200:
        return _failed_request("reasoning effort", chat, chat_error, "Serve gpt-oss with vLLM 0.10.1 or later.")
    responses, _, error = session.post("/responses", {"model": model, "input": "Say hello.", "max_output_tokens": 16,
                                                      "reasoning": {"effort": "low"}})
    if responses is None or responses.status_code != 200:
        return _failed_request("reasoning effort", responses, error, "Serve gpt-oss with vLLM 0.10.1 or later.")
    return Row("reasoning effort", "pass", "effort `low` accepted by Chat (reasoning_effort) and Responses "
               "(reasoning.effort)")


GREETING = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"],
            "additionalProperties": False}
"""The JSON schema of the structured-output row: one string field."""


def matches_greeting(text: str) -> bool:
    """Whether ``text`` is JSON matching :data:`GREETING` (an object with exactly one string ``greeting``)."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"greeting"} and isinstance(value["greeting"], str)


def _structured(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    fix = "Serve with a vLLM release that has structured outputs (xgrammar) and --reasoning-parser openai_gptoss."
    chat, _, error = session.post("/chat/completions", {
        "model": model, "messages": HELLO, "max_tokens": 256,
        "response_format": {"type": "json_schema", "json_schema": {"name": "greeting", "schema": GREETING,
                                                                   "strict": True}}})
    if chat is None or chat.status_code != 200:
        return _failed_request("structured output", chat, error, fix)
    responses, _, error = session.post("/responses", {
        "model": model, "input": "Say hello.", "max_output_tokens": 256,
        "text": {"format": {"type": "json_schema", "name": "greeting", "schema": GREETING, "strict": True}}})
    if responses is None or responses.status_code != 200:
        return _failed_request("structured output", responses, error, fix)
    choice = chat.json()["choices"][0]
    answers = {"Chat": (choice["message"].get("content") or "", choice.get("finish_reason") == "stop")}
    body = responses.json()
    text = "".join(part.get("text", "") for item in body.get("output") or () if item.get("type") == "message"
                   for part in item.get("content") or ())
    answers["Responses"] = (text, body.get("status") == "completed")
    wrong = [api for api, (answer, finished) in answers.items() if finished and answer and not matches_greeting(answer)]
    if wrong:
        return Row("structured output", "fail", f"{' and '.join(wrong)} finished with an answer that does not match "
                   "the JSON schema", fix)
    valid = [api for api, (answer, _) in answers.items() if matches_greeting(answer)]
    if len(valid) == len(answers):
        return Row("structured output", "pass", "Chat (response_format) and Responses (text.format) answered JSON "
                   "matching the schema")
    cut = [api for api in answers if api not in valid]
    return Row("structured output", "note", f"accepted by both APIs; {' and '.join(cut)} stopped before a final "
               "answer (vLLM constrains only the final channel, and the model was still in its analysis when "
               "the token limit came)")


def _tool_parser(session: _Session, model: str, figures: dict[str, Any], _repeats: int) -> Row:
    if parsers.tool_calls_missing(session.url, model, session.key, timeout=session.timeout):
        return Row("tool-call parser", "fail", "tool calls never reach `tool_calls` in Chat Completions",
                   parsers.flags_message(session.url))
    return Row("tool-call parser", "pass", "Chat Completions constrains tool calls with the harmony grammar "
               f"(`{parsers.TOOL_FLAGS}` on)")


def _tool_repeats(session: _Session, model: str, figures: dict[str, Any], repeats: int) -> Row:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "tools": [WEATHER_TOOL],
            "max_tokens": 128}
    called = answered = harmony = 0
    for _ in range(repeats):
        response, _, error = session.post("/chat/completions", body)
        if response is not None and _harmony_500(response):
            harmony += 1
        elif response is None or response.status_code != 200:
            return _failed_request("repeated tool requests", response, error,
                                   "Look at the server's log for this request.")
        elif response.json()["choices"][0]["message"].get("tool_calls"):
            called += 1
        else:
            answered += 1
    chose = f"the model called get_weather {called} time(s) and answered in text {answered} time(s)"
    if harmony:
        return Row("repeated tool requests", "note", f"{harmony} of {repeats} answered HTTP 500 HarmonyError "
                   f"(vLLM issue 51977, {HARMONY_ISSUE}; the lab's helpers retry once); {chose}")
    return Row("repeated tool requests", "pass", f"{repeats} of {repeats} answered, no HarmonyError 500; {chose}")


def _latency(_session: _Session, _model: str, figures: dict[str, Any], _repeats: int) -> Row:
    parts = []
    if "chat_s" in figures:
        parts.append(f"chat {figures['chat_s']:.2f} s for {int(figures.get('chat_tokens', 0))} tokens")
    if "ttft_s" in figures:
        parts.append(f"first streamed token {figures['ttft_s'] * 1000:.0f} ms")
    if "stream_s" in figures:
        parts.append(f"stream {figures['stream_s']:.2f} s")
    return Row("latency", "note", "; ".join(parts) or "no request completed")


_CHECKS: list[tuple[str, Check]] = [
    ("chat completion", _chat),
    ("reasoning field", _reasoning),
    ("responses API", _responses),
    ("streaming", _stream),
    ("reasoning effort", _effort),
    ("tool-call parser", _tool_parser),
    ("repeated tool requests", _tool_repeats),
    ("structured output", _structured),
    ("latency", _latency),
]
