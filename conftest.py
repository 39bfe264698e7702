"""Shared fixtures for the unit tests and the notebook lane.

One real vLLM server serving gpt-oss-nano is started for the whole session,
when the first test or notebook needs it, and stopped at the end, pass or fail.
Notebooks find it through ``GPTOSS_LAB_BASE_URL``, which ``lab.serve()`` attaches to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_SERVER = None


def _start_server():  # -> gptoss_lab.VLLMServer
    global _SERVER
    if _SERVER is None:
        import gptoss_lab as lab
        from gptoss_lab import process

        port = process.free_port()
        _SERVER = lab.serve("nano", port=port)
        os.environ["GPTOSS_LAB_MODEL"] = "nano"
        os.environ["GPTOSS_LAB_PORT"] = str(port)
        os.environ["GPTOSS_LAB_BASE_URL"] = _SERVER.url
    return _SERVER


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Start the shared server before the first notebook runs (nbmake items take no fixtures)."""
    if any(str(getattr(item, "path", "")).endswith(".ipynb") for item in items):
        _start_server()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


@pytest.fixture(scope="session")
def nano_server() -> Iterator[object]:
    """The shared vLLM server serving gpt-oss-nano."""
    yield _start_server()


@pytest.fixture(scope="session")
def nano_dir() -> Path:
    """A built gpt-oss-nano checkpoint folder (built once, then cached)."""
    from gptoss_lab import nano

    return nano.path()
