"""Bulk import: people and their photos from a folder, one sub-folder per person.

Every person goes through the :class:`~enrollment.enroll.Enroller`, all or nothing.
Bulk imports are made idempotent by skipping people already enrolled (photos are not
kept, so there is nothing to compare new photos with).
"""

from __future__ import annotations

import csv
import io
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clockface.consent import BasisFor
from clockface.errors import EnrollmentError, ImportFolderError, InputFileError
from clockface.files import read_bytes
from enrollment.enroll import (
    Enroller,
    Outcome,
    PhotoInput,
    Progress,
    _os_reason,
    check_id,
    check_name,
)

ConsentFor = BasisFor
"""The consent record (or other legal basis) to store with a person, by person id."""

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
"""File endings a bulk import takes as photos (case-insensitive)."""

MANIFEST = "manifest.csv"
PERSON_FILE = "person.toml"
MANIFEST_COLUMNS = ("id", "name", "team", "photo")


@dataclass(frozen=True, slots=True)
class PlannedPerson:
    """One person of an import folder: who, and which photo files."""

    person_id: str
    name: str
    team: str | None
    photos: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    folder: Path
    people: tuple[PlannedPerson, ...]
    notes: tuple[str, ...] = ()

    @property
    def photo_count(self) -> int:
        return sum(len(p.photos) for p in self.people)


@dataclass(slots=True)
class ImportReport:
    """What a bulk import did: enrolled, refused (nothing written) and skipped people."""

    enrolled: list[Outcome] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_photos(self) -> int:
        return sum(len(o.rejected) for o in (*self.enrolled, *self.refused))

    @property
    def ok(self) -> bool:
        """Every person enrolled or skipped, and every photo used."""
        return not self.refused and self.rejected_photos == 0


def plan_import(folder: str | os.PathLike[str]) -> ImportPlan:
    """Who and which photos an import folder holds; reads no photo.

    One sub-folder per person, named by the employee id, holding their photos (files
    ending in .jpg, .jpeg, .png, .webp, .gif, .bmp, .tif or .tiff) and optionally a
    ``person.toml`` with ``name = "..."`` and ``team = "..."``. A ``manifest.csv`` at the
    top (columns id, name, team, photo; only id is required) may give names and teams
    instead, and list photos by their path from the folder. Without a name, the id is the
    name. Raises ImportFolderError for an unusable folder, manifest or person.toml.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "no such folder" if not root.exists() else "not a folder"
        raise ImportFolderError(f"cannot import {os.fsdecode(folder)!r}: {what}")
    notes: list[str] = []
    names: dict[str, str] = {}
    teams: dict[str, str | None] = {}
    photos: dict[str, list[Path]] = {}
    name_from: dict[str, str] = {}  # where each name and team came from, for messages
    team_from: dict[str, str] = {}
    manifest = root / MANIFEST
    if manifest.is_file():
        for pid, name, team, photo in _read_manifest(manifest):
            photos.setdefault(pid, [])
            if photo:
                photos[pid].append(root / photo)
            where = f"{MANIFEST} ({pid})"
            if name:
                _set_once(names, name_from, pid, name, where, "name")
            if team:
                _set_once(teams, team_from, pid, team, where, "team")
    for entry in _list(root):
        if entry.name.startswith(".") or entry.name == MANIFEST:
            continue
        if not entry.is_dir():
            notes.append(f"ignored {entry.name}: not in a person's folder")
            continue
        pid = _folder_id(entry)
        listed = photos.setdefault(pid, [])
        for item in _list(entry):
            if item.name.startswith(".") or item.name == PERSON_FILE:
                continue
            if item.is_file() and item.suffix.lower() in PHOTO_SUFFIXES:
                listed.append(item)
            else:
                notes.append(f"ignored {entry.name}/{item.name}: not a photo")
        toml = entry / PERSON_FILE
        if toml.is_file():
            toml_name, toml_team = _read_person_file(toml)
            where = f"{entry.name}/{PERSON_FILE}"
            if toml_name is not None:
                _set_once(names, name_from, pid, toml_name, where, "name")
            if toml_team is not None:
                _set_once(teams, team_from, pid, toml_team, where, "team")
    people = []
    for pid in sorted(photos):
        unique = list(dict.fromkeys(p.resolve() for p in photos[pid]))
        shown = {p.resolve(): p for p in photos[pid]}
        people.append(
            PlannedPerson(
                pid,
                names.get(pid, pid),
                teams.get(pid),
                tuple(shown[p] for p in unique),
            )
        )
    return ImportPlan(root, tuple(people), tuple(notes))


def _folder_id(entry: Path) -> str:
    try:
        return check_id(entry.name, "a person id (folder name)")
    except EnrollmentError as err:
        raise ImportFolderError(str(err)) from None


def _list(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as err:
        raise ImportFolderError(
            f"cannot list the folder {os.fsdecode(folder)!r}: {_os_reason(err)}"
        ) from err


def _set_once(
    values: dict[str, Any], sources: dict[str, str], pid: str, value: str, where: str, what: str
) -> None:
    old = values.get(pid)
    if old is not None and old != value:
        raise ImportFolderError(
            f"two {what}s for {pid}: {old!r} in {sources[pid]} and {value!r} in {where}; keep one"
        )
    values[pid] = value
    sources.setdefault(pid, where)


def _read_manifest(path: Path) -> list[tuple[str, str, str, str]]:
    """The manifest's rows as (id, name, team, photo), checked; "" where blank."""
    try:
        text = read_bytes(path, max_bytes=64 * 1024**2, what="manifest").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFolderError(f"{MANIFEST} is not UTF-8 text: save it as CSV UTF-8") from None
    except InputFileError as err:
        raise ImportFolderError(str(err)) from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [(column or "").strip().lower() for column in reader.fieldnames or []]
        if "id" not in header:
            raise ImportFolderError(
                f"{MANIFEST} needs a header row with an id column (columns: "
                f"{', '.join(MANIFEST_COLUMNS)}); found {', '.join(header) or 'nothing'}"
            )
        unknown = [c for c in header if c not in MANIFEST_COLUMNS]
        if unknown:
            raise ImportFolderError(
                f"{MANIFEST}: unknown column {unknown[0]!r} (columns: "
                f"{', '.join(MANIFEST_COLUMNS)})"
            )
        reader.fieldnames = header
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ImportFolderError(f"{MANIFEST} line {line}: more fields than columns")
            values = {k: (v or "").strip() for k, v in row.items()}
            if not any(values.values()):
                continue
            try:
                pid = check_id(values.get("id", ""), "the id")
                name, team = values.get("name", ""), values.get("team", "")
                if name:
                    check_name(name, "the name")
                if team:
                    check_name(team, "the team")
            except EnrollmentError as err:
                raise ImportFolderError(f"{MANIFEST} line {line}: {err}") from None
            rows.append((pid, name, team, values.get("photo", "")))
    except csv.Error as err:
        raise ImportFolderError(f"{MANIFEST} is not valid CSV: {err}") from None
    return rows


def _read_person_file(path: Path) -> tuple[str | None, str | None]:
    where = f"{path.parent.name}/{PERSON_FILE}"
    try:
        data = tomllib.loads(read_bytes(path, max_bytes=64 * 1024, what=where).decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ImportFolderError(f"{where} is not valid TOML: {err}") from None
    except InputFileError as err:
        raise ImportFolderError(str(err)) from None
    unknown = sorted(set(data) - {"name", "team"})
    if unknown:
        raise ImportFolderError(f"{where}: unknown key {unknown[0]!r} (keys: name, team)")
    found: list[str | None] = []
    for key in ("name", "team"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ImportFolderError(f"{where}: {key} must be text in quotes, not {value!r}")
        try:
            found.append(None if value is None else check_name(value, f"the {key}"))
        except EnrollmentError as err:
            raise ImportFolderError(f"{where}: {err}") from None
    return found[0], found[1]


def import_folder(
    enroller: Enroller,
    plan: ImportPlan,
    *,
    skip_bad: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    consent_for: ConsentFor | None = None,
) -> ImportReport:
    """Enroll every person of the plan not enrolled yet, each all or nothing.

    People already in the roster are skipped without reading their photos, so running
    an import again enrolls only those refused before (once their photos are fixed).
    ``consent_for`` gives each person's consent record or other legal basis.
    """
    report = ImportReport(notes=list(plan.notes))
    known = enroller.known_ids()
    for planned in plan.people:
        pid = planned.person_id
        if pid in known:
            report.skipped.append(pid)
            if progress is not None:
                progress(len(planned.photos))
            continue
        labelled: list[PhotoInput] = [(_label(plan.folder, p), p) for p in planned.photos]
        accepted, rejected = enroller.read_photos(labelled, progress)
        if not labelled:
            outcome = Outcome(pid, (), refusal=f"nothing enrolled for {pid}: no photos")
        else:
            outcome = enroller.enroll_templates(
                pid,
                planned.name,
                planned.team,
                accepted,
                rejected,
                skip_bad=skip_bad,
                force=force,
                consent=None if consent_for is None else consent_for(pid),
            )
        if outcome.enrolled:
            report.enrolled.append(outcome)
            known.add(pid)
        else:
            report.refused.append(outcome)
    return report


def _label(folder: Path, path: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return os.fsdecode(path)
