"""Parameters with random gradients, for the clipping modes' oracle tests."""

import math

import torch

NORM_TYPES = [1.0, 2.0, 3.0, 1.5, math.inf]
SHAPES = [[(1, 1), (1,)], [(3, 4), (4,), (2, 2, 2)], [(10,)]]


def random_params(
    shapes: list[tuple[int, ...]], seed: int, scale: float
) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * scale
    return params


def clone(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    out = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for o, p in zip(out, params, strict=True):
        o.grad = p.grad.clone()
    return out
