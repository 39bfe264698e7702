"""Harmony vocabulary provisioning: order of sources, sha256 checks, offline use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_lab import vocab
from gptoss_lab.errors import VocabError


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(vocab.ENV, raising=False)
    # No network here anyway; a dead proxy makes "the download fails" explicit and fast.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    return tmp_path / "cache"


def test_offline_provisioning_rebuilds_official_file_from_package(empty_cache: Path) -> None:
    status = vocab.ensure()
    assert status.source == "package"
    assert status.path == empty_cache / "tiktoken" / vocab.FILENAME
    assert vocab.sha256_of(status.path) == vocab.SHA256
    assert os.environ[vocab.ENV] == str(status.folder)
    assert not list(status.folder.glob("*.part")), "no partial file is left behind"


def test_second_call_uses_the_cache(empty_cache: Path, monkeypatch) -> None:
    vocab.ensure()
    monkeypatch.delenv(vocab.ENV)
    assert vocab.locate().source == "cache"


def test_env_folder_wins_over_cache(empty_cache: Path, tmp_path: Path, monkeypatch) -> None:
    good = vocab.ensure().path
    other = tmp_path / "mine"
    other.mkdir()
    (other / vocab.FILENAME).write_bytes(good.read_bytes())
    monkeypatch.setenv(vocab.ENV, str(other))
    status = vocab.locate()
    assert (status.source, status.folder) == ("env", other)


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_bad_env_file_is_refused_with_a_fix(empty_cache, tmp_path, monkeypatch, damage) -> None:
    data = vocab.from_package()
    bad = tmp_path / "bad"
    bad.mkdir()
    data = data[: len(data) // 2] if damage == "truncate" else data.replace(b" 1000\n", b" 1001\n", 1)
    (bad / vocab.FILENAME).write_bytes(data)
    monkeypatch.setenv(vocab.ENV, str(bad))
    with pytest.raises(VocabError) as err:
        vocab.ensure()
    message = str(err.value)
    assert "not the official" in message and "gptoss-lab vocab" in message
    assert f"unset {vocab.ENV}" in message
    assert os.environ[vocab.ENV] == str(bad), "a refused file is never exported elsewhere"


def test_tampered_cache_file_is_refused(empty_cache: Path) -> None:
    path = vocab.ensure().path
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(VocabError, match="Delete it and run `gptoss-lab vocab`"):
        vocab.locate()


def test_no_source_left_says_what_to_do(empty_cache: Path) -> None:
    with pytest.raises(VocabError) as err:
        vocab.locate(allow_package=False)
    assert "download from" in str(err.value) and str(vocab.cache_folder()) in str(err.value)


def test_harmony_loads_offline_from_the_provisioned_folder(empty_cache: Path) -> None:
    folder = vocab.ensure().folder
    code = (
        "from openai_harmony import load_harmony_encoding, HarmonyEncodingName as N;"
        "e = load_harmony_encoding(N.HARMONY_GPT_OSS);"
        "print(sorted(e.stop_tokens_for_assistant_actions()))"
    )
    env = {**os.environ, vocab.ENV: str(folder), "HTTPS_PROXY": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[200002, 200012]"


def test_cli_vocab_prints_the_export_line(empty_cache: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gptoss_lab.cli", "vocab", "--offline"],
        capture_output=True, text=True, env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr
    assert f"export {vocab.ENV}=" in out.stdout
