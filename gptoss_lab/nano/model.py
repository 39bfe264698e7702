"""The gpt-oss-nano architecture: real ``GptOssForCausalLM``, tiny dimensions.

The vocabulary size (201,088), head_dim (64), attention sinks, the MoE block
and the yarn rope are the real gpt-oss ones; only depth and width shrink.
"""

from __future__ import annotations

import json
from pathlib import Path

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
# Every token uses every expert: routing weights still vary, but no top-k choice can
# flip under bf16 rounding and send a memorised continuation down another path.
EXPERTS = 2
EXPERTS_PER_TOKEN = 2
MAX_MODEL_LEN = 4096


def config():  # -> transformers.GptOssConfig
    """Return the nano ``GptOssConfig``."""
    from transformers import GptOssConfig

    return GptOssConfig(
        vocab_size=201_088,
        hidden_size=HIDDEN,
        intermediate_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=64,
        num_local_experts=EXPERTS,
        num_experts_per_tok=EXPERTS_PER_TOKEN,
        # Wider than the longest scripted prompt, so sliding and full attention agree.
        sliding_window=MAX_MODEL_LEN,
        layer_types=["sliding_attention", "full_attention"][:LAYERS],
        max_position_embeddings=MAX_MODEL_LEN,
        eos_token_id=[200002, 200012],
        pad_token_id=199999,
        bos_token_id=199998,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )


def write_config(out_dir: Path) -> None:
    """Write ``config.json`` and a greedy ``generation_config.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config().save_pretrained(out_dir)
    # vLLM applies these as the default sampling parameters (``--generation-config auto``):
    # nano replays its script only under greedy decoding.
    generation = {
        "bos_token_id": 199998,
        "eos_token_id": [200002, 200012],
        "pad_token_id": 199999,
        "do_sample": False,
        "temperature": 0.0,
    }
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
