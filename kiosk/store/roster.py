"""The kiosk's roster: people, their sealed templates, consent, retention, the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy.typing as npt

from clockface.consent import Consent, LawfulBasis, check_lawful_basis
from clockface.errors import (
    DuplicatePersonError,
    RosterManagedError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.roster import (
    EnrollsOne,
    NewPerson,
    check_known_id,
    check_label,
    check_new_people,
    check_person_id,
    check_team,
    check_template_count,
    check_templates,
)
from clockface.template_key import (
    KeySource,
    TemplateKey,
    check_key_id,
    load_key_file,
)
from clockface.values import (
    as_utc,
    from_blobs,
    iso_utc,
    parse_utc,
)
from kiosk.store.base import StoreBase
from kiosk.store.records import AuditAction, AuditEntry, Expired, FloatArray, Person
from kiosk.store.rows import (
    _EXPIRED_SELECT,
    _PERSON_SELECT,
    _lawful_basis,
    _person,
)
from recognition.gallery import Gallery


class RosterMixin(StoreBase, EnrollsOne[Person, LawfulBasis]):
    """People, their face templates, their lawful bases and the audit log."""

    def roster_version(self) -> int:
        """A number that grows with every roster change: reload the gallery when it moves.

        Read it *before* ``load_gallery``: a change between the two then shows up as a
        newer version at the next look, never as a gallery silently out of date.
        """
        with self._reading("reading the roster version"):
            (value,) = self._one("SELECT value FROM settings WHERE key = 'roster_version'")
        return int(value)

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person:
        """Add someone to the roster, active, with no templates yet."""
        pid = check_person_id(person_id)
        name = check_label(name, "a name")
        team = check_team(team)
        now = self._now()
        with self._roster_writing("adding a person"):
            if self._find(pid) is not None:
                raise DuplicatePersonError(
                    f"person {pid!r} is already in the roster; use update_person to change them"
                )
            self._db.execute(
                "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                [pid, name, team, now, now],
            )
            self._changed("add", pid, None, now)
            person = self._require(pid)
        return person

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person:
        """Change a name or team; None leaves a field as it is, ``team=""`` clears the team."""
        pid = check_known_id(person_id)
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        new_name = None if name is None else check_label(name, "a name")
        new_team = None if team is None else check_team(team)
        now = self._now()
        with self._roster_writing("updating a person"):
            old = self._require(pid)
            changes: dict[str, str | None] = {}
            if new_name is not None and new_name != old.name:
                changes["name"] = new_name
            if team is not None and new_team != old.team:
                changes["team"] = new_team
            if not changes:
                return old
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(
                f"UPDATE people SET {assignments}, updated_utc = ? WHERE person_id = ?",
                [*changes.values(), now, pid],
            )
            # The fields that changed, never their values: names must not outlive an erasure.
            self._changed("update", pid, "changed " + ", ".join(changes), now)
            person = self._require(pid)
        return person

    def set_active(self, person_id: str, active: bool) -> Person:
        """Deactivate (out of the gallery, kept in the roster) or reactivate someone."""
        pid = check_known_id(person_id)
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        now = self._now()
        with self._roster_writing("changing whether a person is active"):
            old = self._require(pid)
            if old.active == active:
                return old
            self._db.execute(
                "UPDATE people SET active = ?, updated_utc = ?, deactivated_utc = ?"
                " WHERE person_id = ?",
                [int(active), now, None if active else now, pid],
            )
            self._changed("reactivate" if active else "deactivate", pid, None, now)
            person = self._require(pid)
        return person

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)) as float32; returns how many."""
        pid = check_known_id(person_id)
        rows = check_templates(embeddings)
        now = self._now()
        with self._roster_writing("adding templates"):
            check_template_count(pid, self._require(pid).template_count + len(rows))
            key = self._template_key()
            self._conn.executemany(
                "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                ((pid, key.seal(pid, row.tobytes()), now) for row in rows),
            )
            self._changed("add_templates", pid, f"{len(rows)} added", now)
        return len(rows)

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]:
        """Add people with their templates in one transaction: all of them or none.

        An id the roster already holds raises DuplicatePersonError, writing nothing,
        unless ``replace``: then that person is erased first (templates included, with a
        ``remove`` audit entry) and added anew. Each addition is audited as ``add``, then
        ``add_templates`` (when there are templates) and ``deactivate`` (when inactive).
        ``consents``: each person's consent record or other legal basis, by person id,
        stored with them (audited as ``consent`` or ``legal_basis``).
        """
        checked = check_new_people(people)
        ids = [person.person_id for person in checked]
        for pid, given in (consents or {}).items():
            if pid not in ids:
                raise StoreValueError(f"a consent for {pid!r}, who is not being enrolled")
            check_lawful_basis(given)
        now = self._now()
        erased = False
        with self._roster_writing("enrolling people"):
            for pid, name, team, rows, active in (
                (p.person_id, p.name, p.team, p.templates, p.active) for p in checked
            ):
                old = self._find(pid)
                if old is not None:
                    if not replace:
                        raise DuplicatePersonError(
                            f"person {pid!r} is already in the roster; nothing was written"
                        )
                    self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
                    self._changed(
                        "remove", pid, f"erased with {old.template_count} templates, replaced", now
                    )
                    erased = True
                self._db.execute(
                    "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc,"
                    " deactivated_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [pid, name, team, int(active), now, now, None if active else now],
                )
                self._changed("add", pid, None, now)
                if len(rows):
                    key = self._template_key()
                    self._conn.executemany(
                        "INSERT INTO templates (person_id, embedding, created_utc)"
                        " VALUES (?, ?, ?)",
                        ((pid, key.seal(pid, row.tobytes()), now) for row in rows),
                    )
                    self._changed("add_templates", pid, f"{len(rows)} added", now)
                if not active:
                    self._changed("deactivate", pid, None, now)
                recorded = (consents or {}).get(pid)
                if recorded is not None:
                    self._insert_lawful_basis(pid, recorded, now)
            added = [self._require(pid) for pid in ids]
        if erased:
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return added

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, leaving an audit entry with the id.

        Returns how many templates were erased. Their attendance events stay.
        """
        pid = check_known_id(person_id)
        now = self._now()
        with self._roster_writing("erasing a person"):
            count = self._require(pid).template_count
            self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
            self._changed("remove", pid, f"erased with {count} templates", now)
        # Move the erased pages out of the write-ahead log into the (zeroed) main file.
        # Best effort: a reader elsewhere may hold the log; it is truncated next time.
        with self._reading("checkpointing after an erasure"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return count

    def expired(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """The people deactivated more than ``retention_days`` before ``now`` (default:
        the store's clock), longest deactivated first: what :meth:`purge` erases."""
        cutoff = iso_utc(self._cutoff(retention_days, now))
        with self._reading("reading who is past the retention period"):
            rows = self._all(_EXPIRED_SELECT, [cutoff])
        return [Expired(pid, parse_utc(at), int(count)) for pid, at, count in rows]

    def purge(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """Erase (as :meth:`remove_person`: the person and every template) everyone
        deactivated more than ``retention_days`` before ``now``, in one transaction, each
        with a ``retention_purge`` audit entry. Returns who was erased."""
        cutoff = iso_utc(self._cutoff(retention_days, now))
        stamp = self._now()
        with self._roster_writing("purging people past the retention period"):
            rows = self._all(_EXPIRED_SELECT, [cutoff])
            gone = [Expired(pid, parse_utc(at), int(count)) for pid, at, count in rows]
            for person in gone:
                self._db.execute("DELETE FROM people WHERE person_id = ?", [person.person_id])
                self._changed(
                    "retention_purge",
                    person.person_id,
                    f"erased with {person.template_count} templates, deactivated "
                    f"{iso_utc(person.deactivated_utc)}, retention {retention_days} days",
                    stamp,
                )
        if gone:
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return gone

    def _cutoff(self, retention_days: int, now: datetime | None) -> datetime:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise StoreValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise StoreValueError(f"retention_days must be 1 or more, not {retention_days}")
        at = as_utc(now if now is not None else self._clock(), "now")
        return at - timedelta(days=retention_days)

    def get_person(self, person_id: str) -> Person:
        pid = check_known_id(person_id)
        with self._reading("reading a person"):
            return self._require(pid)

    def people(self, *, active_only: bool = False) -> list[Person]:
        """Everyone in the roster (or the active only), by person id."""
        where = " WHERE p.active = 1" if active_only else ""
        with self._reading("reading the roster"):
            rows = self._all(_PERSON_SELECT + where + " ORDER BY p.person_id")
        return [_person(row) for row in rows]

    def templates(self, person_id: str) -> FloatArray:
        """One person's templates, shape (k, 128) float32, in the order they were added."""
        pid = check_known_id(person_id)
        with self._reading("reading templates"):
            self._require(pid)
            rows = self._all(
                "SELECT embedding FROM templates WHERE person_id = ? ORDER BY id", [pid]
            )
            key = self._template_key() if rows else None
        if key is None:
            return from_blobs([])
        return from_blobs([key.open(pid, blob) for (blob,) in rows])

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people (read in one statement)."""
        gallery = Gallery(threshold=threshold, margin=margin)
        with self._reading("loading the gallery"):
            rows = self._all(
                "SELECT t.person_id, t.embedding FROM templates t"
                " JOIN people p ON p.person_id = t.person_id"
                " WHERE p.active = 1 ORDER BY t.id"
            )
            key = self._template_key() if rows else None
        if key is not None:
            gallery.add_many([pid for pid, _ in rows], from_blobs(key.open_many(rows)))
        return gallery

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None:
        """Record the consent (or another legal basis) of someone already enrolled, such
        as a person enrolled before one was asked; audited."""
        pid = check_known_id(person_id)
        check_lawful_basis(consent)
        now = self._now()
        with self._roster_writing("recording consent"):
            self._require(pid)
            self._insert_lawful_basis(pid, consent, now)

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]:
        """A person id's consent records and other legal bases, oldest first (kept after
        an erasure)."""
        pid = check_known_id(person_id)
        with self._reading("reading consent records"):
            rows = self._all(
                "SELECT basis, reference, notice_version, note, at_utc FROM lawful_bases"
                " WHERE person_id = ? ORDER BY id",
                [pid],
            )
        return tuple(_lawful_basis(row) for row in rows)

    def without_lawful_basis(self) -> set[str]:
        """The ids of the people in the roster with no consent record or other legal basis
        (people enrolled before they were recorded)."""
        with self._reading("reading consent records"):
            rows = self._all(
                "SELECT person_id FROM people p WHERE NOT EXISTS"
                " (SELECT 1 FROM lawful_bases b WHERE b.person_id = p.person_id)"
            )
        return {pid for (pid,) in rows}

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]:
        """The audit entries (of one person id, if given), oldest first."""
        sql = "SELECT id, at_utc, actor, action, person_id, detail FROM audit"
        params: list[Any] = []
        if person_id is not None:
            sql += " WHERE person_id = ?"
            params.append(person_id)
        with self._reading("reading the audit log"):
            rows = self._all(sql + " ORDER BY id", params)
        return [
            AuditEntry(
                id=int(row[0]),
                at_utc=parse_utc(row[1]),
                actor=row[2],
                action=row[3],
                person_id=row[4],
                detail=row[5],
            )
            for row in rows
        ]

    def rotate_key(self, new_key_file: str | Path) -> int:
        """Re-seal every template under the key in ``new_key_file`` in one transaction
        (any failure changes nothing); returns how many. The old key file is left as it
        is, for the operator to destroy; open the store with the new key from now on."""
        new = load_key_file(new_key_file)
        with self._writing("rotating the template key"):
            rows = self._all("SELECT id, person_id, embedding FROM templates ORDER BY id")
            old = self._template_key() if rows else None
            resealed = [
                (new.seal(pid, old.open(pid, blob)), i) for i, pid, blob in rows if old is not None
            ]
            self._conn.executemany("UPDATE templates SET embedding = ? WHERE id = ?", resealed)
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES ('template_key_id', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [new.key_id.hex()],
            )
            self._audit_kiosk(
                "rotate_template_key",
                f"key id {new.key_id.hex()}, {len(resealed)} templates resealed",
            )
        self._keys = KeySource(new.path, create_if_missing=False)
        with self._reading("checkpointing after a key rotation"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return len(resealed)

    def _template_key(self) -> TemplateKey:
        """The key, within a read or a transaction; a missing default key is created only
        while the database holds no templates."""
        held = self._all("SELECT substr(embedding, 2, 8) FROM templates LIMIT 1")
        key = self._keys.get(may_create=not held)
        if held:
            check_key_id(key, bytes(held[0][0]))
        return key

    @contextmanager
    def _roster_writing(self, doing: str) -> Iterator[None]:
        """A local roster change: refused while the central service manages the roster."""
        with self._writing(doing):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
            if url is not None:
                raise RosterManagedError(
                    f"this kiosk's roster is managed by the central service at {url}: "
                    "enroll there (or `clockface sync detach` to manage it here)"
                )
            yield

    def _find(self, pid: str) -> Person | None:
        rows = self._all(_PERSON_SELECT + " WHERE p.person_id = ?", [pid])
        return _person(rows[0]) if rows else None

    def _require(self, pid: str) -> Person:
        person = self._find(pid)
        if person is None:
            raise UnknownPersonError(f"no person {pid!r} in the roster")
        return person

    def _changed(
        self,
        action: AuditAction,
        pid: str,
        detail: str | None,
        now: str,
        *,
        actor: str | None = None,
    ) -> None:
        """Within a roster change: its audit entry, and the roster version moves."""
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now, actor or self._actor, action, pid, detail],
        )
        self._db.execute(
            "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'roster_version'"
        )

    def _insert_lawful_basis(self, pid: str, given: LawfulBasis, now: str) -> None:
        """Within a roster change: store a consent record or legal basis, audited."""
        if isinstance(given, Consent):
            values = ["consent", given.reference, given.notice_version, None]
            action, detail = "consent", f"notice {given.notice_version}"
        else:
            values = [given.basis, None, None, given.note]
            action, detail = "legal_basis", given.basis
        self._db.execute(
            "INSERT INTO lawful_bases (person_id, basis, reference, notice_version, note, at_utc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [pid, *values, iso_utc(given.at_utc)],
        )
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now, self._actor, action, pid, detail],
        )
