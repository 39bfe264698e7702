"""Ask what answers at an OpenAI API URL: a usable server, a wrong key, another program, or nothing.

Asks ``GET {url}/models``, the one route every OpenAI-compatible server serves and
vLLM guards with its API key (its ``/health`` is open to anyone, so a wrong key passes
it). Used by :func:`gptoss_lab.connect` and attach-only learners
(``GPTOSS_LAB_ATTACH_ONLY=1``), who must learn at once why they cannot use a host's server.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from gptoss_lab.api import auth_headers
from gptoss_lab.redact import redact

Outcome = Literal["ok", "refused", "dns", "timeout", "unauthorized", "not_openai", "error"]

PROBE_TIMEOUT = 4.0
"""Seconds one probe may take: attach-only learners must hear what is wrong within 5 s."""


@dataclass(frozen=True)
class Reach:
    """What answered at ``url``: ``outcome``, what it got in words, and how to fix it."""

    url: str
    outcome: Outcome
    got: str
    """What the lab got, in words (``connection refused``, ``HTTP 401: wrong key``, ...)."""
    fix: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)
    """The ``data`` entries of ``/v1/models`` (``id``, and for vLLM ``max_model_len``)."""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def message(self) -> str:
        """One paragraph: the URL tried, what it got, and the fix."""
        return f"The lab tried {self.url}/models and got {self.got}. {self.fix}".strip()


def _host(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


def _dns_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(error).lower()
    return any(sign in text for sign in ("name or service not known", "nodename nor servname", "name resolution"))


_CHECK_URL = ("Check GPTOSS_LAB_BASE_URL against the join instructions (it ends in /v1), and ask the host "
              "whether the server is up.")


def probe(url: str, api_key: str = "", timeout: float = PROBE_TIMEOUT) -> Reach:
    """Ask ``GET {url}/models`` once and say what answered; never raises for network errors.

    Args:
        url: the API base URL, ``http://host:port/v1``.
        api_key: sent as a bearer token when given; it never appears in the result.
        timeout: seconds for the whole request.
    """
    url = url.rstrip("/")
    headers = auth_headers(api_key)
    try:
        response = httpx.get(f"{url}/models", headers=headers, timeout=timeout)
    except httpx.ConnectError as error:
        if _dns_failure(error):
            return Reach(url, "dns", f"a DNS failure: the host name {httpx.URL(url).host!r} does not resolve",
                         "Check the spelling of the host in GPTOSS_LAB_BASE_URL.")
        return Reach(url, "refused", f"connection refused: no program listens on {_host(url)}", _CHECK_URL)
    except httpx.TimeoutException:
        return Reach(url, "timeout", f"no answer within {timeout:.0f} s (a firewall, or a port that drops "
                     "connections)", _CHECK_URL)
    except httpx.HTTPError as error:
        got = redact(f"{type(error).__name__}: {error}", [api_key])
        return Reach(url, "not_openai", f"no HTTP answer ({got}): not an OpenAI server", _CHECK_URL)
    if response.status_code in (401, 403):
        if api_key:
            return Reach(url, "unauthorized", f"HTTP {response.status_code}: wrong key (the server refused the "
                         "API key the lab sent)", "Set GPTOSS_LAB_API_KEY to the key the host gave you.")
        return Reach(url, "unauthorized", f"HTTP {response.status_code}: the server wants an API key and the lab "
                     "sent none (wrong key)", "Set GPTOSS_LAB_API_KEY to the key the host gave you.")
    try:
        models = response.json().get("data") if response.status_code == 200 else None
    except ValueError:
        models = None
    if response.status_code == 200 and isinstance(models, list) and models:
        return Reach(url, "ok", f"HTTP 200 serving {', '.join(str(m.get('id')) for m in models)}",
                     models=[m for m in models if isinstance(m, dict)])
    if response.status_code in (200, 404, 405):
        return Reach(url, "not_openai", f"HTTP {response.status_code} without a model list: not an OpenAI "
                     "server (an OpenAI-compatible API lists its models at GET /v1/models)",
                     "Point GPTOSS_LAB_BASE_URL at the model server's port, ending in /v1.")
    body = redact(response.text[:200], [api_key])
    return Reach(url, "error", f"HTTP {response.status_code}: {body}",
                 "Ask the host to look at the server's log.")
