"""The tutorial's single step, replayed exactly and checked by hand.

Seeded y = Wx + b, x = 1, 2, 3 with targets 2x, one forward/backward and one SGD step;
every .grad autograd fills is set beside its closed form (pipeline.grid.closed_form), for
the tutorial's MSE and for every loss of the training grid; and CrossEntropyLoss's
gradient of a seeded nn.Linear(2, 2). The step's autograd graph is drawn with torchviz.
The Step and its JSON and Markdown are in pipeline.grid.walkthrough_report.
"""

import re
from collections.abc import Mapping

import torch
from torch import optim
from torchviz import make_dot

from pipeline import params
from pipeline.grid import closed_form
from pipeline.grid.data import TUTORIAL_X
from pipeline.grid.model import make_loss, seeded_model
from pipeline.grid.walkthrough_report import Step
from pipeline.losses import ce


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


# the classification step: three points on either side of y = 2x (label 1 above it)
CLASS_X = ((1.0, 3.0), (2.0, 3.0), (0.5, 2.0))
CLASS_LABELS = (1, 0, 1)


def classify_step(seed: int, smoothing: float) -> dict[str, object]:
    """One forward and backward of torch.manual_seed(seed); nn.Linear(2, 2) under
    nn.CrossEntropyLoss(label_smoothing) on CLASS_X, beside the closed form: softmax
    minus the smoothed one-hot, times the inputs."""
    torch.manual_seed(seed)
    linear = torch.nn.Linear(2, 2).double()
    x = torch.tensor(CLASS_X, dtype=torch.float64)
    labels = torch.tensor(CLASS_LABELS)
    value = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(linear(x), labels)
    value.backward()
    w, b = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    loss, dw, db = ce.closed_form(w, b, x.numpy(), CLASS_LABELS, smoothing)
    autograd = {"weight": _flat(linear.weight.grad), "bias": _flat(linear.bias.grad)}
    oracle = {"weight": dw.flatten().tolist(), "bias": db.tolist()}
    diff = max(abs(a - c) for k in autograd for a, c in zip(autograd[k], oracle[k], strict=True))
    return {
        "x": [list(row) for row in CLASS_X],
        "labels": list(CLASS_LABELS),
        "label_smoothing": smoothing,
        "loss": value.item(),
        "loss_closed_form": loss,
        "grad": autograd,
        "closed_form": oracle,
        "max_abs_diff": max(diff, abs(value.item() - loss)),
    }


def every_loss(p: params.Params) -> dict[str, Step]:
    """The same step under each loss of the training grid, with its kwargs from params."""
    w = p.walkthrough
    return {
        name: replay(w.seed, w.lr, name, getattr(p.train.losses, name).model_dump())
        for name in dict.fromkeys(p.train.grid.losses)  # a name listed twice is one check
    }
