"""A built-in tool request, readably: what the model thought, called, got back and answered.

vLLM runs the tool loop inside one Responses request. Its ``output`` items show the
reasoning, a ``web_search_call`` per browser action and the final message, but not the
tool results. Sent with ``extra_body={"enable_response_messages": True}``, the response
also carries ``output_messages``: the harmony messages of the whole loop, tool results
included. :func:`transcript` shows those when present, the output items otherwise.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

MAX_LINES = 12
"""Lines of a tool result shown before the rest is folded away."""


@dataclass(frozen=True)
class Row:
    """One step of the loop."""

    kind: str
    """``reasoning``, ``call``, ``result`` or ``answer``."""
    who: str
    """Who wrote it: ``assistant``, or the tool (``browser.search``, ``python``)."""
    text: str
    detail: str = ""
    """The recipient of a call, or the channel."""


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    value = getattr(obj, key, default)
    if value is default and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(key, default)
    return value


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(_get(part, "text", "") or "") for part in content or [])


def _from_messages(messages: list[Any]) -> list[Row]:
    rows: list[Row] = []
    for message in messages:
        author = _get(message, "author") or {}
        role = _get(author, "role") or _get(message, "role", "")
        name = _get(author, "name") or _get(message, "name") or role
        channel = _get(message, "channel") or ""
        recipient = _get(message, "recipient") or ""
        text = _texts(_get(message, "content"))
        if role == "tool":
            rows.append(Row("result", str(name), text, channel))
        elif recipient and recipient != "assistant":
            rows.append(Row("call", "assistant", text, str(recipient)))
        elif channel == "final":
            rows.append(Row("answer", "assistant", text, channel))
        else:
            rows.append(Row("reasoning", "assistant", text, channel))
    return rows


def _from_items(items: list[Any]) -> list[Row]:
    rows: list[Row] = []
    for item in items:
        kind = _get(item, "type")
        if kind == "reasoning":
            text = _texts(_get(item, "content")) or _texts(_get(item, "summary"))
            rows.append(Row("reasoning", "assistant", text))
        elif kind == "web_search_call":
            action = _get(item, "action") or {}
            what = _get(action, "query") or _get(action, "url") or _get(action, "pattern") or ""
            rows.append(Row("call", "assistant", str(what), f"browser ({_get(action, 'type')})"))
        elif kind == "message":
            rows.append(Row("answer", "assistant", _texts(_get(item, "content"))))
        elif kind in ("function_call", "code_interpreter_call"):
            rows.append(Row("call", "assistant", str(_get(item, "arguments") or _get(item, "code") or ""),
                            str(_get(item, "name") or kind)))
    return rows


class BuiltinTranscript:
    """Rows of a built-in tool request; HTML in Jupyter, plain text elsewhere."""

    def __init__(self, rows: list[Row], source: str) -> None:
        self.rows = rows
        self.source = source
        """``output_messages`` (harmony messages, with tool results) or ``output`` (items)."""

    def calls(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "call"]

    def results(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "result"]

    def answer(self) -> str:
        answers = [r.text for r in self.rows if r.kind == "answer"]
        return answers[-1] if answers else ""

    def __str__(self) -> str:
        out = []
        for row in self.rows:
            label = {"reasoning": "thinks", "call": f"calls {row.detail}", "result": f"{row.who} returns",
                     "answer": "answers"}[row.kind]
            lines = row.text.splitlines() or [""]
            shown = lines[:MAX_LINES] + ([f"... {len(lines) - MAX_LINES} more lines"] if len(lines) > MAX_LINES else [])
            out.append(f"[{label}] " + "\n    ".join(shown))
        return "\n".join(out)

    def _repr_html_(self) -> str:
        colors = {"reasoning": "#6b7280", "call": "#c2410c", "result": "#be185d", "answer": "#15803d"}
        parts = []
        for row in self.rows:
            color = colors[row.kind]
            head = {"reasoning": "reasoning", "call": f"call → {row.detail}", "result": f"result ← {row.who}",
                    "answer": "answer"}[row.kind]
            body = html.escape(row.text)
            if row.kind == "result" and len(row.text.splitlines()) > MAX_LINES:
                first = html.escape("\n".join(row.text.splitlines()[:MAX_LINES]))
                body = f"{first}<details><summary>all {len(row.text.splitlines())} lines</summary>{body}</details>"
            style = "opacity:0.7;font-style:italic;" if row.kind == "reasoning" else ""
            parts.append(
                f"<div style='margin:4px 0;border-left:3px solid {color};padding-left:8px;{style}'>"
                f"<b style='color:{color}'>{html.escape(head)}</b>"
                f"<pre style='white-space:pre-wrap;margin:2px 0'>{body}</pre></div>"
            )
        return "".join(parts)


def transcript(response: Any) -> BuiltinTranscript:
    """The steps of a Responses API response that used built-in tools, readably.

    Uses ``output_messages`` when the request asked for them
    (``extra_body={"enable_response_messages": True}``), which include each tool's
    result; otherwise the response's ``output`` items.
    """
    messages = _get(response, "output_messages")
    if messages:
        return BuiltinTranscript(_from_messages(list(messages)), "output_messages")
    return BuiltinTranscript(_from_items(list(_get(response, "output") or [])), "output")
