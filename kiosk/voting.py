"""Identity votes per track: several agreeing encodings before anyone is named.

One frame can be unlucky (motion blur, a half-turned head); an attendance system must
never log someone as someone else. So a track becomes an identity only when at least
``required`` of its encodings were accepted as the same person by the gallery, and none
was accepted as anybody else. Encodings that matched nobody (unknown) neither help nor
block: they are counted, and a track with no settled identity produces no event.

Three exceptions, all for people walking past, who give the camera a second or two:

- **A decisive encoding.** One encoding far inside the limits (``decisive``: a distance
  and a margin, :data:`recognition.gallery.DECISIVE_DISTANCE` and ``DECISIVE_MARGIN``,
  where a stranger's chance of matching anyone is negligible) settles a track alone.
- **The pass's mean.** A face in a video is smaller, blurrier and noisier than in a
  photo, and each of its encodings scatters around the one the photo would give. The
  mean of a track's encodings scatters less: once a track has ``pooled_min``
  encodings, the gallery also matches their mean (``Votes.pooled``), and a mean
  accepted as one person (under the same threshold and margin, which were chosen on
  photos) settles the track, provided no single encoding named anybody else.
- **A fragmented pass.** A fast walker near the camera can be split into several short
  tracks (a missed detection, a jump the tracker could not follow). :class:`PassBook`
  remembers, per person, the encodings accepted as them in the last ``window`` seconds,
  from every track: a track's own votes plus those of other recent tracks naming the
  same person (and nobody else) count together, so each fragment's one vote is not
  wasted; and a track that names someone whose pass settled within the window is a
  fragment of that pass, never a second event nor an unknown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from recognition.gallery import Match


@dataclass(frozen=True, slots=True)
class Verdict:
    """A settled identity and the evidence for it."""

    person_id: str
    agreeing: int  # encodings accepted as this person
    distance: float  # the best (smallest) distance among them
    margin: float  # the margin of that best match


@dataclass
class Votes:
    """The gallery's answers for one track's encodings."""

    matches: list[Match] = field(default_factory=list)
    pooled: Match | None = None  # the gallery's answer for the mean of the encodings

    def add(self, match: Match) -> None:
        self.matches.append(match)

    @property
    def unknown(self) -> int:
        return sum(1 for m in self.matches if m.person_id is None)

    @property
    def accepted(self) -> Counter[str]:
        return Counter(m.person_id for m in self.matches if m.person_id is not None)

    @property
    def conflicting(self) -> bool:
        """Encodings were accepted as two or more different people."""
        return len(self.accepted) > 1

    @property
    def named(self) -> str | None:
        """The one person the accepted encodings name, or None (none, or conflicting)."""
        accepted = self.accepted
        return next(iter(accepted)) if len(accepted) == 1 else None

    def verdict(
        self, required: int, *, decisive: tuple[float, float] | None = None, support: int = 0
    ) -> Verdict | None:
        """The settled identity, or None while the evidence is short or conflicting.

        ``decisive``: (distance, margin) within which one encoding settles the track
        alone. ``support``: encodings accepted as the same person from other tracks of
        the same pass (:meth:`PassBook.support`), counted with this track's own.
        """
        if required < 1:
            raise ValueError(f"required must be at least 1, not {required!r}")
        accepted = self.accepted
        pooled = self.pooled
        if (
            pooled is not None
            and pooled.person_id is not None
            and set(accepted) <= {pooled.person_id}
            and accepted.get(pooled.person_id, 0) + support < required
        ):
            return Verdict(pooled.person_id, len(self.matches), pooled.distance, pooled.margin)
        if len(accepted) != 1:
            return None
        ((person_id, count),) = accepted.items()
        best = min((m for m in self.matches if m.person_id == person_id), key=lambda m: m.distance)
        sure = decisive is not None and best.distance <= decisive[0] and best.margin >= decisive[1]
        if count + support < required and not sure:
            return None
        return Verdict(person_id, count + support, best.distance, best.margin)


@dataclass
class PassBook:
    """Who was named recently, by which tracks, and whose pass settled when.

    Times are source seconds. ``window``: how long a pass lasts, at most, for pooling
    votes across its fragments and for merging a late fragment into a settled pass.
    """

    window: float
    _votes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _settled: dict[str, float] = field(default_factory=dict)

    def note(self, person_id: str, when: float, track_id: int) -> None:
        """An encoding of track ``track_id`` was accepted as ``person_id`` at ``when``."""
        self._votes.setdefault(person_id, []).append((when, track_id))

    def support(self, person_id: str, now: float, track_id: int) -> int:
        """Encodings accepted as ``person_id`` by other tracks within the window."""
        return sum(
            1
            for when, other in self._votes.get(person_id, ())
            if other != track_id and now - when <= self.window
        )

    def settle(self, person_id: str, now: float) -> None:
        """``person_id``'s pass settled at ``now``."""
        self._settled[person_id] = now

    def settled_recently(self, person_id: str, now: float) -> bool:
        """Whether ``person_id``'s pass settled within the window before ``now``."""
        when = self._settled.get(person_id)
        return when is not None and now - when <= self.window

    def forget(self, track_id: int) -> None:
        """Drop a track's votes (it named two people: its votes support nobody)."""
        for person_id in list(self._votes):
            kept = [v for v in self._votes[person_id] if v[1] != track_id]
            if kept:
                self._votes[person_id] = kept
            else:
                del self._votes[person_id]

    def prune(self, now: float) -> None:
        """Forget what is older than the window."""
        for person_id in list(self._votes):
            kept = [v for v in self._votes[person_id] if now - v[0] <= self.window]
            if kept:
                self._votes[person_id] = kept
            else:
                del self._votes[person_id]
        for person_id in [p for p, when in self._settled.items() if now - when > self.window]:
            del self._settled[person_id]
