"""Torch model families (mlp, cnn, rnn, transformer, pretrained: one ``FusionNet`` with different
default encoders) trained by the one ``Trainer``; weights in safetensors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forgeml.errors import BundleError
from forgeml.features.featureset import InputSpec
from forgeml.models import estimator
from forgeml.models.frozen_cache import cache_inputs
from forgeml.models.length_buckets import length_batched, token_pads
from forgeml.models.linear_skip import LinearSkip, wants_linear_skip
from forgeml.models.network import FusionNet
from forgeml.models.stacked import StackedScorer, stacked_scores
from forgeml.models.tasks import Task
from forgeml.train.trainer import TensorData, Trainer

WEIGHTS = "weights.safetensors"


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The numeric arrays as tensors; raw strings (``text.<feature>``, object arrays) stay behind:
    networks read the same text as token ids."""
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items() if value.dtype != object}


class TorchEstimator:
    files = (WEIGHTS,)
    warm_start = False  # True: fit continues from the current weights (compress's fine-tune), no ridge start

    def __init__(self, config: Any, task: Task, spec: InputSpec, *, load_weights: bool = True):
        self.config, self.task, self.spec = config, task, spec
        self._stacked = StackedScorer()  # the network as stacked tensors, for fast predictions
        torch.manual_seed(config.train.seed)  # same seed, same initial weights
        # load_weights: read pretrained encoder weights from their checkpoint (training); a bundle
        # being loaded brings its own weights, so the checkpoint folder is not needed then.
        self.model = FusionNet(spec, task.output_size, config.model, load_weights=load_weights)
        if wants_linear_skip(getattr(config.model, "linear_skip", "off"), task.name):
            network = self.model
            self.model = LinearSkip(network, spec, task.output_size)
            self.model.predict_batch_size = network.predict_batch_size
        if config.train.privacy.enabled:  # built the same way for training and loading: the weights must fit
            from forgeml.train.privacy import private_module

            self.model = private_module(self.model)

    def fit(self, train, y_train, val, y_val, options: estimator.FitOptions) -> estimator.FitSummary:
        trainer = Trainer(
            self.config.train,
            checkpoint_dir=options.checkpoint_dir,
            callbacks=options.callbacks,
            dist=options.dist,
            monitor_direction=options.monitor_direction,
            deadline=options.deadline,
            label=options.label,
        )
        precision, dist, soft = self.config.train.precision, options.dist, options.soft_targets
        train_data = TensorData(cache_inputs(self.model, to_tensors(train), precision=precision, dist=dist), self.task.targets_tensor(y_train, soft=soft))
        val_data = None
        if val is not None and len(y_val):
            val_data = TensorData(cache_inputs(self.model, to_tensors(val), precision=precision, dist=dist), self.task.targets_tensor(y_val, soft=soft))
        if isinstance(self.model, LinearSkip) and not options.resume and not self.warm_start and not (soft and self.task.is_classification):
            self.model.init_from_ridge(train, y_train)  # (a ridge on probabilities fits no output: the path then starts at 0)
        metrics_fn = None
        if options.val_metrics is not None and not soft:  # per-epoch metrics compare with class codes
            metrics_fn = lambda outputs, targets: options.val_metrics(targets.numpy(), self.task.scores(outputs))  # noqa: E731
        if soft:
            loss_fn = self.task.soft_loss_fn(options.temperature)
        else:
            loss_fn = self.task.loss_fn(self.task.class_weights(self.config.train.class_weight, y_train))
        result = trainer.fit(self.model, loss_fn, train_data, val_data, metrics_fn=metrics_fn, resume=options.resume)
        self.model.eval()
        return estimator.FitSummary(result.history, result.best_epoch, result.best_value, result.stopped_early, result.seconds, result.privacy)

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        fast = stacked_scores(self._stacked, [self.model], self.config, self.task, arrays)  # its own inference mode
        if fast is not None:
            return fast  # a few rows in numpy: no_grad's enter and exit would cost more than the answer
        # text: rows sorted by token length and run in buckets, each cut to its own longest row, then
        # put back in order (models.length_buckets) — a batch padded to its longest row spent most
        # of its time on padding; every text encoder masks padding, so the answers are the same
        return length_batched(self._network_scores, arrays, token_pads(self.spec), chunk=getattr(self.model, "predict_batch_size", 256))

    def _network_scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            self.model.eval()
            inputs = cache_inputs(self.model, to_tensors(arrays), precision=self.config.train.precision)  # length-sorted batches
            return self.task.scores(Trainer(self.config.train).predict(self.model, inputs))

    def save(self, directory: Path) -> list[str]:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}  # trained on a GPU or not
        save_file(state, str(Path(directory) / WEIGHTS), metadata={"format": "forgeml", "model": self.config.model.type})
        return [WEIGHTS]

    def feature_importance(self) -> dict[str, float] | None:
        return None

    @classmethod
    def load(cls, directory: Path, config: Any, task: Task, spec: InputSpec) -> "TorchEstimator":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        instance = cls(config, task, spec, load_weights=False)
        try:
            state = load_file(str(Path(directory) / WEIGHTS))
            instance.model.load_state_dict(state)
        except (SafetensorError, RuntimeError, FileNotFoundError, OSError) as exc:
            raise BundleError(f"weights do not load ({exc.__class__.__name__})", where=str(directory), hint="the bundle is corrupted or from another model; retrain or restore it") from None
        instance.model.eval()
        return instance

