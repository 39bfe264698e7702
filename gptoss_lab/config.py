"""Settings read from ``GPTOSS_LAB_*`` environment variables.

Every notebook's ``parameters`` cell and every CLI command reads its knobs from
here, so papermill, nbmake and the shell all drive the lab the same way.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gptoss_lab.errors import SettingsError


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GPTOSS_LAB_{name}", default)


def _bad(name: str, value: str, allowed: str, example: str) -> SettingsError:
    return SettingsError(f"GPTOSS_LAB_{name}={value!r} is not a valid setting: it must be {allowed}. "
                         f"Fix it with `export GPTOSS_LAB_{name}={example}`, or unset it for the default.")


def port_number(value: str | int, name: str = "PORT") -> int:
    """Parse a TCP port (1-65535); raise :class:`SettingsError` naming ``GPTOSS_LAB_{name}`` otherwise."""
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise _bad(name, str(value), "a whole number from 1 to 65535", "8000")
    return port


def seconds(value: str | float, name: str = "START_TIMEOUT") -> float:
    """Parse a positive, finite number of seconds; raise :class:`SettingsError` otherwise."""
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise _bad(name, str(value), "a positive number of seconds (not 0, negative, nan or inf)", "900")
    return number


def host_name(value: str, name: str = "HOST") -> str:
    """Check an IP address (``127.0.0.1``, ``::1``) or host name; raise :class:`SettingsError` otherwise."""
    host = value.strip().removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?", host):
        raise _bad(name, value, "an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name, without scheme or port",
                   "127.0.0.1")
    return host


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _base_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or 1 <= parts.port <= 65535
    except ValueError:  # a port that is not a number or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise _bad("BASE_URL", value, "empty or an http(s) URL of an OpenAI-compatible API", "http://127.0.0.1:8000/v1")
    return value


def _flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in ("", "0", "1", "false", "true", "no", "yes"):
        raise _bad(name, value, "1 or 0 (true/false, yes/no)", "1")
    return word in ("1", "true", "yes")


def _text(name: str, value: str, allowed: str, example: str) -> str:
    if not value.strip():
        raise _bad(name, value, allowed, example)
    return value


def default_cache_dir() -> Path:
    """Return the lab's cache folder (``GPTOSS_LAB_CACHE_DIR`` or the user cache dir)."""
    override = os.environ.get("GPTOSS_LAB_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gptoss-lab"))


def log_dir() -> Path:
    """Return the folder where server logs and pidfiles are kept."""
    return default_cache_dir() / "servers"


def server_log_path(port: int) -> Path:
    """Return the log of the lab-started vLLM server on ``port``."""
    return log_dir() / f"vllm-{port}.log"


def pidfile_path(port: int) -> Path:
    """Return the pidfile of the lab-started vLLM server on ``port``."""
    return log_dir() / f"vllm-{port}.json"


def host_and_port(url: str) -> tuple[str, int]:
    """Return the host and port of ``url`` (the scheme's default port when it names none)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@dataclass(frozen=True)
class Settings:
    """The lab's settings; build one with :func:`settings`."""

    model: str = "auto"
    """Model to serve: ``auto`` (nano without a GPU, gpt-oss-20b with one), ``nano``,
    ``openai/gpt-oss-20b``, ``openai/gpt-oss-120b`` or a local checkpoint path."""

    host: str = "127.0.0.1"
    """Address the server binds to. Anything but loopback requires an API key."""

    port: int = 8000
    """Port the server listens on."""

    base_url: str = ""
    """URL of the OpenAI-compatible API; defaults to ``http://{host}:{port}/v1``."""

    api_key: str = field(default="", repr=False)
    """Key clients send; vLLM checks it only when the server was started with one. Hidden from the repr."""

    start_timeout: float = 900.0
    """Seconds to wait for a starting server before giving up."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    """Where the vocabulary, gpt-oss-nano and server logs are kept."""

    attach_only: bool = False
    """Never start a server: ``lab.serve()`` attaches to ``base_url`` or fails at once saying why
    (``GPTOSS_LAB_ATTACH_ONLY=1``, which a workshop host's join instructions set)."""

    @property
    def url(self) -> str:
        """The API base URL, ``.../v1``."""
        return self.base_url or f"http://{url_host(self.host)}:{self.port}/v1"


def settings() -> Settings:
    """Read and check the settings from the environment (called fresh each time, never cached).

    Raises:
        SettingsError: a ``GPTOSS_LAB_*`` variable has a value the lab cannot use; the message
            names the variable and the values it may take.
    """
    api_key = _env("API_KEY", "")
    if api_key and any(c.isspace() for c in api_key):
        raise SettingsError("GPTOSS_LAB_API_KEY contains a space or a line break: it must be one word (the key "
                            "goes in an HTTP header). Fix it with `export GPTOSS_LAB_API_KEY=<key>`, or unset it.")
    return Settings(
        model=_text("MODEL", _env("MODEL", "auto"), "auto, nano, openai/gpt-oss-20b, openai/gpt-oss-120b or a "
                    "checkpoint folder", "auto"),
        host=host_name(_env("HOST", "127.0.0.1")),
        port=port_number(_env("PORT", "8000")),
        base_url=_base_url(_env("BASE_URL", "")),
        api_key=api_key,
        start_timeout=seconds(_env("START_TIMEOUT", "900")),
        cache_dir=default_cache_dir(),
        attach_only=_flag("ATTACH_ONLY", _env("ATTACH_ONLY", "")),
    )
