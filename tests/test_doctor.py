"""The doctor: a report for people (table, HTML) and for code (dict)."""

from __future__ import annotations

import platform
from pathlib import Path

import gptoss_lab as lab
from gptoss_lab import hardware, vocab


def test_doctor_reports_this_machine() -> None:
    report = lab.doctor()
    data = report.as_dict()
    assert data["vllm"]["level"] == "ok" and data["python"]["value"] == platform.python_version()
    found = data["harmony vocab"]
    assert found["level"] == "ok", found
    assert vocab.sha256_of(Path(found["value"].split(" (")[0])) == vocab.SHA256, "it names the verified file"
    assert report.ok and "<table>" in report._repr_html_()
    no_gpu = "gpt-oss-nano on the CPU (GPTOSS_LAB_MODEL=nano, preset nano-cpu)"
    assert (data["recommendation"]["value"] == no_gpu) == (not hardware.gpus())


def test_doctor_fails_a_damaged_vocabulary_and_says_how_to_fix_it(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / vocab.FILENAME).write_bytes(vocab.from_package()[:1000])
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(vocab.ENV, str(bad))
    report = lab.doctor()
    found = report.as_dict()["harmony vocab"]
    assert found["level"] == "fail" and not report.ok
    assert "not the official" in found["advice"] and f"unset {vocab.ENV}" in found["advice"]


def test_doctor_flags_an_sdk_older_than_the_lab_needs() -> None:
    import importlib

    doctor_module = importlib.import_module("gptoss_lab.doctor")
    assert doctor_module._older("1.98.2", "1.99")
    assert not doctor_module._older("3.57.0", "1.99")
    assert set(doctor_module.MINIMUMS) >= {"openai", "openai-agents"}


def test_exactly_one_harmony_package_owns_the_module() -> None:
    """openai-harmony and oss-harmony ship the same module: setup keeps the one vLLM requires."""
    from gptoss_lab import harmony_pkg

    assert harmony_pkg.clash() is None, harmony_pkg.clash()
    assert len(harmony_pkg.installed()) == 1
    assert harmony_pkg.owner() == harmony_pkg.wanted()
    assert lab.doctor().as_dict()["harmony package"]["level"] == "ok"
    assert harmony_pkg.identity().startswith(f"{harmony_pkg.wanted()} ")
