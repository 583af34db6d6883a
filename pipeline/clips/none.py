"""No clipping: the optimizer applies the gradient as `loss.backward()` left it."""

from pipeline.clips.spec import Clip, Parameters, Settings


def reference(parameters: Parameters, settings: Settings) -> None:
    pass


CLIP = Clip(name="none", section=None, kwargs=None, columns={}, reference=reference, batched=None)
