"""Stage `train`: every grid cell, full batch, recording each step.

Cells are independent: they run side by side in `env.workers` processes, each pinned to
`env.threads` threads, so results do not depend on the worker count.
"""

import argparse
import math
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Generator
from contextlib import closing
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline import atomic, generate, grid, interrupt, params, record
from pipeline.clip import CLIPS
from pipeline.model import make_loss, make_optimizer, pin, seeded_model


def _divergence(loss: float, grads: tuple[float, float], after: tuple[float, float]) -> str | None:
    if not math.isfinite(loss):
        return "loss"
    if not all(map(math.isfinite, grads)):
        return "gradient"
    if not all(map(math.isfinite, after)):
        return "parameters"
    return None


def train_cell(cell: grid.Cell, x: torch.Tensor, y: torch.Tensor) -> record.Trace:
    """Train the seeded model under one cell; stop at the first non-finite value."""
    model = seeded_model(cell.seed)
    weight, bias = model.linear.weight, model.linear.bias
    criterion = make_loss(cell.loss, cell.loss_kwargs)
    optimizer = make_optimizer(cell.optimizer, cell.optimizer_kwargs, model.parameters())
    clip = CLIPS[cell.clip]
    initial = (weight.item(), bias.item())
    rows: list[record.Row] = []
    stop: tuple[int, str] | None = None
    for step in range(cell.steps):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        # .item() per value is cheaper than stacking tensors for two parameters
        value, grads = loss.item(), (weight.grad.item(), bias.grad.item())  # type: ignore[union-attr]
        reason = _divergence(value, grads, (0.0, 0.0))
        if reason is None:
            clip([weight, bias], cell.clip_kwargs)  # type: ignore[list-item,arg-type]
            clipped = (weight.grad.item(), bias.grad.item())  # type: ignore[union-attr]
            optimizer.step()
            after = (weight.item(), bias.item())
            reason = _divergence(value, grads, after)
        if reason is not None:
            stop = (step, reason)
            break
        rows.append(
            (step, value, math.hypot(*grads), *grads, *clipped, int(clipped != grads), *after)
        )
    final = rows[-1][-2:] if rows else initial
    with torch.no_grad():
        final_loss = criterion(final[0] * x + final[1], y).item()
    return record.Trace(
        cell=cell,
        initial=initial,
        rows=rows,
        final_loss=final_loss if math.isfinite(final_loss) else None,
        diverged_step=stop[0] if stop else None,
        diverged_reason=stop[1] if stop else None,
    )


def _claim(counter: "Synchronized[int]") -> int:
    """The next untrained cell's index, shared by every process."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    return index


def _exit_when_orphaned() -> None:
    """Exit this worker at once when its parent is gone without stopping it (SIGKILL, the
    OOM killer): no one reads its results any more, and the queue's flush at exit would
    block forever once the pipe is full."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent's end of the spawn pipe closes
        os._exit(1)


def _worker(
    cells: list[grid.Cell],
    x: torch.Tensor,
    y: torch.Tensor,
    env: params.EnvParams,
    counter: "Synchronized[int]",
    results: "Queue[record.Trace]",
) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it and stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    pin(env.threads, env.deterministic)
    while (index := _claim(counter)) < len(cells):
        results.put(train_cell(cells[index], x, y))


def train_grid(
    cells: list[grid.Cell], x: torch.Tensor, y: torch.Tensor, env: params.EnvParams
) -> Generator[record.Trace, None, None]:
    """Traces of every cell, in the order they finish.

    This process and `env.workers - 1` spawned ones take cells from one shared counter,
    so no core idles while the workers import torch. On an error or a signal the
    workers are terminated at once.
    """
    if env.workers == 1 or len(cells) == 1:
        yield from (train_cell(cell, x, y) for cell in cells)
        return
    # spawn, not fork: forking a process that has started torch's thread pools can hang
    ctx = multiprocessing.get_context("spawn")
    counter, results = ctx.Value("i", 0), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(cells, x, y, env, counter, results), daemon=True)
        for _ in range(env.workers - 1)
    ]
    for worker in workers:
        worker.start()
    received = 0
    try:
        while (index := _claim(counter)) < len(cells):
            yield train_cell(cells[index], x, y)
            received += 1
        while received < len(cells):
            try:
                yield results.get(timeout=1.0)
                received += 1
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    codes = [w.exitcode for w in workers]
                    raise RuntimeError(f"a training worker died (exit codes {codes})") from None
    finally:
        for worker in workers:
            if received < len(cells):
                worker.terminate()
            worker.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--traces", type=Path, required=True, help="folder: one CSV per cell")
    parser.add_argument("--metrics", type=Path, required=True, help="JSON: final metrics per cell")
    args = parser.parse_args(argv)
    p = params.load_or_exit(args.params)
    x, y = generate.read_points_or_exit(args.data)
    pin(p.env.threads, p.env.deterministic)
    cells = grid.cells(p.train)
    optimum = generate.optimum(p.generate)
    metrics = {}
    inputs, targets = (torch.tensor(v, dtype=torch.float32).reshape(-1, 1) for v in (x, y))
    with (
        interrupt.exit_on_signal(),
        atomic.replacing(args.traces, directory=True) as folder,
        closing(train_grid(cells, inputs, targets, p.env)) as traces,  # closed at once on error
    ):
        for trace in tqdm(traces, total=len(cells), desc="train", unit="cell"):
            interrupt.check()  # a signal swallowed inside a finalizer stops us here
            record.to_frame(trace).to_csv(folder / f"{trace.cell.name}.csv", index=False)
            metrics[trace.cell.name] = record.summary(trace, optimum)
        atomic.write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
