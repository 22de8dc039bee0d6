"""Evaluation plots, each returned as PNG bytes ready to embed in the HTML report.

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas directly rather
than through ``pyplot``: no global backend switch, no figure registry to leak into, nothing
to close, and it works in a server thread or on a machine without a display. Output is
deterministic for a given input (fixed sizes, dpi, seeded subsampling, no timestamp).

Class and column names are often not Latin (Chinese in our own examples), so text is drawn
with a CJK-capable font when one is installed (``cjk_fonts``: known families, else whatever
fontconfig lists for Chinese). When none is, characters without a glyph show as boxes and one
line is logged, once per process: a box for an unknown character is better than a crashed report.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import warnings
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
# Scatter plots of huge splits are slow and unreadable; a fixed-seed sample looks the same.
MAX_SCATTER_POINTS = 5000
# Legends and cell labels stop being readable beyond these sizes.
MAX_LEGEND_ENTRIES = 12
MAX_ANNOTATED_CLASSES = 25

# Families that cover CJK, most common first; matplotlib falls back glyph by glyph (>= 3.6).
_CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans SC", "Source Han Sans SC",
    "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
    "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Arial Unicode MS", "Droid Sans Fallback",
    "AR PL UMing CN", "AR PL UKai CN", "Noto Sans CJK KR",
)


# ----------------------------------------------------------------------------- plots
def learning_curves(history: list[dict], x_label: str = "epoch") -> bytes:
    """Losses per epoch on the left, validation metrics (f1, r2, ...) on the right.

    A bagged model's rows carry ``"fold": k``: each member's curve is drawn thin and their mean
    bold, so one member's luck is not the story. The mean stops where the first member stopped
    early: averaging over fewer members after that would draw steps that no model took.
    """
    from forgeml.runs.registry import epoch_rows, epochs_all_members_trained

    with _figure_context():
        members = _by_fold(history)
        bagged = len(members) > 1
        mean = epochs_all_members_trained(epoch_rows(history)) if bagged else history
        epochs = [row.get("epoch", i + 1) for i, row in enumerate(mean)]
        marker = "o" if len(mean) <= 100 else None  # a LightGBM history has a row per round
        keys = list(dict.fromkeys(k for row in history for k in row if k != "fold"))
        loss_keys = [k for k in keys if k.endswith("loss")]
        metric_keys = [k for k in keys if k.startswith("val_") and not k.endswith("loss")]
        panels = 2 if metric_keys else 1
        fig = _new_figure(5.0 * panels + 1.0, 4.0)
        axes = fig.subplots(1, panels, squeeze=False)[0]
        if not history:
            return _empty(fig, axes[0], "no training history")
        for ax, group, title in zip(axes, (loss_keys, metric_keys), ("Loss", "Validation metrics")):
            for key in group:
                label = f"{key} (mean of {len(members)} members)" if bagged else key
                line, = ax.plot(epochs, [_number(row.get(key)) for row in mean], marker=marker, markersize=3, label=label)
                for rows in members.values() if bagged else ():
                    ax.plot([r.get("epoch") for r in rows], [_number(r.get(key)) for r in rows],
                            color=line.get_color(), linewidth=0.8, alpha=0.5)
            ax.set_title(title)
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
            if group:
                ax.legend(fontsize="small")
        return _png(fig)


def _by_fold(history: list[dict]) -> dict[object, list[dict]]:
    members: dict[object, list[dict]] = {}
    for row in history:
        members.setdefault(row.get("fold"), []).append(row)
    return members


def roc_curves(y_true: np.ndarray, y_proba: np.ndarray, class_names: Sequence[str]) -> bytes:
    """ROC curve of the positive class (binary) or of each present class one-vs-rest."""
    from sklearn.metrics import auc, roc_curve

    def draw(ax: Axes, truth: np.ndarray, score: np.ndarray, name: str) -> None:
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")

    def finish(ax: Axes) -> None:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")

    return _one_vs_rest(y_true, y_proba, class_names, "ROC curve", draw, finish)


def pr_curves(y_true: np.ndarray, y_proba: np.ndarray, class_names: Sequence[str]) -> bytes:
    """Precision-recall curve per class; the legend gives average precision (PR AUC)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    def draw(ax: Axes, truth: np.ndarray, score: np.ndarray, name: str) -> None:
        precision, recall, _ = precision_recall_curve(truth, score)
        ax.step(recall, precision, where="post",
                label=f"{name} (AP {average_precision_score(truth, score):.3f})")

    def finish(ax: Axes) -> None:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")

    return _one_vs_rest(y_true, y_proba, class_names, "Precision-recall curve", draw, finish)


def confusion_matrix_plot(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> bytes:
    """Counts in each cell, coloured by the row-normalised rate so small classes stay visible."""
    counts = np.asarray(matrix, dtype=np.int64)
    n = counts.shape[0]
    row_totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, row_totals, out=np.zeros(counts.shape, dtype=float), where=row_totals > 0)
    with _figure_context():
        labels = [_short(str(name)) for name in class_names]
        label_room = 0.09 * max((len(label) for label in labels), default=1)  # inches for tick labels
        side = float(np.clip(1.0 + 0.5 * n, 4.0, 12.0))
        fig = _new_figure(side + 1.0 + label_room, side + label_room, layout="constrained")
        ax = fig.subplots()
        image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class")
        ticks = np.arange(n)
        rotate = n > 4 or max((len(label) for label in labels), default=0) > 8
        ax.set_xticks(ticks, labels=labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticks(ticks, labels=labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix")
        if n <= MAX_ANNOTATED_CLASSES:
            for row in range(n):
                for col in range(n):
                    ax.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize="small",
                            color="white" if rates[row, col] > 0.5 else "black")
        return _png(fig)


def predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray,
                        target_names: Sequence[str] | None = None) -> bytes:
    """Scatter of prediction against truth, one panel per target, with the y = x line."""

    def draw(ax: Axes, truth: np.ndarray, pred: np.ndarray) -> None:
        ax.scatter(truth, pred, s=8, alpha=0.5, edgecolors="none")
        low, high = _finite_range(truth, pred)
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")

    return _per_target(y_true, y_pred, target_names, "Predicted vs actual", draw)


def residuals(y_true: np.ndarray, y_pred: np.ndarray, target_names: Sequence[str] | None = None) -> bytes:
    """Residual (actual - predicted) against prediction: patterns here mean systematic error."""

    def draw(ax: Axes, truth: np.ndarray, pred: np.ndarray) -> None:
        ax.scatter(pred, truth - pred, s=8, alpha=0.5, edgecolors="none")
        ax.axhline(0.0, linestyle="--", color="grey", linewidth=1)
        ax.set_xlabel("predicted")
        ax.set_ylabel("residual (actual - predicted)")

    return _per_target(y_true, y_pred, target_names, "Residuals", draw)


def feature_importance(importance: dict[str, float], top: int = 20) -> bytes:
    """Horizontal bars of the ``top`` features by absolute importance, largest at the top."""
    ranked = sorted(importance.items(), key=lambda item: (-abs(_number(item[1], 0.0)), str(item[0])))[:top]
    with _figure_context():
        fig = _new_figure(7.0, float(np.clip(1.0 + 0.3 * len(ranked), 3.0, 10.0)))
        ax = fig.subplots()
        if not ranked:
            return _empty(fig, ax, "no feature importance")
        names = [str(name) for name, _ in reversed(ranked)]
        ax.barh(names, [_number(value, 0.0) for _, value in reversed(ranked)], color="#4c72b0")
        ax.set_title(f"Feature importance (top {len(ranked)})")
        ax.grid(axis="x", alpha=0.3)
        return _png(fig)


# ----------------------------------------------------------------------------- shared layouts
def _one_vs_rest(
    y_true: np.ndarray,
    y_proba: np.ndarray,
    class_names: Sequence[str],
    title: str,
    draw: Callable[[Axes, np.ndarray, np.ndarray, str], None],
    finish: Callable[[Axes], None],
) -> bytes:
    """One curve per class that is present but not alone in ``y_true`` (binary: positive only)."""
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    proba = np.asarray(y_proba, dtype=np.float64)
    names = list(class_names) if class_names else [str(c) for c in range(proba.shape[1])]
    present = np.unique(y_true)
    classes = [1] if proba.shape[1] == 2 else [int(c) for c in present]
    with _figure_context():
        fig = _new_figure(6.0, 5.0)
        ax = fig.subplots()
        if present.size < 2:
            return _empty(fig, ax, "only one class in this split")
        for c in classes:
            draw(ax, y_true == c, proba[:, c], str(names[c]) if c < len(names) else str(c))
        finish(ax)
        ax.set_title(title)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.grid(alpha=0.3)
        if len(classes) <= MAX_LEGEND_ENTRIES:
            ax.legend(fontsize="small", loc="best")
        return _png(fig)


def _per_target(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    target_names: Sequence[str] | None,
    title: str,
    draw: Callable[[Axes, np.ndarray, np.ndarray], None],
) -> bytes:
    # Shapes: (N,) or (N, T) -> (N, T)
    truth = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    n_targets = truth.shape[1]
    names = list(target_names) if target_names else [f"target_{t}" for t in range(n_targets)]
    rows = _sample_rows(truth.shape[0])
    with _figure_context():
        cols = min(n_targets, 3)
        grid_rows = -(-n_targets // cols)
        fig = _new_figure(5.0 * cols, 4.5 * grid_rows)
        axes = fig.subplots(grid_rows, cols, squeeze=False).reshape(-1)
        if truth.shape[0] == 0:
            return _empty(fig, axes[0], "no rows")
        for t in range(n_targets):
            draw(axes[t], truth[rows, t], pred[rows, t])
            axes[t].set_title(title if n_targets == 1 else f"{title}: {names[t]}")
            axes[t].grid(alpha=0.3)
        for ax in axes[n_targets:]:
            ax.set_visible(False)
        return _png(fig)


# ----------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _figure_context() -> Iterator[None]:
    """Fonts with CJK fallback for the duration of one plot. Missing-glyph warnings are caught:
    the first plot that lacks glyphs logs one line naming the characters (and, when no CJK font is
    installed, what to install); the plot is still drawn, with boxes for those characters."""
    import matplotlib

    # Latin text keeps its usual font and CJK glyphs fall back to the next family: matplotlib (>= 3.6)
    # falls back glyph by glyph along ``font.family`` (not along ``font.sans-serif``, which picks one font).
    families = ["DejaVu Sans", *cjk_fonts()]
    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context(
        {"font.family": families, "axes.unicode_minus": False}
    ):
        for pattern in _GLYPH_WARNINGS:
            warnings.filterwarnings("always", message=pattern)  # recorded here, even under an outer "error" filter
        yield
    missing = []
    for warning in caught:
        text = str(warning.message)
        if any(re.match(pattern, text) for pattern in _GLYPH_WARNINGS):
            missing.append(text)
        else:  # not ours to swallow
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if missing:
        _warn_missing_glyphs(missing)


_GLYPH_WARNINGS = (r".*[Gg]lyph.*missing.*", r".*missing from (current )?font.*")
_warned_missing_glyphs = False
log = logging.getLogger("forgeml.evaluate.plots")


def _warn_missing_glyphs(messages: list[str]) -> None:
    """One log line per process: a report with many plots should not repeat it in every one."""
    global _warned_missing_glyphs
    if _warned_missing_glyphs:
        return
    _warned_missing_glyphs = True
    characters = sorted({chr(int(code)) for code in re.findall(r"Glyph (\d+)", " ".join(messages))})  # "Glyph 29483 (...) missing ..."
    what = f"characters {' '.join(characters[:10])}" if characters else "some characters"
    if cjk_fonts():
        log.warning("%s have no glyph in the installed fonts; they show as boxes in the report's plots", what)
    else:
        log.warning("%s show as boxes in the report's plots: no CJK-capable font is installed "
                    "(install one, e.g. Debian's fonts-noto-cjk or fonts-wqy-microhei)", what)


@functools.lru_cache(maxsize=1)
def cjk_fonts() -> tuple[str, ...]:
    """Installed CJK-capable families, looked up once per process.

    Known families first (by name, from matplotlib's font list). matplotlib caches that list the
    first time it runs, so a font installed afterwards is invisible to it: when no known family is
    listed, fontconfig is asked for every font covering Chinese (``fc-list :lang=zh``) and those
    files are added to matplotlib's list for this process.
    """
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    known = tuple(name for name in _CJK_FONTS if name in installed)
    return known or _fontconfig_cjk_fonts()


def _fontconfig_cjk_fonts() -> tuple[str, ...]:
    import shutil
    import subprocess

    from matplotlib import font_manager

    if shutil.which("fc-list") is None:  # no fontconfig (Windows, bare macOS): the known names are all we have
        return ()
    try:
        listing = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    names: list[str] = []
    for path in sorted({line.rstrip().rstrip(":") for line in listing.splitlines() if line.strip()}):
        try:
            font_manager.fontManager.addfont(path)
            name = font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue  # a file matplotlib cannot read (some bitmap formats): skip it
        if name not in names:
            names.append(name)
    return tuple(names)


def _short(label: str, limit: int = 24) -> str:
    """Long class names (\"Adelie Penguin (Pygoscelis adeliae)\") would squeeze the matrix to nothing."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _new_figure(width: float, height: float, layout: str = "constrained") -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk: the bytes depend on the figure only, not on the install.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def _empty(fig: Figure, ax: Axes, message: str) -> bytes:
    """A labelled blank panel: the report keeps its layout and says why there is no curve."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_axis_off()
    return _png(fig)


def _sample_rows(n: int) -> np.ndarray:
    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=MAX_SCATTER_POINTS, replace=False))


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if values.size == 0:
        return 0.0, 1.0
    return float(values.min()), float(values.max())


def _number(value: object, default: float = float("nan")) -> float:
    """History values may be None (a metric not computed that epoch): plot a gap, not a crash."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
