"""The language-model run's configuration: corpus, GPT shape, training — one validated object.

Kept apart from ``forgeml.config.Config`` (which describes a table and its target) because an LM
run has neither; the same habits hold: pydantic, every default explained, YAML in and out, and
the resolved config saved in the run folder and the bundle so a run can be repeated exactly. The
strict base class and the YAML reader are the foundation's (``forgeml.config``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from forgeml.config import _Strict, read_yaml_mapping, validate_config
from forgeml.config_base import set_dotted
from forgeml.errors import ConfigError


class CorpusConfig(_Strict):
    path: str | None = Field(None, description="A folder (searched recursively) or one text file.")
    globs: list[str] = Field(
        default_factory=lambda: ["*.txt", "*.md", "*.rst", "*.py", "*.jsonl"],
        description="File-name patterns taken from a folder; a single file is always taken.",
    )
    max_file_mb: float = Field(20.0, gt=0, description="Larger files are skipped (and counted): a stray dump should not swamp the corpus.")
    encoding: str = Field("auto", description="'auto': UTF-8, else sniffed per file (UTF-16, GB18030, cp1252, Latin-1); or a codec name.")
    jsonl_field: str = Field("text", description="In .jsonl files, the field holding each record's text (one document per record).")
    vocab_size: int = Field(8192, ge=260, le=1 << 20, description="BPE vocabulary, 256 byte tokens and the end-of-text token included.")
    val_fraction: float = Field(0.05, ge=0, lt=0.5, description="Share of documents held out for validation (by document, never mid-document).")
    seed: int = Field(0, description="Seeds the document split.")


class GPTConfig(_Strict):
    """The decoder's shape (GPT-2 layout: learned positions, pre-norm, GELU MLP)."""

    vocab_size: int = Field(8192, ge=2, description="Set from the tokenizer at train time.")
    block_size: int = Field(256, ge=2, description="Context length in tokens.")
    n_layer: int = Field(6, ge=1)
    n_head: int = Field(6, ge=1)
    n_embd: int = Field(384, ge=1, description="Width; must be divisible by n_head.")
    dropout: float = Field(0.0, ge=0, lt=1, description="0 for pretraining on small data is usual (nanoGPT); raise it when overfitting.")
    bias: bool = Field(False, description="Biases in linear layers and layer norms; without them GPTs train as well and a bit faster.")
    tie_weights: bool = Field(True, description="The output layer shares the token embedding (Press & Wolf 2017).")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "GPTConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        return self


# Shapes only: the vocabulary comes with the preset too, since a tiny model wants a tiny one.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512),  # tests: < 0.2 M parameters
    "mini": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=2048),  # ~1 M, a minute of CPU
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=8192),  # ~14 M: the 15-minute run
    "base": dict(n_layer=8, n_head=8, n_embd=512, block_size=512, vocab_size=16384),  # ~34 M, for a GPU
}


class LMTrainConfig(_Strict):
    max_steps: int = Field(2000, ge=1, description="Optimizer steps (each one global batch).")
    time_budget_s: float | None = Field(None, gt=0, description="Stop (and save) after this many seconds of training, whatever max_steps says.")
    batch_tokens: int = Field(16384, ge=1, description="Tokens per optimizer step over all processes; reached by gradient accumulation.")
    micro_batch: int = Field(16, ge=1, description="Sequences per forward pass on one process; lower it to save memory.")
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate, after warm-up.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="The cosine schedule ends at this fraction of the peak.")
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.1, ge=0, description="AdamW decay, on ≥2-D weights only.")
    beta2: float = Field(0.95, gt=0, lt=1, description="AdamW β2; 0.95 is steadier than 0.999 for transformers (GPT-3).")
    grad_clip: float | None = Field(1.0, description="Max global gradient norm; null turns clipping off.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="'bf16' runs forward passes under CPU/CUDA autocast.")
    compile: bool = Field(False, description="torch.compile the model; falls back to eager (with a warning) where it cannot.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: a CUDA GPU when torch sees one (under torchrun the one numbered LOCAL_RANK), else the CPU.")
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description="How the model is wrapped under torchrun.")
    eval_every: int = Field(200, ge=1, description="Steps between validation passes (and at the end).")
    eval_batches: int = Field(20, ge=1, description="Micro-batches per validation pass, spread evenly over the validation tokens.")
    log_every: int = Field(10, ge=1, description="Steps between rows in metrics.jsonl.")
    checkpoint_every: int = Field(200, ge=1, description="Steps between checkpoints (also at every eval, the end and on SIGTERM).")
    seed: int = Field(0, description="Seeds weights, batch windows and dropout.")
    threads: int | None = Field(None, ge=1, description="torch threads; default: this host's cores shared among its ranks.")
    progress: bool = Field(True, description="Live progress bar (step, loss, tokens/s, MFU) on a terminal.")


class LMConfig(_Strict):
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    model: GPTConfig = Field(default_factory=GPTConfig)
    train: LMTrainConfig = Field(default_factory=LMTrainConfig)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> "LMConfig":
        return validate_config(cls, raw, source, hint="see `forgeml lm train --help` and docs/lm.md")

    @classmethod
    def from_preset(cls, name: str, overrides: dict[str, Any] | None = None) -> "LMConfig":
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}", hint=f"choose one of {', '.join(PRESETS)}")
        shape = dict(PRESETS[name])
        raw: dict[str, Any] = {"model": {k: v for k, v in shape.items() if k != "vocab_size"}, "corpus": {"vocab_size": shape["vocab_size"]}}
        for dotted, value in (overrides or {}).items():
            set_dotted(raw, dotted, value, missing=cls._refuse_unknown_section, where="options")
        return cls.from_dict(raw, source="options")

    @classmethod
    def _refuse_unknown_section(cls, dotted: str, parents: list[str], part: str) -> None:
        if not parents and part not in cls.model_fields:
            raise ConfigError(f"unknown option {dotted!r}", hint="options start with corpus., model. or train.")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "LMConfig":
        return cls.from_dict(read_yaml_mapping(path), source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
