"""What a differentially private run may be: the refusals and rewrites of its config, made by
``workflow.prepare`` once the training rows are counted, before any training.

Refused (``REFUSALS``, each one function returning the error or None): a family without a DP
guarantee (trees, linear models, the ensemble), torchrun, δ ≥ 1/n, bf16, explicit L1/L2 penalties,
bagging, the ridge-started linear path asked for, and the layers Opacus gets no per-row gradients
through here. Rewritten (``REWRITES``, each returning overrides and the ``data:`` line saying so):
δ filled in, batch norm → layer norm (a row's output must not depend on the rest of its batch),
the linear path and bagging ``auto`` off. The rewrites go into the resolved config the bundle
keeps, so the bundle rebuilds the same network when it is loaded.
"""
from __future__ import annotations

from typing import Any, Callable

from forgeml.errors import ConfigError

DEFAULT_DELTA = 1e-5
PRIVATE_NORM = "layer"  # what model.norm: batch becomes


def default_delta(rows: int) -> float:
    """1e-5 (Opacus's examples), or 1/(10 n) when that is smaller: δ must stay well below 1/n, the
    chance of leaking one whole row outright."""
    return min(DEFAULT_DELTA, 1.0 / (10 * max(rows, 1)))


def delta_of(config: Any, rows: int) -> float:
    settings = config.train.privacy
    return settings.delta if settings.delta is not None else default_delta(rows)


def one_process_only(where: str) -> ConfigError:
    """The refusal of a private run under torchrun, for the CLI (before ranks start) and each rank."""
    return ConfigError("differential privacy trains in one process (each torchrun rank would sample and add noise on its own; "
                       "Opacus's DDP support needs its own wrapper)", where=where, hint="drop --nproc-per-node/--nnodes for a private run")


# ----------------------------------------------------------------------------- refusals
def _family(config: Any, rows: int) -> ConfigError | None:
    from forgeml.models.families import network_types

    if config.model.type in network_types():
        return None
    return ConfigError(f"model.type {config.model.type} cannot train with differential privacy (DP-SGD needs per-row gradients; "
                       "tree, linear and ensemble fits have no DP guarantee)", where="train.privacy",
                       hint="train a network family instead: --model mlp (model.type: mlp), or drop --privacy-epsilon / train.privacy.epsilon")


def _torchrun(config: Any, rows: int) -> ConfigError | None:
    from forgeml.train.ranks import distributed

    return one_process_only("train.privacy") if distributed() else None


def _delta(config: Any, rows: int) -> ConfigError | None:
    delta = delta_of(config, rows)
    if delta < 1.0 / rows:
        return None
    return ConfigError(f"delta {delta:g} is not below 1/n = 1/{rows} training rows: the guarantee would allow leaking a whole row",
                       where="train.privacy.delta", hint=f"set train.privacy.delta below {1.0 / rows:.3g} (or leave it unset: {default_delta(rows):.3g})")


def _precision(config: Any, rows: int) -> ConfigError | None:
    if config.train.precision == "fp32":
        return None
    return ConfigError("differential privacy clips per-row gradients in fp32 only", where="train.precision", hint="set train.precision: fp32 for a private run")


def _penalties(config: Any, rows: int) -> ConfigError | None:
    if not (config.train.l1 or config.train.l2):
        return None
    return ConfigError("train.l1/train.l2 add a gradient DP-SGD does not clip per row", where="train.privacy",
                       hint="set train.l1 and train.l2 to 0 (train.weight_decay still works)")


def _bagging(config: Any, rows: int) -> ConfigError | None:
    folds = config.train.bagging_folds
    if not (isinstance(folds, int) and folds > 1):
        return None
    return ConfigError(f"{folds} bagged models would each spend the privacy budget on the same rows", where="train.bagging_folds",
                       hint="set train.bagging_folds: 1 (or auto) for a private run")


def _linear_skip(config: Any, rows: int) -> ConfigError | None:
    if getattr(config.model, "linear_skip", "off") != "on":
        return None
    return ConfigError("the linear path starts from a ridge fit on the training rows, which is not private", where="model.linear_skip",
                       hint="set model.linear_skip: off (or auto) for a private run")


def _combiner(config: Any, rows: int) -> ConfigError | None:
    """The transformer combiner takes a list of vectors, which Opacus's hooks cannot follow (tried)."""
    combiner = getattr(config.model, "combiner", "concat")
    if combiner == "concat":
        return None
    return ConfigError(f"the {combiner} combiner cannot train with differential privacy (Opacus gets no per-row gradients through it)",
                       where="model.combiner", hint="set model.combiner: concat (--set model.combiner=concat) for a private run")


def _text_encoder(config: Any, rows: int) -> ConfigError | None:
    """Tried: the text transformer's attention fails under functorch's vmap; Opacus's DP-LSTM/GRU
    keep their weights under two names, which safetensors will not store; a fine-tuned Hugging
    Face encoder has layers of both kinds. A frozen pretrained encoder has nothing to clip."""
    text = getattr(config.model, "text", None)
    if text is None or text.type == "bag" or (text.type == "pretrained" and text.freeze):
        return None
    if not any(feature.type == "text" for feature in config.features):
        return None
    return ConfigError(f"the {text.type} text encoder cannot train with differential privacy (Opacus gets no per-row gradients through it)",
                       where="model.text.type", hint="use the bag text encoder (--set model.text.type=bag), or a frozen pretrained one (model.text.freeze: true)")


Refusal = Callable[[Any, int], "ConfigError | None"]
# in the order they are checked: the family first, since most other options are a network's
REFUSALS: tuple[Refusal, ...] = (_family, _torchrun, _delta, _precision, _penalties, _bagging, _linear_skip, _combiner, _text_encoder)


# ----------------------------------------------------------------------------- rewrites
def _budget(config: Any, rows: int) -> tuple[dict[str, Any], str | None]:
    settings, delta = config.train.privacy, delta_of(config, rows)
    return {"train.privacy.delta": delta}, (
        f"privacy: DP-SGD through Opacus, target ε = {settings.epsilon:g}, δ = {delta:.3g}, each row's gradient clipped to "
        f"{settings.max_grad_norm:g} (train.grad_clip is not used); the noise is calibrated for {config.train.epochs} epochs")


def _one_model(config: Any, rows: int) -> tuple[dict[str, Any], str | None]:
    overrides: dict[str, Any] = {"train.bagging_folds": 1}
    if getattr(config.model, "linear_skip", "off") == "auto":
        overrides["model.linear_skip"] = "off"
    return overrides, None


def _layer_norm(config: Any, rows: int) -> tuple[dict[str, Any], str | None]:
    if getattr(config.model, "norm", None) != "batch":
        return {}, None
    return {"model.norm": PRIVATE_NORM}, "privacy: model.norm batch → layer (batch norm mixes the rows of a batch, so no row has a gradient of its own)"


def _image_norm(config: Any, rows: int) -> tuple[dict[str, Any], str | None]:
    """Said here, done by ``privacy.private_module`` when the network is built (the encoders' batch
    norm is no option)."""
    if not any(feature.type == "image" for feature in config.features):
        return {}, None
    return {}, "privacy: the image encoder's batch norm → group norm (Opacus ModuleValidator.fix)"


Rewrite = Callable[[Any, int], "tuple[dict[str, Any], str | None]"]
REWRITES: tuple[Rewrite, ...] = (_budget, _one_model, _layer_norm, _image_norm)


def check_private_run(config: Any, train_rows: int) -> tuple[Any, list[str]]:
    """The config a private run trains with and the ``data:`` lines saying what was changed;
    the first ``REFUSALS`` error for what cannot be made private. Configs without
    ``train.privacy.epsilon`` come back unchanged."""
    if not config.train.privacy.enabled:
        return config, []
    from forgeml.config import apply_overrides
    from forgeml.extras import require_extra

    require_extra("privacy", needed_by="train.privacy")
    for refusal in REFUSALS:
        error = refusal(config, train_rows)
        if error is not None:
            raise error
    overrides: dict[str, Any] = {}
    notes: list[str] = []
    for rewrite in REWRITES:
        changes, note = rewrite(config, train_rows)
        overrides.update(changes)
        notes += [note] if note else []
    return apply_overrides(config, overrides), notes
