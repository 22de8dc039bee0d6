"""``--prune AMOUNT`` (structured): remove that share of the hidden units of the network's hidden
blocks (``model.hidden_size``: the tabular MLP's layers, and the blocks above the encoders and the
transformer combiner in every network family), then fine-tune briefly.

Which units go: those with the smallest L2 norm of their *outgoing* weights (the next block's
and the head's columns), the magnitude criterion of Li et al. 2017 ("Pruning Filters for
Efficient ConvNets") applied to units. Incoming weights are not the measure because batch norm
rescales them; what a unit passes on is. Residual blocks add each unit to the same unit of the
next block, so all blocks keep one common set of units, chosen by the summed score.

The units are really removed: the pruned network is built from the config with the smaller
``hidden_size`` and the kept rows and columns copied in, so the bundle's tensors, its file and
every forward pass shrink (masking weights would change none of that). A bag's members are
pruned one by one, each keeping its own best units.

Fine-tune: ``epochs`` (default 5, ``--set epochs=N``) with the bundle's own Trainer settings
(optimizer, learning rate, schedule, batch size, early stopping on the validation split, or for
a bag on each member's own held-out fold, as training did), starting from the pruned weights.

The network's other parts are pruned by the same share, each by its module in ``PARTS``:
``simple_cnn`` conv channels, transformer attention heads, feed-forward units and residual width
(the text encoder, with its token embedding table, and the transformer combiner), LSTM/GRU hidden
units. Not pruned: ResNet and flatten image encoders, pretrained text encoders, bag-of-embeddings
text encoders and the category and RNN embedding tables (they keep their width; docs/compress.md).
"""
from __future__ import annotations

import importlib
from typing import Any

import torch

from forgeml.compress.errors import CompressError
from forgeml.compress.networks import require_network

DEFAULT_EPOCHS = 5

# what else can shrink → its module: ``applies(config, spec)``, ``changes(config, spec, keep_share)``
# (config overrides describing the smaller part) and ``cut(model, config, spec, keep_share)`` (its
# tensors at the new shapes, named as in the model's state dict, including the columns of
# whatever reads a part whose output width changes)
PARTS: dict[str, str] = {
    "simple_cnn channels": "forgeml.compress.prune_channels",
    "transformer heads, feed-forward units and width": "forgeml.compress.prune_attention",
    "lstm/gru hidden units": "forgeml.compress.prune_recurrent",
}


def hidden_prunable(source: Any) -> bool:
    """True when the hidden blocks' units can go: there are blocks, and the first one is not
    residual. When the combiner's output is exactly ``hidden_size`` wide the first block adds its
    input to its output; its units are then tied to the input's, which pruning cannot remove
    (cutting them anyway turned the residual block into a plain one: a different network)."""
    estimator = source.predictor_.estimator
    member = (getattr(estimator, "members", None) or [estimator])[0]
    network = getattr(member.model, "network", member.model)
    blocks = network.combiner.blocks
    return len(blocks) > 0 and not blocks[0].residual


def prunable_parts(config: Any, spec: Any) -> list[Any]:
    """The ``PARTS`` modules that apply to this network."""
    modules = [importlib.import_module(name) for name in PARTS.values()]
    return [module for module in modules if module.applies(config, spec)]


def check(source: Any, options: dict[str, Any]) -> None:
    """Refuse an amount outside (0, 1), unstructured pruning, and non-network bundles, before data is read."""
    amount = options.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise CompressError(f"--prune {amount} is not a share between 0 and 1", where="--prune",
                            hint="e.g. --prune 0.5 removes half of the hidden units (0 removes nothing, 1 everything)")
    if not options.get("structured", True):
        raise CompressError("unstructured pruning zeroes single weights, and a bundle stores them densely, so nothing gets smaller or faster",
                            where="--unstructured", hint="use --structured (the default): it removes whole units")
    epochs = options.get("epochs", DEFAULT_EPOCHS)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise CompressError(f"epochs={epochs!r} is not a whole number of fine-tuning epochs", where="--set epochs", hint="e.g. --set epochs=5 (0: no fine-tune)")
    require_network(source, "pruning", "--prune")
    config = source.predictor_.config
    if not hidden_prunable(source) and not prunable_parts(config, source.predictor_.featureset.input_spec()):
        blocks = "no hidden blocks (model.num_layers: 0)" if config.model.num_layers == 0 else "residual hidden blocks as wide as their input"
        raise CompressError(f"this {config.model.type} network has {blocks} and none of: {', '.join(PARTS)}, so there is nothing to prune",
                            where="--prune", hint="quantise it instead (--quantize int8)")


def kept_units(model: Any, hidden: int, keep: int) -> Any:
    """Indices (sorted) of the ``keep`` hidden units with the largest outgoing-weight norm."""
    import torch

    scores = torch.zeros(hidden)
    state = model.state_dict()
    # the consumers of the hidden units, each (out, hidden): blocks 1.. (block 0 reads the inputs) and the head
    consumers = [f"combiner.blocks.{b}.layers.0.weight" for b in range(1, len(model.combiner.blocks))] + ["head.weight"]
    for name in consumers:
        scores += state[name].detach().float().norm(dim=0)
    return torch.sort(torch.topk(scores, keep).indices).values


def sliced_state(old: dict[str, Any], new: dict[str, Any], hidden: int, keep: Any, where: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """``old``'s tensors cut to ``new``'s shapes: every axis that shrank from ``hidden`` keeps
    ``keep``; tensors in ``given`` (the image encoders' cut channels) are taken as they are."""
    state = {}
    for name, target in new.items():
        tensor = (given or {}).get(name, old[name])
        if tensor.shape != target.shape:
            for axis, (before, after) in enumerate(zip(tensor.shape, target.shape)):
                if before != after:
                    if before != hidden or after != len(keep):
                        raise CompressError(f"cannot map {name} from {tuple(tensor.shape)} to {tuple(target.shape)}", where=where,
                                            hint="report this with the bundle; the source bundle is unchanged")
                    tensor = tensor.index_select(axis, keep)
        state[name] = tensor.clone()
    return state


def require_same_shortcuts(source: Any, pruned: Any) -> None:
    """Refuse a pruned network whose hidden blocks add their input where the source's did not (or
    the reverse): a block is residual when its input and output widths are equal, and the new
    widths can meet by rounding. That would be a different network, not a smaller one."""
    before = [block.residual for block in source.combiner.blocks]
    after = [block.residual for block in pruned.combiner.blocks]
    if before != after:
        raise CompressError(f"pruning this share makes a hidden block's input as wide as its output (residual blocks {before} → {after})",
                            where="--prune", hint="choose a slightly different share, e.g. 0.45 or 0.55")


def pruned_member(member: Any, config: Any, task: Any, spec: Any, keep_share: float) -> Any:
    """A new TorchEstimator built from the pruned ``config``, its weights cut from ``member``'s:
    the hidden units (when the hidden size shrank) and every part in ``PARTS`` the network has."""
    from forgeml.models.torch_estimator import TorchEstimator

    hidden, keep_count = member.config.model.hidden_size, config.model.hidden_size
    network = getattr(member.model, "network", member.model)  # inside LinearSkip
    keep = kept_units(network, hidden, keep_count) if keep_count != hidden else torch.arange(hidden)
    given: dict[str, Any] = {}
    for part in prunable_parts(member.config, spec):
        given.update(part.cut(member.model, member.config, spec, keep_share))
    pruned = TorchEstimator(config, task, spec, load_weights=False)
    require_same_shortcuts(network, getattr(pruned.model, "network", pruned.model))
    pruned.model.load_state_dict(sliced_state(member.model.state_dict(), pruned.model.state_dict(), hidden, keep, "--prune", given))
    pruned.warm_start = True  # fine-tuning continues from these weights (no ridge re-initialisation)
    pruned.model.eval()
    return pruned


def compress(source: Any, data: Any, options: dict[str, Any]) -> Any:
    """The source network with ``amount`` of its hidden units removed, fine-tuned (``methods``)."""
    from forgeml.compress.data import require_data
    from forgeml.compress.run import derived_pipeline
    from forgeml.config import apply_overrides
    from forgeml.models.bagging import BaggedEstimator
    from forgeml.predict import Predictor

    check(source, options)
    predictor = source.predictor_
    epochs = int(options.get("epochs", DEFAULT_EPOCHS))
    if epochs:
        data = require_data(data, "pruning's fine-tune", predictor.config)
    keep_share = 1 - float(options["amount"])
    spec = predictor.featureset.input_spec()
    cfg = predictor.config.model
    changes: dict[str, Any] = {}
    if hidden_prunable(source):
        changes["model.hidden_size"] = max(1, round(cfg.hidden_size * keep_share))
    for part in prunable_parts(predictor.config, spec):
        changes.update(part.changes(predictor.config, spec, keep_share))
    config = apply_overrides(predictor.config, changes)
    estimator = predictor.estimator
    if isinstance(estimator, BaggedEstimator):
        members = [pruned_member(m, config, predictor.task, spec, keep_share) for m in estimator.members]
        pruned: Any = BaggedEstimator(members, config, predictor.task, spec)
    else:
        pruned = pruned_member(estimator, config, predictor.task, spec, keep_share)
    pipeline = derived_pipeline(source, Predictor(config, predictor.featureset, predictor.task, pruned))
    if epochs:
        pipeline.fit_summary_ = fine_tune(pruned, config, predictor.task, data, epochs)
    return pipeline


def fine_tune(estimator: Any, config: Any, task: Any, data: Any, epochs: int) -> Any:
    """A few epochs with the bundle's Trainer settings on the train split (validation: early stopping)."""
    from forgeml.config import apply_overrides
    from forgeml.models.estimator import FitOptions
    from forgeml.workflow import val_metrics_fn

    tuning = apply_overrides(config, {"train.epochs": epochs, "train.progress": False, "train.time_budget": None})
    for part in getattr(estimator, "members", None) or [estimator]:
        part.config = tuning
    estimator.config = tuning
    import torch

    threads = torch.get_num_threads()  # the Trainer sets the process's thread count; the table is measured with the caller's
    metrics_fn, direction = val_metrics_fn(tuning, task)
    validation = data.arrays.get("validation")
    has_validation = validation is not None and len(data.targets.get("validation", ())) > 0
    summary = estimator.fit(data.arrays["train"], data.targets["train"], validation if has_validation else None,
                            data.targets["validation"] if has_validation else None,
                            FitOptions(val_metrics=metrics_fn, monitor_direction=direction, label="fine-tune"))
    for part in getattr(estimator, "members", None) or [estimator]:  # the bundle records the model's config, not the fine-tune's
        part.config = config
    estimator.config = config
    torch.set_num_threads(threads)
    return summary
