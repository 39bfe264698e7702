"""Every GPTOSS_LAB_* setting is checked: a bad value is an error naming the variable and what it may be."""

from __future__ import annotations

import socket

import pytest

from gptoss_lab import process
from gptoss_lab.config import settings
from gptoss_lab.errors import LabError, SettingsError
from gptoss_lab.server import VLLMServer


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("PORT", "abc", "a whole number from 1 to 65535"),
    ("PORT", "70000", "a whole number from 1 to 65535"),
    ("PORT", "0", "a whole number from 1 to 65535"),
    ("PORT", "-5", "a whole number from 1 to 65535"),
    ("START_TIMEOUT", "-1", "a positive number of seconds"),
    ("START_TIMEOUT", "nan", "a positive number of seconds"),
    ("START_TIMEOUT", "inf", "a positive number of seconds"),
    ("START_TIMEOUT", "0", "a positive number of seconds"),
    ("START_TIMEOUT", "soon", "a positive number of seconds"),
    ("HOST", "http://127.0.0.1", "an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name"),
    ("HOST", "127.0.0.1:8000", "an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name"),
    ("HOST", "", "an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name"),
    ("BASE_URL", "127.0.0.1:8000/v1", "empty or an http(s) URL"),
    ("BASE_URL", "http://127.0.0.1:99999/v1", "empty or an http(s) URL"),
    ("MODEL", " ", "auto, nano, openai/gpt-oss-20b"),
])
def test_a_bad_setting_names_the_variable_and_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(f"GPTOSS_LAB_{name}", value)
    with pytest.raises(SettingsError) as err:
        settings()
    message = str(err.value)
    assert f"GPTOSS_LAB_{name}={value!r}" in message and allowed in message and f"export GPTOSS_LAB_{name}=" in message
    assert isinstance(err.value, LabError)


def test_an_api_key_with_a_line_break_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_API_KEY", "sk-abc\n")
    with pytest.raises(SettingsError, match="GPTOSS_LAB_API_KEY contains a space or a line break") as err:
        settings()
    assert "sk-abc" not in str(err.value)


def test_good_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PORT": " 8123 ", "START_TIMEOUT": "12.5", "HOST": "localhost", "MODEL": "nano",
                        "BASE_URL": "https://example.org:8443/v1"}.items():
        monkeypatch.setenv(f"GPTOSS_LAB_{name}", value)
    cfg = settings()
    assert (cfg.port, cfg.start_timeout, cfg.host, cfg.model, cfg.url) == (
        8123, 12.5, "localhost", "nano", "https://example.org:8443/v1")


def test_ipv6_loopback_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPTOSS_LAB_BASE_URL", raising=False)  # the suite's shared server sets it
    monkeypatch.setenv("GPTOSS_LAB_HOST", "::1")
    monkeypatch.setenv("GPTOSS_LAB_PORT", "8123")
    assert settings().url == "http://[::1]:8123/v1"
    assert VLLMServer(model="nano", host="::1", port=8123).url == "http://[::1]:8123/v1"
    port = process.free_port("::1")
    assert not process.port_in_use("::1", port)
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", port))
        listener.listen()
        assert process.port_in_use("::1", port) and process.port_in_use("[::1]", port)
