"""nano's cache key covers what the checkpoint depends on, not the text of the builder's modules."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gptoss_lab
from gptoss_lab.nano import script

build = importlib.import_module("gptoss_lab.nano.build")  # the module; gptoss_lab.nano.build is the function

KEY = "from gptoss_lab.nano import cache_key; print(cache_key())"


def _key_of(package_parent: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    done = subprocess.run([sys.executable, "-c", KEY], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_pure_refactor_of_the_builder_keeps_the_key(tmp_path: Path) -> None:
    copy = tmp_path / "gptoss_lab"
    shutil.copytree(Path(gptoss_lab.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for module in ("nano/train.py", "nano/render.py", "nano/verify.py", "nano/build.py", "builtin/python_tool.py"):
        with (copy / module).open("a") as source:
            source.write("\n# a comment, as a rename or a split would leave the behaviour alone\n")
    assert _key_of(tmp_path) == build.cache_key()


def test_the_key_changes_with_the_script_and_the_recipe(tmp_path: Path, monkeypatch) -> None:
    data = json.loads((Path(script.__file__).parent / "script.json").read_text())
    data["fallback"]["final"] += " (changed)"
    changed = tmp_path / "script.json"
    changed.write_text(json.dumps(data))
    assert build.cache_key(script.load(changed)) != build.cache_key()
    before = build.cache_key()
    monkeypatch.setattr(build, "RECIPE_VERSION", build.RECIPE_VERSION + 1)
    assert build.cache_key() != before
