"""The kiosk store: one SQLite file holding the roster replica and the event log."""

from __future__ import annotations

from kiosk.store.outbox import OutboxMixin
from kiosk.store.syncing import SyncMixin


class KioskStore(SyncMixin, OutboxMixin):
    """The roster replica and the event log of one kiosk, in one SQLite file.

    Open it with ``KioskStore.open(path)``; close it, or use it as a context manager.
    The parts: the roster (``RosterMixin``) with the central roster applied
    (``SyncMixin``), the event log (``EventsMixin``) with its outbox (``OutboxMixin``).
    """
