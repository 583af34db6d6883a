"""Every clipping mode gradlab compares, one module each (pipeline.clips.spec says what a
module declares). Adding a mode is adding its module here, its oracle test and its
params.yaml lines."""

from pipeline.clips.spec import Clip
from pipeline.registry import discover

CLIPS: dict[str, Clip] = discover(__name__, __path__, "CLIP", Clip)
