"""The active server: the one the last ``serve()`` or ``connect()`` returned, which the helpers talk to.

This module owns that one piece of shared state and nothing else; every other module reads and
changes it through :func:`get`, :func:`set` and :func:`clear`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptoss_lab.server import VLLMServer

_server: VLLMServer | None = None


def get() -> VLLMServer | None:
    """Return the active server, or None when no ``serve()`` or ``connect()`` has returned one."""
    return _server


def set(server: VLLMServer) -> None:  # noqa: A001 - read as active.set(server)
    """Make ``server`` the one the helpers (``lab.chat()``, ``lab.client()`` ...) talk to."""
    global _server
    _server = server


def clear() -> None:
    """Forget the active server: the helpers fall back to ``GPTOSS_LAB_BASE_URL``."""
    global _server
    _server = None
