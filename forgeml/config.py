"""The configuration: one pydantic description of everything a run can set.

YAML in, a fully resolved ``Config`` out (every default filled, every inferred feature written
out), saved in the bundle so a run can be repeated exactly. The config reference (docs/config.md) is
generated from these classes' field descriptions, so docs and code cannot drift apart.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeml.config_base import StrictModel as _Strict, set_dotted
from forgeml.config_privacy import PrivacyConfig
from forgeml.errors import ConfigError

MissingStrategy = Literal["mean", "median", "mode", "constant", "indicator", "drop_row"]

_ModelT = TypeVar("_ModelT", bound=BaseModel)


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
    decimal: Literal[".", ","] = Field(".", description="Decimal mark of numbers written as text: ',' reads 1.234,56 as 1234.56 and 1.200 as 1200; inferred from the training data.")


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
    tokenizer: Literal["auto", "word", "bpe", "wordpiece", "pretrained"] = Field(
        "auto", description="Hugging Face tokenizer trained on the train split (word, bpe, wordpiece) or the pretrained encoder's own; auto: pretrained with model.text.type=pretrained, else word.")
    vocab_size: int | None = Field(None, ge=10, description="Vocabulary size; default: word tokens seen twice or more (at most 20,000), subwords scaled to the corpus (at most 8,000).")
    max_length: int | None = Field(None, ge=1, description="Tokens kept per row; default: the 95th percentile of train lengths, at most 256 (512 for pretrained).")
    lowercase: bool = Field(True, description="Lower-case before tokenising (pretrained tokenizers keep their own setting).")
    embedding_dim: int = Field(32, ge=1, description="Token embedding width of the from-scratch text encoders.")
    repair: bool = Field(True, description="Normalise unicode (NFKC) and strip control and broken characters.")
    remove_urls: bool = Field(False, description="Replace URLs with a space before tokenising.")


class ImageFeature(_FeatureBase):
    """A column of image file paths (relative paths are read from the data file's folder)."""

    type: Literal["image"] = "image"
    missing: Literal["drop_row"] = Field("drop_row", description="Rows whose image is missing or unreadable are dropped in training (counted, first paths named); at predict time they get an error entry.")
    size: int | None = Field(None, ge=8, le=1024, description="Side of the square model input; default: the median short side of the train images, within 16–224.")
    channels: Literal["auto", 1, 3] = Field("auto", description="1 (grayscale) or 3 (RGB); auto: 1 when every train image is grayscale.")
    resize: Literal["crop", "stretch", "pad"] = Field("crop", description="crop: shorter side to size, then center crop; stretch: ignore aspect; pad: fit inside, pad with black.")
    augment: Literal["auto", "on", "off"] = Field("auto", description="Train-split augmentation; auto: on for colour images of 32 px or more, off for small grayscale (digits-like) images.")
    crop_scale: float = Field(0.8, gt=0, le=1, description="Random resized crop keeps at least this share of the area.")
    flip: bool = Field(True, description="Random horizontal flips.")
    rotation: float = Field(10.0, ge=0, le=180, description="Random rotation up to this many degrees.")
    color_jitter: float = Field(0.2, ge=0, le=1, description="Random brightness/contrast/saturation change up to this fraction.")


FeatureConfig = Annotated[
    Union[NumberFeature, CategoryFeature, BinaryFeature, DateFeature, TextFeature, ImageFeature],
    Field(discriminator="type"),
]
FEATURE_CONFIGS: dict[str, type[_FeatureBase]] = {
    "number": NumberFeature,
    "category": CategoryFeature,
    "binary": BinaryFeature,
    "date": DateFeature,
    "text": TextFeature,
    "image": ImageFeature,
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
    encoding: str | None = Field(None, description="Text encoding of the training data; sniffed if unset (UTF-8, UTF-8-BOM, GB18030, Big5, Latin-1). Other files (validation, test, data to predict) are sniffed on their own, trying this one after UTF-8.")
    delimiter: str | None = Field(None, description="Field delimiter of the training data; sniffed if unset. Other files (validation, test, data to predict) are sniffed on their own, preferring this one.")
    drop: list[str] = Field(default_factory=list, description="Columns not used as inputs.")
    drop_reasons: dict[str, str] = Field(default_factory=dict, description="Why inference dropped each column (informational).")
    split: SplitConfig = Field(default_factory=SplitConfig)


class CleanConfig(_Strict):
    duplicates: bool | Literal["auto"] = Field("auto", description="Drop exact duplicate rows (before splitting, so no row is in two splits). auto: unless the columns allow so few distinct rows that repeats are observations (then repeats also stay in training when a test file holds them); true: always; false: never.")
    outliers: Literal["auto", "none", "zscore", "iqr"] = Field(
        "auto", description="Outlier detection on number inputs, limits learned on the train split. auto: iqr for the models "
        "that need it (networks, the linear and n-gram models) while trees (gbm, catboost, an ensemble's tree members) read the "
        "numbers as they are (they split on order; clipping only merges a tail); iqr or zscore: every model, trees included; "
        "none: no model. With outlier_action drop, auto is iqr (the rows are gone for every model).")
    outlier_threshold: float = Field(3.0, gt=0, description="z-score limit, or IQR multiple beyond the quartiles.")
    outlier_action: Literal["clip", "drop"] = Field("clip", description="Clip values to the limits, or drop the train rows.")
    repair_text: bool = Field(True, description="Fix broken characters (mojibake, control characters) in text and categories.")


# ----------------------------------------------------------------------------- models
# Each model family declares its own options next to its code (forgeml.models.families lists
# them); the union is built from that registry, so a new family is one module plus one line.
from forgeml.models.families import DEFAULT_FAMILY, config_class, model_config_union, network_types  # noqa: E402

ModelConfig = model_config_union()
NETWORK_TYPES = network_types()


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
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="Classification: 'balanced' weights each class's rows by n_rows / (n_classes × class rows) of the train split "
        "in the loss (scikit-learn's class_weight='balanced'), so rare classes count as much as common ones (macro-F1).")
    early_stopping_patience: int = Field(20, ge=0, description="Epochs without improvement before stopping; 0 turns it off.")
    early_stopping_min_delta: float = Field(
        1e-4, ge=0,
        description="An epoch (a boosting round for catboost; gbm has its own model.early_stopping_min_delta) counts as an improvement only when it beats the best by more than this "
        "(scikit-learn's tol): a validation loss creeping towards zero on separable data would otherwise run every epoch.",
    )
    early_stopping_metric: str = Field("loss", description="Validation metric watched: 'loss' or any metric name (accuracy, f1_macro, r2, ...).")
    grad_clip: float | None = Field(1.0, description="Max gradient norm; null turns clipping off.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="'bf16' runs forward passes under CPU/CUDA autocast.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: a CUDA GPU when torch sees one (under torchrun the one numbered LOCAL_RANK), else the CPU.")
    seed: int = Field(0, description="Seeds weights, batch order and dropout: same seed, same run.")
    threads: int | None = Field(None, ge=1, description="torch, LightGBM and CatBoost threads; default: OMP_NUM_THREADS when set (outside torchrun), else the cores this process may use.")
    checkpoint_every_steps: int = Field(500, ge=1, description="Also checkpointed at every epoch end and on SIGTERM/SIGINT.")
    progress: bool = Field(True, description="Show a progress bar per epoch.")
    time_budget: float | None = Field(
        None, gt=0, description="Seconds the model may train (CLI: --time-budget 90s / 10m). Networks stop after the epoch and "
        "LightGBM after the round that passes it, keeping their best state; the ensemble fits its members within it "
        "(default for an ensemble: about a minute per 10,000 rows, 30 s to 10 min).")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Differentially private training (DP-SGD); see train.privacy.")
    bagging_folds: int | Literal["auto"] = Field(
        "auto",
        description="K models, each trained on K-1 folds of the train split and early-stopped on the fold left out; "
        "predictions averaged. auto: 5 for an mlp without image inputs whose train split has fewer than 1,000 rows, else 1 (off).",
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
    model: ModelConfig = Field(default_factory=lambda: config_class(DEFAULT_FAMILY)())
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
        return validate_config(cls, raw, source, hint="see the config reference in docs/config.md (`forgeml init` writes a valid file)")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
        return cls.from_dict(read_yaml_mapping(path), source=str(path))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def validate_config(model: type[_ModelT], raw: dict[str, Any], source: str, hint: str) -> _ModelT:
    """``model`` built from ``raw``; the first problem becomes one ``ConfigError`` naming the
    option (``train.epochs: Input should be greater than or equal to 1``) and the file. A key
    the schema does not have is most often a typo, so it is named with the closest real key
    (``unknown key train.epoch — did you mean train.epochs?``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        unknown = next((error for error in errors if error["type"] == "extra_forbidden"), None)
        if unknown is not None:
            shown, names = _keys_at(model, tuple(unknown["loc"]))
            raise unknown_key(shown, str(unknown["loc"][-1]), names, where=source, hint=hint) from None
        first = errors[0]
        location = ".".join(str(part) for part in _without_family_tag(tuple(first["loc"])))
        raise ConfigError(f"{location}: {first['msg']}", where=source, hint=hint) from None


def _without_family_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic names the union member in a location (``model.ensemble.preset``); users wrote ``model.preset``."""
    from forgeml.models.families import FAMILIES

    return tuple(part for i, part in enumerate(loc) if not (i and loc[i - 1] == "model" and part in FAMILIES))


def unknown_key(parent: list[str], key: str, names: Any, *, where: str | None, hint: str, rest: list[str] | None = None) -> ConfigError:
    """``unknown key train.epoch — did you mean train.epochs?``: difflib's closest of ``names``
    (the keys valid beside ``key``); ``rest`` is what the user wrote after an unknown section."""
    import difflib

    rest = rest or []
    dotted = ".".join([*parent, key, *rest])
    close = difflib.get_close_matches(key, [str(name) for name in names], n=1, cutoff=0.6)
    if close:
        return ConfigError(f"unknown key {dotted}", where=where, hint=f"did you mean {'.'.join([*parent, close[0], *rest])}?")
    return ConfigError(f"unknown key {dotted}", where=where, hint=hint)


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], list[str]]:
    """For pydantic's location of an unknown key: the dotted path the user wrote before it
    (list positions and union tags such as ``model.gbm`` left out) and the keys valid there."""
    candidates: list[type[BaseModel]] = [model]
    shown: list[str] = []
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list (features)
            if shown:
                shown[-1] += f"[{part}]"
            continue
        fields = [m.model_fields[part] for m in candidates if part in m.model_fields]
        if fields:
            candidates = [m for f in fields for m in _models_in(f.annotation)]
            shown.append(str(part))
            continue
        # a discriminated union's tag: the member whose ``type`` is this literal
        tagged = [m for m in candidates if "type" in m.model_fields and m.model_fields["type"].default == part]
        candidates = tagged or candidates
    names = list(dict.fromkeys(name for m in candidates for name in m.model_fields))
    return shown, names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (``list[Union[A, B]]`` → [A, B])."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A config file's top-level mapping; a missing file, broken YAML or anything but a mapping
    is a ``ConfigError`` naming the file. Shared by every config class (``LMConfig`` too)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", where=str(path), hint="check the path")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)  # where the parser gave up (0-based)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"not valid YAML{at} ({problem})", where=str(path),
                          hint="check the brackets, quotes and indentation there, or let `forgeml init` write the file") from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", where=str(path), hint="save the config as UTF-8") from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level", where=str(path))
    return raw


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """Apply dotted overrides (``{"train.epochs": 5, "model.type": "gbm"}``) and re-validate."""
    raw = config.model_dump(mode="json")
    # model.type first: switching family resets the model options, which must not erase the
    # other model.* overrides given with it (``--model pretrained --encoder DIR``).
    for dotted, value in sorted(overrides.items(), key=lambda item: item[0] != "model.type"):
        if dotted == "model.type" and value != raw["model"].get("type"):
            raw["model"].clear()  # a different model family has different options
        set_dotted(raw, dotted, value, missing=partial(_refuse_unknown_section, raw))
    _refuse_family_options_under_auto(raw["model"], overrides)
    return Config.from_dict(raw, source="overrides")


def _refuse_unknown_section(raw: dict[str, Any], dotted: str, parents: list[str], part: str) -> None:
    """A top-level section that does not exist is a typo (``trian.epochs``); a sub-section missing
    below it was reset by a ``model.type`` change and is created."""
    if not parents:
        sections = [name for name, value in raw.items() if isinstance(value, dict)]
        rest = dotted.split(".")[len(parents) + 1:]
        raise unknown_key(parents, part, sections, rest=rest, where="overrides", hint="see the config reference in docs/config.md")


def _refuse_family_options_under_auto(model: dict[str, Any], overrides: dict[str, Any]) -> None:
    """``--set model.combiner=transformer`` with the default ``model.type: auto``: the option is a
    family's, and auto has not chosen one yet; say which families have it."""
    from forgeml.models.families import FAMILIES, config_class

    if model.get("type") != "auto":
        return
    for dotted in overrides:
        option = dotted.split(".")[1] if dotted.startswith("model.") and dotted.count(".") >= 1 else None
        if option and option not in config_class("auto").model_fields:
            owners = [name for name in FAMILIES if name != "auto" and option in config_class(name).model_fields]
            if owners:
                raise ConfigError(f"{dotted} is an option of model.type {', '.join(owners)}, and model.type is auto (chosen from the data)",
                                  where="overrides", hint=f"name the family too: --model {owners[0]} (or --set model.type={owners[0]})")
