"""Roster files: the whole roster, templates included, exported to and imported from a file.

Roster files move the roster between machines (a kiosk database, the central database,
the central service through its admin API: any :class:`~enrollment.target.EnrollmentRoster`):
JSON, templates as base64 of little-endian float32, written atomically, readable by the
owner only. They hold biometric templates: keep them like the database. Consent records
are not in them: they stay with the central service.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from clockface.consent import BasisFor
from clockface.errors import EnrollmentError, InputFileError, RosterFileError, RosterRuleError
from clockface.files import read_bytes
from clockface.roster import NewPerson, check_template_count, check_templates
from enrollment.enroll import _os_reason, _team, check_id, check_name
from enrollment.target import EnrollmentRoster, whole_roster
from recognition.gallery import EMBEDDING_DIM

ROSTER_FORMAT = "clockface-roster"
ROSTER_VERSION = 1
MAX_ROSTER_BYTES = 1024**3
_TEMPLATE_BYTES = EMBEDDING_DIM * 4
_PERSON_KEYS = frozenset({"id", "name", "team", "active", "templates"})


@dataclass(frozen=True, slots=True)
class RosterImport:
    """What an import of a roster file did, by person id."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    skipped: tuple[str, ...]
    templates: int


def roster_document(store: EnrollmentRoster) -> dict[str, Any]:
    """The whole roster (people, deactivated included, and their templates) as JSON data."""
    people = []
    for entry in whole_roster(store):
        templates = entry.templates.astype("<f4")
        people.append(
            {
                "id": entry.person_id,
                "name": entry.name,
                "team": entry.team,
                "active": entry.active,
                "templates": [base64.b64encode(row.tobytes()).decode("ascii") for row in templates],
            }
        )
    return {
        "format": ROSTER_FORMAT,
        "version": ROSTER_VERSION,
        "exported_utc": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "templates": "base64 of 128 little-endian float32 each",
        "people": people,
    }


def export_roster(
    store: EnrollmentRoster,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    before_writing: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Write the roster to ``path`` atomically, owner-only; returns (people, templates).

    Refuses an existing file unless ``force``. The file holds biometric templates:
    ``before_writing(people, templates)`` is called once the file is known to be
    writable and before it is written (the audit entry), so a refusal leaves none.
    """
    target = Path(path)
    _refuse(target, force=force, what="roster file")
    document = roster_document(store)
    data = (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    people = len(document["people"])
    templates = sum(len(p["templates"]) for p in document["people"])
    if before_writing is not None:
        before_writing(people, templates)
    write_atomically(target, data, force=force, what="roster file")
    return people, templates


def _refuse(path: Path, *, force: bool, what: str) -> None:
    """RosterFileError for a folder, or an existing file without ``force``."""
    label = f"{what} {os.fsdecode(path)!r}"
    if path.is_dir():
        raise RosterFileError(f"cannot write {label}: it is a folder; give a file name")
    if not force and os.path.lexists(path):
        raise RosterFileError(
            f"{label} already exists: choose another name, or use --force to replace it"
        )


def write_atomically(path: Path, data: bytes, *, force: bool, what: str = "file") -> None:
    """Write ``data`` to a new file beside ``path`` (mode 0600), then rename it over ``path``.

    A crash leaves the old file or the new one, never half of either. Refuses an existing
    ``path`` unless ``force``. Raises RosterFileError.
    """
    label = f"{what} {os.fsdecode(path)!r}"
    _refuse(path, force=force, what=what)
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise RosterFileError(f"cannot write {label}: {_os_reason(err)}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise RosterFileError(f"cannot write {label}: {_os_reason(err)}") from err
        raise
    with suppress(OSError):  # make the rename itself durable, where the system allows
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_roster(path: str | os.PathLike[str]) -> list[NewPerson]:
    """The people of a roster file, every field checked. Raises RosterFileError."""
    try:
        data = read_bytes(path, max_bytes=MAX_ROSTER_BYTES, what="roster file")
    except InputFileError as err:
        raise RosterFileError(f"{err}; nothing was imported") from None
    return parse_roster(data, f"roster file {os.fsdecode(path)!r}")


def parse_roster(data: bytes, label: str = "the roster file") -> list[NewPerson]:
    """The people of a roster file's bytes, every field checked. Raises RosterFileError."""

    def bad(why: str) -> RosterFileError:
        return RosterFileError(f"{label} {why}; nothing was imported")

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not allowed")

    try:
        document = json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError:
        raise bad("is not UTF-8 text: not a clockface roster file") from None
    except json.JSONDecodeError as err:
        raise bad(f"is not JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except (ValueError, RecursionError) as err:
        raise bad(f"is not valid JSON ({err})") from None
    if not isinstance(document, dict) or document.get("format") != ROSTER_FORMAT:
        raise bad(f'is not a clockface roster file (no "format": "{ROSTER_FORMAT}")')
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad("has no format version")
    if version != ROSTER_VERSION:
        raise bad(
            f"is format version {version}, this clockface reads version {ROSTER_VERSION}: "
            + ("upgrade clockface" if version > ROSTER_VERSION else "export it again")
        )
    records = document.get("people")
    if not isinstance(records, list):
        raise bad('has no "people" list')
    people: list[NewPerson] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"people[{i}]"
        if not isinstance(record, dict):
            raise bad(f"{where} is not an object")
        missing = sorted(_PERSON_KEYS - set(record))
        extra = sorted(set(record) - _PERSON_KEYS)
        if missing or extra:
            which = f"lacks {missing[0]!r}" if missing else f"has an unknown key {extra[0]!r}"
            raise bad(f"{where} {which}")
        try:
            pid = check_id(record["id"], "its id")
            where = f"person {pid!r}"
            name = check_name(record["name"], "its name")
            team = _team(record["team"])
        except EnrollmentError as err:
            raise bad(f"{where}: {err}") from None
        if pid in seen:
            raise bad(f"holds {pid!r} twice")
        seen.add(pid)
        if not isinstance(record["active"], bool):
            raise bad(f"{where}: active must be true or false")
        templates = record["templates"]
        if not isinstance(templates, list):
            raise bad(f"{where}: templates must be a list")
        rows = np.empty((len(templates), EMBEDDING_DIM), dtype=np.float32)
        for j, text in enumerate(templates):
            try:
                raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != _TEMPLATE_BYTES:
                raise bad(f"{where}: template {j + 1} is not base64 of {_TEMPLATE_BYTES} bytes")
            rows[j] = np.frombuffer(raw, dtype="<f4")
        try:
            rows = check_templates(rows, allow_none=True)
            check_template_count(pid, len(rows))
        except RosterRuleError as err:
            raise bad(f"{where}: {err}") from None
        people.append(NewPerson(pid, name, team, rows, active=record["active"]))
    return people


def import_roster(
    store: EnrollmentRoster,
    people: Sequence[NewPerson],
    *,
    replace: bool = False,
    consent_for: BasisFor | None = None,
) -> RosterImport:
    """Add the people of a roster file in one transaction: all of them or none (over the
    admin API, one request, unless larger than the service's body limit: see
    :class:`central.admin_client.AdminClient`).

    People whose id the roster already holds are skipped, or with ``replace`` erased and
    added anew from the file. Templates are taken as they are: no quality or duplicate
    face check (run :func:`~enrollment.lookalikes.look_alikes` afterwards).
    ``consent_for``: each person's consent record (or other legal basis), stored with
    them.
    """
    held = {p.person_id for p in store.people()}
    existing = [p.person_id for p in people if p.person_id in held]
    write = list(people) if replace else [p for p in people if p.person_id not in held]
    given = {p.person_id: consent_for(p.person_id) for p in write} if consent_for else {}
    store.enroll_many(write, replace=replace, consents=given or None)
    return RosterImport(
        added=tuple(p.person_id for p in write if p.person_id not in held),
        replaced=tuple(existing) if replace else (),
        skipped=() if replace else tuple(existing),
        templates=sum(len(np.asarray(p.embeddings)) for p in write),
    )
