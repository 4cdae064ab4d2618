"""Enrollment: people and their face templates into a roster, from photos or a camera.

The library behind ``clockface enroll``; the CLI parses and prints, everything else is
here, over an :class:`~enrollment.target.EnrollmentRoster` (a kiosk database, the central
database, or the central service's admin API) and a
:class:`~recognition.faces.FaceModels`, and in :mod:`enrollment.folder_import` (bulk
imports), :mod:`enrollment.roster_file` (roster files) and :mod:`enrollment.lookalikes`
(look-alikes).

- **Quality gates.** Every photo (or camera frame) goes through
  :func:`recognition.quality.assess`; a rejected photo comes back as a
  :class:`Rejection` whose reason says what is wrong and what to do.
- **All or nothing per person.** Every photo is read, checked and encoded first; only
  then is anything written, in one transaction (the roster's ``enroll`` /
  ``add_templates``; over the admin API, one request). A person is enrolled only if
  every photo passed (or, with ``skip_bad``, at least one did), so nobody is left with
  no templates or with a photo the admin did not mean to drop.
- **Duplicate faces.** A new face at most the gallery threshold (0.52) from an already
  enrolled *other* person (active or not) is refused, naming them and the distance,
  unless ``force`` (twins, siblings): the kiosk could log one as the other.
- **Same person.** A 1:1 question, so dlib's customary verification threshold 0.6 (the
  shared photos: same person up to 0.519, different people from 0.658): a new
  person's photos must each be within 0.6 of another of their photos, and photos added
  to someone enrolled within 0.6 of one of their templates; otherwise the photo is
  probably of someone else, refused unless ``force``.
- **Photos are never kept.** Nothing is written but the roster: templates, not
  photos.
- **Consent.** An enrollment carries a consent record (the signed form's reference,
  the privacy notice's version) or another legal basis the operator declared
  (:mod:`enrollment.lawful_basis`), stored with the person in the same transaction, in
  a kiosk database or the central roster.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from clockface.consent import LawfulBasis
from clockface.errors import (
    EnrollmentError,
    ImageError,
    InputFileError,
    PhotoRejectedError,
    RosterRuleError,
)
from clockface.roster import check_known_id, check_label, check_person_id
from enrollment.target import CentralRoster, EnrollmentRoster, whole_roster
from hardware.frames import FrameSource, frames
from kiosk.store import Person
from recognition.faces import FaceModels, RGBImage
from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD, Gallery
from recognition.identify import enrollment_template
from recognition.images import decode_image
from recognition.photos import read_image
from recognition.quality import DEFAULT_LIMITS, QualityLimits, Reason, assess

FloatArray = npt.NDArray[np.float32]
PhotoInput = str | os.PathLike[str] | tuple[str, str | os.PathLike[str] | RGBImage | bytes]
"""A photo: a file path, or ``(label, photo)`` with a path, an RGB array or the file's bytes."""
Progress = Callable[[int], None]
"""Called with how many more photos (or frames) have been dealt with."""

SAME_PERSON_THRESHOLD = 0.6
"""Largest distance between two photos taken as one person (a 1:1 question: dlib's 0.6)."""

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
    """A new person's id, as the roster's grammar takes it (:mod:`clockface.roster`)."""
    try:
        return check_person_id(value, what)
    except RosterRuleError as err:
        raise EnrollmentError(str(err)) from None


def check_name(value: object, what: str = "a name") -> str:
    """A name or team as the roster takes it (:func:`clockface.roster.check_label`)."""
    try:
        return check_label(value, what)
    except RosterRuleError as err:
        raise EnrollmentError(str(err)) from None


def _team(value: object) -> str | None:
    return None if value is None or value == "" else check_name(value, "a team")


def _distances(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """Euclidean distances between the rows of ``a`` and of ``b``, in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    d2 = (a64 * a64).sum(1)[:, None] + (b64 * b64).sum(1)[None, :] - 2.0 * (a64 @ b64.T)
    out: npt.NDArray[np.float64] = np.sqrt(np.maximum(d2, 0.0))
    return out


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def _os_reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return "its folder does not exist"
    if isinstance(err, PermissionError):
        return "permission denied"
    return " ".join((err.strerror or str(err)).split()).lower()


# --------------------------------------------------------------------- the enroller
class Enroller:
    """Enrolls people into ``store`` with ``models``, keeping a gallery for the checks.

    ``threshold``: faces at most this far from another enrolled person are duplicates.
    ``same_person``: the largest distance between two photos of one person.
    ``models`` may be None for work that needs no faces (the gallery checks only).
    """

    def __init__(
        self,
        store: EnrollmentRoster,
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
        consent: LawfulBasis | None = None,
    ) -> Outcome:
        """Enroll someone new from photos, one template per good photo.

        Raises EnrollmentError for a bad id or name or an id already enrolled, before
        any photo is read. A refused
        enrollment (rejected photos without ``skip_bad``, a duplicate face or a photo of
        someone else without ``force``) writes nothing and comes back with its
        ``refusal``. ``consent`` (or another legal basis) is stored with the person.
        """
        self.check_new(person_id, name, team, consent=consent)
        if not photos:
            raise EnrollmentError(f"no photos given for {person_id}")
        accepted, rejected = self.read_photos(photos, progress)
        return self.enroll_templates(
            person_id,
            name,
            team,
            accepted,
            rejected,
            skip_bad=skip_bad,
            force=force,
            consent=consent,
        )

    def check_new(
        self,
        person_id: str,
        name: str,
        team: str | None,
        *,
        consent: LawfulBasis | None = None,
    ) -> None:
        """Refuse a bad id, name or team, or an id the roster already holds."""
        pid = check_id(person_id)
        check_name(name, "a name")
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
        consent: LawfulBasis | None = None,
    ) -> Outcome:
        """Enroll someone new from templates already made (photos, camera frames), with
        their ``consent`` record (or other legal basis) if given."""
        self.check_new(person_id, name, team, consent=consent)
        outcome = self._judge(person_id, accepted, rejected, skip_bad=skip_bad, force=force)
        if not outcome.enrolled:
            return outcome
        embeddings = np.stack([t.embedding for t in accepted])
        person = self.store.enroll(person_id, name, _team(team), embeddings, consent=consent)
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
        person = self.store.get_person(check_known_id(person_id))
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
        """Every enrolled person's templates, deactivated people included (built once).

        A central roster is read in one go (over the admin API: ``GET /v1/admin/gallery``);
        a kiosk database as its gallery plus the deactivated people's templates.
        """
        if self._gallery is None:
            store = self.store
            if isinstance(store, CentralRoster):
                gallery = Gallery(threshold=self.threshold, margin=DEFAULT_MARGIN)
                for entry in whole_roster(store):
                    self._names[entry.person_id] = entry.name
                    if len(entry.templates):
                        gallery.add(entry.person_id, entry.templates)
            else:
                gallery = store.load_gallery(threshold=self.threshold, margin=DEFAULT_MARGIN)
                for person in store.people():
                    self._names[person.person_id] = person.name
                    if not person.active and person.template_count:
                        gallery.add(person.person_id, store.templates(person.person_id))
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


def camera_refusal(capture: Capture, person_id: str) -> str:
    """The one line for a capture that kept no frame."""
    return (
        f"nothing enrolled for {person_id}: no usable face in {capture.frames_read} frames "
        f"from {capture.source} ({capture.analysed} analysed; rejected: "
        f"{capture.describe_rejected()}): stand alone about 1 m from the camera, look "
        "straight at it, in good light, and try again"
    )
