"""``lab.verify`` and ``gptoss-lab host`` without a model server: what they say when nothing usable answers.

The rows against a real vLLM (with and without the tool-call parser flags) are in
tests/test_verify.py and tests/test_verify_without_flags.py.
"""

from __future__ import annotations

from typing import Any

import pytest

import gptoss_lab as lab
from gptoss_lab import conformance, drift, hosting, process
from gptoss_lab.cli import main

KEY = "sk-offline-test-key-0123456789"




def test_verify_of_a_closed_port_fails_health_and_models_and_skips_the_rest() -> None:
    report = lab.verify(f"http://127.0.0.1:{process.free_port()}/v1", api_key=KEY)
    assert [row.status for row in report.rows[:2]] == ["fail", "fail"]
    assert {row.status for row in report.rows[2:]} == {"skip"}
    assert not report.ok and "connection refused" in report.row("models").found
    assert all(row.fix for row in report.failed)


def test_verify_of_a_web_page_says_it_is_not_an_openai_server(web_page: str) -> None:
    report = lab.verify(web_page, api_key=KEY)
    assert report.row("health").status == "note"  # a 404 on /health: other servers may not serve it
    assert report.row("models").status == "fail" and "not an OpenAI server" in report.row("models").found


def test_the_key_is_in_no_row_of_the_text_or_the_html(web_page: str) -> None:
    report = lab.verify(web_page, api_key=KEY)
    assert KEY not in str(report) and KEY not in report._repr_html_()


def test_the_cli_prints_the_table_with_the_fix_and_exits_1_when_a_row_fails(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{process.free_port()}/v1"
    assert main(["verify", url]) == 1
    out = capsys.readouterr().out
    assert f"gptoss-lab verify {url}" in out and "FAIL" in out and "fix: " in out and "row(s) failed" in out


def test_a_report_of_passes_and_notes_is_ok_and_a_failure_is_not() -> None:
    rows = [conformance.Row("health", "pass", "200"), conformance.Row("latency", "note", "1 s")]
    assert conformance.Verification("u", rows=rows).ok
    failed = conformance.Verification("u", rows=[*rows, conformance.Row("tool-call parser", "fail", "x", "fix it")])
    assert not failed.ok and failed.failed == [failed.row("tool-call parser")]
    assert "<table>" in failed._repr_html_() and "fix it" in failed._repr_html_()


def test_the_structured_output_check_accepts_only_the_schema() -> None:
    assert conformance.matches_greeting('{"greeting": "hi"}')
    assert not conformance.matches_greeting('{"greeting": 3}')
    assert not conformance.matches_greeting('{"greeting": "hi", "extra": 1}')
    assert not conformance.matches_greeting("hi")


def test_the_drift_check_skips_the_lab_s_diagnostic_requests_only(tmp_path: Any) -> None:
    log = tmp_path / "vllm.log"
    line = "(APIServer pid=1) INFO [request_logger.py:108] Generated response {}: output: 'I am a small test model'\n"
    log.write_text(line.format(f"chatcmpl-{drift.DIAGNOSTIC_ID}abc") + line.format("chatcmpl-0123abcd"))
    hits = drift.fallback_hits(log, drift.Mark(0, 0), "I am a small test model")
    assert len(hits) == 1 and "chatcmpl-0123abcd" in hits[0]


def test_host_adds_the_concurrency_limit_unless_the_flags_set_one() -> None:
    assert hosting.host_args(8) == ["--max-num-seqs", "8"]
    assert hosting.host_args(8, ["--max-num-seqs", "2"]) == ["--max-num-seqs", "2"]


def test_host_refuses_a_limit_below_one_before_starting_anything(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPTOSS_LAB_ATTACH_ONLY", raising=False)
    assert main(["host", "--max-num-seqs", "0", "--model", "/nonexistent/model-folder"]) == 1
    assert "--max-num-seqs 0" in capsys.readouterr().err


def test_host_refuses_to_start_in_an_attach_only_shell(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", "1")
    assert main(["host", "--model", "/nonexistent/model-folder"]) == 1
    assert "unset GPTOSS_LAB_ATTACH_ONLY" in capsys.readouterr().err


def test_join_instructions_set_the_url_the_key_and_attach_only() -> None:
    text = hosting.join_instructions("http://gpu-box:8000/v1", KEY, "openai/gpt-oss-20b")
    for line in ("export GPTOSS_LAB_BASE_URL=http://gpu-box:8000/v1", f"export GPTOSS_LAB_API_KEY={KEY}",
                 "export GPTOSS_LAB_ATTACH_ONLY=1", "gptoss-lab verify http://gpu-box:8000/v1"):
        assert line in text


def test_learners_get_this_machine_s_name_for_a_wildcard_bind() -> None:
    assert "0.0.0.0" not in hosting.learner_url("0.0.0.0", 8000)
    assert hosting.learner_url("10.0.0.5", 8000) == "http://10.0.0.5:8000/v1"
    assert hosting.learner_url("0.0.0.0", 8000, "https://lab.example.org/v1/") == "https://lab.example.org/v1"


def test_the_key_is_printed_only_to_a_terminal_and_otherwise_kept_in_a_private_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import stat

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    server = lab.VLLMServer("gpt-oss-nano", host="0.0.0.0", port=8123, api_key=KEY, served_name="gpt-oss-nano")
    out = io.StringIO()  # a log file or a pipe, not a terminal
    hosting.announce(server, out=out)
    text = out.getvalue()
    key_file = tmp_path / "host" / "key-8123"
    assert KEY not in text and f"export GPTOSS_LAB_API_KEY=$(cat {key_file})" in text
    assert key_file.read_text().strip() == KEY and stat.S_IMODE(key_file.stat().st_mode) == 0o600
