"""Bundles to compress, trained once per session on a CSV (so the bundle records its data file):
a single MLP, a bag of two MLPs, a GBM (for the refusals), and one compressed copy of each kind."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import make_mixed_frame, write_csv

# Wide enough that int8 and pruning have something to save; short enough to train in seconds.
NETWORK = {"model.type": "mlp", "model.hidden_size": 128, "train.epochs": 15, "train.progress": False, "train.threads": 1,
           "train.bagging_folds": 1, "train.seed": 0}


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file's SHA-256 and mode: a compressed source must keep all of them."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def compress_csv(tmp_path_factory) -> Path:
    frame = make_mixed_frame(rows=600, seed=3).drop(columns=["review", "signup", "price", "size"])
    return write_csv(frame, tmp_path_factory.mktemp("compress_data") / "mixed.csv")


def _fit_save(csv: Path, folder: Path, overrides: dict) -> Path:
    from forgeml import Pipeline

    return Pipeline(target="label", overrides=overrides).fit(str(csv)).save(folder)


@pytest.fixture(scope="session")
def mlp_bundle(compress_csv, tmp_path_factory) -> Path:
    return _fit_save(compress_csv, tmp_path_factory.mktemp("mlp") / "bundle", NETWORK)


@pytest.fixture(scope="session")
def bagged_bundle(compress_csv, tmp_path_factory) -> Path:
    return _fit_save(compress_csv, tmp_path_factory.mktemp("bag") / "bundle", {**NETWORK, "train.bagging_folds": 2, "train.epochs": 6})


@pytest.fixture(scope="session")
def gbm_bundle(compress_csv, tmp_path_factory) -> Path:
    overrides = {"model.type": "gbm", "model.num_boost_round": 20, "train.progress": False, "train.threads": 1}
    return _fit_save(compress_csv, tmp_path_factory.mktemp("gbm") / "bundle", overrides)


@pytest.fixture(scope="session")
def quantized(mlp_bundle, tmp_path_factory):
    """(result, source digest before compressing) for the int8 copy of ``mlp_bundle``."""
    from forgeml.compress.run import compress_bundle

    before = tree_digest(mlp_bundle)
    return compress_bundle(mlp_bundle, "quantize", {"dtype": "int8"}, output=tmp_path_factory.mktemp("int8") / "bundle"), before


@pytest.fixture(scope="session")
def pruned(mlp_bundle, tmp_path_factory):
    from forgeml.compress.run import compress_bundle

    before = tree_digest(mlp_bundle)
    return compress_bundle(mlp_bundle, "prune", {"amount": 0.5, "structured": True}, output=tmp_path_factory.mktemp("pruned") / "bundle"), before
