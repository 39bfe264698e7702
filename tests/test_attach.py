"""Attach-only learners hear at once why they cannot use a host's server, and the lab starts nothing.

Each case is a real socket on this machine: a closed port (refused), a name that cannot
resolve (DNS), a real HTTP server that is not an OpenAI API (404), a program that closes
every connection. The wrong-key case needs a real vLLM with a key: tests/test_verify.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import gptoss_lab as lab
from gptoss_lab import process, reach
from gptoss_lab.config import settings
from gptoss_lab.errors import AttachError, ServerError, SettingsError


@pytest.fixture
def attach_only(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Attach-only mode, with a model that cannot be built: should serve() ever try to start, it fails fast."""
    monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", "1")
    monkeypatch.setenv("GPTOSS_LAB_MODEL", "/nonexistent/model-folder")
    monkeypatch.delenv("GPTOSS_LAB_API_KEY", raising=False)
    return monkeypatch


def _serve_fails(monkeypatch: pytest.MonkeyPatch, url: str) -> tuple[str, float]:
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", url)
    started = time.monotonic()
    with pytest.raises(AttachError) as err:
        lab.serve()
    return str(err.value), time.monotonic() - started


def test_attach_only_is_a_setting_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPTOSS_LAB_ATTACH_ONLY", raising=False)
    assert settings().attach_only is False
    for value, expected in (("1", True), ("true", True), ("0", False), ("no", False)):
        monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", value)
        assert settings().attach_only is expected


def test_a_bad_attach_only_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", "maybe")
    with pytest.raises(SettingsError, match="GPTOSS_LAB_ATTACH_ONLY='maybe'"):
        settings()


def test_attach_only_serve_against_a_closed_port_says_connection_refused(attach_only: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{process.free_port()}/v1"
    message, seconds = _serve_fails(attach_only, url)
    assert url in message and "connection refused" in message and "GPTOSS_LAB_ATTACH_ONLY=1" in message
    assert seconds < 5


def test_attach_only_serve_against_an_unknown_host_says_dns_failure(attach_only: pytest.MonkeyPatch) -> None:
    url = "http://no-such-host.invalid:8000/v1"
    message, seconds = _serve_fails(attach_only, url)
    assert url in message and "DNS failure" in message and "no-such-host.invalid" in message
    assert seconds < 5


def test_attach_only_serve_against_a_web_page_says_not_an_openai_server(
    attach_only: pytest.MonkeyPatch, web_page: str
) -> None:
    message, seconds = _serve_fails(attach_only, web_page)
    assert web_page in message and "HTTP 404" in message and "not an OpenAI server" in message
    assert seconds < 5


def test_attach_only_serve_against_a_program_that_hangs_up_says_not_an_openai_server(
    attach_only: pytest.MonkeyPatch, foreign_port: Any
) -> None:
    url = f"http://127.0.0.1:{foreign_port()}/v1"
    message, seconds = _serve_fails(attach_only, url)
    assert url in message and "not an OpenAI server" in message
    assert seconds < 5


def test_attach_only_serve_with_a_port_still_never_starts_a_server(attach_only: pytest.MonkeyPatch) -> None:
    attach_only.setenv("GPTOSS_LAB_BASE_URL", f"http://127.0.0.1:{process.free_port()}/v1")
    with pytest.raises(AttachError, match="connection refused"):
        lab.serve(port=process.free_port())


def test_without_attach_only_connect_still_says_how_to_start_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPTOSS_LAB_ATTACH_ONLY", raising=False)
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", f"http://127.0.0.1:{process.free_port()}/v1")
    with pytest.raises(ServerError, match=r"lab.serve\(\)") as err:
        lab.connect()
    assert not isinstance(err.value, AttachError) and "connection refused" in str(err.value)


def test_the_probe_never_shows_the_key_it_sent(web_page: str) -> None:
    found = reach.probe(web_page, api_key="sk-secret-probe-key")
    assert found.outcome == "not_openai" and "sk-secret-probe-key" not in found.message()
