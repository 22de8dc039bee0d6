"""The AutoML ensemble (``model.type: ensemble``): a portfolio of model families fitted in order
within a time budget, each bagged over k folds, combined by greedy ensemble selection on their
out-of-fold predictions.

Why this shape (AutoGluon's, see shared/research/automl-anchors.md): bagging gives every train
row an honest out-of-fold prediction, so no rows are set aside for validation — the members
learn from every non-test row, and the same predictions choose the ensemble weights. Members are
fitted cheapest and strongest first, so a short budget still ends with a good model; a member
that cannot start in the time left is skipped and the leaderboard says so; one whose solves its
time share stopped early (the n-gram and linear models' ``linear.solve_until``) says so in its ``note``.

The portfolio (which members each preset fits) is data: ``portfolio.yaml`` beside this module.
Members whose weight is 0 are not kept in the bundle (they cost predict time for nothing), but
stay in the leaderboard. In the ``best`` preset (or with ``stacking: on``) a second level, a
linear model on the members' out-of-fold predictions (``stacking.py``), replaces the weighted
average when it beats it on held-out folds; then every fitted member is kept.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError, ConfigError, ForgeError
from forgeml.fileio import atomic_write_json
from forgeml.models.member_inputs import member_inputs

if TYPE_CHECKING:
    from forgeml.models.estimator import FitOptions, FitSummary

STEP_NAME = "epoch"
VALIDATES_OUT_OF_FOLD = True  # workflow: no validation split needed (its rows go to training)
NUMBERS = "both"  # its trees read numbers unclipped, its networks clipped: member_inputs hands each its own
SPEC_FILE = "ensemble.json"
STACKER_FILE = "stacker.safetensors"
MIN_MEMBER_SECONDS = 1.0  # a member is not started with less time than this left
MEMBER_SHARE = 2.0  # a member may use up to this many fair shares of the time left
REFIT_SHARE = 0.1  # with refit on, the members stop this share of the budget early, so the refits fit in it


class EnsembleConfig(_Strict):
    """A portfolio of models, bagged and ensembled (forgeml's AutoML)."""

    type: Literal["ensemble"] = "ensemble"
    preset: Literal["fast", "medium", "best"] = Field("medium", description="Which portfolio (forgeml/models/portfolio.yaml): fast (fewer members and folds), medium, best (more folds).")
    members: list[str] | None = Field(None, description="Portfolio member names to fit, in order, instead of the preset's list.")
    members_from: list[str] = Field(default_factory=list, description="YAML files of members of your own (name → model: and "
        "train: options, as in portfolio.yaml), fitted after the preset's: `forgeml tune` writes the best trial as one (member.yaml).")
    folds: int | Literal["auto"] = Field("auto", description="Bagging folds per member; auto: the preset's (fewer on tiny data, and from 20,000 train rows: portfolio.yaml's large_data).")
    ensemble_size: int = Field(25, ge=1, description="Rounds of greedy ensemble selection (Caruana); weights are multiples of 1/ensemble_size.")
    refit: Literal["auto", "full", "off"] = Field("auto", description="full: after selection, each weighted LightGBM/CatBoost member is fitted once more "
        "on all train rows (its folds' mean rounds) and predicts alone instead of its K fold models (AutoGluon's refit_full; batch predict "
        "about twice as fast, accuracy a little lower on most sets), when the time budget allows; auto: the preset's (portfolio.yaml: fast refits). "
        "Unless off, the n-gram member is refitted in every preset (at the median of its folds' alpha: no cost in accuracy measured, one model to predict instead of K).")
    stacking: Literal["auto", "on", "off"] = Field("auto", description="A second level (linear model on the members' out-of-fold predictions), kept only when it beats the weighted average on held-out folds; auto: in the best preset.")


def auto_time_budget(rows: int) -> float:
    """Seconds for the whole portfolio when neither train.time_budget nor --time-budget says:
    about a minute per 10,000 train rows, at least 30 s (the penguins demo: its GBMs and network
    fit in that on two cores), at most 10 minutes."""
    return float(min(600.0, max(30.0, rows / 10_000 * 60.0)))


def portfolio() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((Path(__file__).with_name("portfolio.yaml")).read_text(encoding="utf-8"))


def preset_folds(preset: dict[str, Any], rows: int) -> int:
    """The preset's fold count for ``rows`` train rows: ``folds``, or ``large_data.folds`` from
    ``large_data.rows`` rows on (portfolio.yaml says why fewer)."""
    large = preset.get("large_data")
    return int(large["folds"]) if large and rows >= int(large["rows"]) else int(preset["folds"])


def read_members(path: str) -> dict[str, Any]:
    """A members file (``model.members_from``): name → {model: {type: …}, train: {…}}."""
    import yaml

    where = f"model.members_from: {path}"
    try:
        members = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("the members file does not exist", where=where, hint="give the path of a member.yaml that forgeml tune wrote") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the members file: {str(exc).splitlines()[0]}", where=where, hint="a YAML mapping: name → {model: {type: …}}") from None
    if not isinstance(members, dict) or not members or not all(
            isinstance(entry, dict) and isinstance(entry.get("model"), dict) and "type" in entry["model"] for entry in members.values()):
        raise ConfigError("not a members file", where=where, hint="a YAML mapping: name → {model: {type: gbm, …}, train: {…}}, as forgeml tune's member.yaml")
    nested = [name for name, entry in members.items() if entry["model"]["type"] in ("ensemble", "auto")]
    if nested:
        raise ConfigError(f"member {nested[0]!r} is itself an ensemble", where=where, hint="a member is one model family: mlp, gbm, catboost, …")
    return members


class EnsembleEstimator:
    def __init__(self, config: Any, task: Any, spec: Any):
        self.config, self.task, self.spec = config, task, spec
        self.members: list[dict[str, Any]] = []  # kept members: name, model, train, weight, estimator
        self.leaderboard: list[dict[str, Any]] = []
        self.stacker: Any = None  # stacking.Stacker when the second level won

    # ------------------------------------------------------------------ fit
    def _plan(self, rows: int) -> tuple[list[tuple[str, dict[str, Any]]], int]:
        book = portfolio()
        preset = book["presets"][self.config.model.preset]
        names = list(self.config.model.members or preset["members"])
        for path in self.config.model.members_from:
            own = read_members(path)
            book["members"].update(own)
            names += [name for name in own if name not in names]
        unknown = [name for name in names if name not in book["members"]]
        if unknown:
            raise ForgeError(f"unknown portfolio member(s) {unknown}", where="model.members", hint=f"choose among {sorted(book['members'])}")
        folds = self.config.model.folds if self.config.model.folds != "auto" else preset_folds(preset, rows)
        folds = max(2, min(int(folds), rows // 10)) if rows >= 20 else 2
        return [(name, book["members"][name]) for name in names], folds

    def member_config(self, entry: dict[str, Any], folds: int) -> Any:
        from forgeml.config import Config

        raw = self.config.model_dump(mode="json")
        raw["model"] = dict(entry["model"])
        raw["train"] = {**raw["train"], **entry.get("train", {}), "bagging_folds": folds, "time_budget": None}
        return Config.from_dict(raw, source="portfolio.yaml")

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        from dataclasses import replace

        from forgeml.models.bagging import MemberOutOfTime
        from forgeml.models.estimator import FitSummary

        started = time.monotonic()
        if options.dist is not None and getattr(options.dist, "enabled", False):
            raise ConfigError("the ensemble trains in one process", where="model.type: ensemble",
                              hint="drop --nproc-per-node/--nnodes, or train one network family (--model mlp) data-parallel")
        # Out-of-fold predictions validate, so the default split has no validation share (workflow:
        # _fold_validation_into_train). A validation split the user asked for stays out of training:
        # its metrics and the permutation importance are computed on it, and must be held out.
        deadline = options.deadline if options.deadline is not None else started + auto_time_budget(len(y_train))
        refit = self.config.model.refit == "full" or (self.config.model.refit == "auto" and bool(
            portfolio()["presets"][self.config.model.preset].get("refit")))  # for speed: the trees too
        members_end = deadline - REFIT_SHARE * max(0.0, deadline - started) if refit else deadline  # the rest is the refits'
        plan, folds = self._plan(len(y_train))
        fitted: list[tuple[dict[str, Any], Any, np.ndarray]] = []
        history: list[dict[str, Any]] = []
        # Built first, so that the time left is shared among the members that can run: an n-gram
        # member on a table without text must not keep a share the others then lack.
        bags = []
        for position, (name, entry) in enumerate(plan):
            row: dict[str, Any] = {"member": name, "family": entry["model"]["type"], "folds": folds}
            label = f"member {position + 1}/{len(plan)} {name}"
            try:
                bags.append((name, entry, row, label, self._build_member(entry, folds)))
            except ForgeError as exc:  # a family this install lacks, an input kind it cannot read
                self.leaderboard.append({**row, "status": f"skipped: {exc.message}"})
                self._say(f"{label}: skipped ({exc.message})")
        for position, (name, entry, row, label, bag) in enumerate(bags):
            left = members_end - time.monotonic()
            if left < MIN_MEMBER_SECONDS:
                self.leaderboard.append({**row, "status": f"skipped: {max(left, 0):.1f} s of the time budget left"})
                continue
            member_deadline = time.monotonic() + min(left, left * MEMBER_SHARE / (len(bags) - position))
            self._say(f"{label}: fitting {folds} folds ({left:.0f} s of the budget left)")
            member_started = time.monotonic()
            checkpoint = Path(options.checkpoint_dir) / f"member_{name}" if options.checkpoint_dir else None
            member_options = replace(options, checkpoint_dir=checkpoint, deadline=member_deadline, label=label,
                                     callbacks=[_MemberRows(callback, name) for callback in options.callbacks],
                                     abandon_when_late=bool(fitted))  # the first member always ends: something to predict with
            try:
                summary = bag.fit(member_inputs(train, row["family"]), y_train, None, None, member_options)
            except MemberOutOfTime as exc:
                self.leaderboard.append({**row, "status": f"skipped {exc.when}: {exc.message}",
                                         "fit_seconds": round(time.monotonic() - member_started, 3)})
                self._say(f"{label}: skipped {exc.when} ({exc.message})")
                continue
            seconds = time.monotonic() - member_started
            history += [{"member": name, **item} for item in summary.history]
            fitted.append(({**row, "model": entry["model"], "train": entry.get("train", {}), "fit_seconds": round(seconds, 3),
                            "best_steps": summary.best_epoch, **({"note": summary.note} if summary.note else {})}, bag, bag.oof_))
            score = _score(self.task.name, y_train, bag.oof_)
            self._say(f"{label}: out-of-fold {score['score_name']} {score['score']} in {seconds:.1f} s" + (f" ({summary.note})" if summary.note else ""))
        if not fitted:
            raise ForgeError("the time budget ended before any model was fitted", where="train.time_budget",
                             hint="give a larger --time-budget (each member needs at least a few seconds)")
        self._select(fitted, y_train, train)
        if self.config.model.refit != "off":  # refit.py: the trees only when refit is on, n-grams always
            from forgeml.models.refit import refit_members

            refit_members(self, train, y_train, deadline, speed=refit)
        for _, bag, _ in fitted:  # what the folds shared (the n-gram matrix of every train row) is not kept past fit
            bag.fold_shared_ = None
        return FitSummary(history, 0, None, False, time.monotonic() - started)

    def _say(self, line: str) -> None:
        """One progress line per member (on stderr, like the progress bars), when train.progress is on."""
        if self.config.train.progress:
            import sys

            print(line, file=sys.stderr, flush=True)

    def member_spec(self, family: str) -> Any:
        """The inputs member ``family`` reads: all of them for networks; the tabular families
        (trees, linear) get the numbers and categories only — the ensemble's networks read the
        text and images, so those families need not refuse them here. A family whose module says
        ``READS_TEXT`` (the n-gram model) keeps the text columns too."""
        from dataclasses import replace

        from forgeml.models.families import family_module, network_types

        if family in network_types() or not (self.spec.tokens or self.spec.images):
            return self.spec
        tokens = self.spec.tokens if getattr(family_module(family), "READS_TEXT", False) else []
        tabular = replace(self.spec, tokens=tokens, images=[])
        if not tabular.dense_width and not tabular.codes and not tabular.tokens:
            raise ForgeError("no number or category inputs to read (only text or images)")
        return tabular

    def _build_member(self, entry: dict[str, Any], folds: int) -> Any:
        from forgeml.models.bagging import build_bagged
        from forgeml.models.families import FAMILIES, family_module

        family = entry["model"]["type"]
        if family not in FAMILIES:
            raise ForgeError(f"model family {family!r} is not available in this install")
        config = self.member_config(entry, folds)
        module = family_module(family)
        return build_bagged(config, self.task, self.member_spec(family), folds, module.build, module.load,
                            side_by_side=getattr(module, "FOLDS_SIDE_BY_SIDE", False))

    def _select(self, fitted: list[tuple[dict[str, Any], Any, np.ndarray]], y: np.ndarray, train: dict[str, np.ndarray]) -> None:
        from forgeml.models.bagging import predict_ms_per_row
        from forgeml.models.ensemble_selection import select_weights, selection_loss

        weights = select_weights(self.task.name, y, [oof for *_, oof in fitted], self.config.model.ensemble_size)
        level = self._stack(y, [oof for *_, oof in fitted])
        sample = {key: value[: min(len(y), 256)] for key, value in train.items()}
        for (row, bag, oof), weight in zip(fitted, weights):
            row.update(val_loss=round(selection_loss(self.task.name, y, oof), 6), **_score(self.task.name, y, oof), weight=round(float(weight), 4),
                       status="fitted", predict_ms_per_row=predict_ms_per_row(bag, member_inputs(sample, row["family"])))
            self.leaderboard.append(row)
            if weight > 0 or self.stacker is not None:
                self.members.append({**row, "estimator": bag})
        ensemble_oof = sum(float(w) * oof for (_, _, oof), w in zip(fitted, weights))
        self.leaderboard.append({"member": "ensemble", "family": "ensemble", "status": "fitted", "weight": 1.0, **level,
                                 "val_loss": round(selection_loss(self.task.name, y, ensemble_oof), 6), **_score(self.task.name, y, ensemble_oof),
                                 "fit_seconds": round(sum(r.get("fit_seconds", 0) for r, *_ in fitted), 3),
                                 "predict_ms_per_row": round(sum(m["predict_ms_per_row"] for m in self.members), 4)})

    def _stack(self, y: np.ndarray, predictions: list[np.ndarray]) -> dict[str, Any]:
        """Try the second level where asked; the leaderboard's words on which level won and why."""
        from forgeml.models.stacking import choose_level

        wanted = self.config.model.stacking
        if wanted == "off" or (wanted == "auto" and self.config.model.preset != "best"):
            return {"level": "weighted average"}
        choice = choose_level(self.task.name, y, predictions, self.config.model.ensemble_size, self.config.train.seed)
        self.stacker = choice.stacker
        said = f"held-out-fold loss: weighted average {choice.average_loss:.5f}, stacked {choice.stack_loss:.5f}"
        self._say(f"ensemble: {'stacked' if self.stacker is not None else 'weighted average'} ({said})")
        return {"level": ("stacked" if self.stacker is not None else "weighted average") + f" ({said})"}

    # ------------------------------------------------------------------ use
    @property
    def files(self) -> tuple[str, ...]:
        stacker = (STACKER_FILE,) if self.stacker is not None else ()
        return (SPEC_FILE, *stacker, *(f"member_{m['member']}/{name}" for m in self.members for name in m["estimator"].files))

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if self.stacker is not None:
            return self.stacker.scores([np.asarray(m["estimator"].scores(member_inputs(arrays, m["model"]["type"])), dtype=np.float64)
                                        for m in self.members])
        return sum(m["weight"] * np.asarray(m["estimator"].scores(member_inputs(arrays, m["model"]["type"])), dtype=np.float64)
                   for m in self.members)

    def save(self, directory: Path) -> list[str]:
        written = []
        for member in self.members:
            folder = Path(directory) / f"member_{member['member']}"
            folder.mkdir(exist_ok=True)
            written += [f"member_{member['member']}/{name}" for name in member["estimator"].save(folder)]
        spec = {"members": [{k: v for k, v in m.items() if k != "estimator"} for m in self.members], "leaderboard": self.leaderboard,
                "stacker": {"task": self.stacker.task} if self.stacker is not None else None}
        atomic_write_json(Path(directory) / SPEC_FILE, spec)
        if self.stacker is not None:
            from safetensors.numpy import save_file

            save_file({"weight": self.stacker.weight, "bias": self.stacker.bias}, str(Path(directory) / STACKER_FILE))
            return [SPEC_FILE, STACKER_FILE, *written]
        return [SPEC_FILE, *written]

    def feature_importance(self) -> dict[str, float] | None:
        parts = [(m["weight"], m["estimator"].feature_importance()) for m in self.members]
        parts = [(w, p) for w, p in parts if p]
        if not parts:
            return None
        total = sum(w for w, _ in parts)
        return {name: float(sum(w * p.get(name, 0.0) for w, p in parts) / total) for name in parts[0][1]}

    @classmethod
    def load(cls, directory: Path, config: Any, task: Any, spec: Any) -> "EnsembleEstimator":
        from forgeml.models.bagging import load_bagged
        from forgeml.models.families import FAMILIES, family_module

        instance = cls(config, task, spec)
        try:
            saved = json.loads((Path(directory) / SPEC_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{SPEC_FILE} does not load ({exc.__class__.__name__})", where=str(directory), hint="the bundle is corrupted; retrain or restore it") from None
        instance.leaderboard = saved.get("leaderboard", [])
        if saved.get("stacker"):
            from safetensors.numpy import load_file

            from forgeml.models.stacking import Stacker

            arrays = load_file(str(Path(directory) / STACKER_FILE))
            instance.stacker = Stacker(saved["stacker"]["task"], arrays["weight"], arrays["bias"])
        for member in saved["members"]:
            family = member["model"]["type"]
            if family not in FAMILIES:
                raise BundleError(f"the ensemble member {member['member']!r} needs the model family {family!r}, which this install lacks",
                                  where=str(directory), hint="install the forgeml version (and extras) that trained it")
            member_config = instance.member_config(member, member["folds"])
            module = family_module(family)
            bag = load_bagged(Path(directory) / f"member_{member['member']}", member_config, task, instance.member_spec(family), member["folds"],
                              module.load, side_by_side=getattr(module, "FOLDS_SIDE_BY_SIDE", False))
            instance.members.append({**member, "estimator": bag})
        return instance


class _MemberRows:
    """Tags each history row with the member that produced it (the report draws one curve per member)."""

    def __init__(self, inner: Any, member: str):
        self.inner, self.member = inner, member

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.inner.on_epoch_end({"member": self.member, **row})


def _score(task: str, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The leaderboard's score: ROC-AUC (binary), accuracy (multiclass), R² (regression)."""
    if task == "binary":
        from sklearn.metrics import roc_auc_score

        labels = np.asarray(y).ravel()
        return {"score_name": "roc_auc", "score": round(float(roc_auc_score(labels, scores[:, 1])), 6) if len(np.unique(labels)) > 1 else None}
    if task == "multiclass":
        return {"score_name": "accuracy", "score": round(float((scores.argmax(axis=1) == np.asarray(y).ravel()).mean()), 6)}
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    residual = ((scores.reshape(len(y), -1) - y) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return {"score_name": "r2", "score": round(float(np.mean(1 - residual / np.where(total > 0, total, 1))), 6)}


def build(config: Any, task: Any, spec: Any) -> EnsembleEstimator:
    return EnsembleEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Any, spec: Any) -> EnsembleEstimator:
    return EnsembleEstimator.load(directory, config, task, spec)


def describe(cfg: EnsembleConfig, inputs: dict[str, int]) -> str:
    return f"AutoML ensemble ({cfg.preset} preset)"
