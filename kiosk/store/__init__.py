"""The kiosk's own database: the roster replica and the append-only event log.

Two small interfaces, so the sync agent and the central service can hold the same
things their own way:

- ``Roster``: people, their face templates, the audit log of changes to them, and a
  version number that moves on every change (a running kiosk compares it to reload its
  gallery cheaply).
- ``EventLog``: attendance events, append-only; the ones the central service has not
  acknowledged yet are the sync outbox.

``KioskStore`` implements both over one SQLite file (through sqlite-utils), schema in
``kiosk/migrations.py``. Every change is one ``BEGIN IMMEDIATE`` transaction, committed
before the method returns, with ``synchronous=FULL`` in WAL mode: an event that
``append_event`` returned survives the process being killed a moment later, and a
failure (a full disk, a read-only file) leaves nothing half-written. Every SQLite error
comes out as a one-line ``StoreError`` naming the file.

Times are stored as ISO 8601 UTC text with microseconds and a ``Z``
(``2024-05-01T07:57:03.120000Z``): fixed width, so text order is time order. An event
also carries the kiosk's IANA zone, which decides the local day it belongs to.

Erasure (``remove_person``) deletes the person and every template in one transaction and
leaves an audit entry that holds the id only. ``secure_delete`` is on, and the write-ahead
log is checkpointed after an erasure, so the erased bytes do not linger in the file.
Attendance events are kept: they are records the employer must keep, and carry the
person id only, never a name.

Syncing with the central service (schema version 2; the agent is ``sync/agent.py``):

- Each event records whether the kiosk's clock was synchronised when it was stamped
  (``clock_synced``; asked of ``hardware.clock`` unless the caller says).
- ``pending()`` is the outbox minus the *parked* events: those the central service
  refused for good, kept with the reason until an operator sends them again
  (``unpark``). Parking writes a row beside the event, never the event itself.
- ``apply_gallery`` applies the central service's roster changes in one transaction, and
  *attaches* the kiosk to that service: from then on the roster is managed there, and the
  local roster writes (``add_person`` ... ``remove_person``, ``enroll_many``) raise
  :class:`~clockface.errors.RosterManagedError` until ``detach``.
- ``sync_state()`` holds what ``clockface sync status`` shows: the attached service, the
  gallery version, the last success and the last error.

The tamper-evident chain (schema version 4, :mod:`clockface.chain`): every event carries
``chain``, SHA-256 over the previous event's chain and its own immutable fields, computed
by ``append_event`` in the insert's transaction and immutable afterwards (trigger).
``verify_chain`` walks the whole log and names each edited, inserted or deleted row by
its seq (``clockface kiosk verify-log``); the sync agent sends the chain along, and the
central service checks it too.

Templates sealed at rest (schema version 5, :mod:`clockface.template_key`): each template
is AES-256-GCM sealed under a key kept outside the database (``key_file``, the systemd
credential ``template-key``, ``$CLOCKFACE_TEMPLATE_KEY_FILE``, else ``<db>.key`` made on
first use), bound to its person id. The key is read only when templates are, so events
and sync state work without it; a key that did not seal the templates there is refused
with one line before it reads or seals any. ``rotate_key`` re-seals all of them in one
transaction. The sync wire carries templates in plaintext over its own connection
(TLS): ``apply_gallery`` seals them here under this kiosk's key.

The privacy lifecycle (schema version 6): an enrollment carries the person's consent
record or another legal basis the operator declared (``lawful_bases``, append-only, kept
after an erasure, audited as ``consent`` / ``legal_basis``); ``deactivated_utc`` dates each
deactivation, and ``purge`` erases everyone deactivated longer than the retention period
(audited as ``retention_purge``; ``expired`` lists them without changing anything).
``rotate_key``, ``detach`` and ``unpark`` (``clockface sync detach`` and
``retry-parked``) are audited with an empty person id (:data:`KIOSK_SUBJECT`).

A store is one connection: use it from one thread; give each process its own.

Where each part lives (the package keeps today's API: import these names from
``kiosk.store``):

- ``records.py``: the records and constants (``Person``, ``Event``, ``SyncState`` ...;
  consent and legal bases are :mod:`clockface.consent`'s);
  ``interfaces.py``: the ``Roster`` and ``EventLog`` protocols;
- ``base.py``: the connection, opening, the transactions and the kiosk's own audit
  entries (``opening.py``: checking, configuring and migrating a file; ``rows.py``: the
  columns read and each row as a record);
- ``roster.py``: people, sealed templates, consent, retention, the audit log;
- ``events.py``: the append-only log, its chain and its continuation logs;
- ``outbox.py``: what is left to send, acknowledged or parked;
- ``syncing.py``: the sync state and the central roster applied;
- ``kiosk_store.py``: ``KioskStore``, the four together.
"""

from __future__ import annotations

from clockface.events import Direction
from kiosk.store.interfaces import EventLog, Roster
from kiosk.store.kiosk_store import KioskStore
from kiosk.store.records import (
    CENTRAL_ACTOR,
    DEFAULT_BUSY_TIMEOUT_S,
    KIOSK_SUBJECT,
    AuditAction,
    AuditEntry,
    Event,
    Expired,
    FloatArray,
    GalleryErase,
    GalleryPlan,
    GalleryPut,
    GalleryUpdate,
    LogCheck,
    LogSegment,
    ParkedEvent,
    Person,
    SyncState,
    WireIdentity,
)

__all__ = [
    "CENTRAL_ACTOR",
    "DEFAULT_BUSY_TIMEOUT_S",
    "KIOSK_SUBJECT",
    "AuditAction",
    "AuditEntry",
    "Direction",
    "Event",
    "EventLog",
    "Expired",
    "FloatArray",
    "GalleryErase",
    "GalleryPlan",
    "GalleryPut",
    "GalleryUpdate",
    "KioskStore",
    "LogCheck",
    "LogSegment",
    "ParkedEvent",
    "Person",
    "Roster",
    "SyncState",
    "WireIdentity",
]
