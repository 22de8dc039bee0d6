"""Differentially private training: DP-SGD (Abadi et al. 2016, "Deep Learning with Differential
Privacy") through Opacus, hooked into the one ``Trainer``.

Three places, each small:

- ``check_private_run`` (``forgeml.train.privacy_checks``, called by ``workflow.prepare`` once the
  training rows are counted) refuses what cannot be private before any training and rewrites
  what can (batch norm → layer norm, no ridge-started linear path, one model instead of a bag),
  each change a ``data:`` line kept in the bundle's resolved config.
- ``private_module`` applies Opacus's ``ModuleValidator.fix`` (batch norm in image encoders →
  group norm) and forgeml's own replacements (the bag text encoder) to a network when it is
  built, for training and for loading alike, and refuses a network Opacus still cannot handle.
- ``PrivateTraining`` is what the ``Trainer`` calls: ``PrivacyEngine.make_private_with_epsilon``
  calibrates the noise for the run's ``train.epochs``; batches are Opacus's Poisson samples
  (``UniformWithReplacementSampler``), seeded per epoch as the plain loop's order is, so a run
  resumed mid-epoch draws the same batches; the accountant's history is checkpointed and restored.

What the guarantee covers: the network's weights with respect to the rows of the train split.
The fitted preprocessing (means, quantiles, category lists, vocabularies) and the rows of the
validation split, which choose the stopping epoch, are not covered (docs/privacy.md).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from forgeml.errors import CheckpointError, ConfigError
from forgeml.train.privacy_checks import default_delta

if TYPE_CHECKING:  # torch and Opacus are imported where a network trains: checking a gbm config needs neither
    import torch
    from torch import nn

def _quiet_opacus() -> None:
    """Import Opacus without the side effect of its import: ``opacus.utils.module_utils`` calls
    ``logging.basicConfig``, which gives the root logger a stderr handler, and from then on every
    library's INFO records (forgeml's per-epoch run log among them) would be printed."""
    import logging

    root = logging.getLogger()
    before = list(root.handlers)
    import opacus  # noqa: F401

    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)


def private_module(model: nn.Module) -> nn.Module:
    """``model`` with the layers Opacus cannot train privately replaced (Opacus's fixes: batch norm →
    group norm; a mean embedding bag → embedding and masked mean, ``forgeml.train.private_layers``);
    a ``ConfigError`` when some still cannot be."""
    _quiet_opacus()
    from opacus.grad_sample import GradSampleModule
    from opacus.validators import ModuleValidator

    from forgeml.train.private_layers import replace_layers

    fixed = replace_layers(ModuleValidator.fix(model))  # fix copies the model: the one given stays as it was
    fixed.predict_batch_size = getattr(model, "predict_batch_size", 4096)
    errors = ModuleValidator.validate(fixed, strict=False) + GradSampleModule.validate(fixed, strict=False)
    if errors:
        first = str(errors[0]).split("\n")[0][:200]
        raise ConfigError(f"Opacus cannot train this network privately ({len(errors)} problem(s); first: {first})",
                          where="train.privacy", hint="use the tabular mlp (--model mlp) with bag text encoders, or drop train.privacy.epsilon")
    return fixed


class PrivateTraining:
    """DP-SGD for one ``Trainer.fit``: the Poisson batches, the wrapped model and optimizer, and
    the accountant (checkpointed by the Trainer through ``state_dict``)."""

    def __init__(self, config: Any, rows: int):
        self.settings = config.privacy
        self.rows = rows
        self.seed = config.seed
        self.epochs = config.epochs
        # Opacus's sampling rate: 1 / (batches per epoch of the non-private loader)
        self.steps_per_epoch = max(1, -(-rows // config.batch_size))
        self.sample_rate = 1.0 / self.steps_per_epoch
        self.engine: Any = None
        self.noise_multiplier: float | None = None
        self.module: Any = None  # Opacus's GradSampleModule around the trained network

    @property
    def delta(self) -> float:
        return self.settings.delta if self.settings.delta is not None else default_delta(self.rows)

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, Any] | None, resumed: bool) -> tuple[nn.Module, Any]:
        """(the per-sample-gradient model, the noisy clipping optimizer) for ``model`` and
        ``optimizer``; a resumed run gets its accountant's history back from ``saved``."""
        import warnings

        import torch
        _quiet_opacus()
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        if resumed and saved is None:
            raise CheckpointError("the checkpoint was written by a run without train.privacy: its steps were never accounted",
                                  hint="resume with the run's own config.yaml, or start a new private run without --resume")
        # torch warns at every private run's first backward that the input tensors need no gradient
        # (they are data): Opacus's hooks want the module's, which is what they get
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to module outputs")
        loader = DataLoader(TensorDataset(torch.arange(self.rows)), batch_size=-(-self.rows // self.steps_per_epoch))
        with warnings.catch_warnings():  # Opacus's advice on secure_mode (a cryptographic RNG) is docs/privacy.md's; log(0) at q = 1
            warnings.simplefilter("ignore")
            self.engine = PrivacyEngine(accountant=self.settings.accountant)
            net, optimizer, _ = self.engine.make_private_with_epsilon(
                module=model, optimizer=optimizer, data_loader=loader, target_epsilon=self.settings.epsilon, target_delta=self.delta,
                epochs=self.epochs, max_grad_norm=self.settings.max_grad_norm, poisson_sampling=True)
        self.noise_multiplier = float(optimizer.noise_multiplier)
        self.module = net
        if saved is not None:
            self.engine.accountant.load_state_dict(saved["accountant"])
        return net, optimizer

    def detach(self) -> None:
        """Take Opacus's per-sample-gradient hooks off the trained model: predictions, saving and
        copies then see the plain network."""
        if self.module is not None:
            self.module.cleanup()

    def batches(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        """The row indices of each step of ``epoch`` from step ``start`` on: Opacus's Poisson
        sampling (each row in each batch with probability ``sample_rate``, so a batch's size
        varies and may be 0), from a generator seeded by (seed, epoch)."""
        import torch
        _quiet_opacus()
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        sampler = UniformWithReplacementSampler(num_samples=self.rows, sample_rate=self.sample_rate, generator=generator, steps=self.steps_per_epoch)
        for step, indices in enumerate(sampler):
            if step >= start:
                yield torch.as_tensor(indices, dtype=torch.long)

    def state_dict(self) -> dict[str, Any]:
        return {"accountant": self.engine.accountant.state_dict(), "noise_multiplier": self.noise_multiplier}

    def spent(self) -> dict[str, Any]:
        """What metrics.json, the model card and the report say: ε spent so far at δ, and how."""
        import warnings

        history = self.engine.accountant.history
        steps = int(sum(entry[2] for entry in history))
        with warnings.catch_warnings():  # the PRV accountant takes log(0) when every row is in every batch (q = 1)
            warnings.simplefilter("ignore", RuntimeWarning)
            epsilon = float(self.engine.get_epsilon(self.delta)) if steps else 0.0
        return {"epsilon": epsilon, "delta": self.delta, "target_epsilon": self.settings.epsilon, "max_grad_norm": self.settings.max_grad_norm,
                "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate, "steps": steps, "accountant": self.settings.accountant,
                "training_rows": self.rows, "mechanism": "DP-SGD (Opacus), Poisson sampling"}


def describe_spent(spent: dict[str, Any] | None) -> str | None:
    """One line for the report and the model card, or None for a run without privacy."""
    if not spent:
        return None
    return (f"differentially private training (DP-SGD, Opacus): ε = {spent['epsilon']:.3g} spent of {spent['target_epsilon']:g} at "
            f"δ = {spent['delta']:.3g} over {spent['steps']} steps ({spent['accountant']} accountant, noise σ = {spent['noise_multiplier']:.3g} × "
            f"max_grad_norm {spent['max_grad_norm']:g}, sampling rate {spent['sample_rate']:.3g}); the guarantee covers the weights, not the "
            "fitted preprocessing or the validation rows")
