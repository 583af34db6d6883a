"""The arithmetic the members' fused forms may call beyond numba's own: each a plain
Python function here (so that importing a member never imports numba), replaced by its
compiled form when the fused engine compiles the member (pipeline.engine.fused.compile).

torch's addcmul and lerp round once (a fused multiply-add on this build: NOTES), so a
fused form that replays them calls `fma`.
"""

from fractions import Fraction


def fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once (exact in Python; a single FMA instruction when compiled)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def lerp(start: float, end: float, weight: float) -> float:
    """torch.lerp as ATen's vectorised kernel rounds it: start + weight (end - start) for
    |weight| < 0.5, else end + (weight - 1) (end - start), each one FMA. (weight / weight
    is 1 in weight's own type: a literal 1 would promote float32 to float64.)"""
    if abs(weight) < 0.5:
        return fma(weight, end - start, start)
    return fma(weight - weight / weight, end - start, end)
