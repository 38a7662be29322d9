"""Interval estimates for rates computed from small samples.

An editor deciding which article to rewrite must not be misled by "3 of 3 resolved": the Wilson
score interval stays honest at small n and near 0 or 1 (the normal approximation does not), and
below a minimum number of votes a rate is not shown as a number at all.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054
MIN_FEEDBACK = 10
INSUFFICIENT = "样本不足"


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for successes/n; None when there is nothing to estimate from."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes}/{n}")
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0/n and n/n one bound is exactly 0 or 1; floating point would leave 1e-17 of noise.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate(successes: int, n: int) -> float | None:
    return successes / n if n > 0 else None


def enough_feedback(n: int, minimum: int = MIN_FEEDBACK) -> bool:
    """The minimum-sample rule: below it a resolution rate is reported as 样本不足 and not ranked."""
    return n >= minimum


def format_rate(successes: int, n: int, minimum: int = MIN_FEEDBACK) -> str:
    """Human form used in tables: '72.0% (61.5–80.6%)' or 样本不足 (n)."""
    if not enough_feedback(n, minimum):
        return f"{INSUFFICIENT}（{n} 票）" if n else "无反馈"
    low, high = wilson_interval(successes, n)  # type: ignore[misc]
    return f"{successes / n:.1%}（{low:.1%}–{high:.1%}）"
