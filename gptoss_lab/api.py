"""The plain HTTP calls the lab makes to a vLLM server outside the OpenAI SDK: its key header, ``GET /v1/models``."""

from __future__ import annotations

from typing import Any

import httpx


def auth_headers(api_key: str) -> dict[str, str]:
    """Return the ``Authorization: Bearer`` header for ``api_key``; no header for an empty key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def models(url: str, api_key: str = "", *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Return the entries of ``GET {url}/models`` (each has ``id``, and ``root``: the path or repo id served).

    Raises:
        httpx.HTTPError: nothing answers, or the server refused (a wrong key: 401).
        ValueError, KeyError: what answered is not an OpenAI-compatible API.
    """
    response = httpx.get(f"{url.rstrip('/')}/models", headers=auth_headers(api_key), timeout=timeout)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data
