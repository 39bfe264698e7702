"""Provision the harmony vocabulary, ``o200k_base.tiktoken``, for offline use.

``openai-harmony`` downloads this file on first use and fails without a network.
The lab finds it, in order, in ``TIKTOKEN_ENCODINGS_BASE``, in the lab's cache,
from the official download, and last from an installed package that ships the
o200k ranks (``quicktok-v1``). Every copy is checked against the official
sha256 before it is used. Taught in ``notebooks/00_setup.ipynb``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gptoss_lab.config import default_cache_dir
from gptoss_lab.errors import VocabError

FILENAME = "o200k_base.tiktoken"
SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
ENV = "TIKTOKEN_ENCODINGS_BASE"
N_RANKS = 199_998

Source = Literal["env", "cache", "download", "package"]


@dataclass(frozen=True)
class VocabStatus:
    """Where the vocabulary was found and where processes should look for it."""

    path: Path
    """The verified ``o200k_base.tiktoken``."""
    source: Source
    """Which step of the search found it."""

    @property
    def folder(self) -> Path:
        """The folder to export as ``TIKTOKEN_ENCODINGS_BASE``."""
        return self.path.parent


def cache_folder() -> Path:
    """Return the lab's own vocabulary folder (inside the lab cache)."""
    return default_cache_dir() / "tiktoken"


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path) -> None:
    """Raise :class:`VocabError` unless ``path`` is the official vocabulary file."""
    actual = sha256_of(path)
    if actual != SHA256:
        size = path.stat().st_size
        raise VocabError(
            f"{path} is not the official {FILENAME} (sha256 {actual[:16]}..., {size:,} bytes; "
            f"expected sha256 {SHA256[:16]}..., 3,613,922 bytes). It may be truncated or "
            f"edited. Delete it and run `gptoss-lab vocab` to provision a verified copy, "
            f"or copy the official file from {URL} into that folder."
        )


def _write_atomically(folder: Path, data: bytes) -> Path:
    """Write ``data`` to ``folder/FILENAME`` only if it verifies; never leave a partial file."""
    folder.mkdir(parents=True, exist_ok=True)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise VocabError(
            f"The {FILENAME} obtained for {folder} does not match the official sha256; "
            "nothing was written. Check the source (a proxy rewriting downloads, or an "
            "unexpected quicktok-v1 release) and run `gptoss-lab vocab` again."
        )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".o200k-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target = folder / FILENAME
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def download(timeout: float = 10.0) -> bytes:
    """Fetch the official vocabulary file over HTTPS."""
    import httpx

    response = httpx.get(URL, timeout=timeout, follow_redirects=True)
    response.raise_for_status()
    return response.content


def from_package() -> bytes:
    """Rebuild the official file from ``quicktok-v1``'s ``o200k.vocab`` ranks.

    That file is a little-endian u32 count, then per token a u16 byte length,
    the token bytes and a u32 rank. Written as ``base64(bytes) rank`` lines in
    file order it reproduces the official file byte for byte.
    """
    try:
        from importlib.resources import files

        raw = (files("quicktok") / "data" / "o200k.vocab").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise VocabError(
            "No package with the o200k ranks is installed. Install one with "
            "`pip install quicktok-v1` (it is on PyPI and in most mirrors), or copy "
            f"{FILENAME} from a connected machine into {cache_folder()}."
        ) from exc
    (count,) = struct.unpack_from("<I", raw, 0)
    offset = 4
    lines = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, offset)
        offset += 2
        token = raw[offset : offset + length]
        offset += length
        (rank,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        lines.append(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
    return b"".join(lines)


def locate(*, allow_download: bool = True, allow_package: bool = True) -> VocabStatus:
    """Find (or provision) a verified vocabulary without changing the environment.

    Args:
        allow_download: try the official URL when no local copy exists.
        allow_package: rebuild the file from ``quicktok-v1`` as the last resort.

    Returns:
        Where the verified file is and which step found it.

    Raises:
        VocabError: a copy exists but is wrong, or no step could provide one.
    """
    env = os.environ.get(ENV)
    if env:
        candidate = Path(env).expanduser() / FILENAME
        if candidate.exists():
            try:
                verify(candidate)
            except VocabError as exc:
                raise VocabError(
                    f"{ENV}={env} points at a bad vocabulary. {exc} Or unset {ENV} to let "
                    "the lab use its own verified copy."
                ) from None
            return VocabStatus(candidate, "env")

    cached = cache_folder() / FILENAME
    if cached.exists():
        verify(cached)
        return VocabStatus(cached, "cache")

    errors = []
    if allow_download:
        try:
            return VocabStatus(_write_atomically(cache_folder(), download()), "download")
        except VocabError:
            raise
        except Exception as exc:  # no network, proxy, DNS...
            errors.append(f"download from {URL} failed ({type(exc).__name__}: {exc})")
    if allow_package:
        try:
            return VocabStatus(_write_atomically(cache_folder(), from_package()), "package")
        except VocabError as exc:
            errors.append(str(exc))
    raise VocabError(
        f"Could not provision {FILENAME}: " + "; ".join(errors or ["every source is disabled"])
        + f". Put a verified copy in {cache_folder()} or set {ENV} to a folder holding one."
    )


def ensure(**kwargs: bool) -> VocabStatus:
    """Provision the vocabulary and export ``TIKTOKEN_ENCODINGS_BASE`` for child processes.

    Accepts the keyword arguments of :func:`locate`.
    """
    status = locate(**kwargs)
    os.environ[ENV] = str(status.folder)
    return status
