"""Shannon entropy of byte ranges: how random a section, overlay or resource looks (packed and
encrypted data sit near 8 bits per byte, code near 6, text near 4.5)."""

from __future__ import annotations

from collections import Counter
from math import log2
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restytriage.carve import Buffer

ENTROPY_SAMPLE = 1 << 18  # entropy reads at most this much (256 evenly spaced chunks)


def shannon_entropy(data: Buffer, start: int = 0, stop: int | None = None) -> float:
    """Bits per byte of data[start:stop]; past ENTROPY_SAMPLE bytes, 256 evenly spaced chunks are
    sampled, read from `data` in place (a mapped file is not read whole)."""
    stop = len(data) if stop is None else min(stop, len(data))
    length = stop - start
    if length > ENTROPY_SAMPLE:
        step, chunk = length // 256, ENTROPY_SAMPLE // 256
        sample = b"".join(data[i : i + chunk] for i in range(start, start + step * 256, step))
    else:
        sample = data[start:stop] if length > 0 else b""
    if not sample:
        return 0.0
    total = len(sample)
    return -sum(count / total * log2(count / total) for count in Counter(sample).values())
