"""Language-model bundles: written and verified by ``forgeml.bundle`` like every other bundle.

Files: ``config.yaml`` (the resolved LM config), ``tokenizer.json`` (Hugging Face format, loadable
by ``tokenizers.Tokenizer.from_file`` anywhere), ``weights.safetensors``, ``metrics.json``,
``corpus.json`` (what the tokens came from), ``model_card.md`` and ``manifest.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.bundle import verified_bundle, write_bundle_files
from forgeml.errors import BundleError
from forgeml.fileio import atomic_write_json
from forgeml.lm.config import LMConfig

TASK = "lm"


@dataclass
class LMBundle:
    """A loaded language model: the module (eval mode), its tokenizer and its config."""

    model: Any  # forgeml.lm.gpt.GPT
    tokenizer: Any  # tokenizers.Tokenizer
    config: LMConfig
    metrics: dict[str, Any]
    path: Path | None = None


def write_lm_bundle(path: str | Path, model: Any, tokenizer_json: str, config: LMConfig, metrics: dict[str, Any],
                    corpus_meta: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        (tmp / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        # a tied output layer shares storage with the embedding: safetensors stores it once
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not (config.model.tie_weights and k == "lm_head.weight")}
        save_file(state, str(tmp / "weights.safetensors"))
        atomic_write_json(tmp / "metrics.json", metrics)
        atomic_write_json(tmp / "corpus.json", corpus_meta)
        (tmp / "model_card.md").write_text(model_card(config, metrics, corpus_meta), encoding="utf-8")

    return write_bundle_files(path, write, kind="lm", task=TASK, loss="cross_entropy", model="gpt")  # kind: `forgeml serve` serves /v1/generate


def load_lm(path: str | Path, device: str = "auto") -> LMBundle:
    """Verify checksums, then rebuild the GPT and its tokenizer from plain files (no pickle).
    ``device``: auto (a CUDA GPU when there is one), cpu or cuda. The files are parsed from the
    verified copy ``verified_bundle`` makes, so what is parsed is what was checked."""
    path = Path(path)
    with verified_bundle(path) as bundle:
        if bundle.manifest.get("task") != TASK:
            raise BundleError(f"not a language-model bundle (task {bundle.manifest.get('task')!r})", where=str(path),
                              hint="use `forgeml predict` for this bundle; `forgeml lm train` writes LM bundles")
        return _load_lm(bundle.folder, path, device)


def _load_lm(folder: Path, path: Path, device: str) -> LMBundle:
    from safetensors.torch import load_file

    from forgeml.lm.gpt import GPT
    from forgeml.lm.tokenizer import load_tokenizer

    for name in ("config.yaml", "weights.safetensors", "tokenizer.json", "metrics.json"):
        if not (folder / name).is_file():
            raise BundleError(f"{name} is not listed in manifest.json", where=str(path), hint="restore the bundle or retrain")
    config = LMConfig.from_yaml(folder / "config.yaml")
    model = GPT(config.model)
    state = load_file(str(folder / "weights.safetensors"))
    if config.model.tie_weights:
        state["lm_head.weight"] = state["wte.weight"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"weights do not fit the config ({str(exc).splitlines()[0]})", where=str(path), hint="restore the bundle or retrain") from None
    from forgeml.train.device import resolve_device

    model.to(resolve_device(device, where="--device")).eval()
    tokenizer = load_tokenizer((folder / "tokenizer.json").read_text(encoding="utf-8"))
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return LMBundle(model, tokenizer, config, metrics, path)


def model_card(config: LMConfig, metrics: dict[str, Any], corpus: dict[str, Any]) -> str:
    m = config.model

    def fmt(key: str, spec: str = ".4g") -> str:
        value = metrics.get(key)
        return format(value, spec) if isinstance(value, (int, float)) else "—"

    return f"""# GPT language model (forgeml)

A decoder-only transformer (GPT-2 layout) pretrained from scratch on a user corpus.

## Model
- {m.n_layer} layers, {m.n_head} heads, width {m.n_embd}, context {m.block_size} tokens, vocabulary {m.vocab_size}
- {fmt('params', ',')} parameters (position embeddings excluded); {fmt('flops_per_token', ',')} training FLOPs per token
- byte-level BPE tokenizer (`tokenizer.json`), so any text can be encoded

## Training
- {fmt('steps', ',')} steps, {fmt('tokens', ',')} tokens ({fmt('batch_tokens', ',')} per step), {config.train.precision}, {fmt('world_size')} process(es)
- corpus: {corpus.get('files', '?')} files, {corpus.get('documents', '?')} documents, {corpus.get('train_tokens', '?')} train / {corpus.get('val_tokens', '?')} validation tokens (split by {corpus.get('split', 'document')})

## Results (validation)
- loss {fmt('val_loss')} nats/token, perplexity {fmt('val_ppl')}, {fmt('val_bits_per_byte')} bits/byte

## Intended use and limits
A small model trained on one corpus: it continues text in the corpus's style and knows nothing
beyond it. It can repeat passages of its training data verbatim; do not train it on text you may
not redistribute. Not instruction-tuned, not safety-tuned.
"""
