"""Whether the lab runs inside a Jupyter kernel (rich output) or a terminal or script (text)."""

from __future__ import annotations

import sys


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (rich output), False in a terminal or a script."""
    return "ipykernel" in sys.modules
