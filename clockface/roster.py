"""The roster's rules, in one home: what a person id, a name, a team and a face template
must be, and how many templates one person may have.

Every entry that adds to a roster applies them through these functions, so a person the
kiosk takes is one the central service takes, and the other way round: the kiosk store
and the central store (``enroll``, ``enroll_many``, ``add_person``, ``add_templates``), the
admin client and the admin API's request models, roster files, folder imports and the
``clockface enroll`` commands, and a kiosk applying the central roster (a gallery delta).
Each refusal is a :class:`~clockface.errors.RosterRuleError`: one line saying what was
wrong.

- **A person id** (:func:`check_person_id`) is 1 to 64 ASCII letters, digits, ``.``,
  ``_`` or ``-``, starting with a letter or digit: ``lin``, ``p00000``, ``E1042``,
  ``hr-007``, ``ada.lovelace``. No ``/``, space, ``%``, ``?`` or ``#``, so an id is one
  URL path segment as it stands and every path (the admin API, a shell, a file name)
  reaches it. The same grammar as kiosk and admin names (:data:`ID_PATTERN`).
- **A name or team** (:func:`check_label`): 1 to 200 printable characters, no spaces at
  either end; no control characters (tabs, newlines, NUL) nor invisible formatting ones.
- **Templates per person**: at most :data:`MAX_TEMPLATES_PER_PERSON` (100).
- **A template** (:func:`check_templates`): 128 finite numbers whose Euclidean norm lies
  within :data:`TEMPLATE_NORM_RANGE`. dlib's face descriptors measure 1.26 to 1.59 over
  the project's real faces (150 faces: the photos and the video in ``shared/faces``;
  mean 1.40); the range, 0.7 to 2.8, is half to twice a typical one. An all-zero
  template, 1e38s, or numbers that are not an embedding at all are refused.

**Rows stored under older, looser rules** (an id with ``/`` or spaces, a zero template)
stay readable and erasable: reads, changes and erasure look people up with
:func:`check_known_id` (any id a store could ever hold), only a *new* person takes
:func:`check_person_id`. :func:`roster_offenders` lists what no longer follows the rules
(``clockface enroll check-roster``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from clockface.errors import RosterRuleError
from clockface.values import EMBEDDING_DIM, ID_PATTERN, ID_RULE, TEMPLATE_DTYPE

MAX_PERSON_ID = 64
MAX_LABEL = 200
"""The longest name or team (and the longest id a store ever held: the old limit)."""
MAX_TEMPLATES_PER_PERSON = 100
TEMPLATE_NORM_RANGE = (0.7, 2.8)
"""The Euclidean norms a face template may have (see the module doc for the figures)."""
PERSON_ID_RULE = f"a person id is {ID_RULE}"

_PERSON_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class NewPerson:
    """Someone to add together with their face templates (``enroll_many``).

    ``embeddings``: shape (k, 128) (or (128,) for one); k may be 0 only in a roster
    import of someone who had no templates.
    """

    person_id: str
    name: str
    team: str | None
    embeddings: npt.ArrayLike
    active: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class CheckedPerson:
    """A :class:`NewPerson` that follows the rules; ``templates`` is (k, 128) float32."""

    person_id: str
    name: str
    team: str | None
    templates: npt.NDArray[Any]
    active: bool


# --------------------------------------------------------------------- ids and labels
def check_person_id(value: object, what: str = "a person id") -> str:
    """A new person's id, as the grammar allows (see the module doc)."""
    if not isinstance(value, str) or not _PERSON_ID.fullmatch(value):
        raise RosterRuleError(f"{what} is {ID_RULE}, not {_shown(value)}")
    return value


def check_known_id(value: object) -> str:
    """An id to look up, change or erase: any id a store may hold, those stored under
    the older rules too (up to 200 characters, no control characters), so that they stay
    reachable. A new person takes :func:`check_person_id`."""
    return check_label(value, "a person id")


def check_label(value: object, what: str, longest: int = MAX_LABEL) -> str:
    """A name, team or other label: 1 to ``longest`` printable characters, no spaces at
    either end."""
    if not isinstance(value, str):
        raise RosterRuleError(f"{what} must be text, not {_shown(value)}")
    if not value.strip():
        raise RosterRuleError(f"{what} must not be empty")
    if len(value) > longest:
        raise RosterRuleError(f"{what} is at most {longest} characters, not {len(value):,}")
    if value != value.strip():
        raise RosterRuleError(f"{what} must not start or end with spaces: {value!r}")
    if not value.isprintable():
        raise RosterRuleError(
            f"{what} must hold printable characters only, no control characters: {value!r}"
        )
    return value


def check_team(team: object) -> str | None:
    """A team, or None; "" clears the team (None)."""
    if team is None or team == "":
        return None
    return check_label(team, "a team")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------- templates
def check_templates(values: npt.ArrayLike, *, allow_none: bool = False) -> npt.NDArray[Any]:
    """Face templates as the stores keep them: (k, 128) little-endian float32, each
    finite, not zero, with a norm in :data:`TEMPLATE_NORM_RANGE`. (128,) is one
    template. ``allow_none``: an empty (0, 128) is taken (a person with no templates)."""
    array = np.asarray(values)
    if allow_none and array.shape == (0, EMBEDDING_DIM):
        return np.empty((0, EMBEDDING_DIM), dtype=TEMPLATE_DTYPE)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != EMBEDDING_DIM or array.shape[0] == 0:
        raise RosterRuleError(
            f"templates must have shape (k, {EMBEDDING_DIM}) with k >= 1, "
            f"not {tuple(np.shape(values))}"
        )
    if array.dtype.kind not in "fiu":
        raise RosterRuleError(f"templates must be numbers, not {array.dtype}")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused below
        out = np.ascontiguousarray(array, dtype=TEMPLATE_DTYPE)
    problem = template_problem(out)
    if problem is not None:
        raise RosterRuleError(problem)
    return out


def template_problem(rows: npt.NDArray[Any]) -> str | None:
    """Why (k, 128) templates break the rules (the first one that does), or None."""
    low, high = TEMPLATE_NORM_RANGE
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(rows.astype(np.float64), axis=1)
    for i, (row, norm) in enumerate(zip(rows, norms, strict=True)):
        which = f"template {i + 1}" if len(rows) > 1 else "the template"
        if not np.isfinite(row).all():
            return f"{which} holds NaN or infinite values: not a face template"
        if not row.any():
            return f"{which} is all zeros: not a face template"
        if not low <= norm <= high:
            return (
                f"{which} has norm {norm:.3g}, outside {low} to {high}: not a face "
                "template (face descriptors measure about 1.4)"
            )
    return None


def check_template_count(person_id: str, count: int) -> None:
    """Refuse more than :data:`MAX_TEMPLATES_PER_PERSON` templates for one person."""
    if count > MAX_TEMPLATES_PER_PERSON:
        raise RosterRuleError(
            f"person {person_id!r} would have {count} templates; at most "
            f"{MAX_TEMPLATES_PER_PERSON} are kept per person"
        )


# --------------------------------------------------------------------- whole people
def check_new_person(new: NewPerson) -> CheckedPerson:
    """One person to enroll, every field checked; errors name the person."""
    pid = check_person_id(new.person_id)
    try:
        name = check_label(new.name, "a name")
        team = check_team(new.team)
        if not isinstance(new.active, bool):
            raise RosterRuleError(f"active must be True or False, not {new.active!r}")
        rows = check_templates(new.embeddings, allow_none=True)
        check_template_count(pid, len(rows))
    except RosterRuleError as err:
        message = str(err)
        if pid in message:
            raise
        raise RosterRuleError(f"person {pid!r}: {message}") from None
    return CheckedPerson(pid, name, team, rows, new.active)


def check_new_people(people: Iterable[NewPerson]) -> list[CheckedPerson]:
    """People to enroll together: each checked, no id twice."""
    checked = [check_new_person(new) for new in people]
    seen: set[str] = set()
    for person in checked:
        if person.person_id in seen:
            raise RosterRuleError(
                f"person {person.person_id!r} is given twice; nothing was written"
            )
        seen.add(person.person_id)
    return checked


# --------------------------------------------------------------------- one person
P = TypeVar("P")  # a roster's person record
B = TypeVar("B")  # a roster's consent record (or other legal basis)


class EnrollsOne(Generic[P, B]):
    """``enroll`` (one person, at least one template) for every roster, written once over
    its own ``enroll_many``: the kiosk store, the central store and the admin client."""

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, B] | None = None,
    ) -> list[P]:
        raise NotImplementedError

    def enroll(
        self,
        person_id: str,
        name: str,
        team: str | None,
        embeddings: npt.ArrayLike,
        *,
        consent: B | None = None,
    ) -> P:
        """Add someone with their face templates (at least one), with their ``consent``
        record (or other legal basis) if given: both or neither, as ``enroll_many``."""
        if np.size(embeddings) == 0:
            raise RosterRuleError(f"enroll needs at least one template for {person_id!r}")
        consents = None if consent is None else {person_id: consent}
        (person,) = self.enroll_many(
            [NewPerson(person_id, name, team, embeddings)], consents=consents
        )
        return person


# --------------------------------------------------------------------- stored rows
@dataclass(frozen=True, slots=True)
class Offender:
    """A person stored under older rules, and what they break (one line)."""

    person_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.person_id!r}: {self.problem}"


def roster_offenders(
    people: Iterable[tuple[str, str, str | None, npt.NDArray[Any] | None]],
) -> list[Offender]:
    """Each stored person (id, name, team, templates) that breaks today's rules, by id.

    One line each, the first rule broken; nothing is changed. They stay readable and
    erasable (:func:`check_known_id`). Templates None: not read, so not checked (the
    service's start-up check reads no template)."""
    found = []
    for pid, name, team, templates in people:
        problem = _stored_problem(pid, name, team, templates)
        if problem is not None:
            found.append(Offender(pid, problem))
    return sorted(found, key=lambda offender: offender.person_id)


def _stored_problem(
    pid: str, name: str, team: str | None, templates: npt.NDArray[Any] | None
) -> str | None:
    try:
        check_person_id(pid)
        check_label(name, "the name")
        check_team(team)
    except RosterRuleError as err:
        return str(err)
    if templates is None:
        return None
    if len(templates) > MAX_TEMPLATES_PER_PERSON:
        return f"holds {len(templates)} templates; at most {MAX_TEMPLATES_PER_PERSON} are kept"
    return template_problem(np.asarray(templates, dtype=np.float64))
