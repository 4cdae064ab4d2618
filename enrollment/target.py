"""Where enrollment writes: the roster interface enrollment works against, and opening one.

:class:`EnrollmentRoster` is what the :class:`~enrollment.enroll.Enroller`, bulk imports
(:mod:`enrollment.folder_import`), roster files (:mod:`enrollment.roster_file`) and
``clockface enroll`` need: the :class:`kiosk.store.Roster` methods, ``enroll`` and
``enroll_many``, and ``close`` (or ``with``). Three rosters have it:

======================  ==================  =========================================
``--db PATH``           kiosk database      :class:`kiosk.store.KioskStore`
``--central-db PATH``   central database    :class:`central.store.CentralStore`
``--server URL``        central service     :class:`central.admin_client.AdminClient`
======================  ==================  =========================================

All three record consent (or another legal basis) with an enrollment, record it later
for someone enrolled without (``record_consent``) and give it back (``lawful_bases``).
The last two are also a :class:`CentralRoster`: they read the whole roster (deactivated
people and templates included) in one go (``full_gallery``), and give a person's
consent records (``person_record``).

A kiosk attached to a central service takes its roster from there: local roster
writes raise :class:`~clockface.errors.RosterManagedError`. :meth:`RosterTarget.open`
checks that up front (``writing=True``), before any face model is loaded, and says to
enroll with ``--server`` or ``--central-db`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from clockface.closing import Closable
from clockface.consent import LawfulBasis
from clockface.errors import CentralStoreError, RosterManagedError, StoreError
from clockface.roster import NewPerson, Offender
from clockface.roster import roster_offenders as check_stored
from kiosk.store import Person, Roster
from recognition.gallery import EMBEDDING_DIM

if TYPE_CHECKING:
    from central.store import PersonRecord
    from sync.protocol import GalleryDelta

FloatArray = npt.NDArray[np.float32]
TargetKind = Literal["kiosk", "central", "server"]


# --------------------------------------------------------------------- interfaces
class EnrollmentRoster(Roster, Closable, Protocol):
    """A roster enrollment can write to: a kiosk database, the central database, or the
    central service's admin API. Close it when done (or use it with ``with``)."""

    def enroll(
        self,
        person_id: str,
        name: str,
        team: str | None,
        embeddings: npt.ArrayLike,
        *,
        consent: LawfulBasis | None = None,
    ) -> Person: ...

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]: ...

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None: ...

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]: ...


@runtime_checkable
class CentralRoster(EnrollmentRoster, Protocol):
    """The central roster, in its database or through the admin API: enrollments carry
    consent records, and the whole roster is read at once."""

    def full_gallery(self) -> GalleryDelta: ...

    def person_record(self, person_id: str) -> PersonRecord: ...


# --------------------------------------------------------------------- the whole roster
@dataclass(frozen=True, slots=True, eq=False)
class RosterEntry:
    """One person of the roster with every template, shape (k, 128) float32."""

    person_id: str
    name: str
    team: str | None
    active: bool
    templates: FloatArray


def whole_roster(roster: EnrollmentRoster) -> list[RosterEntry]:
    """Everyone, deactivated people included, with their templates, by person id.

    From a central roster in one read (``full_gallery``: one request over HTTP);
    from a kiosk database person by person.
    """
    if isinstance(roster, CentralRoster):
        from sync.protocol import decode_template

        entries = [
            RosterEntry(
                p.person_id,
                p.name,
                p.team,
                p.active,
                np.stack([decode_template(t) for t in p.templates])
                if p.templates
                else np.empty((0, EMBEDDING_DIM), dtype=np.float32),
            )
            for p in roster.full_gallery().people
        ]
        return sorted(entries, key=lambda entry: entry.person_id)
    return [
        RosterEntry(p.person_id, p.name, p.team, p.active, roster.templates(p.person_id))
        for p in roster.people()
    ]


def roster_offenders(roster: EnrollmentRoster) -> list[Offender]:
    """The people a roster holds under older, looser rules (an id with ``/`` or spaces,
    a zero template, more than 100 templates): one :class:`~clockface.roster.Offender`
    each, by id. Nothing is changed; they stay readable and erasable."""
    return check_stored(
        (entry.person_id, entry.name, entry.team, entry.templates) for entry in whole_roster(roster)
    )


# --------------------------------------------------------------------- opening one
@dataclass(frozen=True, slots=True)
class RosterTarget:
    """Which roster a command works on: ``kind`` and ``where`` (a kiosk database path, a
    central database path or URL, or the central service's URL with its admin ``token``,
    never shown)."""

    kind: TargetKind
    where: str
    token: str | None = field(default=None, repr=False)

    def open(self, *, create: bool = False, writing: bool = False) -> EnrollmentRoster:
        """Open the roster. ``create``: a missing kiosk database is created (never a
        central one: a mistyped path would enroll people where no kiosk looks).
        ``writing``: the command will change the roster, so a kiosk attached to a central
        service is refused now (RosterManagedError), before any photo is read."""
        if self.kind == "kiosk":
            return _open_kiosk(self.where, create=create, writing=writing)
        if self.kind == "central":
            return _open_central(self.where)
        from central.admin_client import AdminClient

        if self.token is None:
            raise ValueError("an admin token is needed to open the central service")
        return AdminClient.connect(self.where, self.token)


def _open_kiosk(path: str, *, create: bool, writing: bool) -> EnrollmentRoster:
    from kiosk.store import KioskStore

    try:
        store = KioskStore.open(path, create=create)
    except StoreError as err:
        if create or Path(path).exists():
            raise
        raise StoreError(
            f"no database at {path!r}: enroll someone first (clockface enroll add), "
            "or point --db / CLOCKFACE_DB at the kiosk's database"
        ) from err
    if writing:
        try:
            url = store.managed_by()
        except BaseException:
            store.close()
            raise
        if url is not None:
            store.close()
            raise RosterManagedError(
                f"this kiosk's roster is managed by the central service at {url}: enroll "
                f"there, from an HR laptop with --server {url} and an admin token "
                "(--admin-token-file), or on the central host with --central-db"
            )
    return store


def _open_central(database: str) -> EnrollmentRoster:
    from central.store import CentralStore, resolve_database

    path = resolve_database(database).path
    if path is not None and not path.exists():
        raise CentralStoreError(
            f"no central database at {os.fspath(path)!r}: point --central-db / "
            "CLOCKFACE_CENTRAL_DATABASE at the central service's database (a SQLite file "
            "or a postgresql:// URL)"
        )
    return CentralStore.open(database)
