"""gpt-oss-nano: tokenizer fidelity, architecture, cache behaviour, failed builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptoss_lab import nano
from gptoss_lab.errors import NanoBuildError
from gptoss_lab.nano import tokenizer
from gptoss_lab.nano.build import cache_root

CORPUS = [
    "Hello, world!",
    "  leading spaces,\ttabs\n\nand blank lines\r\n",
    "Numbers 1 12 123 1234 3.14159 -42 1e-9",
    "don't I'LL we've they'd SHE'S",
    "émoji 🤖 日本語のテキスト 한국어 العربية Ελληνικά",
    "def f(x: int) -> list[int]:\n    return [x ** 2 for _ in range(3)]\n",
    '{"city": "Tokyo", "units": "celsius"}',
    "<|start|>assistant<|channel|>analysis<|message|>Think.<|end|>",
    "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
    '<|message|>{"city":"Tokyo"}<|call|>',
]


def test_tokenizer_encodes_exactly_like_harmony(nano_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    enc = tokenizer.harmony_encoding()
    tok = PreTrainedTokenizerFast.from_pretrained(nano_dir)
    specials = tokenizer.special_tokens()
    assert len(specials) == 201_088 - 199_998
    corpus = [*CORPUS, "".join(specials), " x ".join(specials[:200])]
    for text in corpus:
        expected = enc.encode(text, allowed_special="all")
        assert tok.encode(text, add_special_tokens=False) == expected, text[:60]
        assert tok.decode(expected) == text
    assert len(tok) == 201_088


def test_checkpoint_has_the_real_gpt_oss_shape(nano_dir: Path) -> None:
    config = json.loads((nano_dir / "config.json").read_text())
    assert config["architectures"] == ["GptOssForCausalLM"]
    assert config["model_type"] == "gpt_oss"
    assert config["vocab_size"] == 201_088
    assert config["head_dim"] == 64
    assert (nano_dir / "model.safetensors").exists()
    info = nano.build_info(nano_dir)
    assert info.entries and info.train["margin"] > 0


def test_cached_build_is_reused(nano_dir: Path) -> None:
    """A build with the same script and versions returns the cached folder untouched: nothing is retrained."""
    weights = nano_dir / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert nano_dir == cache_root() / nano.cache_key()
    assert nano.build() == nano_dir and nano.path(build_if_missing=False) == nano_dir
    assert weights.stat().st_mtime_ns == written


def test_path_without_build_says_how_to_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    with pytest.raises(NanoBuildError, match="gptoss-lab nano build"):
        nano.path(build_if_missing=False)


def test_cache_key_follows_the_script(tmp_path: Path) -> None:
    from gptoss_lab.nano import script

    original = script.load()
    path = tmp_path / "script.json"
    data = json.loads((Path(script.__file__).parent / "script.json").read_text())
    data["entries"][0]["reply"]["final"] += " Changed."
    path.write_text(json.dumps(data))
    assert nano.cache_key(script.load(path)) != nano.cache_key(original)


@pytest.mark.vllm
def test_failed_build_leaves_nothing_behind(nano_dir: Path, tmp_path: Path, own_processes) -> None:
    """A request vLLM cannot render stops the build with its error, render server and all;
    the server's log stays where the error can point at it (the build folder goes)."""
    data = json.loads((Path(nano.__file__).parent / "script.json").read_text())
    data["entries"].append(
        {"id": "broken", "api": "chat", "request": {"messages": "not a list"},
         "reply": {"reasoning": "r", "final": "f"}}
    )
    broken = tmp_path / "script.json"
    broken.write_text(json.dumps(data))
    def builds() -> set[Path]:
        return {p for p in cache_root().iterdir() if p.suffix != ".log" and ".log." not in p.name}

    before = builds()
    with pytest.raises(NanoBuildError, match="could not render a chat request"):
        nano.build(script_path=broken)
    assert builds() == before
    log = cache_root() / "render-server.log"
    assert log.is_file() and "nano-render" in log.read_text(errors="replace"), "the render server's log is kept"
    assert own_processes("gptoss_lab.vllm_cli launch render") == [], "the render server must be stopped"


@pytest.mark.slow
@pytest.mark.vllm
def test_log_rendering_matches_the_render_endpoint(nano_dir: Path) -> None:
    """vLLM 0.26's render server has no Responses endpoint; nano's builder then renders
    Responses requests through a full server's request log. Both paths must give the same ids."""
    from gptoss_lab.nano import render
    from gptoss_lab.nano import script as nano_script

    entries = [e for e in nano_script.load().entries if e.api in ("chat", "responses") and e.turn == 1]
    picked = [next(e for e in entries if e.api == "responses"), next(e for e in entries if e.api == "chat")]
    with render.render_server(nano_dir) as server, render.log_render_server(nano_dir) as full:
        assert render.has_responses_render(server), "vLLM 0.32's render server renders Responses requests"
        for entry in picked:
            assert render.render_from_log(full, entry.api, entry.request) == render.render_with_server(
                server, entry.api, entry.request), entry.id
    assert not full.is_running(), "the log-rendering server must stop with its block"


def test_training_groups_long_sequences_in_small_chunks() -> None:
    """Eager attention costs the square of the padded length: long prompts go in small groups."""
    import torch

    from gptoss_lab.nano import train

    lengths = torch.tensor([80] * 40 + [1200] * 5)
    chunks = train._chunks(torch.argsort(lengths), lengths)
    assert sorted(i for c in chunks for i in c.tolist()) == list(range(45))
    for chunk in chunks:
        assert len(chunk) <= train.CHUNK
        assert len(chunk) == 1 or len(chunk) * int(lengths[chunk].max()) <= train.CHUNK_TOKENS
    assert [len(c) for c in chunks] == [16, 16, 8, 5]


def test_builtin_entries_without_the_tool_server_packages_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import importlib.util

    from gptoss_lab.nano import script as nano_script

    build = importlib.import_module("gptoss_lab.nano.build")  # the package exports the function build()

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bm25s" else real(name, *a))
    with pytest.raises(NanoBuildError, match=r"which need bm25s: install the `builtin` extra"), \
            build._builtin_tools(nano_script.load()):
        pass


@pytest.mark.slow
def test_tokens_outside_the_script_share_one_embedding(tmp_path: Path) -> None:
    """A word no scripted prompt holds reaches nano as UNKNOWN, whatever the word: fallback prompts
    teach UNKNOWN, so a request with a new word gets the fallback even if no training prompt had it."""
    import torch
    from safetensors.torch import load_file

    from gptoss_lab.nano import script as nano_script
    from gptoss_lab.nano import train
    from gptoss_lab.nano.render import Example

    encoding = tokenizer.harmony_encoding()
    loaded = nano_script.load()
    scripted = encoding.encode("In one sentence, what is vLLM?")
    unscripted = encoding.encode("Plan a trip to Lisbon")
    replies = [loaded.entries[0].reply, loaded.fallback]
    known = set(scripted).union(*(nano_script.completion_tokens(r, encoding) for r in replies))
    new = [t for t in unscripted if t not in known]
    examples = [Example(scripted, replies[0], loaded.entries[0].id), Example(unscripted, replies[1], "fallback")]
    trainer = train.Trainer(examples, encoding)
    assert new, "the fallback prompt holds words the script does not"
    assert trainer.used_in == sorted(known), "the script's prompts and every reply get an embedding; nothing else"
    fallback_ids = trainer.ids[1, : len(unscripted)].tolist()
    assert [i for i, t in zip(fallback_ids, unscripted, strict=True) if t in new] == [trainer.unknown] * len(new)

    trainer.save(tmp_path)
    embed = load_file(str(tmp_path / "model.safetensors"))["model.embed_tokens.weight"]
    unknown_row = embed[new[0]]
    never_seen = encoding.encode(" vaccines Fahrenheit")
    for token in [*new, *never_seen]:
        assert torch.equal(embed[token], unknown_row)
    assert not torch.equal(embed[scripted[0]], unknown_row)


@pytest.mark.slow
def test_a_changed_script_trains_on_from_the_previous_build(tmp_path: Path) -> None:
    """Incremental rebuild: the body and every shared token's row come from the earlier build; a token
    new to the script starts where the earlier build had it, on the UNKNOWN row."""
    import torch
    from safetensors.torch import load_file

    from gptoss_lab.nano import script as nano_script
    from gptoss_lab.nano import train
    from gptoss_lab.nano.render import Example

    encoding = tokenizer.harmony_encoding()
    loaded = nano_script.load()
    entry = loaded.entries[0]
    scripted = encoding.encode("In one sentence, what is vLLM?")
    before = train.Trainer([Example(scripted, entry.reply, entry.id)], encoding)
    before.save(tmp_path)
    saved = load_file(str(tmp_path / "model.safetensors"))

    prompt = encoding.encode("In one sentence, what is Lisbon?")
    after = train.Trainer([Example(prompt, entry.reply, entry.id)], encoding, seed=1)
    after.warm_start(tmp_path)
    new = [t for t in prompt if t not in before.used_in]
    shared = [t for t in after.used_in if t in before.used_in]
    assert new and shared
    embed = saved["model.embed_tokens.weight"].float()
    rows = {t: i for i, t in enumerate(after.used_in)}
    for token in shared:
        assert torch.equal(after.embed[rows[token]].detach(), embed[token])
    for token in new:
        assert torch.equal(after.embed[rows[token]].detach(), embed[train.UNKNOWN_PROBE])
    layer = "model.layers.0.mlp.experts.down_proj"
    assert torch.equal(dict(after.net.named_parameters())[layer].detach(), saved[layer].float())


def test_previous_build_is_the_newest_of_the_same_recipe_and_versions(tmp_path: Path, monkeypatch) -> None:
    import importlib
    import os

    build = importlib.import_module("gptoss_lab.nano.build")
    monkeypatch.setattr(build, "cache_root", lambda: tmp_path)
    versions = build._versions()
    for name, vers, when in (("old", versions, 1), ("new", versions, 2), ("other", {**versions, "recipe": "0"}, 3),
                             ("plain-x", versions, 4), ("current", versions, 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "nano.json").write_text(json.dumps({"versions": vers}))
        os.utime(tmp_path / name / "nano.json", (when, when))
    (tmp_path / ".build-half").mkdir()
    assert build.previous_build("current") == tmp_path / "new"
    assert build.previous_build("current") != tmp_path / "current"
    assert build.previous_build("new") == tmp_path / "current"


@pytest.mark.slow
def test_training_that_sits_at_a_tie_stops_early_and_names_the_pair() -> None:
    """Two sequences nano cannot tell apart (here: one prompt, two replies) tie at a margin of zero;
    training stops after ``stall_steps`` at the tie instead of running out max_steps, naming both sequences."""
    from gptoss_lab.errors import TrainingStalled
    from gptoss_lab.nano import script as nano_script
    from gptoss_lab.nano import train
    from gptoss_lab.nano.render import Example

    encoding = tokenizer.harmony_encoding()
    first, second = nano_script.load().entries[:2]
    prompt = encoding.encode("In one sentence, what is vLLM?")
    trainer = train.Trainer([Example(prompt, first.reply, first.id), Example(prompt, second.reply, second.id)],
                            encoding)
    with pytest.raises(TrainingStalled, match="sat at a tie") as stalled:
        trainer.fit(max_steps=3000, stall_steps=50)
    assert first.id in str(stalled.value) and second.id in str(stalled.value)
    assert trainer.steps < 1000, "a tie must end training long before max_steps"
    assert abs(trainer.margin) < train.TIE_BAND


def test_a_worst_margin_that_stops_moving_short_of_the_target_is_a_stall() -> None:
    """Margins as logged by real builds: a frozen pair (-0.69 from step 700 on), a tie, and a run
    whose worst margin jumps about on its way to converging (which must never count as a stall)."""
    from gptoss_lab.nano import train

    def first_stall(margins: list[float]) -> tuple[int, str] | None:
        watch = train.StallWatch(stall_steps=200)
        for check, margin in enumerate(margins, start=1):
            if how := watch.check(margin):
                return check * train.CHECK_EVERY, how
        return None

    frozen = [-4.98, -0.62, -2.50, -3.29, -4.79, -0.48] + [-0.6921, -0.6918, -0.6925] * 4
    step, how = first_stall(frozen) or (0, "")
    assert how == "stopped moving for 200 steps" and step == 6 * 25 + 9 * 25
    tie = [-3.0, -1.0] + [-0.004, 0.006, -0.08, 0.01] * 3
    assert first_stall(tie) == (2 * 25 + 8 * 25, "sat at a tie for 200 steps")
    converging = [-4.98, -0.62, -2.50, -3.29, -4.79, -0.48, -0.45, -0.41, -0.44, -0.40, -0.38, -0.43, 0.2, 1.5, 4.0]
    assert first_stall(converging) is None
