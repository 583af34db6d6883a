"""The arithmetic the members' fused forms may call beyond numba's own: each a plain
Python function here (so that importing a member never imports numba), replaced by its
compiled form when the fused engine compiles the member (pipeline.engine.fused.compile).

torch's addcmul and lerp round once (a fused multiply-add on this build: NOTES), so a
fused form that replays them calls `fma`.

`exp_neg` and `log1p_unit` are gradlab's own exp and log1p on the ranges a loss needs, in
float64, as XLA has its own: the C library's are one call per lane that no vector unit
runs (log-cosh through them trained at ~1.2 M cell-steps/s, against 18-37 M for the other
losses). Only +, -, *, fma and /, in a fixed order: the same bits on any vector width.
"""

import math
from fractions import Fraction

LN2_HI = 6.93147180369123816490e-01  # ln 2 = LN2_HI + LN2_LO, LN2_HI with 32 trailing 0 bits
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
EXP_TERMS = 13  # Taylor terms of exp(r) - 1 for |r| <= ln 2 / 2: the last one < 2e-16 of it
LOG_TERMS = 17  # terms of atanh(s) / s for s <= 1/3: the first left out < 2e-18
SHIFTER = 1.5 * 2.0**52  # (y + SHIFTER) - SHIFTER: y rounded to an integer (|y| < 2^51), in
# IEEE addition alone: no call, no integer conversion, so it vectorises
INVERSE_FACTORIALS = tuple(float(Fraction(1, math.factorial(n))) for n in range(1, EXP_TERMS + 1))


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


def exp_neg(x: float) -> tuple[float, float]:
    """(exp(x), exp(x) - 1) in float64 for -43 <= x <= 0, each within a few ulp: x = k ln 2
    + r with |r| <= ln 2 / 2 (Cody and Waite), exp(r) - 1 by its Taylor series, and 2^k as a
    product of exact powers of two chosen by the bits of -k (0 <= -k <= 63)."""
    k = (x * INV_LN2 + SHIFTER) - SHIFTER  # rounded to an integer (see SHIFTER)
    r = fma(-k, LN2_LO, fma(-k, LN2_HI, x))
    q = 0.0
    for n in range(EXP_TERMS - 1, -1, -1):  # Horner: r (1/1! + r (1/2! + ... r / N!))
        q = fma(q, r, INVERSE_FACTORIALS[n])
    q = q * r
    scale, bits, power = 1.0, -k, 0.5
    for _ in range(6):  # 2^k: the product of 2^-(2^j) over the set bits j of -k
        half = (bits * 0.5 - 0.25 + SHIFTER) - SHIFTER  # bits // 2
        scale = scale * (power if bits - 2.0 * half > 0.0 else 1.0)
        bits, power = half, power * power
    e = fma(scale, q, scale)
    return e, (q if k == 0.0 else e - 1.0)


def log1p_unit(e: float) -> float:
    """log(1 + e) in float64 for 0 <= e <= 1, within a few ulp: 2 atanh(s), s = e / (2 + e)
    <= 1/3, by its series s (1 + s^2/3 + s^4/5 + ...)."""
    s = e / (2.0 + e)
    z = s * s
    total = 0.0
    for i in range(LOG_TERMS - 1, -1, -1):
        total = fma(total, z, 1.0 / (2 * i + 1))
    return 2.0 * s * total
