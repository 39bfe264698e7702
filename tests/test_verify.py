"""A host's server, seen by the host and by learners: ``gptoss-lab host``, ``lab.verify``, wrong keys.

One real vLLM server on an untrained gpt-oss-nano (random weights: the answers are noise,
the HTTP API, harmony renderer, parsers and key check are vLLM's own), started the way
``gptoss-lab host`` starts it (``hosting.start``): a generated key, a concurrency limit,
the parser flags. Every verify row must pass or be a note on it: no row may depend on
what the model says.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gptoss_lab as lab
from gptoss_lab import drift, hosting, presets, process
from gptoss_lab.cli import main
from gptoss_lab.errors import WrongKeyError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hosted(untrained_nano: Path) -> Iterator[Any]:
    """The untrained checkpoint served by host mode, on loopback, with nano-cpu's flags and output logging."""
    preset = presets.PRESETS["nano-cpu"]
    with pytest.MonkeyPatch.context() as env:
        for name, value in preset.env.items():
            env.setenv(name, value)
        env.delenv("GPTOSS_LAB_API_KEY", raising=False)
        env.delenv("GPTOSS_LAB_ATTACH_ONLY", raising=False)
        server = hosting.start(str(untrained_nano), host="127.0.0.1", port=process.free_port(), max_num_seqs=2,
                               extra_args=[*preset.args, "--enable-log-requests", "--enable-log-outputs"])
    try:
        yield server
    finally:
        server.stop(grace=5.0)


@pytest.fixture
def learner(hosted: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A learner's shell: the join instructions' variables set."""
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", hosted.url)
    monkeypatch.setenv("GPTOSS_LAB_API_KEY", hosted.api_key)
    monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", "1")
    monkeypatch.setenv("GPTOSS_LAB_MODEL", "/nonexistent/model-folder")  # should serve() ever start one: fail fast
    return monkeypatch


def _process_group(pid: int) -> list[int]:
    group = os.getpgid(pid)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(entry.name)) == group:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


# --- host mode --------------------------------------------------------------------------------

def test_the_host_key_is_in_no_command_line_of_the_server_s_processes(hosted: Any) -> None:
    pids = _process_group(hosted.pid)
    assert len(pids) >= 2  # the API server and the engine core at least
    for pid in pids:
        assert hosted.api_key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_the_host_key_reaches_vllm_through_its_environment(hosted: Any) -> None:
    environ = Path(f"/proc/{hosted.pid}/environ").read_bytes().split(b"\0")
    assert f"VLLM_API_KEY={hosted.api_key}".encode() in environ


def test_the_host_key_is_not_in_the_server_log(hosted: Any) -> None:
    assert hosted.api_key not in hosted.log_path.read_text(errors="replace")


def test_host_mode_passes_its_concurrency_limit(hosted: Any) -> None:
    argv = Path(f"/proc/{hosted.pid}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--max-num-seqs") + 1] == b"2"


# --- verify -----------------------------------------------------------------------------------

def test_every_row_passes_or_is_a_note_on_a_server_with_the_parser_flags(learner: Any, hosted: Any) -> None:
    report = lab.verify()
    print(report)  # shown with -s
    assert report.ok, str(report)
    assert {row.status for row in report.rows} <= {"pass", "note"}, str(report)
    for check in ("health", "models", "context length", "chat completion", "responses API", "streaming",
                  "reasoning effort", "tool-call parser", "repeated tool requests"):
        assert report.row(check).status == "pass", str(report)
    assert report.model == "gpt-oss-nano" and "4,096 tokens" in report.row("context length").found
    assert "`reasoning`" in report.row("reasoning field").found  # vLLM 0.32's Chat field name, empty or not
    assert hosted.api_key not in str(report) and hosted.api_key not in report._repr_html_()


def test_the_cli_exits_0_and_prints_the_table(learner: Any, hosted: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", hosted.url, "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "tool-call parser" in out and "row(s) failed" not in out and hosted.api_key not in out


def test_the_drift_check_skips_verify_s_requests_and_still_catches_a_notebook_s(learner: Any, hosted: Any) -> None:
    since = drift.mark(hosted.log_path)
    lab.verify(repeats=1)
    lab.client().chat.completions.create(model="gpt-oss-nano", messages=[{"role": "user", "content": "Say hello."}],
                                         max_tokens=8)
    time.sleep(1.0)  # vLLM writes the log line after the answer
    # "" is in every answer: each logged Chat answer since the mark counts, the way nano's fallback would.
    hits = drift.fallback_hits(hosted.log_path, since, "")
    assert len(hits) == 1 and drift.DIAGNOSTIC_ID not in hits[0], hits


# --- wrong keys --------------------------------------------------------------------------------

def test_a_wrong_key_is_a_clear_error_within_5_seconds(learner: Any, hosted: Any) -> None:
    learner.setenv("GPTOSS_LAB_API_KEY", "not-the-key")
    started = time.monotonic()
    with pytest.raises(WrongKeyError) as err:
        lab.serve()
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert hosted.url in message and "HTTP 401: wrong key" in message and "GPTOSS_LAB_API_KEY" in message
    assert "not-the-key" not in message and hosted.api_key not in message


def test_a_missing_key_says_the_server_wants_one(learner: Any, hosted: Any) -> None:
    learner.delenv("GPTOSS_LAB_API_KEY")
    with pytest.raises(WrongKeyError, match="wants an API key and the lab sent none"):
        lab.connect()


def test_a_wrong_key_without_attach_only_is_the_same_clear_error(learner: Any, hosted: Any) -> None:
    learner.delenv("GPTOSS_LAB_ATTACH_ONLY")
    learner.setenv("GPTOSS_LAB_API_KEY", "not-the-key")
    with pytest.raises(WrongKeyError, match="HTTP 401: wrong key"):
        lab.serve()  # before: /health passed, then a raw httpx 401 traceback


def test_verify_with_a_wrong_key_fails_the_models_row_and_skips_the_rest(learner: Any, hosted: Any) -> None:
    report = lab.verify(hosted.url, api_key="not-the-key")
    assert report.row("health").status == "pass"  # vLLM does not guard /health
    assert report.row("models").status == "fail" and "wrong key" in report.row("models").found
    assert report.failed == [report.row("models")] and "not-the-key" not in str(report)


# --- notebooks/09_verify_and_host.ipynb's code, against this server --------------------------

def test_notebook_09_s_cells_run_against_a_host_s_server_as_an_attach_only_learner(
    learner: Any, hosted: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every code cell of 09 in order, in one namespace, as a learner who followed the join instructions."""
    import json

    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "09_verify_and_host.ipynb").read_text())
    namespace: dict[str, Any] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)  # noqa: S102 - the notebook's own code
    out = capsys.readouterr().out
    assert namespace["report"].ok, str(namespace["report"])
    assert "connection refused" in out and "GPTOSS_LAB_ATTACH_ONLY=1" in out  # the attach-only cell's message
    assert "export GPTOSS_LAB_ATTACH_ONLY=1" in out and hosted.api_key not in out
    assert os.environ["GPTOSS_LAB_BASE_URL"] == hosted.url  # the cell put the learner's variables back


# --- notebooks/05_harmony.ipynb as an attach-only learner: token ids through the host's server --------

def test_an_attach_only_learner_samples_harmony_token_ids_through_the_host_s_server(learner: Any, hosted: Any) -> None:
    """05's path without an engine: rendered ids in, completion ids back, in prompt order, with the host's key."""
    from openai_harmony import Conversation, Message, Role

    encoding = lab.harmony.encoding()
    prompts = [encoding.render_conversation_for_completion(
        Conversation.from_messages([Message.from_role_and_content(Role.USER, question)]), Role.ASSISTANT)
        for question in ("What is 2 + 2?", "Name a primary color.")]
    engine = lab.sampling.server_engine()
    completions = lab.sampling.sample(engine, prompts, max_tokens=8)  # 05's shortcut: SamplingParams, TokensPrompt
    assert len(completions) == 2 and all(1 <= len(tokens) <= 8 for tokens in completions), completions
    # Cut off at max_tokens, or ended by a special token (a harmony stop token or EOS), which stays in the ids.
    assert all(len(tokens) == 8 or tokens[-1] >= 199998 for tokens in completions), completions
    outputs = engine.generate([{"prompt_token_ids": p} for p in prompts])  # no SamplingParams: vLLM's defaults
    assert [out.prompt_token_ids for out in outputs] == prompts
    for out in outputs:
        [completion] = out.outputs
        assert all(isinstance(token, int) for token in completion.token_ids) and completion.token_ids
        assert completion.finish_reason in ("stop", "length")
    assert hosted.url in str(engine) and hosted.api_key not in str(engine)
