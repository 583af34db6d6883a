"""The tutorial's step replayed (pipeline.grid.walkthrough): every .grad beside its closed
form, the seeded weights, the graph's DOT source, CrossEntropyLoss's gradient."""

import re

import pytest
import torch
from torch import nn

from pipeline import params
from pipeline.grid import walkthrough

MAX_DIFF = 1e-6  # float32 autograd against float64 closed form, values up to ~10


def test_replay_gives_the_tutorials_values() -> None:
    """Seed 42, x = 1, 2, 3, y = 2x: outputs, MSE and gradients agree with the closed form."""
    step = walkthrough.replay(42, 0.01, "mse", {})

    (w,), (b,) = step.initial["linear.weight"], step.initial["linear.bias"]
    assert step.inputs == [1.0, 2.0, 3.0]
    assert step.targets == [2.0, 4.0, 6.0]
    assert step.outputs == pytest.approx([w * x + b for x in step.inputs], abs=1e-6)
    errors = [o - t for o, t in zip(step.outputs, step.targets, strict=True)]
    assert step.value == pytest.approx(sum(e * e for e in errors) / 3, rel=1e-6)
    assert step.grad_diff() < MAX_DIFF
    assert step.step_diff() < MAX_DIFF


def test_seed_42_weights_are_a_fresh_linear() -> None:
    """The seeded model's initial weights are those of torch.manual_seed(42); nn.Linear(1, 1)."""
    torch.manual_seed(42)
    fresh = nn.Linear(1, 1)

    step = walkthrough.replay(42, 0.01, "mse", {})

    assert step.initial["linear.weight"] == [fresh.weight.item()]
    assert step.initial["linear.bias"] == [fresh.bias.item()]


def test_every_grid_loss_agrees_with_its_closed_form(committed: params.Params) -> None:
    """Each loss of the committed grid, with its params kwargs, matches its closed form."""
    p = committed

    steps = walkthrough.every_loss(p)

    assert list(steps) == list(dict.fromkeys(p.train.grid.losses))
    for name, step in steps.items():
        assert step.kwargs == getattr(p.train.losses, name).model_dump()
        assert step.grad_diff() < MAX_DIFF, name
        assert step.step_diff() < MAX_DIFF, name


def test_relabel_names_nodes_in_order_of_appearance() -> None:
    """Node ids become n0, n1, ... by first appearance, in node and edge lines alike."""
    source = 'digraph {\n\t907 [label="loss"]\n\t55 -> 907\n\t55 [label=Mse]\n\t3 -> 55\n}'

    got = walkthrough.relabel(source)

    assert got == 'digraph {\n\tn0 [label="loss"]\n\tn1 -> n0\n\tn1 [label=Mse]\n\tn2 -> n1\n}'


def test_graph_does_not_depend_on_object_ids() -> None:
    """Two replays alive at once (so different id()s) give the same DOT, with no raw ids."""
    first = walkthrough.replay(42, 0.01, "mse", {})
    second = walkthrough.replay(42, 0.01, "mse", {})

    assert first.graph == second.graph
    assert not re.search(r"\d{5,}", first.graph)
    assert "n0" in first.graph and "MseLossBackward0" in first.graph


def test_cross_entropy_step_matches_its_closed_form(committed: params.Params) -> None:
    """The classification step's .grad of nn.Linear(2, 2) under CrossEntropyLoss equals
    softmax minus the smoothed one-hot (to 1e-12, float64), and its labels are the points'
    side of y = 2x."""
    found = walkthrough.classify_step(42, committed.study.classification.label_smoothing)

    assert found["max_abs_diff"] < 1e-12
    assert found["labels"] == [int(x2 > 2 * x1) for x1, x2 in walkthrough.CLASS_X]
    assert len(found["grad"]["weight"]) == 4 and len(found["grad"]["bias"]) == 2
