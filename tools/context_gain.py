"""How many payload bytes a context model would save over the static per-channel tables.

docs/method.md: "A context model with adaptive coding would save about 10 % more (left as future work
in the paper)."  This measures it on the photo pool, without changing the format: it computes the
encoder's symbols (``--refine 0``, no COLOUR) of every photo and reports ideal code lengths in bits
(no coder overhead, no table bytes) of

* ``static``: one table per channel from the file's own symbols (what TABLES + PAYLOAD do today);
* ``trained CTX``: a fixed table per (channel, context), counted on the train photos (at longer side
  768 and 512) and applied to the validation photos;
* ``adaptive CTX prior P``: one adaptive model per (channel, context) inside each file, starting from
  the file's own channel table weighted as P symbols, +24 per coded symbol (as format_spec 5.1).

Contexts are causal in the PAYLOAD's order (channel by channel, row-major): W and N are the left and
upper neighbours, NW / NE the diagonal ones, prev the previous channel at the same position
(outside the latent: the centre symbol).

    python tools/context_gain.py --pool data/pool --model gcz-c4 > bench/context_coding_c4.txt
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from gcodec import codec

LEVELS = 5
INCREMENT = 24


def resized(path: Path, side: int) -> Image.Image:
    """The photo with its longer side scaled to ``side`` (Lanczos), as ``gcz eval --max-side``."""
    image = Image.open(path).convert("RGB")
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)


def symbols_of(image: Image.Image, model: str) -> np.ndarray:
    """The encoder's symbols (C, h, w) for ``image``, unrefined and without COLOUR."""
    data = codec.compress(image, model=model, colour=False, refine_steps=0)
    return codec.decode_symbols(codec.read_header(data)).astype(np.int64)


def context_ids(symbols: np.ndarray, kind: str) -> np.ndarray:
    """Context id of every symbol: its channel and the causal neighbours named in ``kind``."""
    channels, height, width = symbols.shape
    centre = LEVELS // 2
    padded = np.pad(symbols, ((0, 0), (1, 1), (1, 1)), constant_values=centre)
    neighbours = {
        "W": padded[:, 1:-1, :-2], "N": padded[:, :-2, 1:-1],
        "NW": padded[:, :-2, :-2], "NE": padded[:, :-2, 2:],
        "prev": np.concatenate([np.full((1, height, width), centre), symbols[:-1]], 0),
    }
    ids = np.broadcast_to(np.arange(channels)[:, None, None], symbols.shape).copy()
    for name in kind.split(","):
        ids = ids * LEVELS + neighbours[name]
    return ids.ravel()


def static_bits(symbols: np.ndarray) -> float:
    """Ideal bits with one table per channel from the file's own counts."""
    total = 0.0
    for channel in symbols:
        probs = np.bincount(channel.ravel(), minlength=LEVELS) / channel.size
        total -= np.log2(probs[channel.ravel()]).sum()
    return total


def trained_bits(train: list[np.ndarray], val: list[np.ndarray], kind: str) -> float:
    """Ideal bits on ``val`` with fixed per-context tables counted on ``train`` (+0.5 each)."""
    size = LEVELS ** (len(kind.split(",")) + 1) * max(s.shape[0] for s in train + val)
    counts = np.full((size, LEVELS), 0.5)
    for symbols in train:
        np.add.at(counts, (context_ids(symbols, kind), symbols.ravel()), 1)
    probs = counts / counts.sum(1, keepdims=True)
    return float(sum(-np.log2(probs[context_ids(s, kind), s.ravel()]).sum() for s in val))


def adaptive_bits(symbols: np.ndarray, kind: str, prior: float) -> float:
    """Ideal bits with adaptive per-context models started from the file's channel tables."""
    channels = symbols.shape[0]
    tables = [(np.bincount(c.ravel(), minlength=LEVELS) + 0.5) / (c.size + 0.5 * LEVELS) for c in symbols]
    owner = np.repeat(np.arange(channels), symbols[0].size)
    models: dict[int, np.ndarray] = {}
    bits = 0.0
    for context, symbol, channel in zip(context_ids(symbols, kind), symbols.ravel(), owner):
        freqs = models.setdefault(int(context), tables[channel] * prior if prior else np.ones(LEVELS))
        bits -= np.log2(freqs[symbol] / freqs.sum())
        freqs[symbol] += INCREMENT
    return bits


def main() -> None:
    """Print the comparison as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("data/pool"))
    parser.add_argument("--model", default="gcz-c4")
    parser.add_argument("--side", type=int, default=768)
    args = parser.parse_args()
    records = json.loads((args.pool / "index.json").read_text())
    train = [symbols_of(resized(args.pool / r["file"], side), args.model)
             for r in records if r["split"] == "train" for side in (args.side, args.side * 2 // 3)]
    val = [symbols_of(resized(args.pool / r["file"], args.side), args.model) for r in records if r["split"] == "val"]
    count = len(val)
    bound = sum(s.size for s in val) * np.log2(LEVELS)
    static = sum(static_bits(s) for s in val)
    print(f"{args.model}, {count} validation photos at longer side {args.side}, {len(train)} train latents; "
          f"bound {bound / 8 / count:.0f} B/photo\n")
    print("| code | payload B/photo | vs static |\n|---|---|---|")
    print(f"| static (today) | {static / 8 / count:.0f} | |")
    rows = [(f"trained {k}", trained_bits(train, val, k)) for k in ("W,N", "W,N,prev", "W,N,NE,prev", "W,N,NW,NE")]
    rows += [(f"adaptive {k} prior {p}", sum(adaptive_bits(s, k, p) for s in val))
             for k, p in (("W,N", 0), ("W,N", 20), ("W,N", 40), ("W,N", 80), ("W,N,prev", 40))]
    for name, bits in rows:
        print(f"| {name} | {bits / 8 / count:.0f} | {bits / static - 1:+.1%} |")


if __name__ == "__main__":
    main()
