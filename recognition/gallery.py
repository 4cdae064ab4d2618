"""The vectorised gallery matcher: every enrolled template in one float32 matrix.

A probe embedding is matched against all templates of all people with one matrix
product. For each probe the gallery reports the nearest person, the distance to that
person's nearest template, and the *margin*: how much farther the nearest template of
any *other* person is. An identity is accepted only when the distance is under the
threshold AND the margin is at least the required margin; otherwise the probe is
unknown. The margin is what keeps a look-alike from being logged as someone else in a
1:N search, where dlib's customary 1:1 threshold of 0.6 is far too loose.

Layout, chosen by measuring on one small CPU core (bench/matcher.py):

- ``_matrix``: one C-contiguous float32 matrix of shape (129, capacity). Column j holds
  template j times -2 in rows 0..127 and its squared norm in row 128. Dimension-major
  storage lets BLAS stream the product with its axpy-style kernel, about 1.6x faster
  on one core than the same product over a template-major (n, 128) matrix. Spare
  columns let adding a person append instead of rebuilding. Scaling by -2 is exact in
  floating point, so templates are recovered bit for bit.
- ``_labels``: the int32 person code of each column.

With the probe extended by a trailing 1, one matrix-vector product gives
``||g||^2 - 2 g.p`` for every template g; ``||p||^2`` is the same for every template
and is added to the winners only. The nearest other person comes from the same scores
with the winner's own columns (cached per person) set aside.

A single probe's scores are one float32 per template (1/129 of the gallery). A batch
is matched chunk by chunk, so its temporaries stay bounded whatever the gallery size;
each chunk yields each probe's nearest template and nearest template of a different
person, and those merge exactly across chunks.

Not thread-safe for concurrent mutation: build a new gallery and swap it in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clockface.errors import GalleryError
from clockface.values import EMBEDDING_DIM as EMBEDDING_DIM  # one home: the stores check it

# Measured on the shared real faces (`uv run python -m bench.thresholds`; README,
# "Choosing the match threshold"), with YuNet's boxes: genuine pairs reach 0.525 (0.519
# with dlib's HOG boxes), impostors start at 0.638, and a normal fit to the impostor
# distances puts a 1 % chance that a stranger falls under the threshold of one of 500
# people at 0.537: 0.53 is the highest threshold under both that and 0.08 below the
# nearest impostor. dlib's 1:1 threshold of 0.6 is 0.038 from the nearest impostor there.
# The margin is about the embedding's own jitter between re-captures of one shot
# (median 0.099); genuine probes' margins start at 0.20.
DEFAULT_THRESHOLD = 0.53
DEFAULT_MARGIN = 0.10

# One encoding alone may name someone only far inside those limits. The same normal fit
# to the impostor distances (mean 0.859, sd 0.079) puts a stranger under 0.42 of one
# given person with a chance of 1.4e-8: under 1 in 70,000 per face for 1,000 enrolled
# people. Most genuine distances measured are under it (p75 0.386, p95 0.441); every
# genuine probe had a margin of 0.20 or more, twice the margin asked of an ordinary match.
DECISIVE_DISTANCE = 0.42
DECISIVE_MARGIN = 0.20

_ROWS = EMBEDDING_DIM + 1  # the templates' rows, then their squared norms
_BATCH_CHUNK_SCORES = 262_144  # scores per chunk of a batch (1 MiB of float32)
_MIN_CHUNK_WIDTH = 1024  # templates per chunk, at least
_MAX_BATCH = 256  # probes matched together; larger batches are split
_GROWTH = 1.25  # capacity growth factor: bounded slack for large galleries
_MIN_GROWTH = 1024

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Match:
    """The gallery's answer for one probe embedding.

    ``person_id`` is the accepted identity, or None for unknown. ``nearest_id`` is the
    nearest person whether or not accepted (None only for an empty gallery).
    ``distance`` is the Euclidean distance to that person's nearest template;
    ``margin`` is how much farther the nearest other person is (infinite when the
    gallery holds one person).
    """

    person_id: str | None
    nearest_id: str | None
    distance: float
    margin: float

    @property
    def accepted(self) -> bool:
        return self.person_id is not None


class Gallery:
    """All templates of all enrolled people, matched in one matrix product."""

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if not (threshold > 0.0 and math.isfinite(threshold)):
            raise GalleryError(f"threshold must be a positive number, not {threshold!r}")
        if not (margin >= 0.0 and math.isfinite(margin)):
            raise GalleryError(f"margin must be zero or a positive number, not {margin!r}")
        self.threshold = float(threshold)
        self.margin = float(margin)
        self._matrix: FloatArray = np.empty((_ROWS, 0), dtype=np.float32)
        self._labels: IntArray = np.empty(0, dtype=np.int32)
        self._size = 0
        self._code_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._count_of: dict[int, int] = {}
        self._columns_of: dict[int, npt.NDArray[np.intp]] = {}  # cache, rebuilt on demand
        self._next_code = 0

    # ----------------------------------------------------------------- contents
    def __len__(self) -> int:
        """Number of templates."""
        return self._size

    def __contains__(self, person_id: object) -> bool:
        return person_id in self._code_of

    @property
    def people(self) -> list[str]:
        """The enrolled person ids, in enrollment order."""
        return list(self._code_of)

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrix and labels, spare capacity included."""
        return self._matrix.nbytes + self._labels.nbytes

    @property
    def templates_view(self) -> FloatArray:
        """The stored template rows (times -2), shape (128, n), a read-only view."""
        view = self._matrix[:EMBEDDING_DIM, : self._size]
        view.flags.writeable = False
        return view

    def template_count(self, person_id: str) -> int:
        return self._count_of[self._code(person_id)]

    def templates_of(self, person_id: str) -> FloatArray:
        """A copy of one person's templates, shape (k, 128), exactly as added (as float32)."""
        columns = self._columns(self._code(person_id))
        out: FloatArray = np.ascontiguousarray(
            self._matrix[:EMBEDDING_DIM, columns].T * np.float32(-0.5)
        )
        return out

    # ----------------------------------------------------------------- changes
    def add(self, person_id: str, templates: npt.ArrayLike) -> None:
        """Add one or more templates (shape (128,) or (k, 128)) of one person."""
        rows = _as_embeddings(templates, "templates")
        if not isinstance(person_id, str) or not person_id:
            raise GalleryError("a person id must be a non-empty string")
        code = self._code_of.get(person_id)
        if code is None:
            code = self._new_code(person_id)
        self._append(rows, np.full(len(rows), code, dtype=np.int32))
        self._count_of[code] += len(rows)
        self._columns_of.pop(code, None)

    def add_many(
        self, person_ids: Sequence[str] | npt.NDArray[np.str_], templates: npt.ArrayLike
    ) -> None:
        """Bulk add: ``person_ids[i]`` owns ``templates[i]``. One copy, no per-row work."""
        rows = _as_embeddings(templates, "templates")
        if len(person_ids) != len(rows):
            raise GalleryError(
                f"{len(person_ids)} person ids for {len(rows)} templates: they must match"
            )
        if len(rows) == 0:
            return
        uniques, inverse = np.unique(np.asarray(person_ids, dtype=str), return_inverse=True)
        if not all(uniques):
            raise GalleryError("a person id must be a non-empty string")
        codes = np.empty(len(uniques), dtype=np.int32)
        for i, pid in enumerate(uniques.tolist()):
            code = self._code_of.get(pid)
            codes[i] = self._new_code(pid) if code is None else code
        labels = codes[inverse.reshape(-1)]
        self._append(rows, labels)
        for code, count in zip(*np.unique(labels, return_counts=True), strict=True):
            self._count_of[int(code)] += int(count)
        self._columns_of.clear()

    def remove(self, person_id: str) -> int:
        """Remove every template of a person; returns how many. Only moved columns are copied."""
        code = self._code(person_id)
        n = self._size
        gone = self._labels[:n] == code
        new_n = n - int(np.count_nonzero(gone))
        # Fill the holes below new_n with the kept columns from above it.
        holes = np.flatnonzero(gone[:new_n])
        movers = new_n + np.flatnonzero(~gone[new_n:])
        self._matrix[:, holes] = self._matrix[:, movers]
        self._labels[holes] = self._labels[movers]
        self._size = new_n
        del self._code_of[person_id], self._id_of[code], self._count_of[code]
        self._columns_of.clear()
        return n - new_n

    def shrink_to_fit(self) -> None:
        """Drop spare capacity (after many removals)."""
        n = self._size
        self._matrix = np.ascontiguousarray(self._matrix[:, :n])
        self._labels = self._labels[:n].copy()

    # ----------------------------------------------------------------- matching
    def match_one(self, probe: npt.ArrayLike) -> Match:
        """Match one embedding (shape (128,)): one matrix-vector product."""
        q = np.empty(_ROWS, dtype=np.float32)
        p = q[:EMBEDDING_DIM]
        array = np.asarray(probe)
        if array.shape != (EMBEDDING_DIM,) or array.dtype.kind not in "fiu":
            raise GalleryError(
                f"an embedding must be {EMBEDDING_DIM} numbers, not {array.dtype} "
                f"of shape {array.shape}"
            )
        p[...] = array
        q[EMBEDDING_DIM] = 1.0
        pnorm = float(p @ p)
        if not math.isfinite(pnorm):  # NaN or inf anywhere makes the norm non-finite
            raise GalleryError("the embedding contains NaN or infinite values")
        n = self._size
        if n == 0:
            return Match(None, None, math.inf, math.inf)
        scores = q @ self._matrix[:, :n]
        i = int(scores.argmin())
        best = float(scores[i])
        code = int(self._labels[i])
        scores[self._columns(code)] = np.inf
        second = float(scores[int(scores.argmin())])
        return self._decide(best, second, code, pnorm)

    def match(self, probes: npt.ArrayLike) -> list[Match]:
        """Match a batch of embeddings (shape (b, 128)): one matrix product per chunk."""
        p = _as_embeddings(probes, "embeddings")
        if p.shape[0] == 1:
            return [self.match_one(p[0])]
        out: list[Match] = []
        for start in range(0, p.shape[0], _MAX_BATCH):
            out.extend(self._match_batch(p[start : start + _MAX_BATCH]))
        return out

    def _match_batch(self, p: FloatArray) -> list[Match]:
        b = p.shape[0]
        n = self._size
        if n == 0:
            return [Match(None, None, math.inf, math.inf) for _ in range(b)]
        q = np.empty((b, _ROWS), dtype=np.float32)
        q[:, :EMBEDDING_DIM] = p
        q[:, EMBEDDING_DIM] = 1.0
        width = max(_MIN_CHUNK_WIDTH, _BATCH_CHUNK_SCORES // b)
        best = np.full(b, np.inf, dtype=np.float32)
        second = np.full(b, np.inf, dtype=np.float32)
        best_code = np.full(b, -1, dtype=np.int32)
        probe_index = np.arange(b)
        for start in range(0, n, width):
            stop = min(n, start + width)
            scores = q @ self._matrix[:, start:stop]  # (b, width): one GEMM
            idx = scores.argmin(axis=1)
            c1 = scores[probe_index, idx]
            chunk_labels = self._labels[start:stop]
            code = chunk_labels[idx]
            np.copyto(scores, np.float32(np.inf), where=chunk_labels == code[:, None])
            c2 = scores.min(axis=1)
            take = c1 < best
            second = np.where(
                take,
                np.minimum(c2, np.where(best_code != code, best, second)),
                np.minimum(second, np.where(code != best_code, c1, c2)),
            )
            best = np.where(take, c1, best)
            best_code = np.where(take, code, best_code)
        # Decide in float64, exactly as match_one does with Python floats.
        pnorm = np.einsum("ij,ij->i", p, p).astype(np.float64)
        distance = np.sqrt(np.maximum(best.astype(np.float64) + pnorm, 0.0))
        with np.errstate(invalid="ignore"):  # inf - inf where the gallery holds one person
            margin = np.sqrt(np.maximum(second.astype(np.float64) + pnorm, 0.0)) - distance
        margin[np.isinf(second)] = np.inf
        accepted = (distance <= self.threshold) & (margin >= self.margin)
        ids = [self._id_of[c] for c in best_code.tolist()]
        return [
            Match(pid if ok else None, pid, d, m)
            for pid, ok, d, m in zip(
                ids, accepted.tolist(), distance.tolist(), margin.tolist(), strict=True
            )
        ]

    def _decide(self, best: float, second: float, code: int, pnorm: float) -> Match:
        distance = math.sqrt(max(best + pnorm, 0.0))
        margin = math.sqrt(max(second + pnorm, 0.0)) - distance if second < math.inf else math.inf
        nearest = self._id_of[code]
        accepted = distance <= self.threshold and margin >= self.margin
        return Match(nearest if accepted else None, nearest, distance, margin)

    # ----------------------------------------------------------------- internals
    def _code(self, person_id: str) -> int:
        try:
            return self._code_of[person_id]
        except KeyError:
            raise GalleryError(f"no person {person_id!r} in the gallery") from None

    def _columns(self, code: int) -> npt.NDArray[np.intp]:
        columns = self._columns_of.get(code)
        if columns is None:
            columns = np.flatnonzero(self._labels[: self._size] == code)
            self._columns_of[code] = columns
        return columns

    def _new_code(self, person_id: str) -> int:
        code = self._next_code
        self._next_code += 1
        self._code_of[person_id] = code
        self._id_of[code] = person_id
        self._count_of[code] = 0
        return code

    def _append(self, rows: FloatArray, labels: IntArray) -> None:
        k = len(rows)
        n = self._size
        capacity = self._matrix.shape[1]
        if n + k > capacity:
            grown = n + k if n == 0 else max(n + k, int(capacity * _GROWTH), n + _MIN_GROWTH)
            matrix = np.empty((_ROWS, grown), dtype=np.float32)
            matrix[:, :n] = self._matrix[:, :n]
            labels_out = np.empty(grown, dtype=np.int32)
            labels_out[:n] = self._labels[:n]
            self._matrix, self._labels = matrix, labels_out
        block = self._matrix[:, n : n + k]
        np.multiply(rows.T, np.float32(-2.0), out=block[:EMBEDDING_DIM])
        block[EMBEDDING_DIM] = np.einsum("ij,ij->i", rows, rows)
        self._labels[n : n + k] = labels
        self._size = n + k


def _as_embeddings(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != EMBEDDING_DIM:
        raise GalleryError(
            f"{what} must have shape (k, {EMBEDDING_DIM}), not {tuple(np.shape(values))}"
        )
    if array.dtype.kind not in "fiu":
        raise GalleryError(f"{what} must be numbers, not {array.dtype}")
    out = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(out).all():
        raise GalleryError(f"{what} contain NaN or infinite values")
    return out
