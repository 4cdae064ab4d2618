"""The roster: :class:`RosterMixin` (people, their templates, enrollment, consent
records and other legal bases, erasure, the retention purge, the audit log read back).

- **Roster versions.** One global counter (``meta.roster_version``). Every roster change
  takes the next number inside its transaction, and the counter row stays locked until
  commit, so versions commit in order and a kiosk asking for changes after version V
  never misses one. A person row carries the version of its last change, an erasure
  its own; :meth:`central.store_gallery.GalleryMixin.gallery_delta` merges both in
  version order.
- **Roster methods** as :class:`kiosk.store.Roster` (same signatures, errors and return
  types, the same rules: :mod:`clockface.roster`), so enrollment can run against the
  central database; ``remove_person`` is an
  erasure that reaches every kiosk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy.typing as npt
import sqlalchemy as sa

from central.store_base import StoreBase
from central.store_records import AuditRecord, Erasure, FloatArray, PersonRecord
from central.store_values import _parse, _person
from clockface import roster as rules
from clockface.consent import Consent, LawfulBasis, LegalBasis, check_lawful_basis
from clockface.errors import (
    CentralValueError,
    DuplicatePersonError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.values import as_utc, from_blobs, iso_utc
from kiosk.store import AuditEntry, Expired, Person
from recognition.gallery import Gallery


class RosterMixin(StoreBase, rules.EnrollsOne[Person, LawfulBasis]):
    """The roster, its templates and consent records, erasure and retention."""

    def roster_version(self) -> int:
        """The roster's version: moves with every roster change."""
        with self._read("reading the roster version") as conn:
            return self._version(conn)

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person:
        """Add someone to the roster, active, with no templates yet."""
        pid = rules.check_person_id(person_id)
        name = rules.check_label(name, "a name")
        team = rules.check_team(team)
        now = self._now()
        with self._write("adding a person") as conn:
            if self._find(conn, pid) is not None:
                raise DuplicatePersonError(
                    f"person {pid!r} is already in the roster; use update_person to change them"
                )
            self._insert_person(conn, pid, name, team, active=True, now=now)
            return self._require(conn, pid)

    def _insert_person(
        self, conn: sa.Connection, pid: str, name: str, team: str | None, *, active: bool, now: str
    ) -> None:
        """A new person row at the next roster version, and its audit entry."""
        version = self._bump(conn)
        conn.execute(
            sa.insert(self._t["people"]).values(
                person_id=pid,
                name=name,
                team=team,
                active=active,
                created_utc=now,
                updated_utc=now,
                version=version,
                deactivated_utc=None if active else now,
            )
        )
        self._audit(conn, "person", "add", pid, None, now)

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person:
        """Change a name or team; None leaves a field as it is, ``team=""`` clears the team."""
        pid = rules.check_known_id(person_id)
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        new_name = None if name is None else rules.check_label(name, "a name")
        new_team = None if team is None else rules.check_team(team)
        people = self._t["people"]
        now = self._now()
        with self._write("updating a person") as conn:
            old = self._require(conn, pid)
            changes: dict[str, str | None] = {}
            if new_name is not None and new_name != old.name:
                changes["name"] = new_name
            if team is not None and new_team != old.team:
                changes["team"] = new_team
            if not changes:
                return old
            version = self._bump(conn)
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(**changes, updated_utc=now, version=version)
            )
            # The fields that changed, never their values: names must not outlive an erasure.
            self._audit(conn, "person", "update", pid, "changed " + ", ".join(changes), now)
            return self._require(conn, pid)

    def set_active(self, person_id: str, active: bool) -> Person:
        """Deactivate (out of every kiosk's gallery, kept in the roster) or reactivate."""
        pid = rules.check_known_id(person_id)
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        people = self._t["people"]
        now = self._now()
        with self._write("changing whether a person is active") as conn:
            old = self._require(conn, pid)
            if old.active == active:
                return old
            version = self._bump(conn)
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(
                    active=active,
                    updated_utc=now,
                    version=version,
                    deactivated_utc=None if active else now,
                )
            )
            self._audit(conn, "person", "reactivate" if active else "deactivate", pid, None, now)
            return self._require(conn, pid)

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)) as float32; returns how many."""
        pid = rules.check_known_id(person_id)
        rows = rules.check_templates(embeddings)
        people, templates = self._t["people"], self._t["templates"]
        now = self._now()
        with self._write("adding templates") as conn:
            old = self._require(conn, pid)
            rules.check_template_count(pid, old.template_count + len(rows))
            version = self._bump(conn)
            key = self._template_key(conn)
            conn.execute(
                sa.insert(templates),
                [
                    {
                        "person_id": pid,
                        "embedding": key.seal(pid, row.tobytes()),
                        "created_utc": now,
                    }
                    for row in rows
                ],
            )
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(updated_utc=now, version=version)
            )
            self._audit(conn, "person", "add_templates", pid, f"{len(rows)} added", now)
        return len(rows)

    def enroll_many(
        self,
        people: Iterable[rules.NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]:
        """Add people with their templates in one transaction: all of them or none.

        An id the roster already holds raises DuplicatePersonError, writing nothing,
        unless ``replace``: then that person is erased first (an erasure every kiosk
        receives) and added anew. Each person takes one roster version. ``consents``:
        consent records (or other legal bases) by person id, stored with them. Which
        enrollments need one is the entry points' rule (the admin API, ``clockface
        enroll``), which know the configured legal basis; the store records what it is
        given.
        """
        checked = rules.check_new_people(people)
        ids = [person.person_id for person in checked]
        for pid, consent in (consents or {}).items():
            if pid not in ids:
                raise StoreValueError(f"a consent for {pid!r}, who is not being enrolled")
            check_lawful_basis(consent)
        templates_t = self._t["templates"]
        now = self._now()
        erased = False
        with self._write("enrolling people") as conn:
            for pid, name, team, rows, active in (
                (p.person_id, p.name, p.team, p.templates, p.active) for p in checked
            ):
                old = self._find(conn, pid)
                if old is not None:
                    if not replace:
                        raise DuplicatePersonError(
                            f"person {pid!r} is already in the roster; nothing was written"
                        )
                    self._erase(conn, pid, old.template_count, now, replaced=True)
                    erased = True
                self._insert_person(conn, pid, name, team, active=active, now=now)
                if len(rows):
                    key = self._template_key(conn)
                    conn.execute(
                        sa.insert(templates_t),
                        [
                            {
                                "person_id": pid,
                                "embedding": key.seal(pid, row.tobytes()),
                                "created_utc": now,
                            }
                            for row in rows
                        ],
                    )
                    self._audit(conn, "person", "add_templates", pid, f"{len(rows)} added", now)
                if not active:
                    self._audit(conn, "person", "deactivate", pid, None, now)
                given = (consents or {}).get(pid)
                if given is not None:
                    self._insert_consent(conn, pid, given, now)
            added = [self._require(conn, pid) for pid in ids]
        if erased:
            self._checkpoint()
        return added

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None:
        """Record a person's consent (the signed form's reference, the notice version),
        or another legal basis, for someone already in the roster."""
        pid = rules.check_known_id(person_id)
        check_lawful_basis(consent)
        now = self._now()
        with self._write("recording consent") as conn:
            self._require(conn, pid)
            self._insert_consent(conn, pid, consent, now)

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, an erasure that every kiosk
        receives (and confirms), and an audit entry with the id only. Returns how many
        templates were erased. Their attendance events and consent records stay."""
        return self.erase_person(person_id).templates

    def erase_person(self, person_id: str) -> Erasure:
        """As :meth:`remove_person`; returns the erasure's roster version too."""
        pid = rules.check_known_id(person_id)
        now = self._now()
        with self._write("erasing a person") as conn:
            count = self._require(conn, pid).template_count
            version = self._erase(conn, pid, count, now, replaced=False)
        self._checkpoint()
        return Erasure(person_id=pid, version=version, templates=count)

    def expired(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """The people deactivated more than ``retention_days`` before ``now`` (default:
        the store's clock), longest deactivated first: what :meth:`purge` erases."""
        cutoff = self._retention_cutoff(retention_days, now)
        with self._read("reading who is past the retention period") as conn:
            return self._expired(conn, cutoff)

    def purge(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """Erase everyone deactivated more than ``retention_days`` before ``now``, each as
        :meth:`erase_person` does (an erasure every kiosk receives and confirms, listed
        by ``central erasures``), with a ``retention_purge`` audit entry; one
        transaction. Returns who was erased."""
        cutoff = self._retention_cutoff(retention_days, now)
        stamp = self._now()
        with self._write("purging people past the retention period") as conn:
            gone = self._expired(conn, cutoff)
            for person in gone:
                detail = (
                    f"erased with {person.template_count} templates, deactivated "
                    f"{iso_utc(person.deactivated_utc)}, retention {retention_days} days"
                )
                self._erase(
                    conn,
                    person.person_id,
                    person.template_count,
                    stamp,
                    replaced=False,
                    action="retention_purge",
                    detail=detail,
                )
        if gone:
            self._checkpoint()
        return gone

    def _retention_cutoff(self, retention_days: int, now: datetime | None) -> str:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise StoreValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise StoreValueError(f"retention_days must be 1 or more, not {retention_days}")
        at = as_utc(now if now is not None else self._clock(), "now")
        return iso_utc(at - timedelta(days=retention_days))

    def _expired(self, conn: sa.Connection, cutoff: str) -> list[Expired]:
        people, templates = self._t["people"], self._t["templates"]
        count = (
            sa.select(sa.func.count())
            .select_from(templates)
            .where(templates.c.person_id == people.c.person_id)
            .scalar_subquery()
        )
        rows = conn.execute(
            sa.select(people.c.person_id, people.c.deactivated_utc, count)
            .where(sa.not_(people.c.active), people.c.deactivated_utc < cutoff)
            .order_by(people.c.deactivated_utc, people.c.person_id)
        ).all()
        return [Expired(pid, _parse(at), int(n)) for pid, at, n in rows]

    def get_person(self, person_id: str) -> Person:
        pid = rules.check_known_id(person_id)
        with self._read("reading a person") as conn:
            return self._require(conn, pid)

    def person_record(self, person_id: str) -> PersonRecord:
        """A person with the version of their last change and their consent records."""
        pid = rules.check_known_id(person_id)
        people = self._t["people"]
        with self._read("reading a person", snapshot=True) as conn:
            person = self._require(conn, pid)
            version = conn.execute(
                sa.select(people.c.version).where(people.c.person_id == pid)
            ).scalar_one()
            bases = self._lawful_bases(conn, pid)
        return PersonRecord(person=person, version=int(version), consents=bases)

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]:
        """A person id's consent records and other legal bases, oldest first; kept after
        an erasure, so an erased id still shows why its templates were held."""
        pid = rules.check_known_id(person_id)
        with self._read("reading consent records", snapshot=True) as conn:
            return self._lawful_bases(conn, pid)

    def without_lawful_basis(self) -> set[str]:
        """The ids of the people in the roster with no consent record or other legal
        basis (enrolled before one was asked)."""
        people, consents, bases = self._t["people"], self._t["consents"], self._t["legal_bases"]
        query = sa.select(people.c.person_id).where(
            ~sa.exists().where(consents.c.person_id == people.c.person_id),
            ~sa.exists().where(bases.c.person_id == people.c.person_id),
        )
        with self._read("reading consent records") as conn:
            return {str(pid) for pid in conn.execute(query).scalars()}

    def people(self, *, active_only: bool = False) -> list[Person]:
        """Everyone in the roster (or the active only), by person id."""
        query = self._person_select()
        people = self._t["people"]
        if active_only:
            query = query.where(people.c.active.is_(True))
        with self._read("reading the roster") as conn:
            rows = conn.execute(query.order_by(people.c.person_id)).all()
        return [_person(r) for r in rows]

    def people_versions(self) -> dict[str, int]:
        """Each person id and the roster version of their last change."""
        people = self._t["people"]
        with self._read("reading the roster") as conn:
            rows = conn.execute(sa.select(people.c.person_id, people.c.version)).all()
        return {r.person_id: int(r.version) for r in rows}

    def templates(self, person_id: str) -> FloatArray:
        """One person's templates, shape (k, 128) float32, in the order they were added."""
        pid = rules.check_known_id(person_id)
        templates = self._t["templates"]
        with self._read("reading templates") as conn:
            self._require(conn, pid)
            blobs = (
                conn.execute(
                    sa.select(templates.c.embedding)
                    .where(templates.c.person_id == pid)
                    .order_by(templates.c.id)
                )
                .scalars()
                .all()
            )
            if not blobs:
                return from_blobs([])
            key = self._template_key(conn)
            return from_blobs([key.open(pid, bytes(b)) for b in blobs])

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people (read in one statement)."""
        gallery = Gallery(threshold=threshold, margin=margin)
        people, templates = self._t["people"], self._t["templates"]
        with self._read("loading the gallery") as conn:
            rows = conn.execute(
                sa.select(templates.c.person_id, templates.c.embedding)
                .join(people, people.c.person_id == templates.c.person_id)
                .where(people.c.active.is_(True))
                .order_by(templates.c.id)
            ).all()
            key = self._template_key(conn) if rows else None
        if key is not None:
            opened = [key.open(r[0], bytes(r[1])) for r in rows]
            gallery.add_many([r[0] for r in rows], from_blobs(opened))
        return gallery

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]:
        """The roster's audit entries (of one person id, if given), oldest first."""
        audit = self._t["audit"]
        query = sa.select(audit).where(audit.c.kind == "person")
        if person_id is not None:
            query = query.where(audit.c.subject == person_id)
        with self._read("reading the audit log") as conn:
            rows = conn.execute(query.order_by(audit.c.id)).all()
        return [
            AuditEntry(
                id=int(r.id),
                at_utc=_parse(r.at_utc),
                actor=r.actor,
                action=r.action,
                person_id=r.subject,
                detail=r.detail,
            )
            for r in rows
        ]

    def audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Every audit entry (people, sites, kiosks, admins, ingest conflicts) after
        ``after_id``, oldest first, at most ``limit``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        audit = self._t["audit"]
        with self._read("reading the audit log") as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.id > after_id).order_by(audit.c.id).limit(limit)
            ).all()
        return [
            AuditRecord(int(r.id), _parse(r.at_utc), r.actor, r.kind, r.action, r.subject, r.detail)
            for r in rows
        ]

    def _bump(self, conn: sa.Connection) -> int:
        """The next roster version; the counter row stays locked until commit."""
        meta = self._t["meta"]
        return int(
            conn.execute(
                sa.update(meta)
                .where(meta.c.key == "roster_version")
                .values(value=meta.c.value + 1)
                .returning(meta.c.value)
            ).scalar_one()
        )

    def _erase(
        self,
        conn: sa.Connection,
        pid: str,
        count: int,
        now: str,
        *,
        replaced: bool,
        action: str = "remove",
        detail: str | None = None,
    ) -> int:
        people, erasures = self._t["people"], self._t["erasures"]
        version = self._bump(conn)
        conn.execute(sa.delete(people).where(people.c.person_id == pid))
        conn.execute(
            sa.insert(erasures).values(
                version=version, person_id=pid, at_utc=now, actor=self._actor
            )
        )
        if detail is None:
            detail = f"erased with {count} templates" + (", replaced" if replaced else "")
        self._audit(conn, "person", action, pid, detail, now)
        return version

    def _lawful_bases(self, conn: sa.Connection, pid: str) -> tuple[LawfulBasis, ...]:
        consents, bases = self._t["consents"], self._t["legal_bases"]
        found: list[tuple[str, int, LawfulBasis]] = [
            (r.recorded_utc, r.id, Consent(r.reference, r.notice_version, _parse(r.at_utc)))
            for r in conn.execute(sa.select(consents).where(consents.c.person_id == pid))
        ]
        found += [
            (r.recorded_utc, r.id, LegalBasis(r.basis, r.note, _parse(r.at_utc)))
            for r in conn.execute(sa.select(bases).where(bases.c.person_id == pid))
        ]
        return tuple(record for *_, record in sorted(found, key=lambda f: (f[0], f[1])))

    def _insert_consent(
        self, conn: sa.Connection, pid: str, consent: LawfulBasis, now: str
    ) -> None:
        if isinstance(consent, LegalBasis):
            conn.execute(
                sa.insert(self._t["legal_bases"]).values(
                    person_id=pid,
                    basis=consent.basis,
                    note=consent.note,
                    at_utc=iso_utc(consent.at_utc),
                    recorded_utc=now,
                    actor=self._actor,
                )
            )
            self._audit(conn, "person", "legal_basis", pid, consent.basis, now)
            return
        conn.execute(
            sa.insert(self._t["consents"]).values(
                person_id=pid,
                reference=consent.reference,
                notice_version=consent.notice_version,
                at_utc=iso_utc(consent.at_utc),
                recorded_utc=now,
                actor=self._actor,
            )
        )
        self._audit(conn, "person", "consent", pid, f"notice {consent.notice_version}", now)

    def _person_select(self) -> sa.Select[Any]:
        people, templates = self._t["people"], self._t["templates"]
        count = (
            sa.select(sa.func.count())
            .where(templates.c.person_id == people.c.person_id)
            .scalar_subquery()
        )
        return sa.select(
            people.c.person_id,
            people.c.name,
            people.c.team,
            people.c.active,
            count.label("template_count"),
            people.c.created_utc,
            people.c.updated_utc,
        )

    def _find(self, conn: sa.Connection, pid: str) -> Person | None:
        people = self._t["people"]
        row = conn.execute(self._person_select().where(people.c.person_id == pid)).first()
        return None if row is None else _person(row)

    def _require(self, conn: sa.Connection, pid: str) -> Person:
        person = self._find(conn, pid)
        if person is None:
            raise UnknownPersonError(f"no person {pid!r} in the roster")
        return person
