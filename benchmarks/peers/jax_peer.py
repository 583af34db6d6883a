"""The peer: the speed workload (benchmarks/workload.py) in JAX + optax, one jit(vmap)
program per loss x optimizer x clip (fori_loop over the steps inside), run in its own
venv (make bench-peers: .venv-peers, benchmarks/peers/requirements.txt). Driven by
benchmarks/peers.py over stdin/stdout, one JSON line each way per request.

Matched to torch's conventions (optax's defaults differ): RMSprop's eps outside the
square root with a zero initial accumulator; Adagrad's initial_accumulator_value and eps
outside the root (optax's scale_by_rss keeps it inside); AdamW's weight decay 0.01
(optax's default is 1e-4); clip_grad_norm_'s max_norm / (norm + 1e-6) (optax's
clip_by_global_norm has no 1e-6). Every optimizer is built with learning rate 1 and its
update scaled by each cell's lr (every rule here is linear in lr).
"""

import json
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
import jax
import jax.numpy as jnp
import numpy as np
import optax

SETTINGS = {
    "momentum": 0.9,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "adagrad_eps": 1e-10,
    "adamw_decay": 0.01,
    "max_norm": 1.0,
    "clip_value": 0.5,
    "beta": 0.5,
    "delta": 1.0,
}


def loss(kind: str):
    def value(p, x, y):
        d = p[0] * x + p[1] - y
        a = jnp.abs(d)
        if kind == "mse":
            return jnp.mean(d * d)
        if kind == "l1":
            return jnp.mean(a)
        if kind == "huber":
            k = SETTINGS["delta"]
            return jnp.mean(jnp.where(a < k, 0.5 * d * d, k * (a - 0.5 * k)))
        k = SETTINGS["beta"]  # smoothl1
        return jnp.mean(jnp.where(a < k, 0.5 * d * d / k, a - 0.5 * k))

    return value


def torch_clip_norm(max_norm: float) -> optax.GradientTransformation:
    def update(g, state, params=None):
        norm = jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(g)))
        coef = jnp.minimum(max_norm / (norm + 1e-6), 1.0)
        return jax.tree_util.tree_map(lambda v: v * coef, g), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def torch_adagrad(eps: float, initial: float = 0.0) -> optax.GradientTransformation:
    def init(p):
        return jax.tree_util.tree_map(lambda v: jnp.full_like(v, initial), p)

    def update(g, state, params=None):
        state = jax.tree_util.tree_map(lambda s, v: s + v * v, state, g)
        return jax.tree_util.tree_map(lambda v, s: -v / (jnp.sqrt(s) + eps), g, state), state

    return optax.GradientTransformation(init, update)


def optimizer(name: str) -> optax.GradientTransformation:
    s = SETTINGS
    b1, b2 = s["betas"]
    return {
        "sgd": lambda: optax.sgd(1.0),
        "momentum": lambda: optax.sgd(1.0, momentum=s["momentum"]),
        "nesterov": lambda: optax.sgd(1.0, momentum=s["momentum"], nesterov=True),
        "adam": lambda: optax.adam(1.0, b1=b1, b2=b2, eps=s["eps"]),
        "adamw": lambda: optax.adamw(
            1.0, b1=b1, b2=b2, eps=s["eps"], weight_decay=s["adamw_decay"]
        ),
        "rmsprop": lambda: optax.rmsprop(
            1.0, decay=0.99, eps=s["eps"], eps_in_sqrt=False, initial_scale=0.0
        ),
        "adagrad": lambda: torch_adagrad(s["adagrad_eps"]),
    }[name]()


def clip(name: str) -> optax.GradientTransformation:
    if name == "norm":
        return torch_clip_norm(SETTINGS["max_norm"])
    if name == "value":
        return optax.clip(SETTINGS["clip_value"])
    return optax.identity()


def program(kind: str, opt: str, mode: str, steps: int):
    """jit(vmap) of one cell's whole training: (lr, start, x, y) -> final parameters."""
    tx = optax.chain(clip(mode), optimizer(opt))
    grad = jax.grad(loss(kind))

    def one(lr, p0, x, y):
        def body(_, carry):
            p, state = carry
            updates, state = tx.update(grad(p, x, y), state, p)
            return p + lr * updates, state

        return jax.lax.fori_loop(0, steps, body, (p0, tx.init(p0)))[0]

    return jax.jit(jax.vmap(one))


def main() -> None:
    os.sched_setaffinity(0, {int(sys.argv[1])})  # the driver's core
    programs, inputs = {}, []
    for line in sys.stdin:
        ask = json.loads(line)
        if ask["do"] == "load":  # the row's cells, grouped by program; compile each
            w = np.load(ask["path"])
            x, y = w["x"][w["dataset"]], w["y"][w["dataset"]]
            inputs, compile_s = [], 0.0
            keys = np.array(
                ["|".join(k) for k in zip(w["loss"], w["optimizer"], w["clip"], strict=True)]
            )
            for key in np.unique(keys):
                at = np.flatnonzero(keys == key)
                if key not in programs:
                    programs[key] = program(*key.split("|"), int(ask["steps"]))
                args = tuple(
                    jnp.asarray(a, jnp.float32) for a in (w["lr"][at], w["start"][at], x[at], y[at])
                )
                start = time.perf_counter()
                programs[key](*args).block_until_ready()  # compiles, and runs once
                first = time.perf_counter() - start
                start = time.perf_counter()
                programs[key](*args).block_until_ready()
                compile_s += first - (time.perf_counter() - start)  # the compile alone
                inputs.append((programs[key], args))
            print(json.dumps({"compile": compile_s, "programs": len(inputs)}), flush=True)
        elif ask["do"] == "run":
            start = time.process_time()
            for f, args in inputs:
                f(*args).block_until_ready()
            print(json.dumps({"seconds": time.process_time() - start}), flush=True)


if __name__ == "__main__":
    main()
