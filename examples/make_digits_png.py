"""Write scikit-learn's handwritten digits as 28×28 grayscale PNGs in ImageFolder layout.

The founding documents train CNNs on MNIST (28×28); MNIST is a download, scikit-learn's 1,797
8×8 digits ship with it. Each digit is scaled 0–16 → 0–255, upsampled to 28×28 (bicubic) and
written to ``<out>/<digit>/<index>.png``.

    python examples/make_digits_png.py examples/digits_png        # then: forgeml train examples/digits_png --target label
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def write_digits(out: Path, size: int = 28, limit: int | None = None) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target
    if limit:
        images, labels = images[:limit], labels[:limit]
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image / 16.0 * 255.0, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{index:04d}.png")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, nargs="?", default=Path(__file__).parent / "digits_png")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--limit", type=int, default=None, help="only the first N digits (a quick try; default all 1,797)")
    args = parser.parse_args()
    print(f"wrote {sum(1 for _ in write_digits(args.out, args.size, args.limit).rglob('*.png'))} PNGs to {args.out}")
