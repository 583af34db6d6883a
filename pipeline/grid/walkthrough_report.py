"""What the walkthrough found, and how it reads: as JSON and as Markdown.

`pipeline.walkthrough` fills a Step by replaying the tutorial under one loss; here are the
Step itself and its two renderings, which show the same numbers.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from pipeline import params
from pipeline.files import markdown as md

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


def comparison(step: Step) -> dict[str, object]:
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
        **comparison(tutorial),
        "losses": {name: comparison(step) for name, step in losses.items()},
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

The step's computation graph is in `graph.dot` (Graphviz draws it: `dot -Tsvg graph.dot`;
publish attaches the SVG to the MLflow run when Graphviz is installed).

## Every loss of the grid, same model and points

Each loss's g_i is its derivative at output_i - target_i, divided by n: L1 sign(d);
smooth L1 d / beta while |d| < beta, else sign(d); Huber d while |d| < delta, else
delta sign(d).

""" + "\n".join(_loss_section(name, step) for name, step in losses.items())


def cross_entropy_section(found: dict[str, object]) -> str:
    """The classification step as Markdown: CrossEntropyLoss's gradients beside softmax
    minus the smoothed one-hot."""
    grad, oracle = found["grad"], found["closed_form"]
    ours = {f"linear.{k}": v for k, v in grad.items()}  # type: ignore[attr-defined]
    theirs = {f"linear.{k}": v for k, v in oracle.items()}  # type: ignore[attr-defined]
    return f"""
## Classification: nn.Linear(2, 2) under nn.CrossEntropyLoss

Points {found["x"]} with labels {found["labels"]} (1 above y = 2x);
`nn.CrossEntropyLoss(label_smoothing={found["label_smoothing"]})`, float64.
With q_i the smoothed one-hot of label i ((1 - s) on the label, s / 2 on each class),
dL/dz_i = (softmax(z_i) - q_i) / n, dL/dW = sum_i dL/dz_i x_i^T, dL/db = sum_i dL/dz_i.
loss = {found["loss"]:.10g} (closed form {found["loss_closed_form"]:.10g})

{_vs(ours, theirs)}

Largest difference: {found["max_abs_diff"]:.2g}.
"""
