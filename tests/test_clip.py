"""Clipping maths, and the hand-written rules against torch.nn.utils (the oracle)."""

import math

import pytest
import torch

from pipeline import clip

NORM_TYPES = [1.0, 2.0, 3.0, 1.5, math.inf]
SHAPES = [[(1, 1), (1,)], [(3, 4), (4,), (2, 2, 2)], [(10,)]]


def _random_params(
    shapes: list[tuple[int, ...]], seed: int, scale: float
) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * scale
    return params


def _clone(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    out = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for o, p in zip(out, params, strict=True):
        o.grad = p.grad.clone()
    return out


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize(
    ("seed", "scale", "max_norm"), [(0, 1.0, 0.5), (1, 10.0, 1.0), (2, 0.01, 1.0)]
)
def test_hand_norm_clipping_matches_torch(norm_type, shapes, seed, scale, max_norm) -> None:
    """clip_norm_ gives torch's norm and torch's clipped gradients to 1e-6, clipping or not."""
    ours = _random_params(shapes, seed, scale)
    theirs = _clone(ours)
    norm = clip.clip_norm_([p.grad for p in ours], max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    torch.testing.assert_close(norm, expected, rtol=1e-6, atol=1e-6)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("clip_value", [0.1, 0.5, 100.0])
def test_hand_value_clipping_matches_torch(shapes, clip_value) -> None:
    """clip_value_ clamps exactly like clip_grad_value_."""
    ours = _random_params(shapes, 3, 1.0)
    theirs = _clone(ours)
    clip.clip_value_([p.grad for p in ours], clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_total_norm_closed_form() -> None:
    """The total norm of (3, 4) is 5 (L2), 7 (L1) and 4 (max)."""
    grads = [torch.tensor([3.0]), torch.tensor([-4.0])]
    assert clip.total_norm(grads, 2.0).item() == pytest.approx(5.0)
    assert clip.total_norm(grads, 1.0).item() == pytest.approx(7.0)
    assert clip.total_norm(grads, math.inf).item() == 4.0


def test_norm_clipping_scales_to_max_norm_and_keeps_direction() -> None:
    """Gradients (3, 4) clipped to norm 1 become (0.6, 0.8) up to torch's 1e-6 epsilon."""
    grads = [torch.tensor([3.0]), torch.tensor([4.0])]
    clip.clip_norm_(grads, 1.0, 2.0)
    assert [g.item() for g in grads] == pytest.approx([0.6, 0.8], abs=1e-6)


def test_norm_below_max_is_left_alone() -> None:
    """A total norm under max_norm leaves gradients unchanged."""
    grads = [torch.tensor([0.3]), torch.tensor([0.4])]
    clip.clip_norm_(grads, 1.0, 2.0)
    assert [g.item() for g in grads] == pytest.approx([0.3, 0.4], abs=1e-7)


@pytest.mark.parametrize("mode", ["norm", "handnorm", "value", "handvalue", "none"])
def test_every_mode_dispatches(mode: str) -> None:
    """Each clip mode of CLIPS acts on parameters' .grad as its name says."""
    params = _random_params([(2,)], 0, 100.0)
    before = params[0].grad.clone()
    clip.CLIPS[mode](params, {"max_norm": 1.0, "norm_type": 2.0, "clip_value": 0.5})
    after = params[0].grad
    if mode == "none":
        assert torch.equal(after, before)
    elif mode.endswith("norm"):
        assert torch.linalg.vector_norm(after).item() == pytest.approx(1.0, abs=1e-5)
    else:
        assert after.abs().max().item() == 0.5
