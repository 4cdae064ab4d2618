"""The tamper-evident chain: its encoding, the kiosk's chained log, the upgrade that chains
a version-3 database, and ``clockface kiosk verify-log`` on each kind of tampering.

Tampering is done the way someone with the file would: a plain sqlite3 connection that
drops the append-only triggers first, then edits, inserts or deletes rows.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from clockface import chain
from clockface.chain import EventFields
from clockface.cli import main
from hardware.clock import FakeClockStatus
from kiosk import migrations
from kiosk.store import Event, KioskStore
from tests.helpers.fakes import T0, FakeClock

FIELDS = EventFields(
    event_id="6f1c2a34-0d0b-4c61-9d2e-7b1f4f3f2a10",
    log_id="log-1",
    seq=3,
    kiosk_id="door-1",
    person_id="ada",
    direction="in",
    utc="2024-03-04T08:00:00.000000Z",
    tz="Europe/Paris",
    distance=0.31,
    margin=None,
    frames=4,
    software_version="0.1.0",
    clock_synced=True,
)
# FIELDS linked from the genesis of "log-1". Pinned: changing the encoding would break
# every chain already recorded, on every kiosk and on the service.
PINNED = "1106d9990bc2374a641bd4605cc31a1af3e7cb0e3b299895a5197ddc7fe863b9"


# --------------------------------------------------------------------- the encoding
def _s(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"S" + len(raw).to_bytes(4, "big") + raw


def _i(number: int) -> bytes:
    return b"I" + number.to_bytes(8, "big", signed=True)


def _d(number: float) -> bytes:
    return b"D" + struct.pack(">d", number)


def test_the_encoding_is_the_one_the_module_documents() -> None:
    """Written out by hand from the module doc, so the doc and the code cannot drift."""
    expected = (
        b"clockface/event/1\x00"
        + _s("6f1c2a34-0d0b-4c61-9d2e-7b1f4f3f2a10")
        + _s("log-1")
        + _i(3)
        + _s("door-1")
        + _s("ada")
        + _s("in")
        + _s("2024-03-04T08:00:00.000000Z")
        + _s("Europe/Paris")
        + _d(0.31)
        + b"N"
        + _i(4)
        + _s("0.1.0")
        + b"T"
    )
    assert chain.canonical(FIELDS) == expected
    start = hashlib.sha256(b"clockface/chain/1/genesis\x00log-1").hexdigest()
    assert chain.genesis("log-1") == start
    assert chain.link(start, FIELDS) == hashlib.sha256(bytes.fromhex(start) + expected).hexdigest()
    assert chain.link(start, FIELDS) == PINNED


CHANGES: list[tuple[str, Any]] = [
    ("event_id", "6f1c2a34-0d0b-4c61-9d2e-7b1f4f3f2a11"),
    ("log_id", "log-2"),
    ("seq", 4),
    ("kiosk_id", "door-2"),
    ("person_id", "bob"),
    ("direction", "out"),
    ("utc", "2024-03-04T08:00:00.000001Z"),
    ("tz", "Europe/Berlin"),
    ("distance", 0.3100000000000001),
    ("margin", 0.2),
    ("frames", 5),
    ("software_version", "0.1.1"),
    ("clock_synced", None),
    ("clock_synced", False),
]


@pytest.mark.parametrize(("name", "value"), CHANGES, ids=[f"{n}={v}" for n, v in CHANGES])
def test_every_field_is_covered(name: str, value: Any) -> None:
    start = chain.genesis("log-1")
    assert chain.link(start, FIELDS._replace(**{name: value})) != chain.link(start, FIELDS)


def test_the_previous_chain_is_covered_and_must_be_a_chain() -> None:
    assert chain.link(chain.genesis("log-2"), FIELDS) != PINNED
    for bad in ("", "0" * 63, "A" * 64, "g" * 64, "0" * 64 + "\n", "0" * 65):
        with pytest.raises(ValueError, match="previous chain"):
            chain.link(bad, FIELDS)


def test_text_boundaries_are_unambiguous() -> None:
    start = chain.genesis("log-1")
    one = FIELDS._replace(person_id="ab", tz="cEurope/Paris")
    two = FIELDS._replace(person_id="abc", tz="Europe/Paris")
    assert chain.canonical(one) != chain.canonical(two)
    assert chain.link(start, one) != chain.link(start, two)


def test_equal_values_encode_equally_whichever_side_holds_them() -> None:
    """The kiosk has a text UUID, a datetime, inf for "nobody else"; the wire a UUID
    object, a datetime in any zone, null. They must give the same bytes."""
    made = EventFields.make(
        event_id=uuid.UUID(FIELDS.event_id),
        log_id="log-1",
        seq=3,
        kiosk_id="door-1",
        person_id="ada",
        direction="in",
        utc=T0.astimezone(ZoneInfo("America/Chicago")),
        tz="Europe/Paris",
        distance=0.31,
        margin=float("inf"),
        frames=4,
        software_version="0.1.0",
        clock_synced=True,
    )
    assert made.utc == FIELDS.utc
    assert chain.canonical(made) == chain.canonical(FIELDS)
    upper = FIELDS._replace(event_id=FIELDS.event_id.upper())
    assert chain.canonical(upper) == chain.canonical(FIELDS)
    assert chain.canonical(FIELDS._replace(margin=-0.0)) == chain.canonical(
        FIELDS._replace(margin=0.0)
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("distance", float("nan")),
        ("distance", float("inf")),
        ("margin", float("nan")),
        ("seq", True),
        ("seq", 2.5),
        ("frames", "4"),
        ("person_id", 7),
        ("utc", "2024-03-04T08:00:00Z"),
        ("event_id", "not-a-uuid"),
        ("clock_synced", 1),
    ],
)
def test_values_no_event_can_hold_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ValueError):
        chain.canonical(FIELDS._replace(**{name: value}))


_text = st.text(max_size=12)
_number = st.floats(allow_nan=False, allow_infinity=False)
_fields = st.builds(
    EventFields,
    event_id=st.uuids().map(str),
    log_id=_text,
    seq=st.integers(1, 2**62),
    kiosk_id=_text,
    person_id=_text,
    direction=st.sampled_from(["in", "out"]),
    utc=st.sampled_from(["2024-03-04T08:00:00.000000Z", "2024-03-04T08:00:00.000001Z"]),
    tz=_text,
    distance=_number,
    margin=st.none() | _number,
    frames=st.integers(1, 10**6),
    software_version=_text,
    clock_synced=st.none() | st.booleans(),
)


def _normal(fields: EventFields) -> EventFields:
    """What the encoding deliberately treats as equal: -0.0 and 0.0."""
    margin = None if fields.margin is None else fields.margin + 0.0
    return fields._replace(distance=fields.distance + 0.0, margin=margin)


@given(_fields, _fields)
def test_two_events_encode_alike_only_when_they_are_alike(a: EventFields, b: EventFields) -> None:
    assert (chain.canonical(a) == chain.canonical(b)) == (_normal(a) == _normal(b))


@given(_fields)
def test_the_fast_encoding_agrees_with_the_checked_one(fields: EventFields) -> None:
    """canonical() takes a fast path for values of the usual types; the slower path that
    checks and converts each value must give the same bytes."""
    assert chain.canonical(fields) == chain._canonical_checked(fields)
    if fields.distance.is_integer():  # 3 and 3.0 are one number (SQLite may give either)
        as_int = fields._replace(distance=int(fields.distance))
        assert chain.canonical(as_int) == chain.canonical(fields)


@given(_fields, st.sampled_from([name for name, _ in CHANGES[:-1]]), st.data())
def test_changing_any_one_field_changes_the_encoding(
    fields: EventFields, name: str, data: st.DataObject
) -> None:
    other = data.draw(st.sampled_from([v for n, v in CHANGES if n == name]))
    changed = fields._replace(**{name: other})
    if _normal(changed) != _normal(fields):
        assert chain.canonical(changed) != chain.canonical(fields)


# --------------------------------------------------------------------- walking a log
def _log(n: int, log_id: str = "log-1") -> list[tuple[EventFields, str | None]]:
    fields = [
        FIELDS._replace(event_id=str(uuid.UUID(int=i)), seq=i, log_id=log_id)
        for i in range(1, n + 1)
    ]
    return list(zip(fields, chain.chained(log_id, fields), strict=True))


def test_a_whole_log_walks_clean_and_each_tampering_is_named() -> None:
    log = _log(6)
    clean = chain.verify_events("log-1", log)
    assert (clean.intact, clean.events, clean.last_seq) == (True, 6, 6)
    assert chain.verify_events("log-1", []).intact

    edited = list(log)
    edited[2] = (log[2][0]._replace(person_id="bob"), log[2][1])
    assert [(p.seq, p.kind) for p in chain.verify_events("log-1", edited).problems] == [
        (3, "mismatch")
    ]

    deleted = log[:3] + log[4:]
    assert [(p.seq, p.kind) for p in chain.verify_events("log-1", deleted).problems] == [
        (4, "gap"),
        (5, "mismatch"),
    ]

    unchained = [*log, (FIELDS._replace(seq=7), None)]
    assert [(p.seq, p.kind) for p in chain.verify_events("log-1", unchained).problems] == [
        (7, "unchained")
    ]

    between = [*log[:3], (FIELDS._replace(seq=3.5), "0" * 64), *log[3:]]  # type: ignore[arg-type]
    problems = chain.verify_events("log-1", between).problems
    assert [(p.seq, p.kind) for p in problems] == [(3.5, "seq")]
    assert problems[0].message.startswith("seq 3.5: not a whole number")

    # The genesis binds the log id: the same events are not another log's.
    assert [(p.seq, p.kind) for p in chain.verify_events("log-2", log).problems] == [
        (1, "mismatch")
    ]


# --------------------------------------------------------------------- the kiosk's log
@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "kiosk.db"


@pytest.fixture
def store(path: Path) -> Iterator[KioskStore]:
    with KioskStore.open(
        path, kiosk_id="kiosk-1", actor="t", clock=FakeClock(), clock_status=lambda: True
    ) as s:
        yield s


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def append(store: KioskStore, n: int, *, margin: float = 0.22) -> list[Event]:
    return [
        store.append_event(
            f"p{i % 3}",
            "in" if i % 2 else "out",
            utc=T0 + timedelta(minutes=i),
            tz="Europe/Paris",
            distance=0.31,
            margin=margin,
            frames=4,
            software_version="0.1.0",
        )
        for i in range(n)
    ]


def _fields_of(event: Event, log_id: str) -> EventFields:
    return EventFields.make(
        event_id=event.event_id,
        log_id=log_id,
        seq=event.seq,
        kiosk_id=event.kiosk_id,
        person_id=event.person_id,
        direction=event.direction,
        utc=event.utc,
        tz=event.tz,
        distance=event.distance,
        margin=event.margin,
        frames=event.frames,
        software_version=event.software_version,
        clock_synced=event.clock_synced,
    )


def test_each_event_is_chained_onto_the_one_before_as_it_is_recorded(store: KioskStore) -> None:
    events = append(store, 3) + append(store, 1, margin=float("inf"))
    held = store.events()
    assert [e.chain for e in held] == [e.chain for e in events]
    previous = chain.genesis(store.log_id)
    for event in held:
        assert event.chain == chain.link(previous, _fields_of(event, store.log_id))
        previous = event.chain
    assert store.pending()[0].chain == events[0].chain
    check = store.verify_chain()
    assert check.intact and check.lines() == ["4 events, chain intact through seq 4"]


def test_the_chain_is_immutable_like_the_rest_of_the_event(store: KioskStore, path: Path) -> None:
    append(store, 2)
    with raw(path) as conn:
        for sql in (
            "UPDATE events SET chain = NULL WHERE seq = 1",
            "UPDATE events SET chain = '" + "0" * 64 + "' WHERE seq = 1",
            "UPDATE events SET chain = NULL, acked_utc = '2024-03-04T09:00:00.000000Z'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    assert store.mark_acked([e.event_id for e in store.events()], T0) == 2  # acking still works
    with raw(path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        for bad in ("not hex", "AB" * 32, "ab" * 31):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute("UPDATE events SET chain = ? WHERE seq = 1", [bad])


def test_an_empty_log_is_intact(store: KioskStore) -> None:
    assert store.verify_chain().lines() == ["0 events, chain intact through seq 0"]


# --------------------------------------------------------------------- upgrading
def _v3_database(path: Path) -> list[str]:
    """A kiosk database as clockface made it before schema 4, with four events in it."""
    ids = [str(uuid.uuid4()) for _ in range(4)]
    with raw(path) as conn:
        migrations.migrate(
            Database(conn),
            where=str(path),
            applied_utc="2024-01-01T00:00:00.000000Z",
            steps=migrations.MIGRATIONS[:3],
        )
        conn.execute("INSERT INTO settings (key, value) VALUES ('kiosk_id', 'old-kiosk')")
        for seq, event_id in enumerate(ids, 1):
            conn.execute(
                "INSERT INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz,"
                " distance, margin, frames, software_version, clock_synced)"
                " VALUES (?, ?, 'old-kiosk', 'e1', 'in', ?, 'UTC', 0.3, ?, 3, '0.0.9', ?)",
                [
                    event_id,
                    seq,
                    f"2024-01-01T08:0{seq}:00.000000Z",
                    [0.2, float("inf"), 0.0, 0.25][seq - 1],
                    [None, 1, 0, 1][seq - 1],
                ],
            )
        conn.execute("UPDATE events SET acked_utc = '2024-01-01T09:00:00.000000Z' WHERE seq <= 2")
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    return ids


def test_a_v3_database_is_chained_as_it_stood_at_the_upgrade(path: Path) -> None:
    ids = _v3_database(path)
    with KioskStore.open(path, clock_status=FakeClockStatus("synchronised")) as store:
        old = store.events()
        assert [e.event_id for e in old] == ids
        assert all(chain.is_chain(e.chain) for e in old)
        links = list(chain.chained(store.log_id, (_fields_of(e, store.log_id) for e in old)))
        assert [e.chain for e in old] == links
        assert [e.acked_utc is not None for e in old] == [True, True, False, False]
        new = append(store, 1)[0]
        assert new.seq == 5
        assert new.chain == chain.link(links[-1], _fields_of(new, store.log_id))
        assert store.verify_chain().lines() == ["5 events, chain intact through seq 5"]
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (migrations.latest_version(),)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET chain = NULL WHERE seq = 1")


def test_an_empty_v3_database_upgrades(path: Path) -> None:
    with raw(path) as conn:
        migrations.migrate(
            Database(conn),
            where=str(path),
            applied_utc="2024-01-01T00:00:00.000000Z",
            steps=migrations.MIGRATIONS[:3],
        )
    with KioskStore.open(path) as store:
        assert store.verify_chain().intact
        assert append(store, 1)[0].chain == chain.link(
            chain.genesis(store.log_id), _fields_of(store.events()[0], store.log_id)
        )


# --------------------------------------------------------------------- verify-log
def verify(path: Path) -> Result:
    return CliRunner().invoke(main, ["kiosk", "verify-log", "--db", str(path)])


@pytest.fixture
def logged(path: Path) -> Path:
    """A kiosk database with 8 chained events, closed."""
    with KioskStore.open(path, kiosk_id="kiosk-1", clock_status=lambda: True) as store:
        append(store, 8)
    return path


def tamper(path: Path, *sql: str, params: list[Any] | None = None) -> None:
    """Drop the append-only triggers, as someone editing the file would, then edit it."""
    with raw(path) as conn:
        for name in migrations.EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in sql:
            conn.execute(statement, params or [])


def lines(result: Result) -> list[str]:
    return result.output.strip().splitlines()


TRIGGERS_GONE = "the triggers that keep events append-only are missing"


def test_verify_log_says_intact(logged: Path) -> None:
    result = verify(logged)
    assert result.exit_code == 0, result.output
    assert lines(result) == ["8 events, chain intact through seq 8"]


def test_verify_log_names_an_edited_row(logged: Path) -> None:
    tamper(logged, "UPDATE events SET person_id = 'mallory' WHERE seq = 5")
    result = verify(logged)
    assert result.exit_code == 1
    assert lines(result)[0].startswith("seq 5: hash mismatch")
    assert len(lines(result)) == 2 and TRIGGERS_GONE in lines(result)[1]


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE events SET utc = '2024-03-04T07:59:00.000000Z' WHERE seq = 5",
        "UPDATE events SET direction = 'in' WHERE seq = 5",
        "UPDATE events SET distance = 0.1 WHERE seq = 5",
        "UPDATE events SET clock_synced = 1 - clock_synced WHERE seq = 5",
        "UPDATE events SET kiosk_id = 'kiosk-2' WHERE seq = 5",
    ],
)
def test_verify_log_names_each_kind_of_edit(logged: Path, edit: str) -> None:
    tamper(logged, edit)
    result = verify(logged)
    assert result.exit_code == 1
    assert lines(result)[:-1] == [
        "seq 5: hash mismatch: the event was edited, or a row before it was inserted or deleted"
    ]


def test_verify_log_names_an_edit_that_rewrote_the_chain_from_there(logged: Path) -> None:
    """Whoever edits a row and its chain must rewrite every chain after it: the next
    row names the break (the central service holds the synced ones as they were)."""
    tamper(logged, "UPDATE events SET person_id = 'mallory', chain = ? WHERE seq = 5", params=[
        "ab" * 32
    ])  # fmt: skip
    result = verify(logged)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in lines(result)[:-1]] == ["seq 5", "seq 6"]


def test_verify_log_names_a_deleted_row(logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq = 4")
    result = verify(logged)
    assert result.exit_code == 1
    found = lines(result)
    assert found[0] == "seq 4: missing (seq 5 follows seq 3): a row was deleted"
    assert found[1].startswith("seq 5: hash mismatch")
    assert TRIGGERS_GONE in found[2]


def test_verify_log_names_deleted_rows_renumbered_to_hide_the_gap(logged: Path) -> None:
    tamper(
        logged, "DELETE FROM events WHERE seq = 4", "UPDATE events SET seq = seq - 1 WHERE seq > 4"
    )
    found = lines(verify(logged))
    assert [line.split(":")[0] for line in found[:-1]] == ["seq 4", "seq 5", "seq 6", "seq 7"]
    assert all("hash mismatch" in line for line in found[:-1])


def test_verify_log_names_the_first_row_deleted(logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq = 1")
    found = lines(verify(logged))
    assert found[0] == "seq 1: missing (the log starts at seq 2): a row was deleted"
    assert found[1].startswith("seq 2: hash mismatch")


def _insert(seq: float, chain_value: str | None) -> tuple[str, list[Any]]:
    return (
        "INSERT INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz, distance,"
        " margin, frames, software_version, clock_synced, chain)"
        " VALUES (?, ?, 'kiosk-1', 'mallory', 'in', '2024-03-04T07:00:00.000000Z', 'UTC', 0.2,"
        " 0.3, 2, '0.1.0', 1, ?)",
        [str(uuid.uuid4()), seq, chain_value],
    )


def test_verify_log_names_a_row_inserted_in_between(logged: Path) -> None:
    sql, params = _insert(4, "cd" * 32)
    tamper(logged, "UPDATE events SET seq = seq + 100 WHERE seq >= 4")
    tamper(logged, "UPDATE events SET seq = seq - 99 WHERE seq >= 100")
    tamper(logged, sql, params=params)
    found = lines(verify(logged))
    assert [line.split(":")[0] for line in found[:-1]] == [f"seq {n}" for n in range(4, 10)]


def test_verify_log_names_a_row_inserted_without_a_chain(logged: Path) -> None:
    sql, params = _insert(9, None)
    tamper(logged, sql, params=params)
    found = lines(verify(logged))
    assert found[0] == (
        "seq 9: no chain: a row written outside clockface, or its chain overwritten"
    )


def test_verify_log_names_a_row_squeezed_between_two_seqs(logged: Path) -> None:
    sql, params = _insert(4.5, "cd" * 32)
    tamper(logged, sql, params=params)
    found = lines(verify(logged))
    assert found[0] == "seq 4.5: not a whole number: a row inserted outside clockface"
    assert len(found) == 2  # and the triggers


def test_verify_log_names_a_row_inserted_past_the_end(logged: Path) -> None:
    sql, params = _insert(12, "cd" * 32)
    tamper(logged, sql, params=params)
    found = lines(verify(logged))
    assert found[0] == "seqs 9-11: missing (seq 12 follows seq 8): rows were deleted"
    assert found[1].startswith("seq 12: hash mismatch")


def test_verify_log_names_a_changed_log_id(logged: Path) -> None:
    tamper(logged, "UPDATE settings SET value = 'another-log' WHERE key = 'log_id'")
    found = lines(verify(logged))
    assert found[0].startswith("seq 1: hash mismatch")


def test_verify_log_says_when_only_the_triggers_are_gone(logged: Path) -> None:
    tamper(logged)
    result = verify(logged)
    assert result.exit_code == 1
    assert len(lines(result)) == 1 and TRIGGERS_GONE in lines(result)[0]


def test_verify_log_refuses_a_missing_database_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = verify(missing)
    assert result.exit_code == 1
    assert lines(result) == [f"Error: no kiosk database at {missing}: check --db"]
    assert not missing.exists()
