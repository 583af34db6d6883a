"""The reference engine: one cell trained in its own eager loop, as the tutorial does.

`nn.Linear(1, 1)` seeded by torch.manual_seed, a torch.nn loss, a torch.optim optimizer,
`loss.backward()`, clipping, `optimizer.step()`: every step recorded, with the state
torch.optim keeps after it. The batched engine (pipeline.engine.regression) is checked
against this loop.
"""

import math

import torch

from pipeline import grid
from pipeline.clips import CLIPS
from pipeline.grid import trace
from pipeline.grid.model import make_loss, make_optimizer, seeded_model

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def divergence(loss: float, grads: tuple[float, float], after: tuple[float, float]) -> str | None:
    """Why a step cannot be kept ("loss", "gradient", "parameters"), or None if it can."""
    if not math.isfinite(loss):
        return "loss"
    if not all(map(math.isfinite, grads)):
        return "gradient"
    if not all(map(math.isfinite, after)):
        return "parameters"
    return None


def state_keys(optimizer: torch.optim.Optimizer, parameter: torch.Tensor) -> tuple[str, ...]:
    """The keys of `optimizer.state[parameter]` that hold a tensor shaped like the
    parameter, in torch's order (momentum_buffer; exp_avg, exp_avg_sq; square_avg; sum;
    ...): the per-parameter state, not its step count or NAdam's scalar mu_product."""
    held = optimizer.state.get(parameter, {})
    return tuple(k for k, v in held.items() if torch.is_tensor(v) and v.shape == parameter.shape)


def train_cell(cell: grid.Cell, x: torch.Tensor, y: torch.Tensor) -> trace.Trace:
    """Train the seeded model under one cell on points x, y (shape (n, 1), any float
    dtype: converted to the cell's); stop at the first non-finite value."""
    dtype = DTYPES[cell.dtype]
    x, y = x.to(dtype), y.to(dtype)
    model = seeded_model(cell.seed, dtype)
    weight, bias = model.linear.weight, model.linear.bias
    criterion = make_loss(cell.loss, cell.loss_kwargs)
    optimizer = make_optimizer(cell.optimizer, cell.optimizer_kwargs, model.parameters())
    clip = CLIPS[cell.clip].reference
    initial = (weight.item(), bias.item())
    rows: list[trace.Row] = []
    states: list[tuple[float, ...]] = []
    keys: tuple[str, ...] = ()
    stop: tuple[int, str] | None = None
    for step in range(cell.steps):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        # .item() per value is cheaper than stacking tensors for two parameters
        value, grads = loss.item(), (weight.grad.item(), bias.grad.item())  # type: ignore[union-attr]
        reason = divergence(value, grads, (0.0, 0.0))
        if reason is None:
            clip([weight, bias], cell.clip_kwargs)  # type: ignore[list-item,arg-type]
            clipped = (weight.grad.item(), bias.grad.item())  # type: ignore[union-attr]
            optimizer.step()
            after = (weight.item(), bias.item())
            reason = divergence(value, grads, after)
        if reason is not None:
            stop = (step, reason)
            break
        keys = keys or state_keys(optimizer, weight)  # torch creates it at the first step
        held = optimizer.state[weight], optimizer.state[bias]
        states.append(tuple(s[k].item() for k in keys for s in held))
        rows.append(
            trace.Row(
                step=step,
                loss=value,
                grad_norm=math.hypot(*grads),
                grad_weight=grads[0],
                grad_bias=grads[1],
                clipped_grad_weight=clipped[0],
                clipped_grad_bias=clipped[1],
                clipped=int(clipped != grads),
                weight=after[0],
                bias=after[1],
            )
        )
    final = (rows[-1].weight, rows[-1].bias) if rows else initial
    with torch.no_grad():
        final_loss = criterion(final[0] * x + final[1], y).item()
    return trace.Trace(
        cell=cell,
        initial=initial,
        rows=rows,
        final_loss=final_loss if math.isfinite(final_loss) else None,
        diverged_step=stop[0] if stop else None,
        diverged_reason=stop[1] if stop else None,
        state_columns=tuple(trace.state_column(k, p) for k in keys for p in trace.PARAMETERS),
        states=states,
    )
