"""What a Pipeline's report.html is made of (``ReportInputs``): its evaluation, history, notes and
the sections other stages left on it (tuning, compression, explanations). Kept out of api.py so
the Pipeline class stays one subject (fit, predict, save, load)."""
from __future__ import annotations

from typing import Any

from forgeml.api_describe import describe_model, privacy_spent


def report_inputs(self: Any, evaluation: Any = None, title: str | None = None) -> Any:
    """What ``report`` renders (``forgeml.evaluate.report.ReportInputs``): the held-out
    evaluation by default, or ``evaluation`` (``last_evaluation_``) for new data."""
    from forgeml.evaluate.report import ReportInputs
    from forgeml.runs.registry import epoch_rows, step_name
    from forgeml.train.privacy import describe_spent

    predictor = self._check_fitted()
    prepared = getattr(self, "prepared_", None)
    evaluation = evaluation or getattr(self, "evaluations_", {}).get(getattr(self, "test_split_", "test"))
    task = predictor.task
    history = self.fit_summary_.history if hasattr(self, "fit_summary_") else getattr(self, "loaded_history_", [])
    notes = list(prepared.messages) if prepared else []
    if prepared and not len(prepared.frames.get("validation", [])):
        notes.append("no validation split: early stopping was off and the final epoch's weights were kept")
    if prepared and getattr(self, "test_split_", "test") == "validation":
        notes.append("no test split: the metrics are on the validation split, which also chose the stopping epoch")
    if getattr(self, "importance_", None):
        notes.append("feature importance: each input's contribution to the validation loss — how much the loss grows when that column "
                     "is shuffled (permutation importance; an image or text column counts as one input)")
    notes += [privacy_note] if (privacy_note := describe_spent(privacy_spent(self))) else []
    step = step_name(predictor.config.model.type)
    if hasattr(self, "fit_summary_"):
        notes.append(f"trained {len(epoch_rows(history))} {step}s in {self.fit_summary_.seconds:.1f} s; best {step.split()[-1]} {self.fit_summary_.best_epoch}"
                     + (" (early stopping)" if self.fit_summary_.stopped_early else ""))
    validation = getattr(self, "evaluations_", {}).get("validation")
    return ReportInputs(
        title=title or f"forgeml — {', '.join(predictor.config.target)}",
        task=task.name,
        targets=list(predictor.config.target),
        model_description=describe_model(predictor),
        metrics=evaluation.metrics if evaluation else {},
        validation_metrics=validation.metrics if validation and evaluation is not validation else None,
        history=history,
        step_name=step,
        y_true=evaluation.y_true if evaluation else None,
        y_proba=evaluation.scores if evaluation is not None and task.is_classification else None,
        y_pred=evaluation.scores if evaluation is not None and not task.is_classification else None,
        class_names=predictor.class_names,
        data_summary=prepared.summary if prepared else getattr(self, "loaded_summary_", None),
        cleaning=prepared.cleaning.to_dict() if prepared else getattr(self, "loaded_cleaning_", None),
        feature_importance=getattr(self, "importance_", None),
        config_yaml=predictor.config.to_yaml(),
        error_examples=_error_examples_for(self, evaluation),
        extra_notes=notes,
        leaderboard=getattr(predictor.estimator, "leaderboard", None),
        tuning=getattr(self, "tuning_", None),  # set by forgeml tune on the refit of its best trial
        compression=getattr(self, "compression_", None),  # set by forgeml compress (compress/tradeoff.py)
        explanations=getattr(self, "explanations_", None),
    )

def _error_examples_for(self: Any, evaluation: Any) -> dict[str, Any] | None:
    """The worst-error examples of the held-out split or of the last ``evaluate`` call."""
    if evaluation is not None and evaluation is getattr(self, "evaluations_", {}).get(getattr(self, "test_split_", "test")):
        return getattr(self, "error_examples_", None)
    if evaluation is not None and evaluation is getattr(self, "last_evaluation_", None):
        return getattr(self, "last_error_examples_", None)
    return None
