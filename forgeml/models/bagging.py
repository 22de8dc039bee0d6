"""Bagging: K copies of one model family, each trained on K-1 folds of the train split and
early-stopped on the fold it did not see; predictions are averaged.

On small data the validation split is too small to pick an epoch reliably: on scikit-learn's
diabetes (300 train rows, 53 validation rows) validation R² rose from 0.33 to 0.45 while test R²
fell from 0.52 to 0.45. K out-of-fold early stops and the average of K models remove most of that
noise (AutoGluon bags for the same reason). Only the train split is folded, so the validation
and test splits stay untouched and their metrics stay honest.

Members are saved in ``fold<k>/`` sub-folders of the bundle with their own files; the bundle's
manifest hashes those too.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import json

import numpy as np

from forgeml.errors import ForgeError
from forgeml.features.featureset import InputSpec
from forgeml.models.estimator import Estimator, FitOptions, FitSummary
from forgeml.models.tasks import Task

AUTO_FOLDS = 5
AUTO_MAX_TRAIN_ROWS = 1_000
# Auto-bagged families: the tabular MLP trains in seconds on < 1,000 rows. LightGBM, CNNs, sequence
# models and pretrained encoders bag only when asked (five fine-tunes of a Transformer are not cheap).
AUTO_FAMILIES = ("mlp",)


def resolve_folds(setting: int | str, model_type: str, train_rows: int, *, has_images: bool = False) -> int:
    """``auto`` → AUTO_FOLDS for a tabular MLP on a small train split, else 1; never more folds than rows."""
    if setting == "auto":
        folds = AUTO_FOLDS if model_type in AUTO_FAMILIES and not has_images and train_rows < AUTO_MAX_TRAIN_ROWS else 1
    else:
        folds = int(setting)
    return max(1, min(folds, train_rows // 2))


def fold_indices(rows: int, folds: int, seed: int, labels: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row indices per fold: stratified by class when every class can be."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= folds:
            return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(rows), labels))
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(rows)))


def _take(arrays: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[index] for key, value in arrays.items()}


class FoldRows:
    """Passes each member's epoch rows on with ``"fold": k``, so the run's metrics.jsonl and the
    report show every member's learning curve, not only the first one's."""

    def __init__(self, inner: Any, fold: int):
        self.inner, self.fold = inner, fold

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.inner.on_epoch_end({"fold": self.fold, **row})


LATE_FACTOR = 1.5  # a bag gives up when its remaining folds would need more than this many times the time left


class MemberOutOfTime(ForgeError):
    """A bagged member that cannot finish its folds by the deadline (only with abandon_when_late)."""


FINISHED = "finished"  # per-fold checkpoint sub-folder: the trained member and its summary


class BaggedEstimator:
    def __init__(self, members: list[Estimator], config: Any, task: Task, spec: InputSpec, load_one: Callable | None = None):
        self.members, self.config, self.task, self.spec, self.load_one = members, config, task, spec, load_one

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"fold{k}/{name}" for k, member in enumerate(self.members) for name in member.files)

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        """Fits member k on every fold but k, early-stopped on fold k; ``oof_`` holds each row's
        prediction by the member that did not see it (the ensemble's honest validation).
        Folds come from the training seed (``train.seed``), not the split's: changing the
        seed of the model must not move rows between train and test, and vice versa."""
        import time

        labels = y_train if self.task.is_classification else None
        splits = fold_indices(len(y_train), len(self.members), self.config.train.seed, labels)
        summaries = []
        self.oof_: np.ndarray | None = None
        for k, (inner, held_out) in enumerate(splits):
            deadline = options.deadline
            if deadline is not None:  # the time left, shared fairly among the folds still to fit
                now = time.monotonic()
                deadline = now + max(0.0, deadline - now) / (len(splits) - k)
            folder = Path(options.checkpoint_dir) / f"fold{k}" if options.checkpoint_dir else None
            if options.resume and folder is not None and (folder / FINISHED / "summary.json").is_file():
                summaries.append(self._load_finished(k, folder / FINISHED, options.dist))  # a resumed run skips finished folds
                self._record_oof(k, _take(train, held_out), held_out, len(y_train))
                continue
            member_options = replace(
                options,
                checkpoint_dir=folder,
                callbacks=[FoldRows(callback, k) for callback in options.callbacks],  # every member's curve, tagged
                resume=options.resume and folder is not None and any(folder.glob("*.pt")),
                deadline=deadline,
                label=f"{options.label} · fold {k + 1}/{len(splits)}" if options.label else f"member {k + 1}/{len(splits)}",
            )
            fold_started = time.monotonic()
            summary = self.members[k].fit(_take(train, inner), y_train[inner], _take(train, held_out), y_train[held_out], member_options)
            self._give_up_if_late(options, time.monotonic() - fold_started, folds_left=len(splits) - k - 1)
            self._record_oof(k, _take(train, held_out), held_out, len(y_train))
            if folder is not None and (options.dist is None or options.dist.is_main):
                self._save_finished(k, folder / FINISHED, summary)
            summaries.append(summary)
        self._refit_full(train, y_train, options)
        values = [s.best_value for s in summaries if s.best_value is not None]
        return FitSummary(
            history=[{"fold": k, **row} for k, s in enumerate(summaries) for row in s.history],
            best_epoch=int(round(np.mean([s.best_epoch for s in summaries]))),
            best_value=float(np.mean(values)) if values else None,
            stopped_early=all(s.stopped_early for s in summaries),
            seconds=float(sum(s.seconds for s in summaries)),
        )

    def _refit_full(self, train: dict[str, np.ndarray], y_train: np.ndarray, options: FitOptions) -> None:
        """For an estimator that says ``refit_full`` (the n-gram model): once the folds have given
        their out-of-fold predictions, one model on every train row, at the median of the
        regularisation the folds chose, replaces them. A sparse linear model gains more from 25 %
        more rows than from averaging five (bench/RESULTS.md, Text session 13); the out-of-fold
        predictions, and so the ensemble's weights, stay those of the folds (AutoGluon's refit_full)."""
        import time

        first = self.members[0]
        if not getattr(first, "refit_full", False) or len(self.members) < 2 or getattr(first, "alpha_", None) is None:
            return
        if options.deadline is not None and time.monotonic() >= options.deadline:
            return  # out of time: the folds' average stays
        alpha = float(np.median([member.alpha_ for member in self.members]))
        config = self.config.model_copy(update={"model": self.config.model.model_copy(update={"alpha": alpha})})
        full = type(first)(config, self.task, self.spec)
        full.fit(train, y_train, None, None, replace(options, callbacks=[], checkpoint_dir=None))
        self.members = [full]

    def _record_oof(self, k: int, held_arrays: dict[str, np.ndarray], held_out: np.ndarray, rows: int) -> None:
        scores = np.asarray(self.members[k].scores(held_arrays))
        if self.oof_ is None:
            self.oof_ = np.full((rows, *scores.shape[1:]), np.nan)
        self.oof_[held_out] = scores

    @staticmethod
    def _give_up_if_late(options: FitOptions, fold_seconds: float, folds_left: int) -> None:
        """A member whose folds, at the pace of the one just fitted, would end well past the
        deadline is abandoned (AutoGluon does the same after its first fold)."""
        import time

        if not options.abandon_when_late or options.deadline is None or not folds_left:
            return
        left = options.deadline - time.monotonic()
        needed = fold_seconds * folds_left
        if needed > LATE_FACTOR * max(left, 0.0):
            raise MemberOutOfTime(f"its other {folds_left} folds would need about {needed:.0f} s of the {max(left, 0):.0f} s left")

    def _save_finished(self, k: int, folder: Path, summary: FitSummary) -> None:
        from dataclasses import asdict

        from forgeml.fileio import atomic_directory, atomic_write_json, to_plain

        with atomic_directory(folder) as tmp:
            self.members[k].save(tmp)
            atomic_write_json(tmp / "summary.json", to_plain(asdict(summary)), indent=None)

    def _load_finished(self, k: int, folder: Path, dist: Any) -> FitSummary:
        if self.load_one is not None:
            self.members[k] = self.load_one(folder, self.config, self.task, self.spec)
        return FitSummary(**json.loads((folder / "summary.json").read_text(encoding="utf-8")))

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        models = [getattr(member, "model", None) for member in self.members]
        if all(model is not None for model in models):  # torch members: one stacked forward for all K
            from forgeml.models.stacked import StackedScorer, stacked_scores

            if self.__dict__.get("_stacked") is None:
                self._stacked = StackedScorer()
            fast = stacked_scores(self._stacked, models, self.config, self.task, arrays)
            if fast is not None:
                return fast
        return np.mean([member.scores(arrays) for member in self.members], axis=0)

    def save(self, directory: Path) -> list[str]:
        written = []
        for k, member in enumerate(self.members):
            folder = Path(directory) / f"fold{k}"
            folder.mkdir(exist_ok=True)
            written += [f"fold{k}/{name}" for name in member.save(folder)]
        return written

    def feature_importance(self) -> dict[str, float] | None:
        parts = [member.feature_importance() for member in self.members]
        if any(part is None for part in parts):
            return None
        return {name: float(np.mean([part[name] for part in parts])) for name in parts[0]}


def member_config(config: Any, k: int) -> Any:
    """Member k's config: the run's, with training seed ``train.seed + k``. Members that share one
    seed share their initial weights and batch order, and agree more than bagging needs."""
    return config.model_copy(update={"train": config.train.model_copy(update={"seed": config.train.seed + k})})


def build_bagged(config: Any, task: Task, spec: InputSpec, folds: int, build_one: Callable, load_one: Callable) -> BaggedEstimator:
    return BaggedEstimator([build_one(member_config(config, k), task, spec) for k in range(folds)], config, task, spec, load_one)


def load_bagged(directory: Path, config: Any, task: Task, spec: InputSpec, folds: int, load_one: Callable) -> BaggedEstimator:
    folders = [Path(directory) / f"fold{k}" for k in range(folds)]
    folders = folders[:1] if folders[1:] and not folders[1].is_dir() else folders  # refit on every row: one model (_refit_full)
    return BaggedEstimator([load_one(folder, config, task, spec) for folder in folders], config, task, spec, load_one)
