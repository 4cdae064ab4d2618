"""Templates sealed at rest: the key file, AES-GCM sealing, and the kiosk store using it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlite_utils import Database

from central import migrations as central_migrations
from central.store import CentralStore, resolve_database
from clockface import template_key
from clockface.cli import main
from clockface.errors import StoreError, TemplateKeyError
from clockface.template_key import (
    CREDENTIAL_NAME,
    ENV_VAR,
    SEALED_BYTES,
    key_source,
    load_key_file,
    new_key_file,
    resolve_key_file,
)
from kiosk import migrations
from kiosk.store import KioskStore
from recognition.gallery import EMBEDDING_DIM
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.video import write_video

PLAIN = np.arange(EMBEDDING_DIM, dtype="<f4") / 2000.0 + 0.06  # norm 1.0, as a face


@pytest.fixture(autouse=True)
def _no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "kiosk.db"


def raw_bytes(path: Path) -> bytes:
    """Every byte SQLite keeps for the database: the file, its WAL and its journal."""
    out = b""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        if name.exists():
            out += name.read_bytes()
    return out


# --------------------------------------------------------------------- sealing
def test_seal_round_trip_and_header(tmp_path: Path) -> None:
    key = new_key_file(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    blob = key.seal("e1", PLAIN.tobytes())
    assert len(blob) == SEALED_BYTES
    assert blob[0] == 1 and blob[1:9] == key.key_id
    assert PLAIN.tobytes() not in blob
    assert key.open("e1", blob) == PLAIN.tobytes()
    assert key.seal("e1", PLAIN.tobytes()) != blob  # a fresh nonce each time
    assert key.key.hex() not in repr(key)


def test_a_wrong_key_a_moved_blob_and_a_flipped_bit_fail_clearly(tmp_path: Path) -> None:
    key = new_key_file(tmp_path / "k")
    other = new_key_file(tmp_path / "other")
    blob = key.seal("e1", PLAIN.tobytes())
    with pytest.raises(TemplateKeyError, match=r"does not open.*key id"):
        other.open("e1", blob)
    with pytest.raises(TemplateKeyError, match=r"does not open.*moved from another person"):
        key.open("e2", blob)
    for index in (0, 5, 9, 20, 100, SEALED_BYTES - 1):
        flipped = bytearray(blob)
        flipped[index] ^= 0x01
        with pytest.raises(TemplateKeyError, match="does not open"):
            key.open("e1", bytes(flipped))
    with pytest.raises(TemplateKeyError, match="not a sealed template"):
        key.open("e1", PLAIN.tobytes())


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_loose_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    new_key_file(tmp_path / "k")
    os.chmod(tmp_path / "k", mode)
    with pytest.raises(TemplateKeyError, match="readable by others; run: chmod 600"):
        load_key_file(tmp_path / "k")


def test_a_key_file_of_the_wrong_size_or_missing_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    short.chmod(0o600)
    with pytest.raises(TemplateKeyError, match="exactly 32 bytes, not 31"):
        load_key_file(short)
    with pytest.raises(TemplateKeyError, match="no such template key file"):
        load_key_file(tmp_path / "absent")
    new_key_file(tmp_path / "k")
    with pytest.raises(TemplateKeyError, match="already exists"):
        new_key_file(tmp_path / "k")


def test_where_the_key_is_looked_for_in_order(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    default = tmp_path / "db.key"
    env = {"CREDENTIALS_DIRECTORY": str(creds), ENV_VAR: str(tmp_path / "env.key")}
    assert resolve_key_file("x.key", default=default, environ=env) == Path("x.key")
    # The credential only counts when systemd put it there.
    assert resolve_key_file(None, default=default, environ=env) == tmp_path / "env.key"
    (creds / CREDENTIAL_NAME).write_bytes(b"")
    assert resolve_key_file(None, default=default, environ=env) == creds / CREDENTIAL_NAME
    assert resolve_key_file(None, default=default, environ={}) == default
    source = key_source(None, database=tmp_path / "kiosk.db", environ={})
    assert source.path == tmp_path / "kiosk.db.key" and source.create_if_missing
    assert not key_source(tmp_path / "k", database=tmp_path / "kiosk.db").create_if_missing


# --------------------------------------------------------------------- the kiosk store
def test_the_kiosk_database_holds_no_plaintext_template(db_path: Path) -> None:
    with KioskStore.open(db_path) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
        np.testing.assert_array_equal(store.templates("e1"), PLAIN[None, :])
        gallery = store.load_gallery(threshold=0.6, margin=0.0)
        assert len(gallery) == 1
        assert PLAIN.tobytes() not in raw_bytes(db_path)
    assert PLAIN.tobytes() not in raw_bytes(db_path)
    assert (db_path.parent / "kiosk.db.key").stat().st_mode & 0o777 == 0o600
    assert PLAIN.tobytes()[:64] not in raw_bytes(db_path)


def test_a_wrong_key_gives_one_clear_line_and_events_still_work(
    db_path: Path, tmp_path: Path
) -> None:
    with KioskStore.open(db_path) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    other = tmp_path / "other.key"
    new_key_file(other)
    with KioskStore.open(db_path, key_file=other) as store:
        with pytest.raises(TemplateKeyError, match=r"^the template key does not open"):
            store.templates("e1")
        with pytest.raises(TemplateKeyError, match=r"^the template key does not open"):
            store.load_gallery(threshold=0.6, margin=0.0)
        with pytest.raises(TemplateKeyError, match="does not open"):
            store.add_templates("e1", PLAIN)
        assert store.get_person("e1").template_count == 1
        event = store.append_event(
            "e1",
            "in",
            utc=datetime(2024, 5, 1, 8, tzinfo=UTC),
            tz="UTC",
            distance=0.3,
            margin=0.2,
            frames=3,
            software_version="t",
        )
        assert store.events() == [event]


def test_a_lost_default_key_is_an_error_not_a_new_key(db_path: Path) -> None:
    with KioskStore.open(db_path) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    (db_path.parent / "kiosk.db.key").unlink()
    with KioskStore.open(db_path) as store, pytest.raises(TemplateKeyError, match="no key file"):
        store.templates("e1")
    assert not (db_path.parent / "kiosk.db.key").exists()


def test_on_an_installed_machine_no_second_key_is_made_by_hand(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """install.sh's key is what the services seal with: a command run by hand without
    it must not make <db>.key (the services could not open what it seals)."""
    installed = tmp_path / "etc" / "template-key"
    monkeypatch.setattr(template_key, "SYSTEM_KEY_FILES", (installed, tmp_path / "none"))
    with KioskStore.open(db_path) as store:  # no key installed: the default is made
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    assert (db_path.parent / "kiosk.db.key").exists()
    installed.parent.mkdir()
    new_key_file(installed)
    other = tmp_path / "other.db"
    with KioskStore.open(other) as store:
        store.add_person("e1", "Ada")
        with pytest.raises(TemplateKeyError, match="services seal templates with") as err:
            store.add_templates("e1", PLAIN)
        assert f"CLOCKFACE_TEMPLATE_KEY_FILE={installed}" in str(err.value)
        assert store.get_person("e1").template_count == 0
    assert not (tmp_path / "other.db.key").exists()
    # Given the installed key, the same command works; an existing default key still does.
    monkeypatch.setenv(ENV_VAR, str(installed))
    with KioskStore.open(other) as store:
        store.add_templates("e1", PLAIN)
    monkeypatch.delenv(ENV_VAR)
    with KioskStore.open(db_path) as store:
        np.testing.assert_array_equal(store.templates("e1"), PLAIN.reshape(1, -1))


def test_the_key_comes_from_the_environment_and_the_credential(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key_file(tmp_path / "env.key")
    monkeypatch.setenv(ENV_VAR, str(key.path))
    with KioskStore.open(db_path) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    assert not (db_path.parent / "kiosk.db.key").exists()
    monkeypatch.delenv(ENV_VAR)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / CREDENTIAL_NAME).write_bytes(key.key)
    (creds / CREDENTIAL_NAME).chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with KioskStore.open(db_path) as store:
        np.testing.assert_array_equal(store.templates("e1"), PLAIN[None, :])


@pytest.fixture
def v4_database(db_path: Path) -> Iterator[Path]:
    """A kiosk database as clockface made it at schema 4, with plaintext templates."""
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        migrations.migrate(
            Database(conn),
            where=str(db_path),
            applied_utc="2024-01-01T00:00:00.000000Z",
            steps=migrations.MIGRATIONS[:4],
        )
        at = "2024-01-01T00:00:00.000000Z"
        for pid in ("e1", "e2"):
            conn.execute(
                "INSERT INTO people (person_id, name, created_utc, updated_utc)"
                " VALUES (?, ?, ?, ?)",
                [pid, pid.upper(), at, at],
            )
        conn.executemany(
            "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
            [("e1", PLAIN.tobytes(), at), ("e2", (PLAIN * 2).tobytes(), at)],
        )
    yield db_path


def test_a_v4_kiosk_database_is_sealed_in_place(v4_database: Path, tmp_path: Path) -> None:
    key = new_key_file(tmp_path / "k")
    with KioskStore.open(v4_database, key_file=key.path) as store:
        np.testing.assert_array_equal(store.templates("e1"), PLAIN[None, :])
        np.testing.assert_array_equal(store.templates("e2"), (PLAIN * 2)[None, :])
        store._db.execute("VACUUM")  # drop the freed pages that held plaintext
    with closing(sqlite3.connect(v4_database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (migrations.latest_version(),)
        assert conn.execute(
            "SELECT value FROM settings WHERE key = 'template_key_id'"
        ).fetchone() == (key.key_id.hex(),)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(
                "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                ["e1", PLAIN.tobytes(), "2024-01-01T00:00:00.000000Z"],
            )
    assert PLAIN.tobytes() not in raw_bytes(v4_database)


def test_a_failed_seal_leaves_the_v4_database_as_it_was(v4_database: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose.key"
    new_key_file(loose)
    loose.chmod(0o644)
    with pytest.raises(StoreError, match=r"schema step 5 .* readable by others"):
        KioskStore.open(v4_database, key_file=loose)
    with closing(sqlite3.connect(v4_database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)
        assert conn.execute("SELECT embedding FROM templates ORDER BY id").fetchone() == (
            PLAIN.tobytes(),
        )


def test_rotation_reseals_everything_and_keeps_the_old_key_file(
    db_path: Path, tmp_path: Path
) -> None:
    with KioskStore.open(db_path) as store:
        for pid in ("e1", "e2"):
            store.add_person(pid, pid)
            store.add_templates(pid, np.stack([PLAIN, PLAIN * 1.5]))
        old_path = db_path.parent / "kiosk.db.key"
        new = new_key_file(tmp_path / "new.key")
        assert store.rotate_key(new.path) == 4
        np.testing.assert_array_equal(store.templates("e2")[1], PLAIN * 1.5)
    assert old_path.exists()
    sealed_under = "sealed under key id " + new.key_id.hex()
    with KioskStore.open(db_path) as store, pytest.raises(TemplateKeyError, match=sealed_under):
        store.templates("e1")  # the old key opens nothing any more
    with KioskStore.open(db_path, key_file=new.path) as store:
        np.testing.assert_array_equal(store.templates("e1")[0], PLAIN)


def test_a_failed_rotation_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    with KioskStore.open(db_path) as store:
        for pid in ("e1", "e2"):
            store.add_person(pid, pid)
            store.add_templates(pid, PLAIN)
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        before = conn.execute("SELECT id, embedding FROM templates ORDER BY id").fetchall()
        # Damage the second template: rotation reseals the first, then fails on it.
        damaged = bytearray(before[1][1])
        damaged[-1] ^= 0x80
        conn.execute("UPDATE templates SET embedding = ? WHERE id = ?", [bytes(damaged), 2])
    new = new_key_file(tmp_path / "new.key")
    with KioskStore.open(db_path) as store:
        with pytest.raises(TemplateKeyError, match="fails its integrity check"):
            store.rotate_key(new.path)
        np.testing.assert_array_equal(store.templates("e1"), PLAIN[None, :])
    with closing(sqlite3.connect(db_path)) as conn:
        after = conn.execute("SELECT id, embedding FROM templates ORDER BY id").fetchall()
        assert after[0] == before[0]
        assert (
            conn.execute("SELECT value FROM settings WHERE key = 'template_key_id'").fetchall()
            == []
        )


# --------------------------------------------------------------------- the central store
@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh central database of each kind: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def _central_blobs(database: str) -> list[tuple[str, bytes]]:
    engine = sa.create_engine(resolve_database(database).url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT person_id, embedding FROM templates ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [(pid, bytes(blob)) for pid, blob in rows]


def _v3_central(database: str) -> None:
    """A central database as clockface made it at schema 3, with plaintext templates."""
    engine = sa.create_engine(resolve_database(database).url)
    v1 = sa.MetaData()
    central_migrations._v1_tables(v1)
    t = v1.tables
    at = "2024-01-01T00:00:00.000000Z"
    try:
        with engine.begin() as conn:
            central_migrations.migrate(
                conn, where="test", applied_utc=at, steps=central_migrations.MIGRATIONS[:3]
            )
            for version, pid in enumerate(("p1", "p2"), 1):
                conn.execute(
                    sa.insert(t["people"]).values(
                        person_id=pid,
                        name=pid.upper(),
                        active=True,
                        created_utc=at,
                        updated_utc=at,
                        version=version,
                    )
                )
            conn.execute(
                sa.insert(t["templates"]),
                [
                    {"person_id": "p1", "embedding": PLAIN.tobytes(), "created_utc": at},
                    {"person_id": "p2", "embedding": (PLAIN * 2).tobytes(), "created_utc": at},
                ],
            )
    finally:
        engine.dispose()


def test_a_v3_central_database_is_sealed_in_place(central_db: str, tmp_path: Path) -> None:
    _v3_central(central_db)
    key = new_key_file(tmp_path / "central.key")
    with CentralStore.open(central_db, actor="a", key_file=key.path) as store:
        assert store.schema_version() == central_migrations.latest_version()
        np.testing.assert_array_equal(store.templates("p1"), PLAIN[None, :])
        np.testing.assert_array_equal(store.templates("p2"), (PLAIN * 2)[None, :])
        gallery = store.load_gallery(threshold=0.6, margin=0.0)
        assert len(gallery) == 2
    blobs = _central_blobs(central_db)
    assert [len(b) for _, b in blobs] == [SEALED_BYTES, SEALED_BYTES]
    assert all(PLAIN.tobytes() not in b for _, b in blobs)
    if not central_db.startswith("postgresql"):
        with closing(sqlite3.connect(central_db, isolation_level=None)) as conn:
            conn.execute("VACUUM")
        assert PLAIN.tobytes() not in raw_bytes(Path(central_db))


def test_a_central_store_with_no_key_for_postgresql_says_so(
    central_db: str, tmp_path: Path
) -> None:
    with CentralStore.open(central_db, actor="a") as store:
        store.add_site("HQ", "UTC")  # no template touched: no key needed
        if central_db.startswith("postgresql"):
            with pytest.raises(TemplateKeyError, match="no template key given"):
                store.enroll("p1", "Ada", None, PLAIN)
            assert store.people() == []
        else:
            store.enroll("p1", "Ada", None, PLAIN)
            assert Path(f"{central_db}.key").stat().st_mode & 0o777 == 0o600


def test_central_rotation_reseals_everything_in_one_go(central_db: str, tmp_path: Path) -> None:
    old = new_key_file(tmp_path / "old.key")
    new = new_key_file(tmp_path / "new.key")
    with CentralStore.open(central_db, actor="a", key_file=old.path) as store:
        store.enroll("p1", "Ada", None, np.stack([PLAIN, PLAIN * 1.5]))
        store.enroll("p2", "Bob", None, PLAIN * 2)
        before = _central_blobs(central_db)
        assert store.rotate_key(new.path) == 3
        np.testing.assert_array_equal(store.templates("p1")[1], PLAIN * 1.5)
    after = _central_blobs(central_db)
    engine = sa.create_engine(resolve_database(central_db).url)
    with engine.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT kind, subject, detail FROM audit WHERE action = 'rotate_template_key'")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in audited] == [
        ("admin", f"key id {new.key_id.hex()}", "3 templates resealed")
    ]
    assert [pid for pid, _ in after] == [pid for pid, _ in before]
    assert all(blob[1:9] == new.key_id for _, blob in after)
    assert old.path.exists()
    with (
        CentralStore.open(central_db, actor="a", key_file=old.path) as store,
        pytest.raises(TemplateKeyError, match="sealed under key id"),
    ):
        store.templates("p1")
    with CentralStore.open(central_db, actor="a", key_file=new.path) as store:
        np.testing.assert_array_equal(store.templates("p2"), (PLAIN * 2)[None, :])
        # A failed rotation (one template damaged) changes nothing.
        damaged = bytearray(after[2][1])
        damaged[-1] ^= 0x80
        engine = sa.create_engine(resolve_database(central_db).url)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE templates SET embedding = :b WHERE person_id = 'p2'"),
                {"b": bytes(damaged)},
            )
        engine.dispose()
        third = new_key_file(tmp_path / "third.key")
        with pytest.raises(TemplateKeyError, match="fails its integrity check"):
            store.rotate_key(third.path)
    assert _central_blobs(central_db)[:2] == after[:2]


# --------------------------------------------------------------------- the commands
def test_kiosk_rotate_key_command(db_path: Path, tmp_path: Path) -> None:
    with KioskStore.open(db_path) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    new = tmp_path / "new.key"
    env = {"CLOCKFACE_DB": str(db_path)}
    result = CliRunner().invoke(main, ["kiosk", "rotate-key", "--new-key-file", str(new)], env=env)
    assert result.exit_code == 0, result.output
    old = db_path.parent / "kiosk.db.key"
    assert "re-sealed 1 templates under key id " + load_key_file(new).key_id.hex() in result.output
    assert f"the old key file {old} opens nothing any more" in result.output
    assert f"mv {new} {old}" in result.output
    assert old.exists() and new.stat().st_mode & 0o777 == 0o600
    with KioskStore.open(db_path, key_file=new) as store:
        np.testing.assert_array_equal(store.templates("e1"), PLAIN[None, :])
    # The key in use again, then a loose one: one line each, exit 1, nothing changed.
    again = CliRunner().invoke(
        main, ["kiosk", "rotate-key", "--key-file", str(new), "--new-key-file", str(new)], env=env
    )
    assert again.exit_code == 1 and "is the key in use" in again.output
    loose = tmp_path / "loose.key"
    new_key_file(loose)
    loose.chmod(0o644)
    refused = CliRunner().invoke(
        main, ["kiosk", "rotate-key", "--key-file", str(new), "--new-key-file", str(loose)], env=env
    )
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and refused.output.startswith("Error: ")
    assert "readable by others" in refused.output


def test_central_rotate_key_command(tmp_path: Path) -> None:
    database = tmp_path / "central.db"
    old = new_key_file(tmp_path / "old.key")
    with CentralStore.open(database, actor="a", key_file=old.path) as store:
        store.enroll("p1", "Ada", None, PLAIN)
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\ntemplate_key_file = "{old.path}"\n', encoding="utf-8")
    new = tmp_path / "new.key"
    args = ["central", "rotate-key", "--config", str(config), "--database", str(database)]
    result = CliRunner().invoke(main, [*args, "--new-key-file", str(new)])
    assert result.exit_code == 0, result.output
    assert f"the old key file {old.path} opens nothing any more" in result.output
    assert f"from now on give the new key file {new}" in result.output
    with CentralStore.open(database, actor="a", key_file=new) as store:
        np.testing.assert_array_equal(store.templates("p1"), PLAIN[None, :])
    # The config still names the old key: templates there are refused, one line.
    wrong = CliRunner().invoke(main, [*args, "--new-key-file", str(tmp_path / "third.key")])
    assert wrong.exit_code == 1
    assert wrong.output.startswith("Error: the template key does not open")


def test_kiosk_run_takes_the_key_from_the_config_file(db_path: Path, tmp_path: Path) -> None:
    """`template_key_file` in kiosk.toml reaches the store `kiosk run` opens: the right
    key loads the gallery; another key stops the kiosk with one line before any frame."""
    key = tmp_path / "template-key"
    new_key_file(key)
    with KioskStore.open(db_path, key_file=key) as store:
        store.add_person("e1", "Ada")
        store.add_templates("e1", PLAIN)
    assert not Path(f"{db_path}.key").exists()  # never the default beside the database
    blank = write_video(tmp_path / "blank.avi", frames=5)
    for key_file, ok in ((key, True), (tmp_path / "other.key", False)):
        if not ok:
            new_key_file(key_file)
        config = tmp_path / f"kiosk-{ok}.toml"
        config.write_text(
            f'[kiosk]\ndatabase = "{db_path}"\ntemplate_key_file = "{key_file}"\n',
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            main, ["kiosk", "run", "--config", str(config), "--source", str(blank)]
        )
        if ok:
            assert result.exit_code == 0, result.output
            assert result.stdout.startswith("5 frames, 0 events")
        else:
            assert result.exit_code == 1
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("Error: the template key does not open"), line
    assert not Path(f"{db_path}.key").exists()
