"""What kiosks and the HR laptop read of the roster, and what kiosks confirm:
:class:`GalleryMixin` (roster changes since a version, the whole gallery, the roster
version a kiosk applied and its erasure receipts, the erasures and who confirmed them)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from central.store_base import StoreBase
from central.store_records import ErasureStatus, Principal
from central.store_values import _parse
from clockface.errors import CentralConflictError, CentralValueError
from clockface.template_key import TemplateKey
from sync.protocol import MAX_GALLERY_PAGE, GalleryDelta, WireErasure, WirePerson


class GalleryMixin(StoreBase):
    """The roster as kiosks receive it, and their confirmations."""

    def gallery_delta(self, since: int, limit: int = MAX_GALLERY_PAGE) -> GalleryDelta:
        """Roster changes after version ``since``: people (their whole current state) and
        erasures, merged in version order, at most ``limit`` of them. ``version`` is the
        last version included when ``more``, else the current roster version."""
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise CentralValueError(f"since must be a whole number of zero or more, not {since!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        people, erasures = self._t["people"], self._t["erasures"]
        with self._read("reading roster changes", snapshot=True) as conn:
            current = self._version(conn)
            if since > current:
                raise CentralConflictError(
                    f"roster version {since} is ahead of the service's ({current}): the "
                    "kiosk's roster comes from another database; clear it and sync from 0"
                )
            changed = conn.execute(
                sa.select(people)
                .where(people.c.version > since)
                .order_by(people.c.version)
                .limit(limit + 1)
            ).all()
            erased = conn.execute(
                sa.select(erasures.c.version, erasures.c.person_id)
                .where(erasures.c.version > since)
                .order_by(erasures.c.version)
                .limit(limit + 1)
            ).all()
            merged: list[tuple[int, Any, bool]] = sorted(
                [(int(r.version), r, True) for r in changed]
                + [(int(r.version), r, False) for r in erased],
                key=lambda item: item[0],
            )
            page, more = merged[:limit], len(merged) > limit
            templates = self._wire_templates(conn, [r.person_id for _, r, is_p in page if is_p])
        return GalleryDelta(
            since=since,
            version=page[-1][0] if more else current,
            more=more,
            people=[
                WirePerson(
                    person_id=r.person_id,
                    name=r.name,
                    team=r.team,
                    active=bool(r.active),
                    templates=templates.get(r.person_id, []),
                    version=v,
                )
                for v, r, is_person in page
                if is_person
            ],
            erasures=[
                WireErasure(person_id=r.person_id, version=v)
                for v, r, is_person in page
                if not is_person
            ],
        )

    def audit_read(self, action: str, subject: str, detail: str) -> None:
        """An audit entry for a read that hands out biometric data in bulk (the whole
        gallery with its templates): who read it, when, and how much."""
        now = self._now()
        with self._write("auditing a read") as conn:
            self._audit(conn, "admin", action, subject, detail, now)

    def full_gallery(self) -> GalleryDelta:
        """Every current person with their templates (deactivated ones too), as a delta
        from version 0 without erasures: the HR laptop's duplicate-face check."""
        people = self._t["people"]
        with self._read("reading the roster", snapshot=True) as conn:
            current = self._version(conn)
            rows = conn.execute(sa.select(people).order_by(people.c.version)).all()
            templates = self._wire_templates(conn, [r.person_id for r in rows])
        return GalleryDelta(
            since=0,
            version=current,
            more=False,
            people=[
                WirePerson(
                    person_id=r.person_id,
                    name=r.name,
                    team=r.team,
                    active=bool(r.active),
                    templates=templates.get(r.person_id, []),
                    version=int(r.version),
                )
                for r in rows
            ],
            erasures=[],
        )

    def gallery_applied(self, kiosk: Principal | str, version: int) -> int:
        """A kiosk now holds roster ``version``: record it, and a receipt for every
        erasure up to it. Returns how many receipts are new."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise CentralValueError(
                f"version must be a whole number of zero or more, not {version!r}"
            )
        kiosks, erasures, receipts = (
            self._t["kiosks"],
            self._t["erasures"],
            self._t["erasure_receipts"],
        )
        now = self._now()
        with self._write("recording the kiosk's roster version") as conn:
            kiosk_id, _ = self._ingest_kiosk(conn, kiosk)
            current = self._version(conn, lock=False)
            if version > current:
                raise CentralValueError(
                    f"roster version {version} does not exist yet (the service is at {current})"
                )
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk_id)
                .values(gallery_version=version, gallery_applied_utc=now, last_seen_utc=now)
            )
            select = sa.select(
                erasures.c.version, sa.literal(kiosk_id, sa.Integer), sa.literal(now, sa.String)
            ).where(erasures.c.version <= version)
            stmt = (
                self._insert(receipts)
                .from_select(["erasure_version", "kiosk_id", "at_utc"], select)
                .on_conflict_do_nothing()
                .returning(receipts.c.erasure_version)
            )
            return len(conn.execute(stmt).all())

    def touch_kiosk(self, kiosk: Principal) -> None:
        """Record that a kiosk was in contact now (a gallery poll)."""
        if kiosk.kiosk_id is None:
            return
        kiosks = self._t["kiosks"]
        with self._write("recording a kiosk's contact") as conn:
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk.kiosk_id)
                .values(last_seen_utc=self._now())
            )

    def erasures(self) -> list[ErasureStatus]:
        """Every erasure, oldest first, with the kiosks that confirmed it and those (not
        revoked) that have not yet."""
        erasures, receipts, kiosks = (
            self._t["erasures"],
            self._t["erasure_receipts"],
            self._t["kiosks"],
        )
        with self._read("reading erasures", snapshot=True) as conn:
            rows = conn.execute(sa.select(erasures).order_by(erasures.c.version)).all()
            confirmed: dict[int, list[str]] = {}
            for version, name in conn.execute(
                sa.select(receipts.c.erasure_version, kiosks.c.name)
                .join(kiosks, kiosks.c.id == receipts.c.kiosk_id)
                .order_by(kiosks.c.name)
            ):
                confirmed.setdefault(int(version), []).append(name)
            live = [
                name
                for (name,) in conn.execute(
                    sa.select(kiosks.c.name)
                    .where(kiosks.c.revoked_utc.is_(None))
                    .order_by(kiosks.c.name)
                )
            ]
        out = []
        for r in rows:
            done = confirmed.get(int(r.version), [])
            out.append(
                ErasureStatus(
                    version=int(r.version),
                    person_id=r.person_id,
                    at_utc=_parse(r.at_utc),
                    actor=r.actor,
                    confirmed=tuple(done),
                    pending=tuple(name for name in live if name not in done),
                )
            )
        return out

    def _wire_templates(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        templates = self._t["templates"]
        out: dict[str, list[str]] = {}
        key: TemplateKey | None = None
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for pid, blob in conn.execute(
                sa.select(templates.c.person_id, templates.c.embedding)
                .where(templates.c.person_id.in_(chunk))
                .order_by(templates.c.id)
            ):
                # Opened here: the wire carries plaintext templates over the (TLS)
                # connection, and each kiosk seals them under its own key.
                key = key or self._template_key(conn)
                plain = key.open(pid, bytes(blob))
                out.setdefault(pid, []).append(base64.b64encode(plain).decode("ascii"))
        return out
