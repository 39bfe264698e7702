"""Hide keys and tokens in text the lab copies: server flags, log lines, benchmark results."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_PATTERNS = (
    # --api-key KEY, --api-key=KEY (and any other --...-key / --...-token flag)
    re.compile(r"(--[\w-]*(?:api[-_]key|token|secret|password)[\w-]*(?:=|\s+))(?!\*\*\*)(\S+)", re.IGNORECASE),
    # 'api_key': 'KEY' or "api_key": ["KEY"] in a logged dict (vLLM's "non-default args" line)
    re.compile(r"""(['"][\w-]*(?:api_key|token|secret|password)[\w-]*['"]\s*:\s*\[?\s*)(['"][^'"]+['"])""",
               re.IGNORECASE),
    # Authorization: Bearer KEY
    re.compile(r"(Bearer\s+)(?!\*\*\*)([\w.~+/=-]+)", re.IGNORECASE),
    # VLLM_API_KEY=KEY, OPENAI_API_KEY=KEY
    re.compile(r"(\b\w*(?:API_KEY|TOKEN|SECRET)\w*=)(?!\*\*\*)(\S+)"),
    # a tool server's token: --tool-server host:port/TOKEN (and the URLs built from it)
    re.compile(r"(\b[\w.\[\]:-]+:\d+/)(?!\*\*\*)([\w-]{20,})(?=[/,\s'\"]|$)"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with keys, tokens and each of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + (MASK if not m.group(2).startswith(("'", '"'))
                                                    else m.group(2)[0] + MASK + m.group(2)[-1]), text)
    return text


def redact_args(args: Iterable[str], secrets: Iterable[str] = ()) -> str:
    """Join command-line ``args`` into one line with keys and tokens hidden."""
    return redact(" ".join(args), secrets)
