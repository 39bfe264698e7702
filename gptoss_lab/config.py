"""Settings read from ``GPTOSS_LAB_*`` environment variables.

Every notebook's ``parameters`` cell and every CLI command reads its knobs from
here, so papermill, nbmake and the shell all drive the lab the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GPTOSS_LAB_{name}", default)


def default_cache_dir() -> Path:
    """Return the lab's cache folder (``GPTOSS_LAB_CACHE_DIR`` or the user cache dir)."""
    override = os.environ.get("GPTOSS_LAB_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gptoss-lab"))


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

    @property
    def url(self) -> str:
        """The API base URL, ``.../v1``."""
        return self.base_url or f"http://{self.host}:{self.port}/v1"


def settings() -> Settings:
    """Read the settings from the environment (called fresh each time, never cached)."""
    return Settings(
        model=_env("MODEL", "auto"),
        host=_env("HOST", "127.0.0.1"),
        port=int(_env("PORT", "8000")),
        base_url=_env("BASE_URL", ""),
        api_key=_env("API_KEY", ""),
        start_timeout=float(_env("START_TIMEOUT", "900")),
        cache_dir=default_cache_dir(),
    )
