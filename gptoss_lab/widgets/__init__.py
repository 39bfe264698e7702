"""Jupyter widgets: a chat playground and a server panel. Taught in ``notebooks/07_playground.ipynb``.

``lab.widgets`` is imported on first use (it loads ipywidgets)::

    panel = lab.widgets.server_panel()   # status, preset, Start/Stop, log tail
    pg = lab.widgets.playground()        # streaming chat with reasoning pane, Stop, history, tokens/s
"""

from gptoss_lab.widgets.chat import Cancelled, Options, Turn, request, run_turn
from gptoss_lab.widgets.playground import Playground, playground
from gptoss_lab.widgets.server_panel import ServerPanel, server_panel

__all__ = ["Cancelled", "Options", "Playground", "ServerPanel", "Turn", "playground", "request", "run_turn",
           "server_panel"]
