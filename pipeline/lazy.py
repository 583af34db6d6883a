"""numpy and torch, imported when first used, not when imported.

Every stage validates params.yaml, whose schema is built from the loss, optimizer and
clipping modules (pipeline.losses, .optimizers, .clips); those hold their numerical rules
too. The env stage runs on every `dvc repro` and needs none of that arithmetic: importing
torch costs it 1.3 s and numpy 0.1 s. The modules below are real modules that load on
their first attribute access (importlib.util.LazyLoader), so `torch.addcmul(...)` reads as
usual. A stage still pins torch's kernels before anything touches torch (pipeline.run.numerics).
"""

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def module(name: str) -> ModuleType:
    """`name`, loaded on first use (or as it is, if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    found = importlib.util.module_from_spec(spec)
    sys.modules[name] = found
    spec.loader.exec_module(found)
    return found


def loaded(name: str) -> bool:
    """Whether `name` has really been imported (not merely registered to load lazily)."""
    found = sys.modules.get(name)
    return found is not None and not isinstance(found, importlib.util._LazyModule)  # type: ignore[attr-defined]


if TYPE_CHECKING:
    import numpy as np
    import torch
else:
    np = module("numpy")
    torch = module("torch")
