"""Clipping by norm by hand: against torch.nn.utils.clip_grad_norm_ (the oracle) and by hand."""

import math

import pytest
import torch

from pipeline.clips import handnorm
from tests.helpers.gradients import NORM_TYPES, SHAPES, clone, random_params


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize(
    ("seed", "scale", "max_norm"), [(0, 1.0, 0.5), (1, 10.0, 1.0), (2, 0.01, 1.0)]
)
def test_hand_norm_clipping_matches_torch(norm_type, shapes, seed, scale, max_norm) -> None:
    """clip_norm_ gives torch's norm and torch's clipped gradients to 1e-6, clipping or not."""
    ours = random_params(shapes, seed, scale)
    theirs = clone(ours)
    norm = handnorm.clip_([p.grad for p in ours], max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    torch.testing.assert_close(norm, expected, rtol=1e-6, atol=1e-6)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-6)


def test_total_norm_closed_form() -> None:
    """The total norm of (3, 4) is 5 (L2), 7 (L1) and 4 (max)."""
    grads = [torch.tensor([3.0]), torch.tensor([-4.0])]
    assert handnorm.total_norm(grads, 2.0).item() == pytest.approx(5.0)
    assert handnorm.total_norm(grads, 1.0).item() == pytest.approx(7.0)
    assert handnorm.total_norm(grads, math.inf).item() == 4.0


def test_norm_clipping_scales_to_max_norm_and_keeps_direction() -> None:
    """Gradients (3, 4) clipped to norm 1 become (0.6, 0.8) up to torch's 1e-6 epsilon."""
    grads = [torch.tensor([3.0]), torch.tensor([4.0])]
    handnorm.clip_(grads, 1.0, 2.0)
    assert [g.item() for g in grads] == pytest.approx([0.6, 0.8], abs=1e-6)


def test_norm_below_max_is_left_alone() -> None:
    """A total norm under max_norm leaves gradients unchanged."""
    grads = [torch.tensor([0.3]), torch.tensor([0.4])]
    handnorm.clip_(grads, 1.0, 2.0)
    assert [g.item() for g in grads] == pytest.approx([0.3, 0.4], abs=1e-7)
