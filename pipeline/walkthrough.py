"""Stage `walkthrough`: the tutorial's single step, replayed exactly and checked by hand.

Seeded y = Wx + b, x = 1, 2, 3 with targets 2x, one forward/backward and one SGD step;
every .grad autograd fills is set beside its closed form (pipeline.closed_form), for the
tutorial's MSE and for every loss of the training grid. The step's autograd graph is
drawn with torchviz.
"""

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import optim
from torchviz import make_dot

from pipeline import atomic, closed_form, params
from pipeline import markdown as md
from pipeline.generate import TUTORIAL_X
from pipeline.model import make_loss, pin, seeded_model

Values = dict[str, list[float]]  # tensor name -> its elements, flattened


@dataclass(frozen=True)
class Step:
    """One forward, backward and SGD step under one loss, with the closed form beside it."""

    loss: params.LossName
    kwargs: dict[str, float]
    initial: Values  # model.state_dict() before the step
    inputs: list[float]
    targets: list[float]
    outputs: list[float]
    value: float  # the loss
    grad: Values  # each parameter's .grad and inputs.grad, from autograd
    closed_form: Values  # the same, from closed_form.gradients
    after: Values  # parameters after optimizer.step()
    after_closed_form: Values  # p - lr * closed-form gradient
    graph: str  # DOT source of the step's autograd graph, node ids relabelled

    def grad_diff(self) -> float:
        """Largest |autograd - closed form| over every gradient element."""
        return max(abs(a - c) for _, a, c in _pairs(self.grad, self.closed_form))

    def step_diff(self) -> float:
        """Largest |parameter after the SGD step - closed form|."""
        return max(abs(a - c) for _, a, c in _pairs(self.after, self.after_closed_form))


def _pairs(ours: Values, theirs: Values) -> Iterator[tuple[str, float, float]]:
    """(`name[i]`, ours, theirs) for every element, in order."""
    for name, values in ours.items():
        for i, (a, c) in enumerate(zip(values, theirs[name], strict=True)):
            yield f"{name}[{i}]", a, c


def _flat(t: torch.Tensor | None) -> list[float]:
    if t is None:
        raise ValueError("autograd left no .grad")  # cannot happen: every leaf requires grad
    return [float(v) for v in t.detach().flatten().tolist()]


_ID = re.compile(r"^\t(\d+)(?: -> (\d+))?")  # a node line `\t<id> [...]` or an edge line


def relabel(source: str) -> str:
    """DOT with torchviz's id()-based node names replaced by n0, n1, ... in order of appearance."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        ids = [names.setdefault(i, f"n{len(names)}") for i in match.groups() if i]
        return "\t" + " -> ".join(ids)

    return "\n".join(_ID.sub(rename, line) for line in source.split("\n"))


def replay(seed: int, lr: float, loss: params.LossName, kwargs: Mapping[str, float]) -> Step:
    """The tutorial's steps in its order, under `loss` (the tutorial's own: "mse", {})."""
    model = seeded_model(seed)  # 1. y = Wx + b, torch.manual_seed(seed)
    initial = {k: _flat(v) for k, v in model.state_dict().items()}
    criterion = make_loss(loss, kwargs)  # 2. nn.MSELoss() for mse
    optimizer = optim.SGD(model.parameters(), lr=lr)  # 3.
    inputs = torch.tensor([[x] for x in TUTORIAL_X], requires_grad=True)  # 4. dL/dx too
    targets = torch.tensor([[2.0 * x] for x in TUTORIAL_X])
    outputs = model(inputs)  # 5. forward
    value = criterion(outputs, targets)
    tensors = {**dict(model.named_parameters()), "inputs": inputs}
    graph = relabel(make_dot(value, params={**tensors, "loss": value}).source)
    optimizer.zero_grad()  # 6. clear old .grad, then fill it from this loss
    value.backward()
    grad = {name: _flat(t.grad) for name, t in tensors.items()}  # 7. read .grad
    optimizer.step()
    (w,), (b,) = initial["linear.weight"], initial["linear.bias"]
    x, y = list(TUTORIAL_X), [2.0 * v for v in TUTORIAL_X]
    oracle = closed_form.gradients(loss, kwargs, w, b, x, y)
    w_next, b_next = closed_form.sgd_step(w, b, oracle, lr)
    return Step(
        loss=loss,
        kwargs=dict(kwargs),
        initial=initial,
        inputs=_flat(inputs),
        targets=_flat(targets),
        outputs=_flat(outputs),
        value=value.item(),
        grad=grad,
        closed_form={
            "linear.weight": [oracle.weight],
            "linear.bias": [oracle.bias],
            "inputs": list(oracle.inputs),
        },
        after={name: _flat(p) for name, p in model.named_parameters()},
        after_closed_form={"linear.weight": [w_next], "linear.bias": [b_next]},
        graph=graph,
    )


def every_loss(p: params.Params) -> dict[str, Step]:
    """The same step under each loss of the training grid, with its kwargs from params."""
    w = p.walkthrough
    return {
        name: replay(w.seed, w.lr, name, getattr(p.train.losses, name).model_dump())
        for name in dict.fromkeys(p.train.grid.losses)  # a name listed twice is one check
    }


def svg(dot_source: str) -> str | None:
    """The graph drawn by Graphviz's `dot`, or None when `dot` is not installed."""
    if shutil.which("dot") is None:
        return None
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot_source, capture_output=True, text=True, check=True
    )
    return done.stdout


def check(step: Step) -> dict[str, object]:
    """The autograd-vs-closed-form part of a step, as JSON."""
    return {
        "loss": step.value,
        "kwargs": step.kwargs,
        "outputs": step.outputs,
        "grad": step.grad,
        "closed_form": step.closed_form,
        "max_abs_diff": step.grad_diff(),
        "after_step": step.after,
        "after_step_closed_form": step.after_closed_form,
        "max_abs_step_diff": step.step_diff(),
    }


def to_json(
    tutorial: Step, losses: dict[str, Step], p: params.WalkthroughParams
) -> dict[str, object]:
    """Everything both reports show: the tutorial's step, then each loss of the grid."""
    return {
        "seed": p.seed,
        "lr": p.lr,
        "initial": tutorial.initial,
        "inputs": tutorial.inputs,
        "targets": tutorial.targets,
        **check(tutorial),
        "losses": {name: check(step) for name, step in losses.items()},
    }


def _vs(ours: Values, theirs: Values, what: str = "autograd .grad") -> str:
    rows = ((k, f"{a:.8g}", f"{c:.8g}", f"{abs(a - c):.2g}") for k, a, c in _pairs(ours, theirs))
    return md.table(("tensor", what, "closed form", "abs diff"), rows)


def _loss_section(name: str, step: Step) -> str:
    settings = ", ".join(f"{k}={v:g}" for k, v in step.kwargs.items())
    title = f"{name} ({settings})" if settings else name
    return f"### {title}\n\nloss = {step.value:.8g}\n\n{_vs(step.grad, step.closed_form)}\n"


def report(tutorial: Step, losses: dict[str, Step], p: params.WalkthroughParams) -> str:
    """The walkthrough as Markdown: each tutorial step, what it does, and its numbers."""
    t = tutorial
    points = md.table(
        ("x", "target", "output"),
        (
            (f"{x:g}", f"{y:g}", f"{o:.8g}")
            for x, y, o in zip(t.inputs, t.targets, t.outputs, strict=True)
        ),
    )
    return f"""# Walkthrough: the tutorial's step, replayed

1. **Model** y = Wx + b: `torch.manual_seed({p.seed})`, `nn.Linear(1, 1)`; `model.state_dict()`:
   weight = {t.initial["linear.weight"][0]:.8g}, bias = {t.initial["linear.bias"][0]:.8g}.
2. **Loss** `nn.MSELoss()`: the mean over the points of (output - target)^2.
3. **Optimizer** `optim.SGD(model.parameters(), lr={p.lr:g})`.
4. **Data** x = 1, 2, 3 with target 2x; `requires_grad=True` on the inputs makes autograd
   compute dL/dx too (parameters get theirs automatically).
5. **Forward** `outputs = model(inputs)`; `loss = criterion(outputs, targets)` = {t.value:.8g}.

{points}

6. **Backward** `optimizer.zero_grad()` clears `.grad`, so gradients do not accumulate
   across steps; `loss.backward()` computes every gradient from the current loss.
7. **Gradients** `param.grad` holds them. Closed form, with g_i = dL/doutput_i
   = 2 (output_i - target_i) / n: dL/dW = sum g_i x_i, dL/db = sum g_i, dL/dx_i = g_i W.

{_vs(t.grad, t.closed_form)}

Largest difference: {t.grad_diff():.2g}.

8. **Step** `optimizer.step()`: each parameter p becomes p - lr * p.grad.

{_vs(t.after, t.after_closed_form, "after the step")}

The step's computation graph is in `graph.dot` (and `graph.svg` when Graphviz is installed).

## Every loss of the grid, same model and points

Each loss's g_i is its derivative at output_i - target_i, divided by n: L1 sign(d);
smooth L1 d / beta while |d| < beta, else sign(d); Huber d while |d| < delta, else
delta sign(d).

""" + "\n".join(_loss_section(name, step) for name, step in losses.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports and graph")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    pin(p.env.threads, p.env.deterministic)
    tutorial = replay(p.walkthrough.seed, p.walkthrough.lr, "mse", {})
    losses = every_loss(p)
    image = svg(tutorial.graph)
    with atomic.replacing(args.out, directory=True) as folder:
        atomic.write_json(folder / "walkthrough.json", to_json(tutorial, losses, p.walkthrough))
        atomic.write_text(folder / "walkthrough.md", report(tutorial, losses, p.walkthrough))
        atomic.write_text(folder / "graph.dot", tutorial.graph)
        if image is not None:
            atomic.write_text(folder / "graph.svg", image)
    worst = max(max(s.grad_diff(), s.step_diff()) for s in [tutorial, *losses.values()])
    print(f"walkthrough: wrote {args.out}; largest |autograd - closed form| = {worst:.2g}")


if __name__ == "__main__":
    main()
