"""Look-alikes: pairs of different enrolled people the kiosk could take for each other.

:func:`look_alikes` finds pairs of different people whose closest templates are within
threshold + margin, with one float32 distance matrix per chunk; :func:`check_roster`
does it over the active people of any :class:`~enrollment.target.EnrollmentRoster`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD, Gallery

if TYPE_CHECKING:
    from enrollment.target import EnrollmentRoster


@dataclass(frozen=True, slots=True)
class LookAlike:
    """Two different people whose closest templates are ``distance`` apart."""

    first: str
    second: str
    distance: float


_CHUNK_SCORES = 4_000_000  # float32 distances per chunk (16 MB)


def look_alikes(gallery: Gallery, within: float) -> list[LookAlike]:
    """Pairs of different people with templates at most ``within`` apart, closest first.

    One float32 distance matrix per chunk of rows (bounded memory; fine for tens of
    thousands of templates), then the candidate pairs' distances again in float64.
    """
    if not (within >= 0 and math.isfinite(within)):
        raise ValueError(f"within must be a finite distance, not {within!r}")
    people = gallery.people
    blocks = [gallery.templates_of(pid) for pid in people]
    counts = [len(b) for b in blocks]
    if len(people) < 2 or sum(counts) == 0:
        return []
    matrix = np.concatenate(blocks).astype(np.float32)
    labels = np.repeat(np.arange(len(people), dtype=np.int64), counts)
    norms = np.einsum("ij,ij->i", matrix, matrix)
    n = len(matrix)
    cutoff = np.float32((within + 1e-3) ** 2)  # float32 slack; decided exactly below
    rows_per_chunk = max(1, _CHUNK_SCORES // n)
    best: dict[int, float] = {}
    exact = matrix.astype(np.float64)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        d2 = norms[start:stop, None] + norms[None, :] - 2.0 * (matrix[start:stop] @ matrix.T)
        mine = labels[start:stop, None]
        hit = (d2 <= cutoff) & (mine < labels[None, :])
        rows, cols = np.nonzero(hit)
        if not len(rows):
            continue
        rows += start
        distance = np.linalg.norm(exact[rows] - exact[cols], axis=1)
        pair = labels[rows] * len(people) + labels[cols]
        for code, d in zip(pair.tolist(), distance.tolist(), strict=True):
            if d <= within and d < best.get(code, math.inf):
                best[code] = d
    found = [
        LookAlike(people[code // len(people)], people[code % len(people)], d)
        for code, d in best.items()
    ]
    return sorted(found, key=lambda pair: (pair.distance, pair.first, pair.second))


@dataclass(frozen=True, slots=True)
class RosterCheck:
    """The look-alikes among a roster's active people, and their names by id."""

    pairs: list[LookAlike]
    names: dict[str, str]
    within: float
    people: int
    templates: int


def check_roster(roster: EnrollmentRoster, within: float | None = None) -> RosterCheck:
    """Look-alike pairs among the active people of ``roster``, within ``within``
    (default: the match threshold plus the margin, 0.62)."""
    limit = DEFAULT_THRESHOLD + DEFAULT_MARGIN if within is None else within
    gallery = roster.load_gallery(threshold=DEFAULT_THRESHOLD, margin=DEFAULT_MARGIN)
    names = {p.person_id: p.name for p in roster.people()}
    return RosterCheck(look_alikes(gallery, limit), names, limit, len(gallery.people), len(gallery))
