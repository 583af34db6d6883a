"""numba for the fused engine: members' fused forms compiled with the engine's primitives,
composed into one function per kind (`chain`), kernels cached on disk (`kernel`).

No fast-math: every operation rounds as IEEE 754 says, in the order written, so a cell's
bits depend neither on the vector width LLVM picks (cells are independent lanes) nor on
the block it sits in. error_model="numpy": x / 0 is inf or nan, as in torch.

The cache. numba keys a cached kernel by its own source file only, not by the functions
it calls, so an edited optimizer would load a stale kernel. Here every kernel is cached
under a directory named by a digest of the sources it can reach (this package and every
loss, optimizer and clipping module) and of numba's and llvmlite's versions; numba's own
index adds the CPU's name and features (AVX2 and AVX-512 builds live side by side).
The directory is $GRADLAB_KERNEL_CACHE, else $XDG_CACHE_HOME/gradlab/kernels (default
~/.cache/...): shared by every checkout on the machine, so a fresh clone or a test's copy
of the project compiles only what no checkout of the same code compiled before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import types
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numba
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator
from numba.extending import intrinsic

from pipeline.engine.fused import primitives

PIPELINE = Path(__file__).resolve().parents[2]
SOURCES = ("engine/fused", "losses", "optimizers", "clips")  # what a kernel can reach


@intrinsic
def _fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:  # numba's signature
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)  # llvm.fma: one rounding, on any vector width

    return a(a, b, c), codegen


def _noalias(flags: Any) -> Any:
    flags.noalias = True
    return flags


def jit(fn: Callable[..., Any], inline: str = "never") -> Any:
    """fn compiled: IEEE arithmetic (never fastmath), x / 0 as numpy gives it, no GIL, and
    its array arguments declared apart (LLVM's noalias: the engine never passes one array
    twice), so that the loops over a block's cells vectorise without runtime checks.
    inline="always": numba inlines it where it is called (a per-point function must be,
    or the loop around it cannot vectorise)."""
    options: dict[str, Any] = {"error_model": "numpy", "boundscheck": False, "nogil": True}
    compiled: Any = numba.njit(**options, inline=inline)(fn)  # type: ignore[call-overload]
    compiled._compiler._customize_flags = _noalias  # numba's hook; noalias is not an option
    return compiled


fma: Any = _fma  # for the kernels themselves
PRIMITIVES: dict[str, Any] = {"fma": _fma}  # pipeline.engine.fused.primitives, compiled


def digest() -> str:
    """The kernels' content key: their reachable sources and the compiler's versions."""
    h = hashlib.sha256()
    for folder in SOURCES:
        for path in sorted((PIPELINE / folder).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in ("numba", "llvmlite"):
        h.update(f"{package}=={metadata.version(package)}".encode())
    return h.hexdigest()[:16]


def directory() -> Path:
    """Where this code's kernels are cached (module docstring)."""
    root = os.environ.get("GRADLAB_KERNEL_CACHE")
    if not root:
        home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(home) / "gradlab" / "kernels")
    return Path(root) / DIGEST


class _Locator(_CacheLocator):  # type: ignore[misc]
    """numba's cache locator, by content (DIGEST) rather than by source path and stamp."""

    def __init__(self, py_func: Callable[..., Any]) -> None:
        self._lineno = py_func.__code__.co_firstlineno

    def get_cache_path(self) -> str:
        return str(directory())

    def get_source_stamp(self) -> str:
        return DIGEST

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Callable[..., Any], py_file: str) -> _Locator | None:
        found = cls(py_func)
        try:
            found.ensure_cache_path()
        except OSError:
            return None  # not writable: numba compiles without a cache
        return found


class _Impl(CompileResultCacheImpl):  # type: ignore[misc]
    _locator_classes = [_Locator]  # type: ignore[misc,list-item]  # noqa: RUF012  # numba's hook


class _Cache(FunctionCache):  # type: ignore[misc]
    _impl_class = _Impl


def member(fn: Callable[..., Any], inline: str = "never") -> Any:
    """A member's fused form compiled, its calls to the primitives compiled too."""
    rebound = types.FunctionType(
        fn.__code__, {**fn.__globals__, **PRIMITIVES}, fn.__name__, fn.__defaults__
    )
    return jit(rebound, inline)


def kernel(fn: Callable[..., Any]) -> Any:
    """A kernel: compiled on its first call, cached on disk by content (module docstring)."""
    compiled = jit(fn)
    with contextlib.suppress(RuntimeError):  # no writable cache directory: no cache
        compiled._cache = _Cache(fn)  # numba's own FunctionCache, with our locator
    return compiled


def chain(functions: Sequence[Any], arity: int) -> Any:
    """One compiled function f(code, a1, ..., a_arity) calling functions[code](a1, ...):
    the member a block uses, chosen at run time; numba inlines it where it is called (no
    call, no reference counting per step). The source is written out because numba
    inlines no function with *args."""
    names = ", ".join(f"a{i}" for i in range(arity))
    head = functions[0]
    if len(functions) == 1:
        source = f"def only(code, {names}):\n    head({names})\n"
        scope = {"head": head}
    else:
        source = (
            f"def link(code, {names}):\n    if code == 0:\n        head({names})\n"
            f"    else:\n        rest(code - 1, {names})\n"
        )
        scope = {"head": head, "rest": chain(functions[1:], arity)}
    exec(compile(source, f"<chain of {len(functions)}>", "exec"), scope)
    return jit(scope["only" if len(functions) == 1 else "link"], "always")


DIGEST = digest()
PRIMITIVES["lerp"] = member(primitives.lerp, "always")  # it calls fma
PRIMITIVES["exp_neg"] = member(primitives.exp_neg, "always")
PRIMITIVES["log1p_unit"] = member(primitives.log1p_unit, "always")
