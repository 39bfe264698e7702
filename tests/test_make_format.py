"""``make format`` strips the outputs of the notebooks git tracks, never those of a learner's own notebooks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path) -> None:
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "source": "1 + 1", "execution_count": 1,
            "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}, "execution_count": 1,
                         "metadata": {}}]}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _outputs(path: Path) -> list[object]:
    return json.loads(path.read_text())["cells"][0]["outputs"]


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git")
def test_make_format_keeps_the_outputs_of_a_learners_own_notebook(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", repo)
    shutil.copy(ROOT / "scripts" / "check_notebooks.py", repo / "scripts")
    for folder in ("gptoss_lab", "tests", "notebooks", "benchmarks"):
        (repo / folder).mkdir(exist_ok=True)
    (repo / "conftest.py").write_text("")
    (repo / ".venv").symlink_to(Path(sys.prefix))  # the Makefile runs .venv/bin/...
    _notebook(repo / "notebooks" / "01_lesson.ipynb")
    _notebook(repo / "notebooks" / "my_experiment.ipynb")  # the learner's, not in git
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "Makefile", "scripts", "notebooks/01_lesson.ipynb"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "lesson"], cwd=repo, check=True)
    out = subprocess.run(["make", "-o", "setup", "format"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _outputs(repo / "notebooks" / "01_lesson.ipynb") == []
    assert _outputs(repo / "notebooks" / "my_experiment.ipynb") != [], "a learner's outputs are kept"
