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

    when = "after its first fold"  # the ensemble's leaderboard: "skipped after its first fold: …"


class MemberDeclines(MemberOutOfTime):
    """A member whose ``prepare`` (work its folds share, run before the first) finds it cannot help
    here: that work would overrun its time share, or the data is of a kind it does not read well
    (the embed model's English encoder on Chinese text). The ensemble skips it as it skips a late
    member; a single model stops with it as an error."""

    when = "before its first fold"


FINISHED = "finished"
SIDE_BY_SIDE_ROWS = 256  # fewer rows are predicted fold after fold: a thread hand-off costs more than they do  # per-fold checkpoint sub-folder: the trained member and its summary


class BaggedEstimator:
    def __init__(self, members: list[Estimator], config: Any, task: Task, spec: InputSpec, load_one: Callable | None = None,
                 workers: int = 1):
        self.members, self.config, self.task, self.spec, self.load_one = members, config, task, spec, load_one
        self.workers = workers  # > 1: folds fitted and predicted side by side, one thread each (fold_threads.py)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"fold{k}/{name}" for k, member in enumerate(self.members) for name in member.files)

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        """Fits member k on every fold but k, early-stopped on fold k; ``oof_`` holds each row's
        prediction by the member that did not see it (the ensemble's honest validation).
        Folds come from the training seed (``train.seed``), not the split's: changing the
        seed of the model must not move rows between train and test, and vice versa.
        With ``workers`` > 1 the folds are fitted side by side (``fold_threads``)."""
        import time

        prepare = getattr(self.members[0], "prepare", None)
        if prepare is not None:  # work every fold shares (the embed model encodes each text once), so fold 1 does not carry it
            prepare(train, options)
        labels = y_train if self.task.is_classification else None
        splits = fold_indices(len(y_train), len(self.members), self.config.train.seed, labels)
        self.oof_: np.ndarray | None = None
        self.fold_shared_ = share_across_folds(self.members, train)
        if self.workers > 1:
            from forgeml.models.fold_threads import fit_side_by_side

            def fit_fold(k: int, deadline: float | None, callbacks: list[Any]) -> tuple[FitSummary, bool]:
                return self.fit_fold(k, *splits[k], train, y_train, replace(options, callbacks=callbacks), deadline)

            def finished(k: int, seconds: float, fitted: bool, folds_left: int) -> None:
                self._record_oof(k, _take(train, splits[k][1]), splits[k][1], len(y_train))
                if fitted:
                    self._give_up_if_late(options, seconds, folds_left, side_by_side=self.workers)

            summaries = fit_side_by_side(len(splits), self.workers, options.deadline, options.callbacks, fit_fold, finished)
        else:
            summaries = []
            # the first fold's cost in later folds' (the n-gram model: its alpha path against one alpha)
            costs = [float(getattr(self.members[0], "first_fold_cost", 1.0))] + [1.0] * (len(splits) - 1)
            for k, (inner, held_out) in enumerate(splits):
                deadline = options.deadline
                if deadline is not None:  # the time left, shared fairly among the folds still to fit
                    now = time.monotonic()
                    deadline = now + max(0.0, deadline - now) * costs[k] / sum(costs[k:])
                fold_started = time.monotonic()
                summary, fitted = self.fit_fold(k, inner, held_out, train, y_train, options, deadline)
                if fitted:
                    self._give_up_if_late(options, (time.monotonic() - fold_started) / costs[k], folds_left=len(splits) - k - 1)
                self._record_oof(k, _take(train, held_out), held_out, len(y_train))
                summaries.append(summary)
                if k == 0:  # what the later folds take from the first (the n-gram model's alpha): a cheaper path
                    for member in self.members[1:]:
                        getattr(member, "adopt_first_fold", lambda first: None)(self.members[0])
        for member in self.members:  # predicting new rows no longer looks them up in the shared state
            getattr(member, "use_fold_shared", lambda shared: None)(None)
        values = [s.best_value for s in summaries if s.best_value is not None]
        notes = [f"fold {k + 1}: {s.note}" for k, s in enumerate(summaries) if getattr(s, "note", None)]
        return FitSummary(
            history=[{"fold": k, **row} for k, s in enumerate(summaries) for row in s.history],
            best_epoch=int(round(np.mean([s.best_epoch for s in summaries]))),
            best_value=float(np.mean(values)) if values else None,
            stopped_early=all(s.stopped_early for s in summaries),
            seconds=float(sum(s.seconds for s in summaries)),
            note="; ".join(notes) or None,
        )

    def fit_fold(self, k: int, inner: np.ndarray, held_out: np.ndarray, train: dict[str, np.ndarray], y_train: np.ndarray,
                 options: FitOptions, deadline: float | None) -> tuple[FitSummary, bool]:
        """Member k fitted on ``inner`` and early-stopped on ``held_out`` (or loaded when a resumed
        run had finished it: then the flag is False) and checkpointed as finished."""
        folder = Path(options.checkpoint_dir) / f"fold{k}" if options.checkpoint_dir else None
        if options.resume and folder is not None and (folder / FINISHED / "summary.json").is_file():
            return self._load_finished(k, folder / FINISHED, options.dist), False  # a resumed run skips finished folds
        folds = len(self.members)
        member_options = replace(
            options,
            checkpoint_dir=folder,
            callbacks=[FoldRows(callback, k) for callback in options.callbacks],  # every member's curve, tagged
            resume=options.resume and folder is not None and any(folder.glob("*.pt")),
            deadline=deadline,
            label=f"{options.label} · fold {k + 1}/{folds}" if options.label else f"member {k + 1}/{folds}",
        )
        summary = self.members[k].fit(_take(train, inner), y_train[inner], _take(train, held_out), y_train[held_out], member_options)
        if folder is not None and (options.dist is None or options.dist.is_main):
            self._save_finished(k, folder / FINISHED, summary)
        return summary, True

    def _record_oof(self, k: int, held_arrays: dict[str, np.ndarray], held_out: np.ndarray, rows: int) -> None:
        scores = np.asarray(self.members[k].scores(held_arrays))
        if self.oof_ is None:
            self.oof_ = np.full((rows, *scores.shape[1:]), np.nan)
        self.oof_[held_out] = scores

    @staticmethod
    def _give_up_if_late(options: FitOptions, fold_seconds: float, folds_left: int, side_by_side: int = 1) -> None:
        """A member whose folds, at the pace of the one just fitted, would end well past the
        deadline is abandoned (AutoGluon does the same after its first fold); ``side_by_side``
        folds are fitted at a time."""
        import time

        if not options.abandon_when_late or options.deadline is None or not folds_left:
            return
        left = options.deadline - time.monotonic()
        needed = fold_seconds * -(-folds_left // side_by_side)
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
        if self.workers > 1 and len(next(iter(arrays.values()))) > SIDE_BY_SIDE_ROWS:
            from forgeml.models.fold_threads import scores_side_by_side

            return np.mean(scores_side_by_side(self.members, arrays, self.workers), axis=0)
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


def share_across_folds(members: list[Any], train: dict[str, np.ndarray]) -> Any:
    """What a family fits once on all of the bag's rows and every fold then reads (``fit_fold_shared``
    / ``use_fold_shared``: the n-gram model's vocabularies and TF-IDF matrix), or None.

    Why: the n-gram model fitted its vectoriser five times on birds, 6 s each on a busy machine,
    and vectorised each held-out fold twice. What is shared must not see labels: vocabularies and
    idf counted over every train row are what AutoGluon's text n-gram features are fitted on
    before it bags; a fold model learns no weight for an n-gram that only its held-out rows have."""
    fit_shared = getattr(members[0], "fit_fold_shared", None) if members else None
    if fit_shared is None:
        return None
    shared = fit_shared(train)
    for member in members:
        member.use_fold_shared(shared)
    return shared


def member_config(config: Any, k: int, threads: int | None = None) -> Any:
    """Member k's config: the run's, with training seed ``train.seed + k``. Members that share one
    seed share their initial weights and batch order, and agree more than bagging needs.
    ``threads``: the member's own thread count (1 when folds are fitted side by side)."""
    train = {"seed": config.train.seed + k} | ({"threads": threads} if threads else {})
    return config.model_copy(update={"train": config.train.model_copy(update=train)})


def side_by_side_workers(config: Any, folds: int, side_by_side: bool) -> int:
    """Folds fitted at a time: the run's threads (at most the folds) for a family whose module says
    ``FOLDS_SIDE_BY_SIDE``, else 1."""
    if not side_by_side:
        return 1
    from forgeml.train.distributed import default_threads

    return max(1, min(folds, config.train.threads or default_threads()))


def build_bagged(config: Any, task: Task, spec: InputSpec, folds: int, build_one: Callable, load_one: Callable,
                 side_by_side: bool = False) -> BaggedEstimator:
    workers = side_by_side_workers(config, folds, side_by_side)
    threads = 1 if workers > 1 else None
    return BaggedEstimator([build_one(member_config(config, k, threads), task, spec) for k in range(folds)], config, task, spec,
                           _one_thread(load_one) if workers > 1 else load_one, workers)


def load_bagged(directory: Path, config: Any, task: Task, spec: InputSpec, folds: int, load_one: Callable,
                side_by_side: bool = False) -> BaggedEstimator:
    workers = side_by_side_workers(config, folds, side_by_side)
    load = _one_thread(load_one) if workers > 1 else load_one
    return BaggedEstimator([load(Path(directory) / f"fold{k}", config, task, spec) for k in range(folds)], config, task, spec, load, workers)


def _one_thread(load_one: Callable) -> Callable:
    """``load_one`` giving its member a one-thread config (its fold runs beside the others)."""
    def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> Estimator:
        return load_one(directory, config.model_copy(update={"train": config.train.model_copy(update={"threads": 1})}), task, spec)

    return load


def predict_ms_per_row(bag: Any, sample: dict[str, np.ndarray]) -> float:
    """Milliseconds per row of one member on a batch of up to 256 train rows (warm): the leaderboard's predict cost."""
    import time

    from forgeml.models.embed_cache import timing_cold

    bag.scores({k: v[:1] for k, v in sample.items()})
    with timing_cold():  # vectors cached during fit would make the embed member look free: time what a new row costs
        started = time.perf_counter()
        bag.scores(sample)
    rows = len(next(iter(sample.values())))
    return round((time.perf_counter() - started) * 1000 / max(rows, 1), 4)
