"""The doctor: a report for people (table, HTML) and for code (dict)."""

from __future__ import annotations

import gptoss_lab as lab


def test_doctor_reports_this_machine() -> None:
    report = lab.doctor()
    data = report.as_dict()
    assert data["vllm"]["level"] == "ok"
    assert "harmony vocab" in data
    assert "<table>" in report._repr_html_()
    assert data["recommendation"]["value"]


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
