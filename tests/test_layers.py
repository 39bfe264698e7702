"""The import-layer check (scripts/check_layers.py) passes on the package and catches what it is for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
assert spec and spec.loader
check_layers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_layers)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "gptoss_lab"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_package_imports_only_downwards() -> None:
    assert check_layers.check(ROOT / "gptoss_lab") == []


def test_every_module_of_the_package_has_a_layer() -> None:
    modules = [check_layers.module_name(p, ROOT / "gptoss_lab") for p in (ROOT / "gptoss_lab").rglob("*.py")]
    assert [m for m in modules if check_layers.layer_of(m) is None] == []


def test_an_import_inside_a_function_of_a_higher_layer_is_caught(tmp_path: Path) -> None:
    root = _package(tmp_path, {"launch.py": "", "client.py": "def f():\n    from gptoss_lab import launch\n"})
    assert any("gptoss_lab.client" in p and "imports gptoss_lab.launch" in p for p in check_layers.check(root))


def test_an_annotation_import_under_type_checking_is_allowed(tmp_path: Path) -> None:
    text = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gptoss_lab.server import VLLMServer\n"
    root = _package(tmp_path, {"server.py": "", "active.py": text})
    assert check_layers.check(root) == []


def test_a_private_name_crossing_a_module_border_is_caught(tmp_path: Path) -> None:
    root = _package(tmp_path, {"active.py": "_server = None\n",
                               "client.py": "from gptoss_lab import active\nx = active._server\n"})
    assert any("private name active._server" in p for p in check_layers.check(root))


def test_a_cycle_inside_one_layer_is_caught(tmp_path: Path) -> None:
    root = _package(tmp_path, {"client.py": "from gptoss_lab import display\n",
                               "display.py": "from gptoss_lab import client\n"})
    assert any("cycle" in p for p in check_layers.check(root))

