"""A linear model: logistic regression (classes) or ridge regression (numbers), from scikit-learn.

Why it is a family: on small or nearly linear tables a regularised linear model is hard to beat,
and it is a cheap, differently-biased member for an ensemble. The design matrix is the ``dense``
array (already scaled) plus a one-hot column per category code (sparse, so a 1,000-value
category costs nothing). ``alpha`` is the L2 strength (logistic regression's C is 1/alpha);
``auto`` fits a path from strong to weak (``ALPHAS``) and keeps the alpha with the lowest
validation loss, the linear model's version of early stopping. Huber and Poisson losses use
scikit-learn's HuberRegressor and PoissonRegressor, one per target.

Saved as two arrays in ``linear.safetensors`` (no pickle): ``weight`` [dense columns + every
code's one-hot width, outputs] and ``bias`` [outputs]. Predicting needs only numpy: the dense
product plus one table row per category code, then softmax (classes), exp (Poisson) or nothing.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError
from forgeml.models.tabular import refuse_unread_inputs
from forgeml.tune.space import Float

if TYPE_CHECKING:
    from forgeml.features.featureset import InputSpec
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

STEP_NAME = "regularisation step"  # one alpha of the path, strongest first, as epochs go simple → complex
WEIGHTS = "linear.safetensors"
ALPHAS = tuple(float(a) for a in np.logspace(3, -3, 7))  # strongest first
DEFAULT_ALPHA = 1.0  # alpha "auto" without a validation split to choose with


def positive_alpha(value: float | str) -> float | str:
    """alpha's check, shared by every family with a linear model's L2 strength (linear, ngram)."""
    if not isinstance(value, str) and value <= 0:
        raise ValueError("alpha must be greater than 0, or 'auto'")
    return value


class LinearConfig(_Strict):
    type: Literal["linear"] = "linear"
    alpha: float | Literal["auto"] = Field(
        "auto", description="L2 strength (ridge alpha; logistic regression's C is 1/alpha). auto: the alpha of 1000 … 0.001 with the "
        "lowest validation loss (1.0 without a validation split).")
    max_iter: int = Field(1000, ge=1, description="Solver iterations (logistic, Huber and Poisson fits).")

    # `forgeml tune --model linear`: the L2 strength over the same decades as alpha "auto"'s path,
    # continuous (logistic regression's C is 1/alpha)
    search_space: ClassVar[dict] = {"model.alpha": Float(1e-4, 1e3, log=True)}

    _positive = field_validator("alpha")(positive_alpha)


def _output(task: Task) -> str:
    """How raw outputs become scores: softmax over classes, exp for Poisson, else as they are."""
    return "softmax" if task.is_classification else "exp" if task.loss == "poisson" else "identity"


FIRST_CHUNK = 30  # with a deadline, a solve runs this many iterations, then as many as the time left allows


def clock() -> float:
    """The solver's clock (tests replace it with a fake one: no test waits on real time)."""
    return time.monotonic()


def solve_until(model: Any, x: Any, y: np.ndarray, row_weights: np.ndarray | None, max_iter: int,
                deadline: float | None) -> tuple[int, bool]:
    """Fit a warm-startable scikit-learn solver (``warm_start=True``) for up to ``max_iter``
    iterations, stopping at ``deadline``: (iterations run, whether the deadline stopped it).

    Why: one L-BFGS solve of the n-gram model is not interruptible and took 6–12 s on birds
    (19k rows, 24k n-gram columns): a fold given 6 s of the ensemble's time overran it by the
    whole solve. With a deadline the solve runs ``FIRST_CHUNK`` iterations, measures their pace,
    and continues (from where it stopped) for as many as fit in the time left — usually to the
    end in one more call, so the result equals one uninterrupted solve within its tolerance.
    Without a deadline it is one call, as before."""
    if deadline is None:
        model.set_params(max_iter=max_iter)
        model.fit(x, y, sample_weight=row_weights)
        return int(np.max(model.n_iter_)), False
    done, chunk = 0, min(FIRST_CHUNK, max_iter)
    while True:
        started = clock()
        model.set_params(max_iter=chunk)
        model.fit(x, y, sample_weight=row_weights)
        ran = int(np.max(model.n_iter_))
        done += ran
        if ran < chunk or done >= max_iter:
            return done, False  # converged (or the iteration limit, as without a deadline)
        pace = (clock() - started) / max(ran, 1)
        affordable = int((deadline - clock()) / pace) if pace > 0 else max_iter
        if affordable < 1:
            return done, True
        chunk = min(max_iter - done, affordable)


def cut_note(cut: list[tuple[float, int]]) -> str:
    """The leaderboard's words for solves the deadline stopped."""
    return "; ".join(f"alpha {alpha:g} stopped by its time share after {iterations} solver iterations" for alpha, iterations in cut)


class LinearEstimator:
    files: tuple[str, ...] = (WEIGHTS,)
    weights_file = WEIGHTS
    family = "linear"
    alphas: tuple[float, ...] = ALPHAS  # the "auto" path, strongest first
    default_alpha = DEFAULT_ALPHA  # "auto" without a validation split
    stop_when_worse = False  # end the path at the first alpha whose validation loss is worse than the best

    def __init__(self, config: Any, task: Task, spec: InputSpec):
        self.config, self.task, self.spec = config, task, spec
        self._check_inputs(spec)
        self.weight: np.ndarray | None = None  # [dense + one-hot columns, outputs]
        self.bias: np.ndarray | None = None  # [outputs]
        self.alpha_: float | None = None
        self._warm: Any = None  # during fit: the logistic regression of the previous path step (its solution starts the next)
        self.iterations_ = 0  # solver iterations of the last fit, every path step together
        self.cut_: list[tuple[float, int]] = []  # (alpha, iterations) of each solve the deadline stopped
        widths = [cardinality for _, cardinality, _ in spec.codes]
        # the first weight row of each category's one-hot block
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)[:-1] + spec.dense_width

    def _check_inputs(self, spec: InputSpec) -> None:
        refuse_unread_inputs(spec, "linear")

    def design_width(self) -> int:
        """Rows of ``weight``: the dense columns and every category's one-hot block."""
        return self.spec.dense_width + sum(cardinality for _, cardinality, _ in self.spec.codes)

    # ------------------------------------------------------------------ fit
    def _design(self, arrays: dict[str, np.ndarray]) -> Any:
        """Dense columns plus one-hot codes, as a sparse matrix when there are codes."""
        dense = np.nan_to_num(arrays["dense"].astype(np.float64))
        codes = arrays["codes"].astype(np.int64)
        if not codes.shape[1]:
            return dense
        from scipy import sparse

        rows, width = len(dense), sum(cardinality for _, cardinality, _ in self.spec.codes)
        columns = (codes + self.offsets - self.spec.dense_width).ravel()
        one_hot = sparse.csr_matrix((np.ones(codes.size), (np.repeat(np.arange(rows), codes.shape[1]), columns)), shape=(rows, width))
        return sparse.hstack([sparse.csr_matrix(dense), one_hot], format="csr")

    def _fit_one(self, alpha: float, x: Any, y: np.ndarray, row_weights: np.ndarray | None,
                 deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(weight [columns, outputs], bias [outputs]) of the model at ``alpha``. A logistic
        regression starts from the previous alpha's solution (``self._warm``): along the path the
        optimum moves little, and the next step then needs about 40 % fewer solver iterations
        (birds: 89 instead of 151). ``deadline``: the solve stops there with what it has
        (``solve_until``), and ``self.cut_`` says so."""
        from sklearn import linear_model

        seed, max_iter = self.config.train.seed, self.config.model.max_iter
        if self.task.is_classification:
            model = self._warm
            if model is None:
                model = linear_model.LogisticRegression(C=1.0 / alpha, max_iter=max_iter, random_state=seed, warm_start=True)
            model.set_params(C=1.0 / alpha)
            iterations, cut = solve_until(model, x, y, row_weights, max_iter, deadline)
            self._warm, self.iterations_ = model, self.iterations_ + iterations
            if cut:
                self.cut_.append((alpha, iterations))
            weight, bias = np.zeros((x.shape[1], self.task.n_targets)), np.full(self.task.n_targets, -np.inf)
            classes = model.classes_.astype(np.int64)
            if len(classes) == 2:  # one coefficient row: softmax([0, z]) is sigmoid(z)
                weight[:, classes[1]], bias[classes] = model.coef_[0], (0.0, model.intercept_[0])
            else:
                weight[:, classes], bias[classes] = model.coef_.T, model.intercept_
            return weight, bias  # a class absent from the train rows keeps probability 0
        y = y.reshape(len(y), -1)
        if self.task.loss == "mse":
            model = linear_model.Ridge(alpha=alpha, random_state=seed).fit(x, y)
            return np.atleast_2d(model.coef_).T.copy(), np.atleast_1d(model.intercept_).astype(np.float64)
        make = (lambda: linear_model.PoissonRegressor(alpha=alpha, max_iter=max_iter)) if self.task.loss == "poisson" else \
            (lambda: linear_model.HuberRegressor(alpha=alpha, max_iter=max_iter))
        fitted = [make().fit(x, y[:, i]) for i in range(y.shape[1])]
        return np.stack([m.coef_ for m in fitted], axis=1), np.array([m.intercept_ for m in fitted], dtype=np.float64)

    def _loss(self, arrays: dict[str, np.ndarray], y: np.ndarray) -> float:
        """The task's loss on these rows: log-loss, mean squared error, Huber or Poisson deviance."""
        scores = self.scores(arrays)
        if self.task.is_classification:
            picked = scores[np.arange(len(y)), np.asarray(y, dtype=np.int64).ravel()]
            return float(-np.log(np.clip(picked, 1e-15, None)).mean())
        y = np.asarray(y, dtype=np.float64).reshape(scores.shape)
        if self.task.loss == "poisson":
            return float(np.mean(scores - y * np.log(np.clip(scores, 1e-15, None))))
        residual = np.abs(scores - y)
        if self.task.loss == "huber":
            return float(np.mean(np.where(residual <= 1, 0.5 * residual ** 2, residual - 0.5)))
        return float(np.mean(residual ** 2))

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        from forgeml.models.estimator import FitSummary

        started = time.perf_counter()
        has_val = val is not None and y_val is not None and len(y_val) > 0
        setting = self.config.model.alpha
        alphas = (self.alphas if has_val else (self.default_alpha,)) if setting == "auto" else (float(setting),)
        x = self._design(train)
        class_weights = self.task.class_weights(self.config.train.class_weight, y_train)
        row_weights = None if class_weights is None else class_weights[np.asarray(y_train, dtype=np.int64).ravel()]
        deadline = getattr(options, "deadline", None)
        self._warm, self.iterations_, self.cut_ = None, 0, []
        history: list[dict[str, Any]] = []
        best: tuple[float, int, np.ndarray, np.ndarray, float] | None = None
        for step, alpha in enumerate(alphas, start=1):
            if best is not None and deadline is not None and time.monotonic() >= deadline:
                break  # the best alpha so far is kept
            with warnings.catch_warnings():
                # a path point that has not converged is judged by its validation loss like any other
                from sklearn.exceptions import ConvergenceWarning

                warnings.simplefilter("ignore", ConvergenceWarning)
                self.weight, self.bias = self._fit_one(alpha, x, y_train, row_weights, deadline)
            row: dict[str, Any] = {"epoch": step, "alpha": alpha, "train_loss": self._loss(train, y_train)}
            if has_val:
                row["val_loss"] = self._loss(val, y_val)
            history.append(row)
            for callback in options.callbacks:
                callback.on_epoch_end(dict(row))
            value = row.get("val_loss", row["train_loss"])
            if best is None or value < best[0]:
                best = (value, step, self.weight, self.bias, alpha)
            elif self.stop_when_worse and has_val:
                break  # the loss along the path is U-shaped: weaker alphas only overfit more
            if self.cut_:
                break  # the deadline stopped this solve: no time for weaker alphas
        assert best is not None
        value, step, self.weight, self.bias, self.alpha_ = best
        self._warm = None  # the solver holds a copy of the design's size: not kept past fit
        note = cut_note(self.cut_) if self.cut_ else None
        return FitSummary(history, step, value if has_val else None, len(history) < len(alphas), time.perf_counter() - started, note=note)

    # ------------------------------------------------------------------ use
    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if self.weight is None or self.bias is None:
            from forgeml.errors import NotFittedError

            raise NotFittedError(f"the {self.family} model is not fitted yet", hint="call fit first")
        return self._finish(self._raw_scores(arrays))

    def _raw_scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The linear part, (N, outputs), before softmax or exp."""
        assert self.weight is not None and self.bias is not None
        width = self.spec.dense_width
        out = np.nan_to_num(arrays["dense"].astype(np.float64)) @ self.weight[:width] + self.bias  # (N, K)
        codes = arrays["codes"].astype(np.int64)
        for j in range(codes.shape[1]):
            out += self.weight[self.offsets[j] + codes[:, j]]  # the one-hot product, as a row lookup
        return out

    def _finish(self, out: np.ndarray) -> np.ndarray:
        """Raw outputs → scores: softmax over classes, exp for Poisson, else as they are."""
        kind = _output(self.task)
        if kind == "softmax":
            out = np.exp(out - out.max(axis=1, keepdims=True))  # exp(-inf) = 0 for a class never seen
            return out / out.sum(axis=1, keepdims=True)
        return np.exp(out) if kind == "exp" else out

    def feature_importance(self) -> dict[str, float] | None:
        """Per input column: mean |weight| over outputs (dense columns are scaled); for a category,
        the spread of its one-hot weights."""
        if self.weight is None:
            return None
        weight = np.abs(self.weight - self.weight.mean(axis=0, keepdims=True)) if self.task.is_classification else np.abs(self.weight)
        values = {name: float(weight[i].mean()) for i, name in enumerate(self.spec.dense_columns)}
        for j, (name, cardinality, _) in enumerate(self.spec.codes):
            table = self.weight[self.offsets[j]: self.offsets[j] + cardinality]
            values[name] = float((table.max(axis=0) - table.min(axis=0)).mean()) if cardinality else 0.0
        total = sum(values.values())
        return {name: v / total for name, v in values.items()} if total > 0 else None

    def save(self, directory: Path) -> list[str]:
        from safetensors.numpy import save_file

        save_file({"weight": np.ascontiguousarray(self.weight), "bias": np.ascontiguousarray(self.bias)}, str(Path(directory) / self.weights_file),
                  metadata={"format": "forgeml", "model": self.family, "alpha": repr(self.alpha_), "output": _output(self.task)})
        return [self.weights_file]

    @classmethod
    def load(cls, directory: Path, config: Any, task: Task, spec: InputSpec) -> "LinearEstimator":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        instance = cls(config, task, spec)
        instance._load_extra(Path(directory))
        path = Path(directory) / cls.weights_file
        try:
            tensors = load_file(str(path))
            instance.weight, instance.bias = tensors["weight"], tensors["bias"]
        except (SafetensorError, OSError, KeyError) as exc:
            raise BundleError(f"{cls.family} model does not load ({exc.__class__.__name__})", where=str(path),
                              hint="the bundle is corrupted; retrain or restore it") from None
        rows = instance.design_width()
        if instance.weight.shape[0] != rows or instance.weight.shape[1] != len(instance.bias):
            raise BundleError(f"linear weights are {instance.weight.shape}, the features need {rows} rows", where=str(path),
                              hint="the bundle's features.json and weights come from different runs; retrain")
        return instance

    def _load_extra(self, directory: Path) -> None:
        """What a subclass reads before the weights (the n-gram family's vocabularies)."""


def build(config: Any, task: Task, spec: InputSpec) -> LinearEstimator:
    return LinearEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> LinearEstimator:
    return LinearEstimator.load(directory, config, task, spec)


def describe(cfg: LinearConfig, inputs: dict[str, int]) -> str:
    alpha = "alpha chosen on validation" if cfg.alpha == "auto" else f"alpha {cfg.alpha:g}"
    return f"linear model (L2, {alpha})"
