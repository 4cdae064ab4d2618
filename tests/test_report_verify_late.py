"""``clockface report verify`` as of the report's chain heads: events that arrive later in
the report's range (a kiosk that synced late, a new log) do not fail an old report, while
an edited file, a rewritten log, or rows that need events no recorded head covers still
do. Real kiosk SQLite databases, real central databases (SQLite and PostgreSQL), the
real CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from central.store import CentralStore
from kiosk.store import KioskStore
from sync.agent import to_wire
from sync.protocol import WireEvent
from tests.helpers.central_reports import KIOSK, open_central, push
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.scenario import scenario_people
from tests.helpers.verify import (
    LATE_ROWS,
    central_db,
    edit_json,
    export,
    export_central,
    kiosk_db,
    rewrite_event,
    template_db,
    verify,
)

__all__ = ["central_db", "kiosk_db", "template_db"]  # fixtures, used by name

ADA_LATE = datetime(2024, 10, 27, 21, 15, tzinfo=UTC)  # Ada's absent night: 15 min late
BOB_ON_TIME = datetime(2024, 7, 2, 14, 1, tzinfo=UTC)  # 09:01 in Chicago: Bob not late
SAME = "as of its chain heads the database gives the same rows"


def _verified(out: Path, rows: int, tail: str) -> str:
    return (
        f"verified: {out}: {rows} rows match the recorded digest; the chain head still "
        f"holds; {tail}"
    )


def _append(db: Path, person: str, at: datetime, tz: str = "Europe/Berlin") -> int:
    """An event recorded now at the kiosk, stamped ``at`` (a kiosk that was offline)."""
    with KioskStore.open(db) as store:
        event = store.append_event(
            person, "in", utc=at, tz=tz, distance=0.3, margin=0.2, frames=3,
            software_version="test",
        )  # fmt: skip
    return event.seq


def _head(out: Path) -> tuple[str, int, str]:
    [head] = json.loads(out.read_text(encoding="utf-8"))["verification"]["chain_heads"]
    return head["log_id"], head["seq"], head["chain"]


# --------------------------------------------------------------------- a kiosk database
def test_a_kiosk_report_still_verifies_after_late_events(kiosk_db: Path, tmp_path: Path) -> None:
    out = export(kiosk_db, tmp_path, "json")
    _append(kiosk_db, "ada", ADA_LATE)  # adds a row now
    _append(kiosk_db, "bob", BOB_ON_TIME, "America/Chicago")  # takes one away now
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        _verified(out, LATE_ROWS, "the database gives the same rows as of the chain heads"),
        f"{out}: 2 later events in this range arrived after the report was made; {SAME}",
    ]
    # The database as it is now does give other rows: a report made now differs.
    now = export(kiosk_db, tmp_path / "db", "json")
    digests = [json.loads(f.read_text(encoding="utf-8"))["verification"]["row_digests"]
               for f in (out, now)]  # fmt: skip
    assert len(digests[1]) == LATE_ROWS and digests[0] != digests[1]


def test_late_events_outside_the_rows_leave_one_line(kiosk_db: Path, tmp_path: Path) -> None:
    out = export(kiosk_db, tmp_path, "json")
    _append(kiosk_db, "bob", datetime(2024, 7, 2, 15, 0, tzinfo=UTC), "America/Chicago")
    result = verify(out, "--db", str(kiosk_db))  # a second arrival: the first one counts
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        _verified(out, LATE_ROWS, "the database gives the same rows")
    ]


def test_an_edited_file_still_fails_among_late_events(kiosk_db: Path, tmp_path: Path) -> None:
    out = export(kiosk_db, tmp_path, "json")
    _append(kiosk_db, "ada", ADA_LATE)
    edit_json(out, "edit")
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [f"{out}: row 2 differs in the file"]


@pytest.mark.parametrize("rechain", [False, True])
def test_a_log_rewritten_up_to_the_head_still_fails_among_late_events(
    kiosk_db: Path, tmp_path: Path, rechain: bool
) -> None:
    out = export(kiosk_db, tmp_path, "json")
    log_id, seq, _ = _head(out)
    _append(kiosk_db, "ada", ADA_LATE)
    rewrite_event(kiosk_db, seq, rechain=rechain)  # the head's own event, by hand
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    named = [line for line in lines if line.startswith(f"{out}: log {log_id}: ")]
    if rechain:
        assert named == [
            f"{out}: log {log_id}: the chain at seq {seq} is not the one the report recorded: "
            "the events up to it were rewritten since"
        ]
    else:
        assert named and all(f"seq {seq}" in line for line in named), lines
    assert not any(line.startswith("verified") for line in lines)


def test_a_late_event_rewritten_after_the_head_is_none_of_the_reports_business(
    kiosk_db: Path, tmp_path: Path
) -> None:
    out = export(kiosk_db, tmp_path, "json")
    late = _append(kiosk_db, "ada", ADA_LATE)
    rewrite_event(kiosk_db, late, rechain=False)  # breaks the chain, but past the head
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"{out}: 1 later event in this range arrived after the report was made; {SAME}"
    ]


def test_a_report_of_a_log_with_no_event_yet_verifies_after_its_events(tmp_path: Path) -> None:
    db = tmp_path / "db" / "kiosk.db"
    db.parent.mkdir()
    with KioskStore.open(db, kiosk_id="k1", actor="test") as store:
        for person in scenario_people():
            store.add_person(person.person_id, person.name, person.team)
    out = export(db, tmp_path, "json")
    assert json.loads(out.read_text(encoding="utf-8"))["verification"]["chain_heads"] == []
    _append(db, "ada", ADA_LATE)
    result = verify(out, "--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"verified: {out}: 0 rows match the recorded digest; no log held a checked chain "
        "then; the database gives the same rows as of the chain heads",
        f"{out}: 1 later event in this range arrived after the report was made; {SAME}",
    ]


@pytest.mark.parametrize("forgery", ["strip", "lower"])
def test_rows_no_head_covers_cannot_be_vouched_for(
    kiosk_db: Path, tmp_path: Path, forgery: str
) -> None:
    """A record whose heads were taken away, or moved back to an earlier real event,
    does not verify: the rows need events no head covers."""
    out = export(kiosk_db, tmp_path, "json")
    document = json.loads(out.read_text(encoding="utf-8"))
    record = document["verification"]
    if forgery == "strip":
        record["chain_heads"] = []
    else:
        [head] = record["chain_heads"]
        conn = sqlite3.connect(kiosk_db)
        try:  # Ada's late night of 31 March is the first row; seq 2 is before it
            (head["chain"],) = conn.execute("SELECT chain FROM events WHERE seq = 2").fetchone()
        finally:
            conn.close()
        head["seq"] = 2
    out.write_text(json.dumps(document), encoding="utf-8")
    assert verify(out).exit_code == 0  # the rows still match the record's digests
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"{out}: as of its chain heads the database gives different rows: the report's "
        "rows need some of the "
    )
    assert lines[0].endswith(
        "events in this range past the recorded chain head, so this cannot vouch for those rows"
    )
    missing = [f"{out}: row {n} is missing from the database as of the chain heads"
               for n in range(1, LATE_ROWS + 1)]  # fmt: skip
    assert lines[1:] == missing


def test_an_event_that_arrives_while_the_report_reads_is_not_under_its_head(
    kiosk_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report reads the head first, then the events: an event recorded just after
    the events were read (a kiosk punching while the supervisor exports) is neither in
    the report nor covered by its head, so the report verifies."""
    import reports.sources

    read = reports.sources._read_events
    arrived: list[int] = []

    def read_then_punch(*args: Any, **kwargs: Any) -> Any:
        events = read(*args, **kwargs)
        if not arrived:
            arrived.append(_append(kiosk_db, "ada", ADA_LATE))
        return events

    with monkeypatch.context() as patched:
        patched.setattr(reports.sources, "_read_events", read_then_punch)
        out = export(kiosk_db, tmp_path, "json")
    assert arrived and _head(out)[1] == arrived[0] - 1
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"{out}: 1 later event in this range arrived after the report was made; {SAME}"
    ]


# --------------------------------------------------------------------- the central database
def _later(database: str) -> CentralStore:
    """The central store on the real clock: what it receives now is after the report."""
    return CentralStore.open(database, actor="test", clock=lambda: datetime.now(UTC))


def _second_kiosk(folder: Path, central: CentralStore) -> Path:
    """A second kiosk (k2), with its own database and log; none of its events yet."""
    central.create_kiosk("k2", "hq")
    db = folder / "k2.db"
    with KioskStore.open(db, kiosk_id="k2", actor="test") as store:
        for person in scenario_people():
            store.add_person(person.person_id, person.name, person.team)
    return db


def _wire(db: Path, person: str, at: datetime, tz: str) -> WireEvent:
    _append(db, person, at, tz)
    with KioskStore.open(db) as store:
        return to_wire(store.events()[-1], store.log_id)


def test_a_central_report_still_verifies_after_late_events_and_a_new_log(
    central_db: str, kiosk_db: Path, tmp_path: Path
) -> None:
    out = export_central(central_db, tmp_path, "json")
    with _later(central_db) as central:
        second = _second_kiosk(tmp_path, central)
        # the same kiosk log, a week late; and a log that did not exist then
        push(central, KIOSK, [_wire(kiosk_db, "ada", ADA_LATE, "Europe/Berlin")])
        push(central, "k2", [_wire(second, "bob", BOB_ON_TIME, "America/Chicago")])
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        _verified(out, LATE_ROWS, "the database gives the same rows as of the chain heads"),
        f"{out}: 2 later events in this range arrived after the report was made; {SAME}",
    ]
    edit_json(out, "delete")  # and an edited file still fails
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [f"{out}: row 3 is missing from the file"]


def test_a_central_log_rewritten_up_to_the_head_still_fails_among_late_events(
    kiosk_db: Path, tmp_path: Path
) -> None:
    from tests.helpers.central_reports import fill_central

    database = str(tmp_path / "central.db")
    fill_central(database, kiosk_db)
    out = export_central(database, tmp_path, "json")
    log_id, seq, _ = _head(out)
    with _later(database) as central:
        push(central, KIOSK, [_wire(kiosk_db, "ada", ADA_LATE, "Europe/Berlin")])
    assert verify(out, "--central-db", database).exit_code == 0
    conn = sqlite3.connect(database)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE events SET frames = frames + 1 WHERE seq = ?", (seq - 1,))
        conn.commit()
    finally:
        conn.close()
    result = verify(out, "--central-db", database)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    named = [line for line in lines if line.startswith(f"{out}: log {log_id}: ")]
    assert named and all(f"seq {seq - 1}" in line for line in named), lines
    assert not any(line.startswith("verified") for line in lines)


def test_rows_from_a_log_without_a_checked_chain_cannot_be_vouched_for(
    central_db: str, kiosk_db: Path, tmp_path: Path
) -> None:
    """k2 sends its log without a chain (older software): the service files the events,
    the record has no head for that log, and verify says it cannot vouch for its rows,
    also once later events arrived."""
    with open_central(central_db) as central:  # received before the report
        second = _second_kiosk(tmp_path, central)
        unchained = _wire(second, "ada", ADA_LATE, "Europe/Berlin").model_copy(
            update={"chain": None, "kiosk_id": None}
        )
        push(central, "k2", [unchained])
    out = export_central(central_db, tmp_path, "json")
    record = json.loads(out.read_text(encoding="utf-8"))["verification"]
    assert record["rows"] == LATE_ROWS + 1  # Ada's row, from k2's events
    assert [h["log_id"] for h in record["chain_heads"]] != [unchained.log_id]
    expected = [
        f"{out}: as of its chain heads the database gives different rows: the report's rows "
        "need some of the 1 event in this range that no recorded chain head covers (of logs "
        "with no checked chain when the report was made, events held past a gap, or later "
        "ones), so this cannot vouch for those rows",
        f"{out}: row 4 is missing from the database as of the chain heads",
    ]
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == expected
    with _later(central_db) as central:  # a later event that changes the rows now
        push(central, KIOSK, [_wire(kiosk_db, "bob", BOB_ON_TIME, "America/Chicago")])
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [expected[0].replace("the 1 event", "the 2 events"),
                                          expected[1]]  # fmt: skip


def test_rows_from_events_held_past_a_gap_cannot_be_vouched_for(
    central_db: str, tmp_path: Path
) -> None:
    with open_central(central_db) as central:
        second = _second_kiosk(tmp_path, central)
        first = _wire(second, "bob", datetime(2024, 7, 2, 16, 0, tzinfo=UTC), "America/Chicago")
        _append(second, "bob", datetime(2024, 7, 2, 22, 0, tzinfo=UTC), "America/Chicago")
        past_gap = _wire(second, "ada", ADA_LATE, "Europe/Berlin")
        push(central, "k2", [first, past_gap])  # seq 2 has not arrived
    out = export_central(central_db, tmp_path, "json")
    record = json.loads(out.read_text(encoding="utf-8"))["verification"]
    assert {"log_id": first.log_id, "seq": 1, "chain": first.chain} in record["chain_heads"]
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "so this cannot vouch for those rows" in lines[0]
    assert lines[1:] == [f"{out}: row 4 is missing from the database as of the chain heads"]


def test_late_events_beside_a_log_without_a_chain_are_told_apart(
    central_db: str, kiosk_db: Path, tmp_path: Path
) -> None:
    """Not covered by a head: one event held when the report was made (a log without a
    chain, changing no row), one received after it (changing a row)."""
    with open_central(central_db) as central:
        second = _second_kiosk(tmp_path, central)
        unchained = _wire(
            second, "bob", datetime(2024, 7, 2, 15, 0, tzinfo=UTC), "America/Chicago"
        ).model_copy(update={"chain": None, "kiosk_id": None})
        push(central, "k2", [unchained])
    out = export_central(central_db, tmp_path, "json")
    assert verify(out, "--central-db", central_db).stdout.splitlines() == [
        _verified(out, LATE_ROWS, "the database gives the same rows")
    ]
    with _later(central_db) as central:
        push(central, KIOSK, [_wire(kiosk_db, "ada", ADA_LATE, "Europe/Berlin")])
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        _verified(out, LATE_ROWS, "the database gives the same rows as of the chain heads"),
        f"{out}: 2 events in this range are not covered by the report's chain heads (1 "
        f"arrived after the report was made, 1 was held then without a checked chain); {SAME}",
    ]
