"""Telling the nano stand-ins from gpt-oss, and the stop command the lab prints (no server, no build)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

import gptoss_lab as lab
from gptoss_lab import hardware
from gptoss_lab.models import model_key, served_name


@pytest.mark.parametrize("name", ["nano", "nano-plain", "gpt-oss-nano", "gpt-oss-nano-plain"])
def test_nano_and_nano_plain_are_recognised_by_key_and_by_served_name(name: str) -> None:
    assert lab.is_nano(name)


@pytest.mark.parametrize("name", ["openai/gpt-oss-20b", "openai/gpt-oss-120b", "gpt-oss-20b", "my-model"])
def test_real_models_are_not_nano(name: str) -> None:
    assert not lab.is_nano(name)


def test_a_nano_checkpoint_folder_is_recognised_by_its_build_record(tmp_path: Path) -> None:
    assert not lab.is_nano(str(tmp_path))
    (tmp_path / "nano.json").write_text(json.dumps({"key": "x"}))
    assert lab.is_nano(str(tmp_path))


@pytest.mark.parametrize(("gpu", "nano"), [(False, True), (True, False)])
def test_auto_means_nano_only_on_a_machine_without_a_gpu(monkeypatch: pytest.MonkeyPatch, gpu: bool,
                                                         nano: bool) -> None:
    monkeypatch.setattr(hardware, "has_gpu", lambda: gpu)
    assert lab.is_nano("auto") is nano


def test_the_default_is_the_model_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_MODEL", "nano-plain")
    assert lab.is_nano()
    monkeypatch.setenv("GPTOSS_LAB_MODEL", "openai/gpt-oss-20b")
    assert not lab.is_nano()


def test_served_names_and_model_keys_map_both_ways() -> None:
    assert served_name("nano-plain") == "gpt-oss-nano-plain" and model_key("gpt-oss-nano-plain") == "nano-plain"
    assert served_name("openai/gpt-oss-20b") == model_key("openai/gpt-oss-20b") == "openai/gpt-oss-20b"


def test_the_stop_hint_names_the_port_command_that_stops_any_lab_started_server() -> None:
    hint = lab.stop_hint(8123)
    assert "`gptoss-lab stop --port 8123`" in hint and "`lab.stop_port(8123)`" in hint
    assert "vllm serve" in hint  # and what to do with a server the lab did not start


def test_the_stop_hint_defaults_to_the_configured_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", "http://127.0.0.1:8456/v1")
    assert "--port 8456" in lab.stop_hint()


def test_engine_args_for_a_real_model_on_a_cpu_pass_the_model_and_extra_arguments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "has_gpu", lambda: False)
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    monkeypatch.setattr(importlib.metadata, "version", importlib.metadata.version)  # restored: engine_args patches it
    args = lab.sampling.engine_args("openai/gpt-oss-20b", max_model_len=8192)
    assert args == {"model": "openai/gpt-oss-20b", "max_model_len": 8192}
