"""gpt-oss-nano-plain: the written-down model of the second lane (served for real by `make test-plain`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_lab import presets
from gptoss_lab.errors import NanoBuildError
from gptoss_lab.harmony_tokens import ASSISTANT, RETURN
from gptoss_lab.nano import plain
from gptoss_lab.nano.tokenizer import harmony_encoding

ENC = harmony_encoding()


def test_the_reply_is_one_final_message_ending_in_return() -> None:
    from openai_harmony import Role

    tokens = plain.completion(ENC)
    assert tokens[-1] == RETURN
    (message,) = ENC.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)
    assert (message.channel, message.content[0].text, message.recipient) == ("final", plain.FINAL, None)


def test_each_token_of_the_reply_has_one_successor() -> None:
    pairs = plain.chain(ENC)
    assert pairs[0][0] == ASSISTANT and pairs[-1][1] == RETURN
    assert len({token for token, _ in pairs}) == len(pairs)


def test_a_sentence_that_repeats_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plain, "FINAL", "I am what I am.")
    with pytest.raises(NanoBuildError, match="repeats a token"):
        plain.chain(ENC)


def test_the_written_weights_spell_the_reply_greedily(tmp_path: Path) -> None:
    """With attention and experts silenced, each token's own embedding picks the next: follow the chain."""
    import torch
    from safetensors.torch import load_file

    from gptoss_lab.nano import model as nano_model

    nano_model.write_config(tmp_path)
    plain.write_weights(tmp_path, ENC)
    weights = load_file(str(tmp_path / "model.safetensors"))
    embed, head = weights["model.embed_tokens.weight"].float(), weights["lm_head.weight"].float()
    assert all(float(weights[k].abs().max()) == 0 for k in weights if k.endswith(("o_proj.weight", "down_proj")))
    token, spelled = ASSISTANT, []
    while token != RETURN and len(spelled) < 64:
        hidden = embed[token]
        hidden = hidden / torch.sqrt(hidden.pow(2).mean() + 1e-5)  # the final RMSNorm, weight 1
        logits = head @ hidden
        top2 = torch.topk(logits, 2).values
        assert float(top2[0] - top2[1]) > 50  # greedy or sampled at temperature 1, the same token
        token = int(torch.argmax(logits))
        spelled.append(token)
    assert spelled == plain.completion(ENC)


def test_nano_plain_has_nano_presets_under_its_own_name() -> None:
    preset = presets.select("nano-plain")
    assert preset.name == "nano-plain-cpu"
    assert preset.args[preset.args.index("--served-model-name") + 1] == "gpt-oss-nano-plain"
    assert "--tool-call-parser" in preset.flags()


def test_force_never_rebuilds_under_a_running_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab server (here a real `sleep` process with its pidfile) serving the folder: --force refuses, keeps it."""
    import json
    import subprocess

    from gptoss_lab import process

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    target = tmp_path / "nano" / f"plain-{plain.cache_key()}"
    target.mkdir(parents=True)
    (target / "nano.json").write_text("{}")
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        servers = tmp_path / "servers"
        servers.mkdir()
        (servers / "vllm-8123.json").write_text(json.dumps({
            "pid": child.pid, "owner": child.pid, "model": str(target), "port": 8123, "url": "", "log": "",
            "identity": process.identity(child.pid), "owner_identity": process.identity(child.pid)}))
        with pytest.raises(NanoBuildError, match="served by the lab's vLLM server on port 8123"):
            plain.build(force=True)
        assert (target / "nano.json").exists()
    finally:
        child.kill()
        child.wait()
