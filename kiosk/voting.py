"""Identity votes per track: several agreeing encodings before anyone is named.

One frame can be unlucky (motion blur, a half-turned head); an attendance system must
never log someone as someone else. So a track becomes an identity only when at least
``required`` of its encodings were accepted as the same person by the gallery, and none
was accepted as anybody else. Encodings that matched nobody (unknown) neither help nor
block: they are counted, and a track with no settled identity produces no event.
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

    def verdict(self, required: int) -> Verdict | None:
        """The settled identity, or None while the evidence is short or conflicting."""
        if required < 1:
            raise ValueError(f"required must be at least 1, not {required!r}")
        accepted = self.accepted
        if len(accepted) != 1:
            return None
        ((person_id, count),) = accepted.items()
        if count < required:
            return None
        best = min((m for m in self.matches if m.person_id == person_id), key=lambda m: m.distance)
        return Verdict(person_id, count, best.distance, best.margin)
