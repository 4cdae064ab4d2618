"""Enrollment: people and their face templates into the kiosk roster, from photos or a camera.

The library behind ``clockface enroll``; the CLI parses and prints, everything else is
here, over a :class:`~kiosk.store.KioskStore` and a :class:`~recognition.faces.FaceModels`.

- **Quality gates.** Every photo (or camera frame) goes through
  :func:`recognition.quality.assess`; a rejected photo comes back as a
  :class:`Rejection` whose reason says what is wrong and what to do.
- **All or nothing per person.** Every photo is read, checked and encoded first; only
  then is anything written, in one transaction (``KioskStore.enroll`` /
  ``add_templates``). A person is enrolled only if every photo passed (or, with
  ``skip_bad``, at least one did), so nobody is left with no templates or with a photo
  the admin did not mean to drop.
- **Duplicate faces.** A new face at most the gallery threshold (0.52) from an already
  enrolled *other* person (active or not) is refused, naming them and the distance,
  unless ``force`` (twins, siblings): the kiosk could log one as the other.
- **Same person.** A 1:1 question, so dlib's customary verification threshold 0.6 (the
  shared photos: same person up to 0.519, different people from 0.658): a new
  person's photos must each be within 0.6 of another of their photos, and photos added
  to someone enrolled within 0.6 of one of their templates; otherwise the photo is
  probably of someone else, refused unless ``force``.
- **Photos are never kept.** Nothing is written but the database: templates, not
  photos. Bulk imports are made idempotent by skipping people already enrolled (photos
  are not kept, so there is nothing to compare new photos with).
- **Roster files** move the roster between machines: JSON, templates as base64 of
  little-endian float32, written atomically, readable by the owner only. They hold
  biometric templates: keep them like the database.
- **Look-alikes.** :func:`look_alikes` finds pairs of different people whose closest
  templates are within threshold + margin, with one float32 distance matrix per chunk.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
import tempfile
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clockface.errors import (
    EnrollmentError,
    ImageError,
    ImportFolderError,
    InputFileError,
    PhotoRejectedError,
    RosterFileError,
)
from clockface.files import read_bytes, read_image
from hardware.sources import FrameSource, frames
from kiosk.store import KioskStore, NewPerson, Person
from recognition.faces import FaceModels, RGBImage
from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD, EMBEDDING_DIM, Gallery
from recognition.identify import enrollment_template
from recognition.images import decode_image
from recognition.quality import DEFAULT_LIMITS, QualityLimits, Reason, assess

FloatArray = npt.NDArray[np.float32]
PhotoInput = str | os.PathLike[str] | tuple[str, RGBImage | bytes]
"""A photo: a file path, or ``(label, image)`` with an RGB array or the file's bytes."""
Progress = Callable[[int], None]
"""Called with how many more photos (or frames) have been dealt with."""

SAME_PERSON_THRESHOLD = 0.6
"""Largest distance between two photos taken as one person (a 1:1 question: dlib's 0.6)."""

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
"""File endings a bulk import takes as photos (case-insensitive)."""

MANIFEST = "manifest.csv"
PERSON_FILE = "person.toml"
MANIFEST_COLUMNS = ("id", "name", "team", "photo")

ROSTER_FORMAT = "clockface-roster"
ROSTER_VERSION = 1
MAX_ROSTER_BYTES = 1024**3
_TEMPLATE_BYTES = EMBEDDING_DIM * 4
_PERSON_KEYS = frozenset({"id", "name", "team", "active", "templates"})

REASON_WORDS: dict[Reason, str] = {
    Reason.NO_FACE: "no face",
    Reason.SEVERAL_FACES: "several faces",
    Reason.FACE_TOO_SMALL: "face too small",
    Reason.TOO_BLURRY: "blurry",
    Reason.NOT_FRONTAL: "turned away",
    Reason.TILTED: "tilted",
}


# --------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A face template made from one photo or frame; ``source`` names it for people."""

    source: str
    embedding: FloatArray


@dataclass(frozen=True, slots=True)
class Rejection:
    """A photo that cannot be used, and why (one line, with what to do)."""

    source: str
    reason: str
    unreadable: bool = False

    def __str__(self) -> str:
        # A read error's message names the file already.
        return self.reason if self.unreadable else f"{self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A new face as close as ``distance`` to someone else already enrolled."""

    source: str
    other_id: str
    other_name: str
    distance: float

    def __str__(self) -> str:
        return (
            f"{self.source} looks like {self.other_id} ({self.other_name}), already enrolled "
            f"(distance {self.distance:.3f})"
        )


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A photo that does not look like the rest of the person's photos or templates."""

    source: str
    distance: float
    against: str
    limit: float = SAME_PERSON_THRESHOLD

    def __str__(self) -> str:
        return (
            f"{self.source} does not look like {self.against} (nearest at "
            f"{self.distance:.3f}, at most {self.limit:g} for one person)"
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one person's enrollment.

    ``refusal`` is None when the templates were written (``person`` is then the person
    as stored), or the one-line reason nothing was written. ``conflicts`` and
    ``mismatches`` were overridden when ``forced``.
    """

    person_id: str
    templates: tuple[Template, ...]
    rejected: tuple[Rejection, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    forced: bool = False
    refusal: str | None = None
    person: Person | None = None

    @property
    def enrolled(self) -> bool:
        return self.refusal is None

    def raise_if_refused(self) -> None:
        """Raise EnrollmentError with the refusal, if nothing was written."""
        if self.refusal is not None:
            raise EnrollmentError(self.refusal)


# --------------------------------------------------------------------- checks
def check_id(value: object, what: str = "a person id") -> str:
    """An id (or name, or team) as the roster takes it: printable, no spaces around."""
    if not isinstance(value, str) or not value.strip():
        raise EnrollmentError(f"{what} must not be empty")
    if value != value.strip():
        raise EnrollmentError(f"{what} must not start or end with spaces: {value!r}")
    if not value.isprintable():
        raise EnrollmentError(f"{what} must hold printable characters only: {value!r}")
    return value


def _team(value: object) -> str | None:
    return None if value is None or value == "" else check_id(value, "a team")


def _distances(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """Euclidean distances between the rows of ``a`` and of ``b``, in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    d2 = (a64 * a64).sum(1)[:, None] + (b64 * b64).sum(1)[None, :] - 2.0 * (a64 @ b64.T)
    out: npt.NDArray[np.float64] = np.sqrt(np.maximum(d2, 0.0))
    return out


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


# --------------------------------------------------------------------- the enroller
class Enroller:
    """Enrolls people into ``store`` with ``models``, keeping a gallery for the checks.

    ``threshold``: faces at most this far from another enrolled person are duplicates.
    ``same_person``: the largest distance between two photos of one person.
    ``models`` may be None for work that needs no faces (the gallery checks only).
    """

    def __init__(
        self,
        store: KioskStore,
        models: FaceModels | None,
        *,
        limits: QualityLimits = DEFAULT_LIMITS,
        threshold: float = DEFAULT_THRESHOLD,
        same_person: float = SAME_PERSON_THRESHOLD,
    ) -> None:
        self.store = store
        self.models = models
        self.limits = limits
        self.threshold = threshold
        self.same_person = same_person
        self._gallery: Gallery | None = None
        self._names: dict[str, str] = {}

    # ------------------------------------------------------------ photos
    def read_photos(
        self, photos: Sequence[PhotoInput], progress: Progress | None = None
    ) -> tuple[list[Template], list[Rejection]]:
        """A template from each usable photo, and a rejection for each other one."""
        accepted: list[Template] = []
        rejected: list[Rejection] = []
        for photo in photos:
            if isinstance(photo, tuple):
                found = self.template(*photo)
            else:
                found = self.template(os.fsdecode(photo), photo)
            if isinstance(found, Template):
                accepted.append(found)
            else:
                rejected.append(found)
            if progress is not None:
                progress(1)
        return accepted, rejected

    def template(
        self, label: str, content: str | os.PathLike[str] | RGBImage | bytes
    ) -> Template | Rejection:
        """The template of one photo (a path, an RGB array or a file's bytes), or why not."""
        models = self._models()
        try:
            if isinstance(content, np.ndarray):
                image = content
            elif isinstance(content, bytes):
                image = decode_image(content, subject=f"photo {label!r}")
            else:
                image = read_image(content)
        except (InputFileError, ImageError) as err:
            return Rejection(label, str(err), unreadable=True)
        try:
            embedding, _ = enrollment_template(models, image, self.limits)
        except PhotoRejectedError as err:
            return Rejection(label, str(err))
        except ImageError as err:  # an array that is not an RGB image
            return Rejection(label, str(err), unreadable=True)
        return Template(label, embedding)

    def _models(self) -> FaceModels:
        if self.models is None:
            raise EnrollmentError("face models are needed to read photos: give models=")
        return self.models

    # ------------------------------------------------------------ enrolling
    def add_person(
        self,
        person_id: str,
        name: str,
        team: str | None,
        photos: Sequence[PhotoInput],
        *,
        skip_bad: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> Outcome:
        """Enroll someone new from photos, one template per good photo.

        Raises EnrollmentError for a bad id or name, or an id already enrolled, before
        any photo is read. A refused enrollment (rejected photos without ``skip_bad``,
        a duplicate face or a photo of someone else without ``force``) writes nothing
        and comes back with its ``refusal``.
        """
        self.check_new(person_id, name, team)
        if not photos:
            raise EnrollmentError(f"no photos given for {person_id}")
        accepted, rejected = self.read_photos(photos, progress)
        return self.enroll_templates(
            person_id, name, team, accepted, rejected, skip_bad=skip_bad, force=force
        )

    def check_new(self, person_id: str, name: str, team: str | None) -> None:
        """Refuse a bad id, name or team, or an id the roster already holds."""
        pid = check_id(person_id)
        check_id(name, "a name")
        _team(team)
        if pid in self.known_ids():
            person = self.store.get_person(pid)
            raise EnrollmentError(
                f"{pid} is already enrolled ({person.name}, "
                f"{_plural(person.template_count, 'template')}): add photos to them with "
                f"add-photos, or choose another id"
            )

    def enroll_templates(
        self,
        person_id: str,
        name: str,
        team: str | None,
        accepted: Sequence[Template],
        rejected: Sequence[Rejection] = (),
        *,
        skip_bad: bool = False,
        force: bool = False,
    ) -> Outcome:
        """Enroll someone new from templates already made (photos, camera frames)."""
        self.check_new(person_id, name, team)
        outcome = self._judge(person_id, accepted, rejected, skip_bad=skip_bad, force=force)
        if not outcome.enrolled:
            return outcome
        person = self.store.enroll(
            person_id, name, _team(team), np.stack([t.embedding for t in accepted])
        )
        self._remember(person, accepted)
        return replace(outcome, person=person)

    def add_photos(
        self,
        person_id: str,
        photos: Sequence[PhotoInput],
        *,
        skip_bad: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> Outcome:
        """Add templates to someone already enrolled; the photos must look like them."""
        person = self.store.get_person(check_id(person_id))
        if not photos:
            raise EnrollmentError(f"no photos given for {person_id}")
        accepted, rejected = self.read_photos(photos, progress)
        outcome = self._judge(person.person_id, accepted, rejected, skip_bad=skip_bad, force=force)
        if not outcome.enrolled:
            return outcome
        self.store.add_templates(person.person_id, np.stack([t.embedding for t in accepted]))
        person = self.store.get_person(person.person_id)
        self._remember(person, accepted)
        return replace(outcome, person=person)

    def _judge(
        self,
        person_id: str,
        accepted: Sequence[Template],
        rejected: Sequence[Rejection],
        *,
        skip_bad: bool,
        force: bool,
    ) -> Outcome:
        """Every check on one person's new templates, and the refusal if there is one."""
        conflicts = self.conflicts(person_id, accepted)
        mismatches = self.mismatches(person_id, accepted)
        outcome = Outcome(
            person_id,
            tuple(accepted),
            tuple(rejected),
            tuple(conflicts),
            tuple(mismatches),
            forced=force and bool(conflicts or mismatches),
        )
        total = len(accepted) + len(rejected)
        refusal = None
        if not accepted:
            refusal = (
                f"nothing enrolled for {person_id}: {rejected[0]}"
                if len(rejected) == 1
                else f"nothing enrolled for {person_id}: all {total} photos were rejected"
            )
        elif rejected and not skip_bad:
            refusal = (
                f"nothing enrolled for {person_id}: {len(rejected)} of {total} photos "
                f"rejected; replace or drop them, or use --skip-bad to enroll from the "
                f"{_plural(len(accepted), 'good one')}"
            )
        elif conflicts and not force:
            first = conflicts[0]
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            refusal = (
                f"nothing enrolled for {person_id}: {first}{more}, within the "
                f"{self.threshold:.2f} threshold; if they really are different people "
                "(twins, siblings), use --force"
            )
        elif mismatches and not force:
            first_m = mismatches[0]
            more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
            refusal = (
                f"nothing enrolled for {person_id}: {first_m}{more}: a photo of someone "
                "else? Check it, or use --force"
            )
        return replace(outcome, refusal=refusal)

    def conflicts(self, person_id: str, templates: Sequence[Template]) -> list[Conflict]:
        """New faces at most ``threshold`` from an enrolled person other than ``person_id``."""
        gallery = self.gallery()
        if not templates:
            return []
        own = gallery.templates_of(person_id) if person_id in gallery else None
        if own is not None:
            gallery.remove(person_id)
        try:
            if len(gallery) == 0:
                return []
            matches = gallery.match(np.stack([t.embedding for t in templates]))
        finally:
            if own is not None:
                gallery.add(person_id, own)
        found = []
        for template, match in zip(templates, matches, strict=True):
            if match.nearest_id is not None and match.distance <= self.threshold:
                other = match.nearest_id
                found.append(Conflict(template.source, other, self._name(other), match.distance))
        return found

    def mismatches(self, person_id: str, templates: Sequence[Template]) -> list[Mismatch]:
        """New photos farther than ``same_person`` from the person's other photos.

        For someone enrolled: from all of their templates. For someone new: from every
        other of their new photos (so a single photo is never a mismatch).
        """
        if not templates:
            return []
        new = np.stack([t.embedding for t in templates])
        gallery = self.gallery()
        if person_id in gallery and gallery.template_count(person_id):
            nearest = _distances(new, gallery.templates_of(person_id)).min(axis=1)
            against = f"{person_id}'s enrolled face"
        else:
            if len(templates) < 2:
                return []
            d = _distances(new, new)
            np.fill_diagonal(d, np.inf)
            nearest = d.min(axis=1)
            against = "the other photos"
        return [
            Mismatch(t.source, float(distance), against, self.same_person)
            for t, distance in zip(templates, nearest.tolist(), strict=True)
            if distance > self.same_person
        ]

    # ------------------------------------------------------------ the gallery
    def gallery(self) -> Gallery:
        """Every enrolled person's templates, deactivated people included (built once)."""
        if self._gallery is None:
            gallery = self.store.load_gallery(threshold=self.threshold, margin=DEFAULT_MARGIN)
            for person in self.store.people():
                self._names[person.person_id] = person.name
                if not person.active and person.template_count:
                    gallery.add(person.person_id, self.store.templates(person.person_id))
            self._gallery = gallery
        return self._gallery

    def known_ids(self) -> set[str]:
        self.gallery()
        return set(self._names)

    def _name(self, person_id: str) -> str:
        return self._names.get(person_id, person_id)

    def _remember(self, person: Person, templates: Sequence[Template]) -> None:
        self._names[person.person_id] = person.name
        if self._gallery is not None and templates:
            self._gallery.add(person.person_id, np.stack([t.embedding for t in templates]))

    # ------------------------------------------------------------ the camera
    def capture(
        self,
        source: FrameSource,
        *,
        max_frames: int = 150,
        every: int = 3,
        keep: int = 5,
        spacing: int = 15,
        progress: Progress | None = None,
    ) -> Capture:
        """Guided capture: the best few good frames of one person from a camera.

        Reads up to ``max_frames`` frames and puts every ``every``-th through the quality
        gates. Of the frames that pass, keeps up to ``keep``, sharpest and most frontal
        first, at least ``spacing`` frames apart, all within ``same_person`` of the best
        one (a frame of someone else walking past is left out).
        """
        if max_frames < 1 or every < 1 or keep < 1 or spacing < 0:
            raise ValueError("max_frames, every and keep must be at least 1, spacing 0 or more")
        models = self._models()
        candidates: list[tuple[float, int, FloatArray]] = []
        rejected: Counter[Reason] = Counter()
        read = analysed = 0
        for frame in frames(source, max_frames=max_frames):
            read += 1
            if progress is not None:
                progress(1)
            if frame.index % every:
                continue
            analysed += 1
            report = assess(models, frame.image, self.limits)
            if not report.ok or report.face is None:
                rejected.update(report.reasons)
                continue
            face = report.face
            score = face.sharpness * max(0.0, 1.0 - abs(face.yaw) / self.limits.max_yaw)
            (embedding,) = models.encode(frame.image, [face.box])
            candidates.append((score, frame.index, embedding))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        chosen: list[tuple[float, int, FloatArray]] = []
        other_person = 0
        if candidates:
            best = candidates[0][2]
            embeddings = np.stack([c[2] for c in candidates])
            near = _distances(embeddings, best[None, :])[:, 0] <= self.same_person
            other_person = int(np.count_nonzero(~near))
            for candidate, ok in zip(candidates, near.tolist(), strict=True):
                if len(chosen) == keep:
                    break
                if ok and all(abs(candidate[1] - c[1]) >= spacing for c in chosen):
                    chosen.append(candidate)
        chosen.sort(key=lambda c: c[1])
        return Capture(
            source=source.name,
            frames_read=read,
            analysed=analysed,
            good=len(candidates),
            rejected=dict(rejected),
            other_person=other_person,
            templates=tuple(Template(f"frame {index}", emb) for _, index, emb in chosen),
        )


@dataclass(frozen=True, slots=True)
class Capture:
    """What a guided capture saw and kept.

    ``rejected`` counts the analysed frames that missed each gate (a frame may miss
    several); ``other_person`` counts good frames left out as unlike the best one.
    """

    source: str
    frames_read: int
    analysed: int
    good: int
    rejected: dict[Reason, int]
    other_person: int
    templates: tuple[Template, ...]

    def describe_rejected(self) -> str:
        """``no face 21, blurry 4`` (most frequent first), or ``none``."""
        if not self.rejected:
            return "none"
        ordered = sorted(self.rejected.items(), key=lambda item: (-item[1], item[0].value))
        return ", ".join(f"{REASON_WORDS[reason]} {count}" for reason, count in ordered)


# --------------------------------------------------------------------- bulk import
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
                    check_id(name, "the name")
                if team:
                    check_id(team, "the team")
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
            found.append(None if value is None else check_id(value, f"the {key}"))
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
) -> ImportReport:
    """Enroll every person of the plan not enrolled yet, each all or nothing.

    People already in the roster are skipped without reading their photos, so running
    an import again enrolls only those refused before (once their photos are fixed).
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
        labelled = [(_label(plan.folder, p), p) for p in planned.photos]
        accepted: list[Template] = []
        rejected: list[Rejection] = []
        for label, path in labelled:
            found = enroller.template(label, path)
            if isinstance(found, Template):
                accepted.append(found)
            else:
                rejected.append(found)
            if progress is not None:
                progress(1)
        if not labelled:
            outcome = Outcome(pid, (), refusal=f"nothing enrolled for {pid}: no photos")
        else:
            outcome = enroller.enroll_templates(
                pid, planned.name, planned.team, accepted, rejected, skip_bad=skip_bad, force=force
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


# --------------------------------------------------------------------- roster files
@dataclass(frozen=True, slots=True)
class RosterImport:
    """What an import of a roster file did, by person id."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    skipped: tuple[str, ...]
    templates: int


def roster_document(store: KioskStore) -> dict[str, Any]:
    """The whole roster (people, deactivated included, and their templates) as JSON data."""
    people = []
    for person in store.people():
        templates = store.templates(person.person_id).astype("<f4")
        people.append(
            {
                "id": person.person_id,
                "name": person.name,
                "team": person.team,
                "active": person.active,
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
    store: KioskStore, path: str | os.PathLike[str], *, force: bool = False
) -> tuple[int, int]:
    """Write the roster to ``path`` atomically, owner-only; returns (people, templates).

    Refuses an existing file unless ``force``. The file holds biometric templates.
    """
    document = roster_document(store)
    data = (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    write_atomically(Path(path), data, force=force, what="roster file")
    return len(document["people"]), sum(len(p["templates"]) for p in document["people"])


def write_atomically(path: Path, data: bytes, *, force: bool, what: str = "file") -> None:
    """Write ``data`` to a new file beside ``path`` (mode 0600), then rename it over ``path``.

    A crash leaves the old file or the new one, never half of either. Refuses an existing
    ``path`` unless ``force``. Raises RosterFileError.
    """
    label = f"{what} {os.fsdecode(path)!r}"
    if path.is_dir():
        raise RosterFileError(f"cannot write {label}: it is a folder; give a file name")
    if not force and os.path.lexists(path):
        raise RosterFileError(
            f"{label} already exists: choose another name, or use --force to replace it"
        )
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


def _os_reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return "its folder does not exist"
    if isinstance(err, PermissionError):
        return "permission denied"
    return " ".join((err.strerror or str(err)).split()).lower()


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
            name = check_id(record["name"], "its name")
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
        if not np.isfinite(rows).all():
            raise bad(f"{where}: a template holds NaN or infinite values")
        people.append(NewPerson(pid, name, team, rows, active=record["active"]))
    return people


def import_roster(
    store: KioskStore, people: Sequence[NewPerson], *, replace: bool = False
) -> RosterImport:
    """Add the people of a roster file in one transaction: all of them or none.

    People whose id the roster already holds are skipped, or with ``replace`` erased and
    added anew from the file. Templates are taken as they are: no quality or duplicate
    face check (run :func:`look_alikes` afterwards).
    """
    held = {p.person_id for p in store.people()}
    existing = [p.person_id for p in people if p.person_id in held]
    write = list(people) if replace else [p for p in people if p.person_id not in held]
    store.enroll_many(write, replace=replace)
    return RosterImport(
        added=tuple(p.person_id for p in write if p.person_id not in held),
        replaced=tuple(existing) if replace else (),
        skipped=() if replace else tuple(existing),
        templates=sum(len(np.asarray(p.embeddings)) for p in write),
    )


# --------------------------------------------------------------------- look-alikes
@dataclass(frozen=True, slots=True)
class LookAlike:
    """Two different people whose closest templates are ``distance`` apart."""

    first: str
    second: str
    distance: float


_CHUNK_SCORES = 4_000_000  # float32 distances per chunk (16 MB)


def look_alikes(gallery: Gallery, within: float) -> list[LookAlike]:
    """Pairs of different people with templates at most ``within`` apart, closest first.

    One float32 distance matrix per chunk of rows (bounded memory; fine for tens of
    thousands of templates), then the candidate pairs' distances again in float64.
    """
    if not (within >= 0 and math.isfinite(within)):
        raise ValueError(f"within must be a finite distance, not {within!r}")
    people = gallery.people
    blocks = [gallery.templates_of(pid) for pid in people]
    counts = [len(b) for b in blocks]
    if len(people) < 2 or sum(counts) == 0:
        return []
    matrix = np.concatenate(blocks).astype(np.float32)
    labels = np.repeat(np.arange(len(people), dtype=np.int64), counts)
    norms = np.einsum("ij,ij->i", matrix, matrix)
    n = len(matrix)
    cutoff = np.float32((within + 1e-3) ** 2)  # float32 slack; decided exactly below
    rows_per_chunk = max(1, _CHUNK_SCORES // n)
    best: dict[int, float] = {}
    exact = matrix.astype(np.float64)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        d2 = norms[start:stop, None] + norms[None, :] - 2.0 * (matrix[start:stop] @ matrix.T)
        mine = labels[start:stop, None]
        hit = (d2 <= cutoff) & (mine < labels[None, :])
        rows, cols = np.nonzero(hit)
        if not len(rows):
            continue
        rows += start
        distance = np.linalg.norm(exact[rows] - exact[cols], axis=1)
        pair = labels[rows] * len(people) + labels[cols]
        for code, d in zip(pair.tolist(), distance.tolist(), strict=True):
            if d <= within and d < best.get(code, math.inf):
                best[code] = d
    found = [
        LookAlike(people[code // len(people)], people[code % len(people)], d)
        for code, d in best.items()
    ]
    return sorted(found, key=lambda pair: (pair.distance, pair.first, pair.second))


def camera_refusal(capture: Capture, person_id: str) -> str:
    """The one line for a capture that kept no frame."""
    return (
        f"nothing enrolled for {person_id}: no usable face in {capture.frames_read} frames "
        f"from {capture.source} ({capture.analysed} analysed; rejected: "
        f"{capture.describe_rejected()}): stand alone about 1 m from the camera, look "
        "straight at it, in good light, and try again"
    )
