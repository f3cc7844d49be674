"""The inputs vecshift's peers get: the model's tokenizer.json used as vecshift uses it.

Shared by benches/peers.py (CPU) and scripts/gpu_check.py (GPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_tokenizers(model_dir: Path):
    """(plain, padded): no truncation either way; `padded` pads each batch to its longest sentence."""
    from tokenizers import Tokenizer

    # tokenizer.json pads to a fixed 128 and truncates at 128: both off, as in vecshift; the
    # padded one pads each batch to its longest sentence only.
    plain = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    plain.no_padding()
    plain.no_truncation()
    padded = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    padded.no_truncation()
    padded.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
    return plain, padded


def encode_inputs(padded, batch: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, attention_mask and token_type_ids of one batch, int64."""
    enc = padded.encode_batch(batch)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.array([e.type_ids for e in enc], dtype=np.int64)
    return ids, mask, types
