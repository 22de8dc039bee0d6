"""Image figures: digits SimpleCNN accuracy and training speed, and the image input pipeline.

1. ``digits``: scikit-learn's digits written as 28×28 PNGs in ImageFolder layout
   (``examples/make_digits_png.py``), trained with ``Pipeline(target="label")`` — the default
   config (SimpleCNN, 70/15/15 split, early stopping; ``--epochs`` caps the epochs). Target:
   test accuracy ≥ 0.98.
2. ``speed``: forgeml's ``Trainer`` training that SimpleCNN network on the cached uint8 tensors vs a
   hand-written PyTorch loop over the same tensors (same model, same initial weights, Adam,
   batch 64, index-sliced batches, no schedule, no clipping, no validation); alternating runs,
   medians. Target: ours ≥ 0.95×.
3. ``pipeline``: 5,000 generated 64×64 RGB JPEGs. Ours: epoch 1 = decode + resize into the
   uint8 cache (``ImageFeature``) + augment every batch on the model side; epoch ≥ 2 = augment
   from the cache. Baseline: a plain Pillow + torch loop (open, RGB, resize, to tensor, normalise,
   random flip) per image, every epoch. Images/s of each.

    .venv/bin/python bench/images.py                  # all three
    .venv/bin/python bench/images.py --only pipeline --images 2000
    .venv/bin/python bench/images.py --quick          # 10 epochs cap, 2 speed runs, 1,000 JPEGs
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["digits", "speed", "pipeline"], default=["digits", "speed", "pipeline"])
    parser.add_argument("--epochs", type=int, default=None, help="cap on digits training epochs (default: the config's 200 with early stopping)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each training loop")
    parser.add_argument("--images", type=int, default=5000, help="generated JPEGs for the pipeline figure")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.images = args.epochs or 10, 2, min(args.images, 1000)
    return args


ARGS = parse_args()
pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def digits_folder(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from make_digits_png import write_digits

    return write_digits(root / "digits_png")


def run_digits(root: Path, args: argparse.Namespace):
    from forgeml import Pipeline

    overrides = {"train.progress": False, "train.threads": args.threads}
    if args.epochs:
        overrides["train.epochs"] = args.epochs
    started = time.perf_counter()
    pipeline = Pipeline(target="label", overrides=overrides).fit(digits_folder(root))
    seconds = time.perf_counter() - started
    accuracy = pipeline.metrics_["accuracy"]
    print(f"\n[digits] SimpleCNN, default config{f' (epochs capped at {args.epochs})' if args.epochs else ''}: "
          f"test accuracy {accuracy:.4f} on {pipeline.metrics_['n']} images; {len(pipeline.fit_summary_.history)} epochs, {seconds:.0f} s")
    print(f"DIGITS accuracy {accuracy:.4f} (target ≥ 0.98) {verdict(accuracy >= 0.98)}")
    return pipeline


def run_speed(pipeline, args: argparse.Namespace) -> None:
    from forgeml.config import TrainConfig
    from forgeml.models.torch_estimator import to_tensors
    from forgeml.train.trainer import TensorData, Trainer

    prepared = pipeline.prepared_
    inputs = to_tensors(prepared.arrays["train"])
    targets = torch.as_tensor(prepared.targets["train"], dtype=torch.long)
    rows, epochs, batch = len(targets), 3, 64
    config = TrainConfig(epochs=epochs, batch_size=batch, optimizer="adam", weight_decay=0.0, schedule="none", grad_clip=None,
                         early_stopping_patience=0, progress=False, threads=args.threads, seed=0)

    def fresh():
        from forgeml.models.network import FusionNet

        torch.manual_seed(0)
        return FusionNet(prepared.featureset.input_spec(), prepared.task.output_size, prepared.config.model)

    def ours() -> float:
        model, started = fresh(), time.perf_counter()
        Trainer(config).fit(model, torch.nn.CrossEntropyLoss(), TensorData(inputs, targets))
        return rows * epochs / (time.perf_counter() - started)

    def hand() -> float:
        model, started = fresh(), time.perf_counter()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
        loss_fn = torch.nn.CrossEntropyLoss()
        model.train()
        steps = rows // batch + (1 if rows % batch >= 2 else 0)
        for epoch in range(epochs):
            order = torch.randperm(rows, generator=torch.Generator().manual_seed(epoch))
            total = 0.0
            for step in range(steps):
                index = order[step * batch:(step + 1) * batch]
                loss = loss_fn(model({k: v[index] for k, v in inputs.items()}), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
        return rows * epochs / (time.perf_counter() - started)

    torch.set_num_threads(args.threads)
    load = ForeignLoad()
    ours_runs, hand_runs = [], []
    for repeat in range(args.repeats):
        ours_runs.append(ours())
        hand_runs.append(hand())
        print(f"  run {repeat + 1}: ours {ours_runs[-1]:,.0f} images/s   hand loop {hand_runs[-1]:,.0f} images/s   ratio {ours_runs[-1] / hand_runs[-1]:.3f}")
    ratio = median(ours_runs) / median(hand_runs)
    print(f"[speed] SimpleCNN on {rows} cached 28×28 digits, batch {batch}, {epochs} epochs per run, threads={args.threads}")
    print(f"OURS {median(ours_runs):,.0f} images/s   HAND LOOP {median(hand_runs):,.0f} images/s   RATIO {ratio:.3f} (target ≥ 0.95) {verdict(ratio >= 0.95)}")
    print(f"load: {load.report()[1]}")


def write_jpegs(folder: Path, count: int) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        base = rng.integers(0, 255, 3)
        pixels = np.clip(base + rng.normal(0, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
        name = f"{i:05d}.jpg"
        Image.fromarray(pixels, "RGB").save(folder / name, quality=90)
        names.append(name)
    return names


def run_pipeline(root: Path, args: argparse.Namespace) -> None:
    import pandas as pd
    from PIL import Image

    from forgeml.config import CleanConfig, ImageFeature
    from forgeml.data.clean import CleaningReport
    from forgeml.features import FitContext, build_feature
    from forgeml.features.featureset import FeatureSet
    from forgeml.models.encoders.image import ImagePreprocess

    folder = root / "jpegs"
    names = write_jpegs(folder, args.images)
    column = pd.Series(names, dtype=object)
    column.attrs["base_dir"] = str(folder)
    batch = 64
    torch.set_num_threads(args.threads)
    load = ForeignLoad()

    def augment_all(images: torch.Tensor, preprocess: ImagePreprocess) -> None:
        for start in range(0, len(images), batch):
            preprocess(images[start:start + batch])

    started = time.perf_counter()
    feature = build_feature(ImageFeature(name="image", size=64, augment="on"))
    feature.missing_mask(column)  # decodes every file once, into the uint8 cache
    feature.fit(column, FitContext(CleanConfig(), CleaningReport()))
    images = torch.from_numpy(feature.transform(column))
    preprocess = ImagePreprocess(FeatureSet([feature], None).input_spec().images[0]).train()
    augment_all(images, preprocess)
    epoch1 = len(names) / (time.perf_counter() - started)
    later = []
    for _ in range(2):
        started = time.perf_counter()
        augment_all(images, preprocess)
        later.append(len(names) / (time.perf_counter() - started))

    mean = torch.tensor(feature.state["mean"]).view(3, 1, 1)
    std = torch.tensor(feature.state["std"]).view(3, 1, 1)
    plain = []
    for _ in range(2):
        started = time.perf_counter()
        for start in range(0, len(names), batch):
            tensors = []
            for name in names[start:start + batch]:
                with Image.open(folder / name) as image:
                    array = np.array(image.convert("RGB").resize((64, 64)), dtype=np.uint8)
                x = (torch.from_numpy(array).permute(2, 0, 1).float() / 255 - mean) / std
                tensors.append(x.flip(-1) if torch.rand(()) < 0.5 else x)
            torch.stack(tensors)
        plain.append(len(names) / (time.perf_counter() - started))
    print(f"\n[pipeline] {len(names)} generated 64×64 RGB JPEGs, batch {batch}, threads={args.threads}")
    print(f"OURS epoch 1 (decode + cache + augment) {epoch1:,.0f} images/s; epoch ≥2 (augment from cache) {median(later):,.0f} images/s")
    print(f"BASELINE plain Pillow + torch loop (decode + resize + normalise + flip, every epoch) {median(plain):,.0f} images/s")
    print(f"RATIO epoch 1 {epoch1 / median(plain):.2f}×, epoch ≥2 {median(later) / median(plain):.2f}× the plain loop")
    print(f"load: {load.report()[1]}")


def main() -> int:
    print(f"images bench — machine: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="forgeml-bench-images-") as tmp:
        root = Path(tmp)
        pipeline = None
        if "digits" in ARGS.only or "speed" in ARGS.only:
            pipeline = run_digits(root, ARGS) if "digits" in ARGS.only else None
            if pipeline is None:
                from forgeml import Pipeline

                pipeline = Pipeline(target="label", overrides={"train.epochs": 1, "train.progress": False}).fit(digits_folder(root))
        if "speed" in ARGS.only:
            run_speed(pipeline, ARGS)
        if "pipeline" in ARGS.only:
            run_pipeline(root, ARGS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
