"""Check that a vLLM server returns gpt-oss tool calls (started with the tool-call parser flags).

The cookbook's ``vllm serve openai/gpt-oss-20b`` leaves out ``--tool-call-parser openai
--enable-auto-tool-choice``. vLLM 0.32 then answers Chat Completions requests with tools
with HTTP 200 and never fills ``tool_calls`` (older releases, and non-harmony models,
answer HTTP 400 naming the flags). Taught in ``notebooks/03_tools.ipynb``.
"""

from __future__ import annotations

import httpx

from gptoss_lab import drift
from gptoss_lab.api import auth_headers

TOOL_FLAGS = "--tool-call-parser openai --enable-auto-tool-choice"
"""The flags Chat Completions needs to return gpt-oss tool calls (the lab's presets pass them)."""

PROBE_TOKEN = 0
"""``!`` in the harmony vocabulary: a first token vLLM's harmony tool grammar never allows."""

_PROBE = "lab_probe"
_HAS_FLAGS: set[tuple[str, str]] = set()
"""Servers (url, model) that passed the check in this process: a healthy server is checked once."""


def flags_message(url: str) -> str:
    """What is wrong with a server at ``url`` that lacks the flags, and how to fix it."""
    return (
        f"The vLLM server at {url} does not return tool calls in Chat Completions: it was started without "
        f"`{TOOL_FLAGS}` (the cookbook's `vllm serve openai/gpt-oss-20b` leaves them out), so a tool call "
        f"never reaches `tool_calls`. Restart it with `vllm serve ... {TOOL_FLAGS} --reasoning-parser "
        "openai_gptoss`, or start one with the lab (`lab.serve(port=8001)` or `gptoss-lab serve`), which "
        "passes them."
    )


def names_the_flags(text: str) -> bool:
    """Whether a vLLM error text is its complaint about missing tool-call parser flags."""
    return "--enable-auto-tool-choice" in text or "--tool-call-parser" in text


def tool_calls_missing(url: str, model: str, api_key: str = "", timeout: float = 60.0) -> bool:
    """Whether the server at ``url`` (``.../v1``) lacks the tool-call parser flags.

    One Chat Completions request for one token that names a tool (``tool_choice``) and
    pushes ``!`` with a logit bias of +100, asking for the token id back (``logprobs`` with
    vLLM's ``return_tokens_as_token_ids``). With ``--tool-call-parser openai`` vLLM
    constrains the output with its harmony grammar (``parser/harmony.py``), whose every
    path starts with ``<|channel|>`` or `` to=``: the grammar masks ``!`` whatever its bias.
    Without the flag there is no grammar and the bias wins. So the answer does not depend on
    what the model would say: it holds for gpt-oss, nano and random weights alike. An
    answer that shows neither (a network error, another status, no token ids) counts as
    "not missing".
    """
    if (url, model) in _HAS_FLAGS:
        return False
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "tools": [{"type": "function", "function": {
            "name": _PROBE, "description": "Never call this tool.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}}],
        "tool_choice": {"type": "function", "function": {"name": _PROBE}},
        "parallel_tool_calls": False,
        "logit_bias": {str(PROBE_TOKEN): 100},
        "logprobs": True,
        "return_tokens_as_token_ids": True,
        "max_tokens": 1,
    }
    try:
        headers = {**auth_headers(api_key), **drift.diagnostic_headers()}  # the drift check skips it
        response = httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError:
        return False
    if response.status_code == 400:
        return names_the_flags(response.text)
    if response.status_code != 200:
        return False
    choice = response.json()["choices"][0]
    tokens = [entry.get("token") for entry in ((choice.get("logprobs") or {}).get("content") or ())]
    if not tokens:
        return False  # not vLLM, or it ignored the request for token ids: nothing to conclude
    missing = tokens[0] == f"token_id:{PROBE_TOKEN}"
    if not missing:
        _HAS_FLAGS.add((url, model))
    return missing
