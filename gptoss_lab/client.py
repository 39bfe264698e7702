"""OpenAI SDK clients bound to the lab's server. Taught in ``notebooks/02_apis.ipynb``."""

from __future__ import annotations

from typing import Any

from gptoss_lab.config import settings


def _key() -> str:
    from gptoss_lab import server

    current = server._CURRENT
    return (current.api_key if current else "") or settings().api_key or "EMPTY"


def base_url() -> str:
    """The ``/v1`` URL of the current server (or ``GPTOSS_LAB_BASE_URL``)."""
    from gptoss_lab import server

    current = server._CURRENT
    return current.url if current else settings().url


def client(**kwargs: Any):  # -> openai.OpenAI
    """Return ``openai.OpenAI`` pointed at the running vLLM server."""
    from openai import OpenAI

    return OpenAI(base_url=base_url(), api_key=_key(), **kwargs)


def async_client(**kwargs: Any):  # -> openai.AsyncOpenAI
    """Return ``openai.AsyncOpenAI`` pointed at the running vLLM server."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url(), api_key=_key(), **kwargs)


def model_name() -> str:
    """The model id the current server serves (what to pass as ``model=``)."""
    from gptoss_lab import server

    return server.current().model_id()
