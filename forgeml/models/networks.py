"""The torch network families — mlp, cnn, rnn, transformer, pretrained — as options.

All five are one ``FusionNet`` (an encoder per input feature → combiner → hidden blocks → head)
trained by the one ``Trainer``; a family only changes the default encoders. Options live here,
next to the family's ``build``/``load``; the torch code is imported only when a network is built
(``forgeml.models.torch_estimator``), so reading a config never pays for torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from forgeml.config_base import StrictModel as _Strict
from forgeml.tune.space import Choice, Float, Int

STEP_NAME = "epoch"
STEP_LIMIT = "train.epochs"  # the option bounding its steps: tuning's pruner starts judging after 1/30 of it


class TextEncoderConfig(_Strict):
    """How each text feature becomes a vector (one encoder per text column)."""

    type: Literal["bag", "lstm", "gru", "transformer", "pretrained"] = Field("bag", description="bag: mean of token embeddings; lstm/gru: bidirectional RNN with pooling; transformer: pre-norm encoder; pretrained: a local Hugging Face checkpoint.")
    hidden_size: int = Field(64, ge=1, description="RNN hidden size per direction, or Transformer width.")
    num_layers: int = Field(1, ge=1, description="RNN or Transformer layers.")
    heads: int = Field(4, ge=1, description="Attention heads (transformer).")
    head_size: int | None = Field(None, ge=1, description="Width of each attention head (transformer); null: hidden_size / heads. Set by forgeml compress --prune, which keeps fewer heads of the same size.")
    ffn_size: int | None = Field(None, ge=1, description="Feed-forward units in each transformer layer; null: 4 × hidden_size. Set smaller by forgeml compress --prune.")
    positions: Literal["learned", "sinusoidal"] = Field("learned", description="Position encoding of the transformer.")
    pooling: Literal["mean", "max", "last"] = Field("mean", description="How token states become one vector; 'last' is the final RNN states (or the first token for transformers).")
    dropout: float = Field(0.1, ge=0, lt=1)
    checkpoint: str | None = Field(None, description="Folder of a local Hugging Face checkpoint (config.json + weights) for type 'pretrained'; never downloaded.")
    freeze: bool = Field(False, description="Keep the pretrained weights fixed (only the layers above learn).")
    freeze_layers: int = Field(0, ge=0, description="Freeze the embeddings and this many lowest pretrained layers.")
    lr_scale: float = Field(0.1, gt=0, le=1, description="Fine-tuning learning rate of the pretrained weights, as a fraction of train.learning_rate.")
    cache_frozen: bool = Field(True, description="With freeze: true, encode every row once before training and train only the layers above on the cached vectors (same predictions, epochs without the encoder).")


class ImageEncoderConfig(_Strict):
    """How each image feature becomes a vector."""

    type: Literal["simple_cnn", "resnet", "flatten"] = Field("simple_cnn", description="simple_cnn: conv blocks + dense layer (the founding documents' model); resnet: residual stages with global pooling; flatten: raw pixels (the Keras dense-network example).")
    channels: list[int] = Field(default_factory=lambda: [32, 64], description="simple_cnn: output channels of each conv block (each block: conv 3×3, batch norm, ReLU, max-pool 2).")
    dense_size: int = Field(128, ge=1, description="simple_cnn: width of the dense layer after the conv blocks.")
    width: int = Field(32, ge=4, description="resnet: channels of the first stage (doubled at every later stage).")
    blocks: list[int] = Field(default_factory=lambda: [2, 2, 2], description="resnet: residual blocks per stage (depth).")
    dropout: float = Field(0.25, ge=0, lt=1)


class _NetworkConfig(_Strict):
    """One encoder per input feature → combiner → head; the shared options of every torch family."""

    hidden_size: int = Field(128, ge=1, description="Width of each hidden block.")
    num_layers: int = Field(2, ge=0, description="Number of hidden blocks.")
    dropout: float = Field(0.1, ge=0, lt=1)
    norm: Literal["batch", "layer", "none"] = Field("batch", description="Normalisation inside each block.")
    residual: bool = Field(True, description="Residual connections between equal-width blocks.")
    activation: Literal["relu", "gelu", "silu"] = Field("relu", description="Activation inside each block.")
    linear_skip: Literal["auto", "on", "off"] = Field(
        "auto", description="A linear path beside the network, started at a ridge fit on the train split (CANN); auto: on for regression."
    )
    combiner: Literal["concat", "transformer"] = Field("concat", description="concat: join the feature vectors, then the hidden blocks; transformer: one token per feature, self-attention, then the hidden blocks.")
    combiner_size: int = Field(64, ge=8, description="Token width of the transformer combiner.")
    combiner_layers: int = Field(2, ge=1, description="Layers of the transformer combiner.")
    combiner_heads: int = Field(4, ge=1, description="Attention heads of the transformer combiner.")
    combiner_head_size: int | None = Field(None, ge=1, description="Width of each attention head of the transformer combiner; null: combiner_size / combiner_heads (set by forgeml compress --prune).")
    combiner_ffn_size: int | None = Field(None, ge=1, description="Feed-forward units in each combiner layer; null: 4 × combiner_size (set by forgeml compress --prune).")
    text: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    image: ImageEncoderConfig = Field(default_factory=ImageEncoderConfig)

    # What each family changes: the default encoder types, also when only some of the
    # encoder's options are given (``--model pretrained --encoder DIR`` sets text.checkpoint).
    family_defaults: ClassVar[dict[str, Any]] = {}

    # `forgeml tune`: architecture search (depth, width, block shape, combiner, the encoder of each
    # input kind the data has) and the optimiser's options, ranges after Gorishniy et al. 2021
    # ("Revisiting deep learning models for tabular data") and Ludwig's hyperopt examples
    search_space: ClassVar[dict[str, Any]] = {
        "model.num_layers": Int(1, 4),
        "model.hidden_size": Choice((32, 64, 128, 256, 512)),
        "model.dropout": Float(0.0, 0.5),
        "model.norm": Choice(("batch", "layer", "none")),
        "model.activation": Choice(("relu", "gelu", "silu")),
        "model.combiner": Choice(("concat", "transformer")),
        "model.text.type": Choice(("bag", "lstm", "gru", "transformer"), when="text"),
        "model.image.type": Choice(("simple_cnn", "resnet"), when="image"),
        "train.learning_rate": Float(1e-4, 1e-2, log=True),
        "train.weight_decay": Float(1e-6, 1e-2, log=True),
        "train.batch_size": Choice((32, 64, 128, 256)),
    }

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.family_defaults:
            return data
        data = dict(data)
        for key, default in cls.family_defaults.items():
            given = data.get(key)
            if isinstance(default, dict) and (given is None or isinstance(given, dict)):
                data[key] = {**default, **(given or {})}
            elif given is None:
                data[key] = default
        return data


class MLPConfig(_NetworkConfig):
    type: Literal["mlp"] = "mlp"


class CNNConfig(_NetworkConfig):
    """Like mlp, with a ResNet image encoder by default."""

    type: Literal["cnn"] = "cnn"
    family_defaults = {"image": {"type": "resnet"}}


class RNNConfig(_NetworkConfig):
    """Like mlp, with a bidirectional LSTM text encoder by default."""

    type: Literal["rnn"] = "rnn"
    family_defaults = {"text": {"type": "lstm"}}


class TransformerConfig(_NetworkConfig):
    """Like mlp, with a Transformer text encoder and a transformer combiner by default."""

    type: Literal["transformer"] = "transformer"
    family_defaults = {"text": {"type": "transformer"}, "combiner": "transformer"}


class PretrainedConfig(_NetworkConfig):
    """Like mlp, with a pretrained Hugging Face text encoder (``text.checkpoint``, CLI ``--encoder``)."""

    type: Literal["pretrained"] = "pretrained"
    family_defaults = {"text": {"type": "pretrained"}}
    # the pretrained encoder is the point of this family: its type is no dimension
    search_space = {k: v for k, v in _NetworkConfig.search_space.items() if k != "model.text.type"}




def build(config: Any, task: Any, spec: Any) -> Any:
    from forgeml.models.torch_estimator import TorchEstimator

    return TorchEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Any, spec: Any) -> Any:
    from forgeml.models.quantized import QUANTIZED_FILE

    if (Path(directory) / QUANTIZED_FILE).is_file():  # written by `forgeml compress --quantize int8`
        from forgeml.models.quantized import QuantizedEstimator

        return QuantizedEstimator.load(directory, config, task, spec)
    from forgeml.models.torch_estimator import TorchEstimator

    return TorchEstimator.load(directory, config, task, spec)


def describe(cfg: _NetworkConfig, inputs: dict[str, int]) -> str:
    """One line for the model card: encoders → combiner → blocks."""
    shape = f"{cfg.num_layers}×{cfg.hidden_size} {cfg.norm}-norm {'residual ' if cfg.residual else ''}MLP"
    encoders = ([f"{cfg.text.type} text encoder" + (f" ({cfg.text.checkpoint})" if cfg.text.type == "pretrained" else "")] if inputs.get("text") else []) \
        + ([f"{cfg.image.type} image encoder"] if inputs.get("image") else [])
    if encoders or cfg.combiner != "concat":
        shape = f"{', '.join(encoders) or 'tabular encoders'} → {cfg.combiner} combiner → {shape}"
    return shape
