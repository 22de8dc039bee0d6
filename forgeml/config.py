"""The configuration: one pydantic description of everything a run can set.

YAML in, a fully resolved ``Config`` out (every default filled, every inferred feature written
out), saved in the bundle so a run can be repeated exactly. The README's config reference is
generated from these classes' field descriptions, so docs and code cannot drift apart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeml.errors import ConfigError

MissingStrategy = Literal["mean", "median", "mode", "constant", "indicator", "drop_row"]


class _Strict(BaseModel):
    """Unknown keys are an error: a typo in a config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ----------------------------------------------------------------------------- features
class _FeatureBase(_Strict):
    name: str = Field(description="Column name in the data.")
    note: str | None = Field(None, description="Why inference chose this type (informational).")


class NumberFeature(_FeatureBase):
    type: Literal["number"] = "number"
    missing: MissingStrategy = Field("median", description="How missing values are filled; 'indicator' fills with the median and adds a was-missing column.")
    fill_value: float | None = Field(None, description="Value used when missing='constant'.")
    scaling: Literal["zscore", "minmax", "quantile", "power", "none"] = Field("zscore", description="Scaling fitted on the train split.")
    bins: int | None = Field(None, ge=2, le=1000, description="If set, the value is cut into this many quantile bins and embedded as a category.")


class CategoryFeature(_FeatureBase):
    type: Literal["category"] = "category"
    missing: Literal["mode", "constant", "drop_row"] = Field("constant", description="'constant' makes missing its own category.")
    fill_value: str = Field("<missing>", description="Category used for missing values when missing='constant'.")
    encoding: Literal["embedding", "onehot"] = Field("embedding", description="Learned embedding or one-hot input.")
    min_count: int = Field(2, ge=1, description="Categories seen fewer times in train are folded into '<other>'.")
    max_categories: int = Field(1000, ge=2, description="At most this many categories are kept (the most frequent).")
    embedding_dim: int | None = Field(None, ge=1, description="Embedding width; default grows with the number of categories.")


class BinaryFeature(_FeatureBase):
    type: Literal["binary"] = "binary"
    missing: Literal["mode", "constant", "drop_row"] = "mode"
    fill_value: str | None = None
    true_value: str | None = Field(None, description="Which of the two values counts as 1; inferred if unset.")


class DateFeature(_FeatureBase):
    type: Literal["date"] = "date"
    missing: Literal["median", "constant", "drop_row"] = "median"
    fill_value: str | None = None
    format: str | None = Field(None, description="strftime format; inferred if unset.")
    parts: list[Literal["year", "month", "day", "weekday", "dayofyear", "hour", "cyclic"]] = Field(
        default_factory=lambda: ["year", "month", "weekday", "dayofyear", "cyclic"],
        description="Parts extracted from each date; 'cyclic' adds sin/cos of month, weekday and day of year.",
    )


class TextFeature(_FeatureBase):
    type: Literal["text"] = "text"
    missing: Literal["constant", "drop_row"] = "constant"
    fill_value: str = ""
    vocab_size: int = Field(5000, ge=10, description="Most frequent tokens kept (train split only).")
    max_length: int | None = Field(None, ge=1, description="Tokens kept per row; default: the 95th percentile of train lengths, at most 256.")
    lowercase: bool = Field(True, description="Lower-case before tokenising.")
    embedding_dim: int = Field(32, ge=1, description="Width of the bag-of-embeddings text encoder.")
    repair: bool = Field(True, description="Normalise unicode (NFKC) and strip control and broken characters.")


FeatureConfig = Annotated[
    Union[NumberFeature, CategoryFeature, BinaryFeature, DateFeature, TextFeature],
    Field(discriminator="type"),
]
FEATURE_CONFIGS: dict[str, type[_FeatureBase]] = {
    "number": NumberFeature,
    "category": CategoryFeature,
    "binary": BinaryFeature,
    "date": DateFeature,
    "text": TextFeature,
}


# ----------------------------------------------------------------------------- data
class SplitConfig(_Strict):
    train: float = Field(0.70, gt=0, lt=1, description="Fraction of rows for training.")
    validation: float = Field(0.15, ge=0, lt=1, description="Fraction for validation (early stopping, model choice).")
    test: float = Field(0.15, ge=0, lt=1, description="Fraction held out for the final report.")
    stratify: bool = Field(True, description="Keep class proportions in every split (classification only).")
    seed: int = Field(0, description="Seed of the random split.")
    column: str | None = Field(None, description="A column whose values (train/validation/test) assign the split.")
    validation_path: str | None = Field(None, description="A separate validation file instead of a random split.")
    test_path: str | None = Field(None, description="A separate test file instead of a random split.")

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "SplitConfig":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must add up to 1, got {total:g}")
        return self


class DataConfig(_Strict):
    path: str | None = Field(None, description="Training data: CSV, TSV, Parquet or JSON lines.")
    encoding: str | None = Field(None, description="Text encoding; sniffed if unset (UTF-8, UTF-8-BOM, GB18030, Latin-1).")
    delimiter: str | None = Field(None, description="Field delimiter; sniffed if unset.")
    drop: list[str] = Field(default_factory=list, description="Columns not used as inputs.")
    drop_reasons: dict[str, str] = Field(default_factory=dict, description="Why inference dropped each column (informational).")
    split: SplitConfig = Field(default_factory=SplitConfig)


class CleanConfig(_Strict):
    duplicates: bool = Field(True, description="Drop exact duplicate rows (before splitting, so no row is in two splits).")
    outliers: Literal["none", "zscore", "iqr"] = Field("iqr", description="Outlier detection on number inputs, train split only.")
    outlier_threshold: float = Field(3.0, gt=0, description="z-score limit, or IQR multiple beyond the quartiles.")
    outlier_action: Literal["clip", "drop"] = Field("clip", description="Clip values to the limits, or drop the train rows.")
    repair_text: bool = Field(True, description="Fix broken characters (mojibake, control characters) in text and categories.")


# ----------------------------------------------------------------------------- models
class MLPConfig(_Strict):
    type: Literal["mlp"] = "mlp"
    hidden_size: int = Field(128, ge=1, description="Width of each hidden block.")
    num_layers: int = Field(2, ge=0, description="Number of hidden blocks.")
    dropout: float = Field(0.1, ge=0, lt=1)
    norm: Literal["batch", "layer", "none"] = Field("batch", description="Normalisation inside each block.")
    residual: bool = Field(True, description="Residual connections between equal-width blocks.")
    activation: Literal["relu", "gelu", "silu"] = Field("relu", description="Activation inside each block.")
    linear_skip: Literal["auto", "on", "off"] = Field(
        "auto", description="A linear path beside the network, started at a ridge fit on the train split (CANN); auto: on for regression."
    )


class GBMConfig(_Strict):
    type: Literal["gbm"] = "gbm"
    num_boost_round: int = Field(1000, ge=1, description="Upper bound; early stopping on validation picks the number.")
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(20, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(1.0, gt=0, le=1)
    lambda_l2: float = Field(0.0, ge=0)
    early_stopping_rounds: int = Field(50, ge=1)


ModelConfig = Annotated[Union[MLPConfig, GBMConfig], Field(discriminator="type")]


# ----------------------------------------------------------------------------- training
class TrainConfig(_Strict):
    epochs: int = Field(200, ge=1, description="Upper bound; early stopping usually ends sooner.")
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="Decay applies only to ≥2-D weights.")
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(1e-4, ge=0, description="Decoupled (AdamW) or L2 (Adam/SGD) weight decay.")
    l1: float = Field(0.0, ge=0, description="L1 penalty on weights, added to the loss.")
    l2: float = Field(0.0, ge=0, description="Explicit L2 penalty on weights, added to the loss.")
    schedule: Literal["none", "step", "exponential", "cosine", "onecycle"] = Field("cosine", description="Learning-rate schedule, stepped every batch.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up before the schedule.")
    step_size: int = Field(30, ge=1, description="Epochs between decays for schedule='step'.")
    gamma: float = Field(0.1, gt=0, le=1, description="Decay factor for 'step' and 'exponential' (per epoch).")
    loss: Literal["auto", "mse", "huber", "poisson", "cross_entropy", "bce"] = Field("auto", description="auto: bce (binary), cross_entropy (multiclass), mse (regression).")
    early_stopping_patience: int = Field(20, ge=0, description="Epochs without improvement before stopping; 0 turns it off.")
    early_stopping_metric: str = Field("loss", description="Validation metric watched: 'loss' or any metric name (accuracy, f1_macro, r2, ...).")
    grad_clip: float | None = Field(1.0, description="Max gradient norm; null turns clipping off.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="'bf16' runs forward passes under CPU/CUDA autocast.")
    seed: int = Field(0, description="Seeds weights, batch order and dropout: same seed, same run.")
    threads: int | None = Field(None, ge=1, description="torch threads; default: the cores this process may use.")
    checkpoint_every_steps: int = Field(500, ge=1, description="Also checkpointed at every epoch end and on SIGTERM/SIGINT.")
    progress: bool = Field(True, description="Show a progress bar per epoch.")
    bagging_folds: int | Literal["auto"] = Field(
        "auto",
        description="K models, each trained on K-1 folds of the train split and early-stopped on the fold left out; "
        "predictions averaged. auto: 5 for a torch model whose train split has fewer than 1,000 rows, else 1 (off).",
    )

    @field_validator("bagging_folds")
    @classmethod
    def _folds_at_least_one(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("bagging_folds must be 'auto' or at least 1 (1 means no bagging)")
        return value


# ----------------------------------------------------------------------------- root
class Config(_Strict):
    """A whole run. ``features`` lists the inputs; the target columns are not among them."""

    target: list[str] = Field(description="Target column(s); several are allowed for multi-target regression.")
    task: Literal["auto", "binary", "multiclass", "regression"] = Field("auto", description="Inferred from the target when 'auto'.")
    features: list[FeatureConfig] = Field(default_factory=list, description="Input features; inferred when empty.")
    data: DataConfig = Field(default_factory=DataConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    model: ModelConfig = Field(default_factory=MLPConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("target", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("target")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one target column is needed")
        return value

    def feature(self, name: str) -> Any:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    # --------------------------------------------------------------- YAML in and out
    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> "Config":
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            location = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                f"{location}: {first['msg']}",
                where=source,
                hint="see the config reference in README.md (`forgeml init` writes a valid file)",
            ) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError("config file not found", where=str(path), hint="check the path")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML ({exc.__class__.__name__})", where=str(path)) from None
        if not isinstance(raw, dict):
            raise ConfigError("expected a mapping at the top level", where=str(path))
        return cls.from_dict(raw, source=str(path))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """Apply dotted overrides (``{"train.epochs": 5, "model.type": "gbm"}``) and re-validate."""
    raw = config.model_dump(mode="json")
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown option {dotted!r}", hint="see the config reference in README.md")
            node = node[part]
        if dotted == "model.type" and value != node.get("type"):
            node.clear()  # a different model family has different options
        node[leaf] = value
    return Config.from_dict(raw, source="overrides")
