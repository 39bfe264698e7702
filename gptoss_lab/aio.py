"""Run async code from sync code: the one bridge the lab uses (a script, a terminal, or a Jupyter cell)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion and return its result, also from inside Jupyter's running event loop.

    Without a running loop it runs here; inside one (a notebook cell) it runs on a fresh loop in a
    worker thread, since the kernel's loop is busy running the cell that waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
