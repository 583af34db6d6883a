"""Per-cell clipping in the batched engine: each cell clipped by its mode's batched form
(pipeline.clips: norm's scaling, value's clamp; the hand-written modes run torch's
rules), the others passing unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.clips import CLIPS
from pipeline.engine.cells import CLIP_NAMES, Cells

if TYPE_CHECKING:
    from torch import Tensor

    from pipeline.clips.spec import Form

FORMS: list[type[Form]] = list(
    dict.fromkeys(f for n in CLIP_NAMES if (f := CLIPS[n].batched) is not None)
)


class Clipping:
    """The forms the cells use, applied in turn (in FORMS order: norm's, then value's)."""

    def __init__(self, cells: Cells, dtype: torch.dtype) -> None:
        self.forms: list[Form] = []
        for form in FORMS:
            mask = np.array([CLIPS[n].batched is form for n in CLIP_NAMES])[cells.clip]
            if mask.any():
                self.forms.append(form(mask, cells.settings, dtype))

    def apply(self, g: Tensor, l2: Tensor, out: Tensor) -> None:
        """Write the clipped gradients of g (rows, cells) into out; l2: each cell's L2 norm."""
        if not self.forms:
            out.copy_(g)
        source = g
        for form in self.forms:
            form.apply(source, l2, out)
            source = out
