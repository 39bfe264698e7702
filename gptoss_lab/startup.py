"""The start-up phases of a vLLM server, read off its log, and how they are shown while it starts."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from gptoss_lab.jupyter import in_jupyter

PHASES: list[tuple[str, str]] = [
    ("importing vLLM", r"version \d+\.\d+"),
    ("resolving the model", r"Resolved architecture|Initializing a V1 LLM engine|non-default args"),
    ("loading weights", r"Loading weights|Starting to load model"),
    ("compiling (torch.compile)", r"torch\.compile takes|Compiling a graph|Dynamo bytecode"),
    ("allocating the KV cache", r"KV cache|GPU KV cache size|CPU KV cache"),
    ("capturing CUDA graphs", r"Capturing CUDA graph|Graph capturing"),
    ("starting the HTTP server", r"Starting vLLM (API )?server|Available routes"),
]
"""(phase shown to the user, a log line that marks its start), in start-up order."""

STARTING, READY = "starting", "ready"
"""The phase before the first log line, and the phase once ``/health`` answers."""


def advance(log_text: str, phase: str = STARTING) -> str:
    """Return the phase reached after ``log_text``: the latest phase it marks, never one behind ``phase``."""
    order = [name for name, _ in PHASES]
    for name, pattern in PHASES:
        ahead = phase not in order or order.index(name) > order.index(phase)
        if ahead and re.search(pattern, log_text):
            phase = name  # phases only move forward, whatever order the log lines come in
    return phase


def printer() -> Callable[[str, float], None]:
    """Return a callback ``show(phase, elapsed)`` that shows the start-up phase.

    In Jupyter: a live progress bar widget. On a terminal: one line rewritten in place.
    Elsewhere (CI logs): one line per phase change.
    """
    names = [STARTING, *(name for name, _ in PHASES), READY]
    if in_jupyter():
        try:
            import ipywidgets as widgets
            from IPython.display import display

            bar = widgets.IntProgress(min=0, max=len(names) - 1, description="vLLM")
            label = widgets.HTML()
            display(widgets.HBox([bar, label]))

            def show_widget(phase: str, elapsed: float) -> None:
                bar.value = names.index(phase) if phase in names else bar.value
                bar.bar_style = "success" if phase == READY else "info"
                label.value = f"<code>{phase}</code> &nbsp; {elapsed:.0f} s"

            return show_widget
        except ImportError:
            pass
    last: dict[str, str | None] = {"phase": None}
    live = sys.stderr.isatty()

    def show(phase: str, elapsed: float) -> None:
        if live:
            step = names.index(phase) if phase in names else 0
            bar = "#" * step + "." * (len(names) - 1 - step)
            print(f"\r  vLLM [{bar}] {phase:<28} {elapsed:5.0f} s", end="", file=sys.stderr, flush=True)
            if phase == READY:
                print(file=sys.stderr)
        elif phase != last["phase"]:
            print(f"  vLLM: {phase} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
        last["phase"] = phase

    return show
