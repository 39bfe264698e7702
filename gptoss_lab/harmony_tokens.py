"""The harmony token ids the lab writes into configs and checks against (the o200k_harmony vocabulary).

One home for each id: nano's config, its script's completions and nano-plain's lookup table read them
here. ``openai_harmony`` knows them too, but loading it needs the vocabulary file; these are needed
before it is there.
"""

from __future__ import annotations

BOS = 199998
"""``<|startoftext|>``."""
PAD = 199999
"""``<|endoftext|>``, used as padding."""
RETURN = 200002
"""``<|return|>``: the end of a final answer (a stop token)."""
START = 200006
"""``<|start|>``: a message header begins."""
END = 200007
"""``<|end|>``: a message ends and another follows."""
CALL = 200012
"""``<|call|>``: the end of a tool call (a stop token): the model waits for the result."""
ASSISTANT = 173781
"""``assistant``, the role name after ``<|start|>`` (an ordinary token)."""
STOP = (RETURN, CALL)
"""The tokens generation stops at (``eos_token_id`` of gpt-oss's configs)."""
