"""Tools from plain Python functions: JSON schema via pydantic, calls that never crash.

``@lab.tool`` turns a typed, documented function into a :class:`Tool` with the
schema both APIs expect. :meth:`Tool.run` executes one call from the model's raw
JSON arguments and always returns text for the model: a bad call (malformed
JSON, wrong arguments, an exception, a timeout, an oversized result) becomes an
error message the model can read and recover from. Taught in
``notebooks/03_tools.ipynb``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TRUNCATION_MARK = "\n[... truncated {n} characters]"


def _arg_docs(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and per-argument descriptions."""
    summary = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    args: dict[str, str] = {}
    section = re.search(r"^\s*Args:\s*\n(.*?)(?:^\s*\w+:\s*$|\Z)", doc, re.S | re.M)
    if section:
        for match in re.finditer(r"^\s*(\w+)(?:\s*\([^)]*\))?:\s*(.+?)(?=^\s*\w+(?:\s*\([^)]*\))?:|\Z)",
                                 section.group(1), re.S | re.M):
            args[match.group(1)] = " ".join(match.group(2).split())
    return summary, args


@dataclass(frozen=True)
class Tool:
    """A function the model may call."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    fn: Callable[..., Any] = field(repr=False)
    timeout: float = 30.0
    """Seconds a call may take before it becomes an error result."""
    max_result_chars: int = 4000
    """Longer results are cut, with a marker saying how much was dropped."""
    arguments_model: Any = field(default=None, repr=False, compare=False)
    """The pydantic model that validates the arguments (built by :func:`tool`)."""

    def chat_schema(self) -> dict[str, Any]:
        """The entry for ``tools=[...]`` in Chat Completions."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def responses_schema(self) -> dict[str, Any]:
        """The entry for ``tools=[...]`` in the Responses API."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    def run(self, arguments: str) -> str:
        """Run one call from the model's JSON ``arguments``; return the result or an error text.

        The function runs in a daemon thread: one that outlives its timeout keeps running
        but never blocks the interpreter's exit.
        """
        try:
            kwargs = self._parse(arguments)
        except ValueError as exc:
            return str(exc)
        except Exception as exc:  # RecursionError from '[[[[...', and anything else the parsers raise
            return (f"error: the arguments for {self.name} could not be read ({type(exc).__name__}: "
                    f"{_short(exc)}). Call it again with a small, flat JSON object.")
        finished, value, error = _call_in_daemon_thread(self.fn, kwargs, self.timeout, self.name)
        if not finished:
            return f"error: {self.name} did not finish within {self.timeout:g} s; try a smaller request."
        if error is not None:  # the model sees the failure, the notebook keeps running
            return f"error: {self.name} raised {type(error).__name__}: {_short(error)}"
        try:
            return self._text(value)
        except Exception as exc:  # a circular structure, an object whose str() raises, ...
            return (f"error: {self.name} returned a {type(value).__name__} that cannot be written as text "
                    f"({type(exc).__name__}: {_short(exc)}).")

    async def arun(self, arguments: str) -> str:
        """:meth:`run` without blocking the event loop (parallel calls run concurrently)."""
        return await asyncio.to_thread(self.run, arguments)

    def _parse(self, arguments: str) -> dict[str, Any]:
        import pydantic

        try:
            data = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"error: the arguments for {self.name} are not valid JSON ({exc.msg} at position "
                f"{exc.pos}): {arguments[:200]!r}. Call it again with a JSON object."
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"error: the arguments for {self.name} must be a JSON object, not {data!r}.")
        try:
            validated = self.arguments_model.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                                 for e in exc.errors())
            raise ValueError(f"error: invalid arguments for {self.name}: {problems}.") from None
        return {k: getattr(validated, k) for k in type(validated).model_fields}

    def _text(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > self.max_result_chars:
            dropped = len(text) - self.max_result_chars
            text = text[: self.max_result_chars] + TRUNCATION_MARK.format(n=dropped)
        return text


def _short(exc: BaseException, limit: int = 300) -> str:
    """An exception's message, cut to ``limit`` characters (its ``str()`` may raise too)."""
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable>"
    return text if len(text) <= limit else text[:limit] + "..."


def _call_in_daemon_thread(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float,
                           name: str) -> tuple[bool, Any, BaseException | None]:
    """Call ``fn(**kwargs)`` in a daemon thread; return (finished in time, value, exception raised)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as exc:  # SystemExit or KeyboardInterrupt in a tool is still the tool's failure
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"gptoss-tool-{name}", daemon=True).start()
    if not done.wait(timeout):
        return False, None, None
    return True, box.get("value"), box.get("error")


def _build_model(fn: Callable[..., Any], name: str) -> Any:
    import pydantic

    _, docs = _arg_docs(inspect.getdoc(fn) or "")
    hints = inspect.get_annotations(fn, eval_str=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name}: *args and **kwargs cannot be described to the model")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, pydantic.Field(default, description=docs.get(param.name)))
    return pydantic.create_model(f"{name}_arguments", **fields)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, timeout: float = 30.0,
         max_result_chars: int = 4000) -> Any:
    """Make a :class:`Tool` from a typed function; use as ``@lab.tool`` or ``@lab.tool(timeout=5)``.

    The docstring's first paragraph becomes the description; its ``Args:`` section
    describes each parameter; type hints become the JSON schema (via pydantic).
    """
    def make(f: Callable[..., Any]) -> Tool:
        tool_name = name or f.__name__
        model = _build_model(f, tool_name)
        schema = model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        summary, _ = _arg_docs(inspect.getdoc(f) or "")
        return Tool(tool_name, summary or tool_name, schema, f, timeout, max_result_chars, model)

    return make(fn) if fn is not None else make


def run_call(tools: Iterable[Tool], name: str, arguments: str) -> str:
    """Run the call ``name(arguments)`` against ``tools``; an unknown name is an error result."""
    by_name = {t.name: t for t in tools}
    if name not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        return f"error: there is no tool named {name!r}; the available tools are: {known}."
    try:
        return by_name[name].run(arguments)
    except Exception as exc:  # never a crash: whatever is left becomes the text the model reads
        return f"error: calling {name} failed ({type(exc).__name__}: {_short(exc)})."
