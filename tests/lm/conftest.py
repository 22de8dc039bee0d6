"""A small real corpus (a few of the running Python's own standard-library modules) and a tiny
GPT config, shared by the LM tests."""
from __future__ import annotations

import shutil
import string
import textwrap
from pathlib import Path

import pytest

from forgeml.lm.config import LMConfig

STDLIB_FILES = [Path(string.__file__), Path(textwrap.__file__), *sorted(Path(shutil.__file__).parent.joinpath("json").glob("*.py"))]


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in STDLIB_FILES:
        shutil.copy(file, folder / file.name)
    return folder


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "stdlib")


def tiny_config(corpus: Path | None = None, **overrides) -> LMConfig:
    options = {"train.max_steps": 6, "train.batch_tokens": 512, "train.micro_batch": 4, "train.warmup_steps": 2,
               "train.eval_every": 3, "train.eval_batches": 2, "train.log_every": 1, "train.progress": False,
               "train.threads": 1, "model.block_size": 32, "train.learning_rate": 3e-3, **overrides}
    if corpus is not None:
        options["corpus.path"] = str(corpus)
    return LMConfig.from_preset("tiny", options)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: a second thread only waits for the first."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
