"""Fail when a notebook carries outputs or execution counts (``--strip`` removes them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dirty(nb: dict) -> bool:
    return any(
        c.get("outputs") or c.get("execution_count")
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
    )


def main(argv: list[str]) -> int:
    strip = "--strip" in argv
    given = [Path(a) for a in argv if not a.startswith("--")] or [Path("notebooks")]
    bad = []
    for path in sorted(p for g in given for p in (g.glob("*.ipynb") if g.is_dir() else [g])):
        nb = json.loads(path.read_text())
        if not dirty(nb):
            continue
        if strip:
            for cell in nb["cells"]:
                if cell.get("cell_type") == "code":
                    cell["outputs"], cell["execution_count"] = [], None
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        else:
            bad.append(path)
    for path in bad:
        print(f"{path} has outputs: run `make format` (or nbstripout) before committing.")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
