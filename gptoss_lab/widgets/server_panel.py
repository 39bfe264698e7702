"""A server panel: is vLLM running, which model and preset, Start/Stop, the log's last lines.

Start calls :func:`gptoss_lab.serve` in a background thread (attach if a server
answers, else start the configured model with its preset) and shows the start-up
phase and the log tail while it waits. Stop stops only a server this kernel
started: an attached one belongs to whoever started it. Taught in
``notebooks/07_playground.ipynb``.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

from gptoss_lab.errors import LabError, ServerError
from gptoss_lab.widgets.view import WidgetView

_COLORS = {"running": "#065f46", "attached": "#065f46", "stopped": "#6b7280", "starting": "#1d4ed8",
           "stopping": "#1d4ed8", "error": "#b91c1c"}
_PRE = ("margin:0;max-height:16em;overflow:auto;font-size:0.8em;white-space:pre-wrap;"
        "background:#f9fafb;border:1px solid #e5e7eb;padding:4px")


class ServerPanel(WidgetView):
    """Status, preset, Start/Stop and log tail of the lab's server; build one with :func:`server_panel`.

    Attributes (ipywidgets): ``status``, ``preset``, ``start``, ``stop``, ``refresh``
    (buttons) and ``log`` (the tail); ``widget`` is the whole panel. ``server`` is
    the :class:`~gptoss_lab.VLLMServer` it found or started (``None`` when stopped).
    """

    def __init__(self, model: str | None = None, *, log_lines: int = 15, timeout: float | None = None) -> None:
        import ipywidgets as w

        self.model_arg = model
        self.log_lines = log_lines
        self.timeout = timeout
        self.server: Any = None
        self.state = "stopped"
        self._thread: threading.Thread | None = None
        self.status = w.HTML()
        self.preset = w.HTML()
        self.start = w.Button(description="Start", icon="play", button_style="success",
                              tooltip="lab.serve(): attach to a running server, or start the model")
        self.stop = w.Button(description="Stop", icon="stop", tooltip="Stop the server this kernel started")
        self.refresh = w.Button(description="Refresh", icon="refresh")
        self.log = w.HTML(layout=w.Layout(width="100%"))
        for widget, name in ((self.status, "status"), (self.preset, "preset"), (self.start, "start"),
                             (self.stop, "stop"), (self.refresh, "refresh"), (self.log, "log")):
            widget.add_class(f"gptoss-server-{name}")
        self.start.on_click(self._on_start)
        self.stop.on_click(self._on_stop)
        self.refresh.on_click(lambda _b: self.update())
        self.widget = w.VBox([w.HBox([self.start, self.stop, self.refresh, self.status]), self.preset, self.log])
        self.widget.add_class("gptoss-server-panel")
        self.update()

    # -- what code and tests call ------------------------------------------------------
    def update(self) -> str:
        """Look at the server again and redraw; returns the state (running, attached or stopped)."""
        from gptoss_lab import active
        from gptoss_lab.attach import connect
        from gptoss_lab.config import settings

        found = active.get()
        if found is None or not found.is_running():
            try:
                found = connect()  # attach to whatever answers at GPTOSS_LAB_BASE_URL
            except ServerError:
                found = None
        self.server = found
        if found is None:
            self.state = "stopped"
            self._status("stopped", f"nothing answers at {settings().url}: press Start")
        else:
            self.state = "attached" if found.attached else "running"
            where = (f"started elsewhere; stop it there (a lab-started one: gptoss-lab stop --port {found.port})"
                     if found.attached else f"started by this kernel, pid {found.pid}")
            self._status(self.state, f"{found.model_id()} at {found.url} ({where})")
        self.preset.value = f"<span style='color:#374151'>preset: <code>{html.escape(self._preset())}</code></span>"
        self._tail()
        self._buttons()
        return self.state

    def wait(self, timeout: float | None = None) -> str:
        """Block until a Start or Stop in progress has finished; return the state."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def __repr__(self) -> str:
        return f"ServerPanel(state={self.state!r}, url={getattr(self.server, 'url', None)!r})"

    # -- buttons -----------------------------------------------------------------------
    def _on_start(self, _button: object = None) -> None:
        if self.state in ("starting", "stopping"):
            return
        self.state = "starting"
        self._buttons()
        self._thread = threading.Thread(target=self._start, daemon=True, name="gptoss-server-start")
        self._thread.start()

    def _on_stop(self, _button: object = None) -> None:
        if self.state != "running" or self.server is None:
            return
        self.state = "stopping"
        self._buttons()
        self._status("stopping", f"stopping the server at {self.server.url}...")
        self._thread = threading.Thread(target=self._stop, daemon=True, name="gptoss-server-stop")
        self._thread.start()

    def _start(self) -> None:
        from gptoss_lab.config import server_log_path, settings
        from gptoss_lab.launch import serve as serve_model

        log = server_log_path(settings().port)
        started = time.time()
        result: dict[str, Any] = {}

        def serve() -> None:
            try:
                result["server"] = serve_model(self.model_arg, timeout=self.timeout, progress=False)
            except Exception as exc:
                result["error"] = exc

        worker = threading.Thread(target=serve, daemon=True, name="gptoss-serve")
        worker.start()
        while worker.is_alive():
            fresh = log.exists() and log.stat().st_mtime >= started
            text = log.read_text(errors="replace") if fresh else ""
            self._status("starting", f"{_phase(text)} ({time.time() - started:.0f} s)")
            self._show_log(log if fresh else None, "\n".join(text.splitlines()[-self.log_lines:]))
            worker.join(1.0)
        error = result.get("error")
        if error is None:
            self.update()
            return
        self.state = "stopped"
        self._buttons()
        message = str(error) if isinstance(error, LabError) else f"{type(error).__name__}: {error}"
        self._status("error", "the server did not start: the reason is below. Fix it, then press Start again")
        self.log.value = f"<pre style='{_PRE}'>{html.escape(message)}</pre>"

    def _stop(self) -> None:
        try:
            self.server.stop()
        finally:
            self.update()

    # -- drawing -----------------------------------------------------------------------
    def _status(self, state: str, text: str) -> None:
        self.status.value = (f"<span style='color:{_COLORS[state]}'><b>{state}</b>: "
                             f"{html.escape(text, quote=False)}</span>")

    def _buttons(self) -> None:
        self.start.disabled = self.state != "stopped"
        self.stop.disabled = self.state != "running"

    def _tail(self) -> None:
        from gptoss_lab.config import server_log_path, settings

        if self.server is not None and self.server.log_path is not None:
            self._show_log(self.server.log_path, self.server.logs(self.log_lines))
            return
        if self.server is not None:
            self.log.value = ("<span style='color:#6b7280'>no log here: this server was not started by the lab. "
                              "Its log is wherever it was started.</span>")
            return
        last = server_log_path(settings().port)
        text = "\n".join(last.read_text(errors="replace").splitlines()[-self.log_lines:]) if last.exists() else ""
        self._show_log(last if text else None, text)

    def _show_log(self, path: Path | None, text: str) -> None:
        from gptoss_lab.redact import redact

        text = redact(text)
        title = f"log tail: {path}" if path else "log tail: (no log yet)"
        self.log.value = (f"<div style='color:#6b7280;font-size:0.85em'>{html.escape(title)}</div>"
                          f"<pre style='{_PRE}'>{html.escape(text)}</pre>")

    def _preset(self) -> str:
        from gptoss_lab import presets
        from gptoss_lab.config import settings
        from gptoss_lab.models import model_key, resolve_model

        served = self.server.model_id() if self.server is not None else ""
        name = model_key(served) if served else resolve_model(self.model_arg or settings().model)
        try:
            return presets.for_machine(name).name
        except LabError as exc:
            return f"none: {exc}"


def _phase(log_text: str) -> str:
    """The start-up phase the log has reached (the phases of :data:`gptoss_lab.startup.PHASES`)."""
    from gptoss_lab import startup

    return startup.advance(log_text)


def server_panel(model: str | None = None, *, log_lines: int = 15, timeout: float | None = None) -> ServerPanel:
    """Return a panel for the lab's server: status, preset, Start/Stop, log tail (it displays itself in Jupyter).

    Args:
        model: what Start serves when nothing is running (default: ``GPTOSS_LAB_MODEL``).
        log_lines: how many log lines to show.
        timeout: seconds Start waits for the server (default: ``GPTOSS_LAB_START_TIMEOUT``).

    Taught in ``notebooks/07_playground.ipynb``.
    """
    return ServerPanel(model, log_lines=log_lines, timeout=timeout)
