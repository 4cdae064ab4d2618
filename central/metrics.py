"""Prometheus metrics of the central service (text exposition format 0.0.4).

Counters of this process (events accepted, duplicates, conflicts, ingest batches) and
gauges read from the database when scraped (per kiosk: last contact, backlog, clock
skew and flag, the tamper-evident chain's state; the roster version). Kiosks are named;
people never are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from central.store import CentralStore, KioskInfo
from clockface.errors import StoreError
from sync.protocol import IngestResponse

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Ingest counters, safe to update from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.batches = 0

    def record(self, response: IngestResponse) -> None:
        """Count one ingested batch's results."""
        statuses = [r.status for r in response.results]
        with self._lock:
            self.batches += 1
            self.accepted += statuses.count("accepted")
            self.duplicates += statuses.count("duplicate")
            self.conflicts += statuses.count("conflict")

    def render(self, store: CentralStore) -> str:
        """The exposition text: this process's counters, then what the database says."""
        with self._lock:
            counters = [
                ("clockface_events_ingested_total", "Events accepted and stored.", self.accepted),
                (
                    "clockface_events_duplicate_total",
                    "Events sent again that the service already held.",
                    self.duplicates,
                ),
                (
                    "clockface_events_conflict_total",
                    "Events refused: their id or log+seq is held with other content.",
                    self.conflicts,
                ),
                ("clockface_ingest_batches_total", "Event batches ingested.", self.batches),
            ]
        lines: list[str] = []
        for name, help_text, value in counters:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
        try:
            kiosks = store.kiosks()
            version = store.roster_version()
        except StoreError:
            lines += _gauge("clockface_database_up", "Whether the database answered.", [("", 0)])
            return "\n".join(lines) + "\n"
        lines += _gauge("clockface_database_up", "Whether the database answered.", [("", 1)])
        lines += _gauge("clockface_roster_version", "The roster's version.", [("", version)])
        lines += _kiosk_gauges(k for k in kiosks if not k.revoked)
        return "\n".join(lines) + "\n"


def _kiosk_gauges(kiosks: Iterable[KioskInfo]) -> list[str]:
    live = list(kiosks)
    out: list[str] = []
    out += _gauge(
        "clockface_kiosk_last_seen_seconds",
        "When the kiosk last reached the service (unix time).",
        [(k.name, k.last_seen_utc.timestamp()) for k in live if k.last_seen_utc is not None],
    )
    out += _gauge(
        "clockface_kiosk_backlog_events",
        "Events the kiosk sent past a gap (max seq minus contiguous seq held).",
        [(k.name, k.backlog) for k in live],
    )
    out += _gauge(
        "clockface_kiosk_clock_skew_seconds",
        "The service's clock minus the kiosk's at its last batch.",
        [(k.name, k.clock_skew_seconds) for k in live if k.clock_skew_seconds is not None],
    )
    out += _gauge(
        "clockface_kiosk_clock_flagged",
        "1 when the kiosk's clock is off by more than the configured bound.",
        [(k.name, int(k.clock_flagged)) for k in live],
    )
    out += _gauge(
        "clockface_kiosk_roster_version",
        "The roster version the kiosk last reported holding.",
        [(k.name, k.gallery_version) for k in live if k.gallery_version is not None],
    )
    out += _gauge(
        "clockface_kiosk_chain_break",
        "1 when an event of the kiosk's log does not follow its tamper-evident chain.",
        [(k.name, int(k.chain_state == "broken")) for k in live],
    )
    out += _gauge(
        "clockface_kiosk_chain_break_seq",
        "The first seq where the kiosk's chain breaks (the lowest over its logs).",
        [(k.name, k.chain_break_seq) for k in live if k.chain_break_seq is not None],
    )
    out += _gauge(
        "clockface_kiosk_chain_unchained",
        "1 when the kiosk sent events without a chain: its log cannot be verified.",
        [(k.name, int(k.unchained_seq is not None)) for k in live],
    )
    return out


def _gauge(name: str, help_text: str, samples: list[tuple[str, float | int]]) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for kiosk, value in samples:
        labels = f'{{kiosk="{_escape(kiosk)}"}}' if kiosk else ""
        out.append(f"{name}{labels} {_number(value)}")
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
