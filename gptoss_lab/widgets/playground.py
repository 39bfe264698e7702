"""An ipywidgets chat with the lab's server: streaming answer, reasoning pane, Stop, history, tokens/s.

``lab.widgets.playground()`` returns a :class:`Playground`; it shows itself in
Jupyter, and its controls are attributes, so code (and the tests) can drive it
exactly as a person does: ``pg.prompt.value = "..."; pg.send.click(); pg.wait()``.
Requests stream in a background thread, so the kernel stays free to handle the
Stop button. Taught in ``notebooks/07_playground.ipynb``.
"""

from __future__ import annotations

import dataclasses
import html
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gptoss_lab.client import ToolCallRequest
from gptoss_lab.display import call_html
from gptoss_lab.errors import LabError, ServerError
from gptoss_lab.tools import Tool
from gptoss_lab.widgets.chat import Cancel, Cancelled, Effort, Options, Turn, run_turn
from gptoss_lab.widgets.view import WidgetView

_DIM = "color:#6b7280;white-space:pre-wrap;font-size:0.92em"
_COLORS = {"info": "#374151", "busy": "#1d4ed8", "ok": "#065f46", "error": "#b91c1c"}


def _text(value: str) -> str:
    return html.escape(value, quote=False)


@dataclass
class _Run:
    prompt: str
    cancel: Cancel = field(default_factory=Cancel)
    thread: threading.Thread | None = None


class Playground(WidgetView):
    """A chat with the lab's vLLM server; build one with :func:`playground`.

    Attributes (ipywidgets): ``model``, ``effort``, ``temperature``, ``max_tokens``,
    ``instructions``, ``tools`` (the controls); ``prompt``, ``send``, ``stop``,
    ``clear``; ``history``, ``reasoning``, ``answer`` (the panes); ``status`` and
    ``tokens_per_s`` (the readouts); ``widget`` is the whole thing.
    ``messages`` is the conversation as it is sent; ``last`` is the :class:`Turn` of the last Send
    once it has finished (``None`` while it runs, and when it failed or was stopped).
    """

    def __init__(self, *, model: str | None = None, effort: Effort = "medium", temperature: float = 1.0,
                 max_tokens: int = 2048, instructions: str = "", tools: bool = False,
                 toolset: Iterable[Tool] | None = None, interval: float = 0.25) -> None:
        import ipywidgets as w

        from gptoss_lab import examples

        self.toolset: tuple[Tool, ...] = tuple(examples.TOOLS.values() if toolset is None else toolset)
        self.interval = interval
        self.messages: list[dict[str, Any]] = []
        self.last: Turn | None = None
        self._lock = threading.RLock()
        self._active: _Run | None = None
        self._threads: list[threading.Thread] = []
        self._turn_start = 0
        self._clients: dict[tuple[str, str], Any] = {}

        wide = w.Layout(width="100%")
        self.model = w.Dropdown(description="model", options=[model] if model else [], value=model,
                                layout=w.Layout(width="22em"))
        self.effort = w.ToggleButtons(options=["low", "medium", "high"], value=effort, description="effort",
                                      style={"button_width": "6.5em", "description_width": "initial"})
        self.temperature = w.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05, description="temperature",
                                         readout_format=".2f", style={"description_width": "initial"})
        self.max_tokens = w.BoundedIntText(value=max_tokens, min=1, max=1_000_000, description="max tokens",
                                           layout=w.Layout(width="14em"), style={"description_width": "initial"})
        names = ", ".join(t.name for t in self.toolset)
        self.tools = w.Checkbox(value=tools, description=f"tools ({names})", indent=False,
                                layout=w.Layout(width="auto"),
                                tooltip="Offer the example tools of 03_tools; the playground runs "
                                        "the calls and streams the next turn.")
        self.instructions = w.Textarea(placeholder="Developer instructions (optional): sent as the developer "
                                                   "message before the conversation", rows=2, layout=wide)
        self.history = w.HTML(layout=wide)
        self.reasoning = w.HTML(layout=w.Layout(width="100%", border_left="3px solid #d1d5db",
                                                padding="0 0 0 8px"))
        self.answer = w.HTML(layout=wide)
        self.prompt = w.Textarea(placeholder="Ask something, then press Send", rows=3, layout=wide)
        self.send = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop = w.Button(description="Stop", icon="stop", disabled=True,
                             tooltip="Cancel the request (the server stops generating)")
        self.clear = w.Button(description="Clear", icon="trash", tooltip="Start a new conversation")
        self.status = w.HTML()
        self.tokens_per_s = w.HTML()
        for widget, name in ((self.prompt, "prompt"), (self.send, "send"), (self.stop, "stop"),
                             (self.clear, "clear"), (self.answer, "answer"), (self.reasoning, "reasoning"),
                             (self.history, "history"), (self.status, "status"),
                             (self.tokens_per_s, "tokens-per-s")):
            widget.add_class(f"gptoss-{name}")
        self.send.on_click(self._on_send)
        self.stop.on_click(self._on_stop)
        self.clear.on_click(self._on_clear)
        self.widget = w.VBox([
            w.HBox([self.model, self.max_tokens, self.tools], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.effort, self.temperature], layout=w.Layout(flex_flow="row wrap")),
            self.instructions,
            self.history,
            self.reasoning,
            self.answer,
            self.prompt,
            w.HBox([self.send, self.stop, self.clear, self.status]),
            self.tokens_per_s,
        ])
        self.widget.add_class("gptoss-playground")
        self._draw_panes(None)
        if not model:
            self._load_models()

    # -- what code and tests call ------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a request is running."""
        return self._active is not None

    def wait(self, timeout: float | None = 300.0) -> Turn | None:
        """Block until the running request (and any stopped one) has finished; return :attr:`last`.

        ``None`` means the request failed or was stopped: :attr:`status` says why.

        Raises:
            TimeoutError: still running after ``timeout`` seconds (press Stop, or call ``stop.click()``).
        """
        for thread in list(self._threads):
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"The playground's request was still running after {timeout} s; "
                                   "stop it with pg.stop.click() or wait longer (pg.wait(timeout=...)).")
        self._threads = [t for t in self._threads if t.is_alive()]
        return self.last

    def options(self) -> Options:
        """The request options the controls are set to now."""
        return Options(
            model=self.model.value or "", effort=self.effort.value, temperature=float(self.temperature.value),
            max_tokens=int(self.max_tokens.value), instructions=self.instructions.value,
            tools=self.toolset if self.tools.value else (),
        )

    def __repr__(self) -> str:
        return f"Playground(model={self.model.value!r}, {len(self.messages)} messages, busy={self.busy})"

    # -- buttons -----------------------------------------------------------------------
    def _on_send(self, _button: object = None) -> None:
        text = self.prompt.value.strip()
        if not text:
            self._say("Type a prompt first, then press Send.", "info")
            return
        with self._lock:
            if self._active is not None:
                self._say("A request is still running: press Stop first.", "info")
                return
            run = _Run(text)
            self._active = run
        options = self.options()
        history = list(self.messages)
        self._turn_start, self.last = len(history), None
        self.prompt.value = ""
        self._set_busy(True)
        self._draw_history(pending=text)
        self._draw_panes(None)
        self.tokens_per_s.value = ""
        self._say("Sending...", "busy")
        run.thread = threading.Thread(target=self._work, args=(run, options, history), daemon=True,
                                      name="gptoss-playground")
        self._threads.append(run.thread)
        run.thread.start()

    def _on_stop(self, _button: object = None) -> None:
        with self._lock:
            run, self._active = self._active, None
            if run is None:
                return
            run.cancel.set()
            self._idle(run)
            self._say("Stopped: the request was cancelled and the server stops generating. The conversation "
                      "is as it was; your prompt is back in the box.", "info")

    def _on_clear(self, _button: object = None) -> None:
        with self._lock:
            if self._active is not None:
                self._say("A request is running: press Stop before Clear.", "info")
                return
            self.messages, self.last, self._turn_start = [], None, 0
            self._draw_history()
            self._draw_panes(None)
            self.tokens_per_s.value = ""
            self._say("Cleared: the next prompt starts a new conversation.", "info")

    # -- the worker thread -------------------------------------------------------------
    def _work(self, run: _Run, options: Options, history: list[dict[str, Any]]) -> None:
        try:
            client = self._client()
            if not options.model:
                options = dataclasses.replace(options, model=self._first_model(client))
            turn = run_turn(client, history, run.prompt, options, cancel=run.cancel,
                            on_update=lambda t: self._update(run, t), interval=self.interval)
        except Cancelled:
            return
        except Exception as exc:  # every failure becomes a status line, never a traceback in the output
            self._finish(run, None, _explain(exc, options))
        else:
            self._finish(run, turn, "")

    def _update(self, run: _Run, turn: Turn) -> None:
        with self._lock:
            if self._active is not run:
                return
            self._draw_panes(turn)
            pending = _pending_calls(turn)
            if pending:
                self._say(f"Running {', '.join(c.name for c in pending)}...", "busy")
            elif turn.current is not None and (turn.current.reasoning or turn.current.final):
                self._say("Streaming...", "busy")
            elif turn.runs and turn.current is None and turn.final is None:
                self._say(f"Ran {', '.join(r.call.name for r in turn.runs)}; sending the results...", "busy")

    def _finish(self, run: _Run, turn: Turn | None, error: str) -> None:
        with self._lock:
            if self._active is not run:
                return  # stopped meanwhile: the stop already reset the controls
            self._active = None
            if turn is not None and turn.finish_reason == "length":
                self._draw_panes(turn)  # what came, but a cut answer does not go into the history
                turn, error = None, (f"The answer was cut at max tokens ({self.max_tokens.value}), so it is not "
                                     "kept in the history: raise max tokens and Send again.")
            if turn is None:
                self._idle(run)
                self._say(error, "error")
                return
            self.messages += turn.messages
            self.last = turn
            self._set_busy(False)
            self._draw_panes(turn)
            self.tokens_per_s.value = f"<span style='color:#6b7280'>{_text(turn.footer())}</span>"
            tools = f", {len(turn.runs)} tool call(s)" if turn.runs else ""
            self._say(f"Done in {turn.seconds:.1f} s{tools}.", "ok")

    def _idle(self, run: _Run) -> None:
        """Back to idle after a stop or a failure: controls on, prompt restored, history unchanged."""
        self._set_busy(False)
        self._draw_history()
        if not self.prompt.value:
            self.prompt.value = run.prompt

    # -- drawing -----------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        self.send.disabled = busy
        self.clear.disabled = busy
        self.stop.disabled = not busy

    def _say(self, text: str, kind: str) -> None:
        self.status.value = f"<span style='color:{_COLORS[kind]}'>{_text(text)}</span>"

    def _draw_history(self, pending: str | None = None) -> None:
        """The conversation so far; with ``pending``, the earlier turns and the prompt being answered.

        The turn being answered (and, once done, the latest turn) is drawn in the reasoning and
        answer panes below, so it is not repeated here.
        """
        shown = self.messages[:self._turn_start] if pending is not None else self.messages
        parts = [_message_html(m) for m in shown]
        if pending is not None:
            parts.append(_message_html({"role": "user", "content": pending}))
        self.history.value = "".join(parts)

    def _draw_panes(self, turn: Turn | None) -> None:
        reasoning = turn.reasoning if turn else ""
        self.reasoning.value = (f"<div style='{_DIM}'>{_text(reasoning)}</div>" if reasoning
                                else f"<div style='{_DIM}'>reasoning appears here</div>")
        if turn is None:
            self.answer.value = ""
            return
        parts = [call_html(r.call.name, r.call.arguments, r.output, r.seconds, r.failed) for r in turn.runs]
        parts += [call_html(c.name, c.arguments) for c in _pending_calls(turn)]
        text = turn.final if turn.final is not None else (turn.current.final if turn.current else "")
        if turn.current is not None and turn.current.tool_calls and not text:
            parts += [call_html(c.name, c.arguments) for c in turn.current.tool_calls]
        if text:
            parts.append(f"<div style='white-space:pre-wrap'>{_text(text)}</div>")
        self.answer.value = "".join(parts)

    # -- the server --------------------------------------------------------------------
    def _client(self) -> Any:
        """An ``openai.OpenAI`` for the current server that fails fast when nothing answers."""
        from openai import OpenAI, Timeout

        from gptoss_lab.client import base_url, server_key

        key = (base_url(), server_key())
        if key not in self._clients:
            self._clients = {key: OpenAI(base_url=key[0], api_key=key[1], max_retries=0,
                                         timeout=Timeout(600.0, connect=5.0))}
        return self._clients[key]

    def _first_model(self, client: Any) -> str:
        ids = [m.id for m in client.models.list().data]
        if not ids:
            raise ServerError("The server serves no model; restart it with lab.serve().")
        with self._lock:
            self.model.options = ids
            self.model.value = ids[0]
        return ids[0]

    def _load_models(self) -> None:
        try:
            self._first_model(self._client())
        except Exception as exc:
            self._say(_explain(exc, self.options()), "error")
        else:
            from gptoss_lab.client import base_url

            self._say(f"Ready: {self.model.value} at {base_url()}.", "info")


def _pending_calls(turn: Turn) -> list[ToolCallRequest]:
    """Tool calls the model has made that have not been run yet (they run between two requests)."""
    asked = [c for step in turn.steps for c in step.tool_calls]
    return asked[len(turn.runs):]


def _message_html(message: dict[str, Any]) -> str:
    role = message["role"]
    if role == "user":
        return (f"<div style='margin:4px 0'><b>you</b>: <span style='white-space:pre-wrap'>"
                f"{_text(message['content'])}</span></div>")
    if role == "tool":
        return (f"<div style='{_DIM};margin-left:1.5em'>tool result: {_text(message['content'][:200])}"
                "</div>")
    parts = []
    if message.get("reasoning"):
        parts.append(f"<div style='{_DIM}'>{_text(message['reasoning'])}</div>")
    for call in message.get("tool_calls", ()):
        parts.append(call_html(call["function"]["name"], call["function"]["arguments"]))
    if message.get("content"):
        parts.append(f"<b>gpt-oss</b>: <span style='white-space:pre-wrap'>{_text(message['content'])}</span>")
    return f"<div style='margin:4px 0'>{''.join(parts)}</div>"


def _explain(exc: BaseException, options: Options) -> str:
    """What went wrong and what to do, in one line for the status bar."""
    import openai

    from gptoss_lab.client import base_url

    url = base_url()
    if isinstance(exc, openai.APITimeoutError):
        return f"The server at {url} did not answer in time. Check it in the server panel, then Send again."
    if isinstance(exc, openai.APIConnectionError):
        return (f"No server at {url}: run lab.serve() in a cell or press Start in the server panel, "
                "then Send again.")
    if isinstance(exc, openai.AuthenticationError):
        return f"The server at {url} wants an API key: set GPTOSS_LAB_API_KEY (or lab.connect(api_key=...))."
    if isinstance(exc, openai.NotFoundError):
        return (f"The server at {url} does not serve model {options.model!r}: pick one in the model list "
                "(it lists what /v1/models reports).")
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = str(body.get("message") or exc.message).rstrip(".")
        return (f"The server refused the request ({exc.status_code}): {detail}. Shorten the instructions or "
                "Clear a long conversation, check the other settings, then Send again.")
    if isinstance(exc, LabError):
        return str(exc)
    return f"The request failed ({type(exc).__name__}: {exc}). See the server panel's log, then Send again."


def playground(*, model: str | None = None, effort: Effort = "medium", temperature: float = 1.0,
               max_tokens: int = 2048, instructions: str = "", tools: bool = False,
               toolset: Iterable[Tool] | None = None) -> Playground:
    """Return a chat playground for the lab's server (it displays itself in Jupyter).

    Args:
        model: the model to ask (default: the first one the server serves).
        effort: reasoning effort, ``low``, ``medium`` or ``high``.
        temperature: sampling temperature; 1.0 is gpt-oss's recommended setting,
            0.0 is greedy (gpt-oss-nano replays its script exactly when greedy).
        max_tokens: the most tokens one response may generate.
        instructions: developer instructions, sent as the ``developer`` message.
        tools: start with tools on.
        toolset: the tools offered when tools are on (default: the example tools of
            ``notebooks/03_tools.ipynb``, ``lab.examples.TOOLS``).

    Taught in ``notebooks/07_playground.ipynb``.
    """
    return Playground(model=model, effort=effort, temperature=temperature, max_tokens=max_tokens,
                      instructions=instructions, tools=tools, toolset=toolset)
