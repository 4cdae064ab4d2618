"""The kiosk's link to a central service: the sync state, attaching and detaching, and the
central roster's changes applied."""

from __future__ import annotations

from datetime import datetime

from clockface.errors import (
    StoreError,
    StoreValueError,
)
from clockface.values import (
    as_utc,
    check_signed,
    check_text,
    iso_utc,
    one_line,
    parse_utc,
)
from kiosk.store.records import (
    _MAX_SYNC_ERROR,
    CENTRAL_ACTOR,
    AuditAction,
    GalleryErase,
    GalleryPlan,
    GalleryUpdate,
    SyncState,
)
from kiosk.store.roster import RosterMixin
from kiosk.store.rows import _SYNC_STATE_COLUMNS


class SyncMixin(RosterMixin):
    """The sync state and the central roster applied here."""

    def sync_state(self) -> SyncState:
        with self._reading("reading the sync state"):
            row = self._one(f"SELECT {_SYNC_STATE_COLUMNS} FROM sync_state WHERE id = 1")
        (url, attached, version, confirmed, success, error_at, error, skew, flagged) = row
        return SyncState(
            central_url=url,
            attached_utc=None if attached is None else parse_utc(attached),
            gallery_version=int(version),
            confirmed_version=int(confirmed),
            last_success_utc=None if success is None else parse_utc(success),
            last_error_utc=None if error_at is None else parse_utc(error_at),
            last_error=error,
            clock_skew_seconds=None if skew is None else float(skew),
            clock_flagged=None if flagged is None else bool(flagged),
        )

    def managed_by(self) -> str | None:
        """The URL of the central service managing this kiosk's roster; None: managed here."""
        with self._reading("reading the sync state"):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
        return None if url is None else str(url)

    def attach(self, central_url: str) -> None:
        """Hand the roster to the central service at ``central_url``: local roster writes
        are refused from now on (:meth:`detach` undoes it). Attaching again to the same
        URL changes nothing; to another is refused."""
        url = check_text(central_url, "a central service URL")
        with self._writing("attaching to the central service"):
            self._attach(url, self._now())

    def detach(self) -> str | None:
        """Return the roster to local management; returns the URL it was attached to.

        The people and templates stay as they are; the gallery version goes back to 0, so
        attaching again fetches the central service's whole roster, which then replaces
        the local one.
        """
        with self._writing("detaching from the central service"):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
            self._db.execute(
                "UPDATE sync_state SET central_url = NULL, attached_utc = NULL,"
                " gallery_version = 0, confirmed_version = 0 WHERE id = 1"
            )
            if url is not None:
                self._audit_kiosk("sync_detach", f"from {url}")
        return None if url is None else str(url)

    def record_sync_success(self, at_utc: datetime | None = None) -> None:
        """A sync round went through: everything pending was sent, the roster is current."""
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        with self._writing("recording a sync success"):
            self._db.execute("UPDATE sync_state SET last_success_utc = ? WHERE id = 1", [at])

    def record_sync_error(self, message: str, at_utc: datetime | None = None) -> None:
        """A sync round (or one try of it) failed: keep one line saying why."""
        line = one_line(message, "a sync error")[:_MAX_SYNC_ERROR]
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        with self._writing("recording a sync error"):
            self._db.execute(
                "UPDATE sync_state SET last_error_utc = ?, last_error = ? WHERE id = 1",
                [at, line],
            )

    def record_clock_skew(self, seconds: float, flagged: bool) -> None:
        """What the central service said of this kiosk's clock at the last push."""
        skew = check_signed(seconds, "the clock skew")
        with self._writing("recording the clock skew"):
            self._db.execute(
                "UPDATE sync_state SET clock_skew_seconds = ?, clock_flagged = ? WHERE id = 1",
                [skew, int(bool(flagged))],
            )

    def confirm_gallery(self, version: int) -> None:
        """The central service has been told this kiosk holds ``version`` (its erasure
        receipt); a later round need not tell it again."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise StoreValueError(f"a gallery version is a whole number >= 0, not {version!r}")
        with self._writing("recording the confirmed gallery version"):
            self._db.execute(
                "UPDATE sync_state SET confirmed_version = ? WHERE id = 1 AND gallery_version >= ?",
                [version, version],
            )

    def apply_gallery(self, plan: GalleryPlan, *, central_url: str) -> GalleryUpdate:
        """Apply the central service's roster changes, all pages, in one transaction.

        ``plan`` holds the answers to ``GET /v1/gallery`` checked and decoded by
        :func:`sync.roster_delta.plan_gallery` (the pages in order: the first starts at
        the version this kiosk holds, each next one where the previous ended, the last
        says no more follow). Erasures and person states are applied in version order: an
        erasure removes the person and every template (audited as ``remove``); a person
        state replaces name, team, active and all templates (``add`` or ``update``). The
        audit actor is ``central``. A delta from version 0 is the whole central roster:
        people held here that it does not hold are removed too (``dropped``).

        The kiosk is attached to ``central_url`` (refused if attached to another), the
        applied version stored, and the roster version moves when anything changed, so a
        running kiosk reloads its gallery. Anything invalid: nothing is applied and a
        one-line StoreValueError says what.
        """
        url = check_text(central_url, "a central service URL")
        now = self._now()
        added = replaced = erased = dropped = 0
        with self._writing("applying the central roster"):
            (held,) = self._one("SELECT gallery_version FROM sync_state WHERE id = 1")
            # A delta from 0 is the whole roster: it replaces any version held (the
            # service's database was restored from an older backup, say).
            if plan.since not in (0, int(held)):
                raise StoreValueError(
                    f"the roster changes start after version {plan.since}, but this kiosk "
                    f"holds version {held}; nothing was applied"
                )
            self._attach(url, now)
            for step in plan.steps:
                old = self._find(step.person_id)
                if isinstance(step, GalleryErase):
                    if old is not None:
                        self._db.execute("DELETE FROM people WHERE person_id = ?", [step.person_id])
                        detail = (
                            f"erased by the central service (version {step.version}) "
                            f"with {old.template_count} templates"
                        )
                    else:
                        detail = f"erased by the central service (version {step.version}); not held"
                    self._changed("remove", step.person_id, detail, now, actor=CENTRAL_ACTOR)
                    erased += 1
                    continue
                if old is None:
                    self._db.execute(
                        "INSERT INTO people (person_id, name, team, active, created_utc,"
                        " updated_utc) VALUES (?, ?, ?, ?, ?, ?)",
                        [step.person_id, step.name, step.team, int(step.active), now, now],
                    )
                    action: AuditAction = "add"
                    added += 1
                else:
                    self._db.execute(
                        "UPDATE people SET name = ?, team = ?, active = ?, updated_utc = ?"
                        " WHERE person_id = ?",
                        [step.name, step.team, int(step.active), now, step.person_id],
                    )
                    self._db.execute("DELETE FROM templates WHERE person_id = ?", [step.person_id])
                    action = "update"
                    replaced += 1
                key = self._template_key()
                self._conn.executemany(
                    "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                    (
                        (step.person_id, key.seal(step.person_id, row.tobytes()), now)
                        for row in step.templates
                    ),
                )
                self._changed(
                    action,
                    step.person_id,
                    f"from the central service (version {step.version}): "
                    f"{len(step.templates)} templates, {'active' if step.active else 'inactive'}",
                    now,
                    actor=CENTRAL_ACTOR,
                )
            if plan.since == 0:
                for (pid,) in self._all("SELECT person_id FROM people ORDER BY person_id"):
                    if pid in plan.kept:
                        continue
                    count = self._require(pid).template_count
                    self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
                    self._changed(
                        "remove",
                        pid,
                        f"not in the central roster (version {plan.version}): "
                        f"erased with {count} templates",
                        now,
                        actor=CENTRAL_ACTOR,
                    )
                    dropped += 1
            self._db.execute(
                "UPDATE sync_state SET gallery_version = ? WHERE id = 1", [plan.version]
            )
        update = GalleryUpdate(plan.version, added, replaced, erased, dropped)
        if update.changed:
            # Replaced and erased templates: out of the write-ahead log, as remove_person.
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return update

    def _attach(self, url: str, now: str) -> None:
        """Within a write: attach to ``url``, or refuse if attached to another."""
        (held,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
        if held is None:
            self._db.execute(
                "UPDATE sync_state SET central_url = ?, attached_utc = ? WHERE id = 1", [url, now]
            )
        elif held != url:
            raise StoreError(
                f"{self._path}: this kiosk is attached to the central service at {held}, "
                f"not {url}; run `clockface sync detach` first to change services"
            )
