"""Cross-entropy with label smoothing (torch.nn.CrossEntropyLoss) for nn.Linear(2, 2) on
two classes: the tutorial's other loss."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.lazy import np, torch
from pipeline.losses.spec import ClassLoss, Fused

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.losses.spec import Array


def point(u: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Per point, the loss's term and its derivative in u = z_y - z_other, for two classes
    with smoothed targets q (the true class: 1 - eps / 2) and 1 - q: the loss
    q softplus(-u) + (1 - q) softplus(u), the derivative sigmoid(u) - q. (So dL/dz_y =
    -dL/dz_other = sigmoid(u) - q: the softmax minus the smoothed one-hot.)"""
    e = u.abs().neg_().exp_()  # in (0, 1]: neither softplus nor sigmoid overflows
    right = u >= 0
    slope = torch.where(right, 1.0, e).div_(e + 1).sub_(q)  # sigmoid(u) - q
    return torch.where(right, 1 - q, -q).mul_(u).add_(e.log1p_()), slope


def softmax(z: Array) -> Array:
    """Row-wise softmax of logits z (n, classes), shifted by each row's max (no overflow)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def closed_form(
    w: Array, b: Array, x: Array, labels: Sequence[int], smoothing: float
) -> tuple[float, Array, Array]:
    """The mean cross-entropy of logits x W^T + b against `labels` with label smoothing,
    and its gradients dL/dW (classes, features) and dL/db (classes), in NumPy: with q the
    smoothed one-hot ((1 - smoothing) on the label, smoothing / classes everywhere),
    dL/dz_i = (softmax(z_i) - q_i) / n, dL/dW = sum_i dL/dz_i x_i^T, dL/db = sum_i dL/dz_i."""
    z = x @ w.T + b
    n, k = z.shape
    q = np.full((n, k), smoothing / k)
    q[np.arange(n), np.asarray(labels)] += 1.0 - smoothing
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    value = float(-(q * log_p).sum() / n)
    dz = (softmax(z) - q) / n
    return value, dz.T @ x, dz.sum(axis=0)


Q, RIGHT, WRONG, ONE = range(4)  # fused_point's rows: q, 1 - q, -q, 1 (training dtype)


def _coefficients(smoothing: Array, n: int, dtype: type) -> dict[str, Array]:
    q: Array = (1 - smoothing / 2).astype(dtype)  # as `point` gets it: float64, then the dtype
    return {"q": q, "right": dtype(1) - q, "wrong": -q, "one": np.ones_like(q)}


def fused_point(u: float, k: Array, c: int) -> tuple[float, float]:
    """`point` for one point of cell c, op for op (exp and log1p: the C library's)."""
    q, one, good, bad = k[Q, c], k[ONE, c], k[RIGHT, c], k[WRONG, c]  # loads first
    e = math.exp(-abs(u))
    right = u >= 0
    term = (good if right else bad) * u + math.log1p(e)
    return term, (one if right else e) / (e + one) - q


LOSS = ClassLoss(
    name="ce",
    torch="CrossEntropyLoss",
    point=point,
    smoothing=True,
    fused=Fused(fused_point, _coefficients),
)
