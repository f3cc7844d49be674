"""Writes a BERT checkpoint with random weights for speed runs at the sizes users load.

    python benches/make_random_bert.py OUT_DIR [--size base|large|mini] [--tokenizer DIR]

bert-base is 768 hidden, 12 layers, 12 heads, 3072 intermediate; its weights are drawn the way
transformers initialises them (std 0.02) and stored in f32, as most checkpoints on the hub are.
The tokenizer (tokenizer.json, vocab.txt) is copied from --tokenizer (default: the embedded
data/all-MiniLM-L6-v2, whose uncased WordPiece vocabulary is bert-base-uncased's), so the
vocabulary and tokenization are those of a real model. Random weights give the same speed as
trained ones; they are for `benches/peers.py --model OUT_DIR` and `vecshift bench`, never for
vectors anyone reads.
"""
import argparse
import shutil
from pathlib import Path

SIZES = {
    "mini": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}


def main():
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", choices=sorted(SIZES), default="base")
    ap.add_argument("--tokenizer", type=Path, default=repo / "data" / "all-MiniLM-L6-v2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(args.seed)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **SIZES[args.size])
    model = BertModel(config, add_pooling_layer=False).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (args.tokenizer / name).exists():
            shutil.copy(args.tokenizer / name, args.out / name)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: bert-{args.size} shape, {params / 1e6:.1f} M parameters, f32, random weights")


if __name__ == "__main__":
    main()
