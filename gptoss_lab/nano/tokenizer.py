"""Build a Hugging Face tokenizer that encodes exactly like ``openai-harmony``.

The ranks come from the verified ``o200k_base.tiktoken``; the special tokens
(ids 199,998-201,087) and their names come from the harmony encoding itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from gptoss_lab import vocab
from gptoss_lab.harmony import encoding as harmony_encoding  # the one getter; nano code and tests call it by this name

VOCAB_SIZE = 201_088
FIRST_SPECIAL = 199_998

# tiktoken's o200k_base split pattern (tiktoken_ext/openai_public.py).
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


def special_tokens() -> list[str]:
    """Return the names of ids 199,998-201,087 as the harmony encoding decodes them."""
    enc = harmony_encoding()
    return [enc.decode([i]) for i in range(FIRST_SPECIAL, VOCAB_SIZE)]


def build(out_dir: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` for gpt-oss into ``out_dir``."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    status = vocab.ensure()
    names = special_tokens()
    converter = TikTokenConverter(
        vocab_file=str(status.path), pattern=O200K_PATTERN, extra_special_tokens=names
    )
    backend = converter.converted()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|startoftext|>",
        eos_token="<|return|>",
        pad_token="<|endoftext|>",
        model_max_length=131_072,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    _check_ids(out_dir, names)


def _check_ids(out_dir: Path, names: list[str]) -> None:
    data = json.loads((out_dir / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in data["added_tokens"]}
    for offset, name in enumerate(names):
        if ids.get(name) != FIRST_SPECIAL + offset:
            raise RuntimeError(f"special token {name} got id {ids.get(name)}")
