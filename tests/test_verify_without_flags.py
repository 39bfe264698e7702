"""``lab.verify`` against a vLLM started the cookbook's way: exactly the tool-call row fails, naming the flags.

One real vLLM server on an untrained gpt-oss-nano, started with the nano-cpu preset's
flags minus ``--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser
openai_gptoss`` (as ``vllm serve openai/gpt-oss-20b`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import gptoss_lab as lab
from gptoss_lab.cli import main
from gptoss_lab.parsers import TOOL_FLAGS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(untrained_server: Any) -> Iterator[Any]:
    with untrained_server(parsers=False) as running:
        yield running


def test_exactly_the_tool_call_row_fails_and_its_fix_names_the_flags(server: Any) -> None:
    report = lab.verify(server.url, api_key="")
    print(report)  # shown with -s
    assert [row.check for row in report.failed] == ["tool-call parser"], str(report)
    assert TOOL_FLAGS in report.row("tool-call parser").fix
    assert {row.status for row in report.rows} <= {"pass", "note", "fail"}


def test_the_cli_exits_1_and_prints_the_fix(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", server.url, "--repeats", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tool-call parser" in out and "fix: " in out and TOOL_FLAGS in out
