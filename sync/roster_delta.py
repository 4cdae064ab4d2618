"""The central roster's changes as the kiosk receives them, checked and decoded.

``GET /v1/gallery`` answers pages of :class:`~sync.protocol.GalleryDelta` (the wire
format). :func:`plan_gallery` checks the pages (consecutive, the last one last, every
version inside its page, each id, name, team and template valid) and turns them into the
kiosk store's :class:`~kiosk.store.GalleryPlan`, so the store never reads the wire format.

A person put on the kiosk follows the roster's rules (:mod:`clockface.roster`) as any
enrollment does: a delta carrying an id, name or template that breaks them (someone
stored on the service under older rules) is refused whole, naming the person, and
nothing is applied; ``clockface enroll check-roster --central-db`` lists such people on
the service. An erasure is taken for any id a store may hold, so that erasing such a
person on the service reaches every kiosk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from clockface.errors import StoreValueError
from clockface.roster import NewPerson, check_known_id, check_new_person
from clockface.values import EMBEDDING_DIM
from kiosk.store import GalleryErase, GalleryPlan, GalleryPut
from sync.protocol import GalleryDelta, decode_template


def plan_gallery(pages: Sequence[GalleryDelta]) -> GalleryPlan:
    """Check every page of a gallery delta and put its changes in version order.

    Anything invalid is a one-line StoreValueError (nothing is applied, since the store
    applies only a plan)."""

    def invalid(problem: str) -> StoreValueError:
        return StoreValueError(
            f"the central service's roster changes are invalid: {problem}; nothing was applied"
        )

    pages = list(pages)
    if not pages:
        raise invalid("no pages")
    steps: list[GalleryErase | GalleryPut] = []
    expected = pages[0].since
    for number, page in enumerate(pages, 1):
        last = number == len(pages)
        if page.since != expected:
            raise invalid(f"page {number} starts after version {page.since}, not {expected}")
        if page.version < page.since:
            raise invalid(f"page {number} ends at version {page.version}, before it starts")
        if page.more == last:
            raise invalid(
                "the last page says more follow: fetch every page first"
                if last
                else f"page {number} says no more follow, yet more pages were given"
            )
        for pid_given, version in [
            *((e.person_id, e.version) for e in page.erasures),
            *((p.person_id, p.version) for p in page.people),
        ]:
            if not page.since < version <= page.version:
                raise invalid(
                    f"person {pid_given!r} has version {version}, outside page "
                    f"{number} ({page.since}, {page.version}]"
                )
        for erasure in page.erasures:
            try:
                pid = check_known_id(erasure.person_id)
            except StoreValueError as err:
                raise invalid(str(err)) from None
            steps.append(GalleryErase(pid, erasure.version))
        for person in page.people:
            try:
                templates = _templates(person.templates)
            except ValueError as err:  # a template decode_template refused
                raise invalid(f"person {person.person_id!r}: {err}") from None
            try:
                new = check_new_person(
                    NewPerson(person.person_id, person.name, person.team, templates, person.active)
                )
            except StoreValueError as err:  # names the person
                raise invalid(
                    f"{err} (fix it on the service: clockface enroll check-roster)"
                ) from None
            steps.append(
                GalleryPut(
                    new.person_id, new.name, new.team, new.active, new.templates, person.version
                )
            )
        expected = page.version
    seen: set[tuple[str, int]] = set()
    for step in steps:
        key = (step.person_id, step.version)
        if key in seen:
            raise invalid(f"person {step.person_id!r} changes twice at version {step.version}")
        seen.add(key)
    steps.sort(key=lambda step: step.version)  # stable: ties keep page order
    kept: set[str] = set()
    for step in steps:
        if isinstance(step, GalleryErase):
            kept.discard(step.person_id)
        else:
            kept.add(step.person_id)
    return GalleryPlan(pages[0].since, pages[-1].version, steps, frozenset(kept))


def _templates(templates: Sequence[str]) -> npt.NDArray[np.float32]:
    if not templates:
        return np.empty((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([decode_template(t) for t in templates])
