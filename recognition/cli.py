"""``clockface recognition``: name faces in photos, check photos before enrollment.

Thin: parses arguments, reads files (through :mod:`clockface.files`), and calls
:mod:`recognition.identify` and :mod:`recognition.quality`. Face models are imported
and loaded only when a command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clockface.options import DETECTOR_OPTION
from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from recognition.faces import FaceModels
    from recognition.gallery import Match


@click.group()
def recognition() -> None:
    """Find and name faces in photos; check photos before enrollment (no database)."""


def _parse_known(values: tuple[str, ...]) -> list[tuple[str, str]]:
    people = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path:
            raise click.BadParameter(
                f"{value!r} is not NAME=PHOTO (e.g. ada=photos/ada.jpg)", param_hint="--known"
            )
        people.append((name.strip(), path))
    return people


def _models(detector: str) -> FaceModels:
    from recognition.faces import DETECTORS, FaceModels

    return FaceModels(next(d for d in DETECTORS if d == detector))


def _describe(match: Match, threshold: float, margin: float) -> str:
    if match.person_id is not None:
        return (
            f"{match.person_id:<20} distance {match.distance:.3f}  margin "
            f"{'-' if match.margin == float('inf') else f'{match.margin:.3f}'}"
        )
    if match.nearest_id is None:
        return "unknown              nobody is enrolled"
    why = (
        f"over the {threshold:.2f} threshold"
        if match.distance > threshold
        else f"but the next person is only {match.margin:.3f} farther ({margin:.2f} needed)"
    )
    return f"unknown              nearest {match.nearest_id} at {match.distance:.3f}, {why}"


@recognition.command()
@click.option(
    "--known",
    "-k",
    "known",
    multiple=True,
    required=True,
    metavar="NAME=PHOTO",
    help="Someone to recognise and a photo of them alone; repeat for each person "
    "(several photos of one NAME give that person several templates).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Largest distance accepted as a match.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=DEFAULT_MARGIN,
    show_default=True,
    help="How much farther the next-nearest person must be.",
)
@DETECTOR_OPTION
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO...")
def identify(
    known: tuple[str, ...], threshold: float, margin: float, detector: str, photos: tuple[str, ...]
) -> None:
    """Name every face in each PHOTO, left to right.

    Each --known photo passes the enrollment quality gates first (see `check`). A face
    is named only when it is close enough to one person and clearly closer to them than
    to anyone else; otherwise it is `unknown`. Exit status 1 if a photo can't be read.
    """
    from clockface.errors import ClockfaceError, PhotoRejectedError
    from recognition.gallery import Gallery
    from recognition.identify import enrollment_template, name_faces
    from recognition.photos import read_image

    people = _parse_known(known)
    models = _models(detector)
    gallery = Gallery(threshold=threshold, margin=margin)
    for name, path in people:
        try:
            template, _ = enrollment_template(models, read_image(path))
        except PhotoRejectedError as err:
            raise PhotoRejectedError(f"cannot enroll {name} from {path!r}: {err}") from err
        gallery.add(name, template)

    failed = 0
    for path in photos:
        try:
            named = name_faces(models, gallery, read_image(path))
        except ClockfaceError as err:
            click.echo(f"Error: {err}", err=True)
            failed += 1
            continue
        click.echo(f"{path}: {len(named)} face{'' if len(named) == 1 else 's'}, left to right")
        for i, face in enumerate(named, 1):
            click.echo(f"  {i}. {_describe(face.match, threshold, margin)}")
    if failed:
        raise SystemExit(1)


@recognition.command()
@DETECTOR_OPTION
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO...")
def check(detector: str, photos: tuple[str, ...]) -> None:
    """Check photos against the enrollment quality gates.

    An enrollment photo must hold exactly one face, large enough, sharp enough and
    turned to the camera. Prints each photo's measures, or what is wrong and what to do.
    Exit status 1 if any photo is rejected or can't be read.
    """
    from clockface.errors import ClockfaceError
    from recognition.photos import read_image
    from recognition.quality import assess

    models = _models(detector)
    failed = 0
    for path in photos:
        try:
            report = assess(models, read_image(path))
        except ClockfaceError as err:
            click.echo(f"Error: {err}", err=True)
            failed += 1
            continue
        if report.ok and report.face is not None:
            f = report.face
            click.echo(
                f"{path}: ok (face {f.face_px} px, sharpness {f.sharpness:.0f}, "
                f"yaw {f.yaw:+.2f}, roll {f.roll_degrees:+.0f} degrees)"
            )
        else:
            click.echo(f"{path}: rejected: {report.message}")
            failed += 1
    if failed:
        raise SystemExit(1)
