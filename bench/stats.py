"""Latency histograms and the medians of runs.

Percentiles come from a log-bucketed histogram (1 % wide buckets, as HdrHistogram does),
so that samples from several client processes merge exactly by adding counts, and a run's
p99 never depends on keeping every sample.
"""

import math
import statistics
from collections import Counter
from collections.abc import Iterable

_GROWTH = math.log(1.01)


class Histogram:
    """Counts of values (microseconds) in buckets 1 % wide."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, value_us: float) -> None:
        self.counts[int(math.log(max(value_us, 1.0)) / _GROWTH)] += 1
        self.total += 1

    def extend(self, values_us: Iterable[float]) -> None:
        for value in values_us:
            self.add(value)

    def merge(self, other: "Histogram") -> None:
        self.counts.update(other.counts)
        self.total += other.total

    def percentile(self, fraction: float) -> float:
        """The upper edge of the bucket holding the value at `fraction` (0..1), in µs."""
        if not self.total:
            return math.nan
        rank = max(1, math.ceil(fraction * self.total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 1) * _GROWTH)
        return math.nan


def median(values: Iterable[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def ms(value_us: float) -> str:
    """Microseconds as milliseconds for a table, with precision that suits the size."""
    if math.isnan(value_us):
        return "n/a"
    value = value_us / 1000
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
