"""Small statistics helpers shared by the scenarios."""


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction in [0, 1])."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
