"""Training on a teacher's probabilities (distillation): the soft-target losses and LightGBM's
weighted rows mean what they claim."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from forgeml.models.gbm import soft_rows
from forgeml.models.tasks import Task, soften


def test_soft_cross_entropy_at_temperature_one_is_the_hard_loss_on_one_hot_targets():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 3), torch.randint(0, 3, (16,))
    soft = Task.resolve("multiclass", "auto", 3).soft_loss_fn(1.0)
    assert torch.allclose(soft(logits, F.one_hot(labels, 3).float()), F.cross_entropy(logits, labels), atol=1e-6)


@pytest.mark.parametrize("name, classes", [("multiclass", 4), ("binary", 2)])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_soft_loss_is_smallest_where_the_student_says_what_the_teacher_says(name, classes, temperature):
    """The gradient vanishes when the student's probabilities equal the teacher's, at any temperature."""
    torch.manual_seed(1)
    task = Task.resolve(name, "auto", classes)
    teacher = torch.softmax(torch.randn(8, classes), dim=1)
    logits = torch.log(teacher) if task.output_size == classes else torch.log(teacher[:, 1:] / teacher[:, :1])  # bce: one logit
    logits = logits.clone().requires_grad_(True)
    task.soft_loss_fn(temperature)(logits, teacher).backward()
    assert logits.grad.abs().max() < 1e-6
    away = (logits.detach() + torch.randn_like(logits)).requires_grad_(True)
    assert task.soft_loss_fn(temperature)(away, teacher) > task.soft_loss_fn(temperature)(logits.detach(), teacher)


def test_soften_flattens_and_keeps_the_order():
    p = torch.tensor([[0.7, 0.2, 0.1]])
    warm = soften(p, 4.0)
    assert torch.allclose(warm.sum(dim=1), torch.ones(1)) and (warm.argsort() == p.argsort()).all()
    assert warm.max() < p.max() and torch.equal(soften(p, 1.0), p)


def test_regression_soft_loss_is_the_tasks_own():
    task = Task.resolve("regression", "auto", 1)
    out, target = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]])
    assert torch.isclose(task.soft_loss_fn(5.0)(out, target), F.mse_loss(out, target))


def test_lightgbm_weighted_rows_give_the_soft_cross_entropy():
    """Σ_rows Σ_c p_c · (−log q_c) over the expanded rows equals the soft cross-entropy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2))
    p = rng.dirichlet(np.ones(3), size=5)
    p[0] = [1.0, 0.0, 0.0]  # a class of probability 0 is left out
    q = rng.dirichlet(np.ones(3), size=5)
    x_all, (labels,), weights = soft_rows(x, p)
    assert len(labels) == 5 * 3 - 2
    row = np.concatenate([np.flatnonzero(p[:, c] > 1e-6) for c in range(3)])
    np.testing.assert_array_equal(x_all, x[row])
    expanded = -(weights * np.log(q[row, labels])).sum()
    assert expanded == pytest.approx(-(p * np.log(q)).sum())
