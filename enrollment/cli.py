"""``clockface enroll``: the HR admin's commands to enroll staff faces and manage the roster.

Thin: parses arguments, opens the store (``--db``, as the kiosk), and calls
:mod:`enrollment.enroll`, :mod:`enrollment.folder_import`, :mod:`enrollment.roster_file`
and :mod:`enrollment.lookalikes`; prints what happened. Face models, the store and numpy
are imported only when a command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kiosk.cli import DB_OPTION, db_option
from recognition.cli import DETECTOR_OPTION

if TYPE_CHECKING:
    from enrollment.enroll import Enroller, Outcome
    from kiosk.store import KioskStore, Person
    from recognition.faces import FaceModels

_SKIP_BAD = click.option(
    "--skip-bad",
    is_flag=True,
    help="Enroll from the photos that pass even if others are rejected (exit status stays 1).",
)
_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Enroll even if a face looks like someone already enrolled (twins, siblings) "
    "or unlike the person's other photos.",
)
_EXISTING_DB = db_option(
    "The kiosk's SQLite database (roster and event log), as for `clockface kiosk`."
)
_BIOMETRIC = "The file holds biometric face templates: keep it as safe as the database."


@click.group()
def enroll() -> None:
    """Enroll staff faces and manage the roster (for HR admins).

    Photos are checked (one face, large, sharp, frontal) and turned into face templates;
    the photos themselves are never stored. Every command takes --db, the kiosk's
    database; it holds biometric templates, so keep it safe.
    """


# ------------------------------------------------------------------------- helpers
def _models(detector: str) -> FaceModels:
    from recognition.faces import FaceModels

    return FaceModels("cnn" if detector == "cnn" else "hog")


def _open(db_path: str, *, create: bool = False) -> KioskStore:
    """The store; a missing database is an error unless the command creates people."""
    from clockface.errors import StoreError
    from kiosk.store import KioskStore

    if not create and not Path(db_path).exists():
        raise StoreError(
            f"no database at {db_path!r}: enroll someone first (clockface enroll add), "
            "or point --db / CLOCKFACE_DB at the kiosk's database"
        )
    return KioskStore.open(db_path)


def _enroller(store: KioskStore, detector: str | None) -> Enroller:
    from enrollment.enroll import Enroller

    return Enroller(store, None if detector is None else _models(detector))


def _who(person: Person) -> str:
    team = f", team {person.team}" if person.team else ""
    return f"{person.person_id} ({person.name}{team})"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _issues(outcome: Outcome) -> list[str]:
    """One line per rejected photo, duplicate face or unlike photo, but the one the
    refusal line quotes."""
    from enrollment.enroll import Rejection

    refusal = outcome.refusal
    if refusal is not None:
        return [
            f"rejected {issue}" if isinstance(issue, Rejection) else str(issue)
            for issue in (*outcome.rejected, *outcome.conflicts, *outcome.mismatches)
            if str(issue) not in refusal
        ]
    issues = [
        *(f"rejected {rejection}" for rejection in outcome.rejected),
        *(str(issue) for issue in (*outcome.conflicts, *outcome.mismatches)),
    ]
    forced = len(outcome.rejected)
    return [*issues[:forced], *(f"{line} (enrolled anyway: --force)" for line in issues[forced:])]


def _report(outcome: Outcome, what: str = "photo") -> None:
    """Print an outcome; raise EnrollmentError when nothing was written."""
    from clockface.errors import EnrollmentError

    for line in _issues(outcome):
        click.echo(line, err=True)
    if outcome.refusal is not None:
        raise EnrollmentError(outcome.refusal)
    assert outcome.person is not None
    used = len(outcome.templates)
    total = used + len(outcome.rejected)
    click.echo(
        f"enrolled {_who(outcome.person)}: {_plural(used, 'new template')} from {used} of "
        f"{_plural(total, what)}; {_plural(outcome.person.template_count, 'template')} in all"
    )
    if outcome.rejected:
        raise SystemExit(1)


# ------------------------------------------------------------------------- adding
@enroll.command()
@click.argument("person_id", metavar="ID")
@click.argument("photos", nargs=-1, metavar="[PHOTO]...")
@click.option("--name", required=True, help="The person's display name, as greeted.")
@click.option("--team", help="The person's team or department (optional).")
@click.option(
    "--camera",
    metavar="SPEC",
    help="Capture from a camera instead of photos: camera:0, rtsp://..., video:PATH.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=150,
    show_default=True,
    help="With --camera: how many frames to read (30 a second on most cameras).",
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --camera: check every N-th frame.",
)
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@DB_OPTION
def add(
    person_id: str,
    photos: tuple[str, ...],
    name: str,
    team: str | None,
    camera: str | None,
    frames: int,
    every: int,
    skip_bad: bool,
    force: bool,
    detector: str,
    db_path: str,
) -> None:
    """Enroll a new person ID from one or more PHOTOs, or from the kiosk camera.

    Each photo must hold the person alone, large, sharp and looking at the camera; each
    good photo gives one template (several photos, several templates: better
    recognition). A rejected photo is listed with what to do about it, and then nothing
    is enrolled, unless --skip-bad: then the person is enrolled from the good photos,
    the rejected ones are listed, and the exit status is still 1.

    A face that looks like someone already enrolled is refused, naming them and the
    distance (the same person twice, or twins: then use --force). So is a photo unlike
    the person's other photos. To add photos to someone enrolled, use add-photos.

    With --camera, the person stands alone in front of the camera, looking at it; the
    best few good frames (up to 5, at least half a second apart) become templates.
    Photos are never stored. Exit status 0 if the person was enrolled from every photo.
    """
    from clockface.errors import EnrollmentError

    if camera is not None and photos:
        raise click.UsageError("give PHOTOs or --camera, not both")
    if camera is None and not photos:
        raise click.UsageError("give at least one PHOTO, or --camera SPEC")
    name = name.strip()
    team = team.strip() if team else None
    with _open(db_path, create=True) as store:
        enroller = _enroller(store, detector)
        if camera is None:
            outcome = enroller.add_person(
                person_id, name, team, photos, skip_bad=skip_bad, force=force
            )
            _report(outcome)
            return
        from enrollment.enroll import camera_refusal
        from hardware.sources import open_source

        enroller.check_new(person_id, name, team)
        with open_source(camera) as source:
            click.echo(
                f"{name}: stand alone about 1 m from the camera and look straight at it "
                f"(reading {frames} frames from {source.name})",
                err=True,
            )
            with click.progressbar(length=frames, label="capturing", file=sys.stderr) as bar:
                capture = enroller.capture(
                    source, max_frames=frames, every=every, progress=bar.update
                )
        if not capture.templates:
            raise EnrollmentError(camera_refusal(capture, person_id))
        kept = ", ".join(t.source.removeprefix("frame ") for t in capture.templates)
        left_out = (
            f"; {capture.other_person} looked like someone else" if capture.other_person else ""
        )
        click.echo(
            f"captured {_plural(len(capture.templates), 'frame')} ({kept}) of {capture.good} "
            f"good ones in {capture.analysed} checked (rejected: "
            f"{capture.describe_rejected()}){left_out}"
        )
        outcome = enroller.enroll_templates(person_id, name, team, capture.templates, force=force)
        _report(outcome, "frame")


@enroll.command("add-photos")
@click.argument("person_id", metavar="ID")
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO...")
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@_EXISTING_DB
def add_photos(
    person_id: str,
    photos: tuple[str, ...],
    skip_bad: bool,
    force: bool,
    detector: str,
    db_path: str,
) -> None:
    """Add templates to ID, someone already enrolled, from more PHOTOs.

    The same checks as add: nothing is added if a photo is rejected (unless
    --skip-bad), looks like someone else enrolled, or does not look like ID (unless
    --force).
    """
    with _open(db_path) as store:
        outcome = _enroller(store, detector).add_photos(
            person_id, photos, skip_bad=skip_bad, force=force
        )
        _report(outcome)


@enroll.command("import")
@click.argument("folder", type=click.Path(file_okay=False))
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@DB_OPTION
def import_(folder: str, skip_bad: bool, force: bool, detector: str, db_path: str) -> None:
    """Enroll everyone in FOLDER: one sub-folder of photos per person.

    \b
    FOLDER/
      manifest.csv        optional: columns id,name,team,photo (photo: path from FOLDER)
      E1042/              the employee id
        person.toml       optional: name = "Ada Lovelace"  team = "Engines"
        front.jpg ...     their photos (.jpg .jpeg .png .webp .gif .bmp .tif .tiff)

    Without a name, the id is the name. Each person is enrolled only if all their
    photos pass (or, with --skip-bad, at least one), and not if their face looks like
    someone already enrolled (unless --force); the others go ahead. People already
    enrolled are skipped without reading their photos, so after fixing the rejected
    photos, run the same import again. Prints a summary, one line per rejected photo;
    exit status 1 if anything was rejected or not enrolled. Photos are never stored.
    """
    from clockface.errors import EnrollmentError
    from enrollment.folder_import import import_folder, plan_import

    plan = plan_import(folder)
    with _open(db_path, create=True) as store:
        enroller = _enroller(store, detector)
        with click.progressbar(length=plan.photo_count, label="enrolling", file=sys.stderr) as bar:
            report = import_folder(
                enroller, plan, skip_bad=skip_bad, force=force, progress=bar.update
            )
    for outcome in report.enrolled:
        assert outcome.person is not None
        click.echo(
            f"enrolled {_who(outcome.person)}: {_plural(len(outcome.templates), 'template')}"
        )
        for line in _issues(outcome):
            click.echo(f"  {line}")
    for pid in report.skipped:
        click.echo(f"skipped {pid}: already enrolled (add photos with add-photos)")
    for outcome in report.refused:
        click.echo(outcome.refusal)
        for line in _issues(outcome):
            click.echo(f"  {line}")
    for note in report.notes:
        click.echo(note)
    templates = sum(len(o.templates) for o in report.enrolled)
    click.echo(
        f"{len(report.enrolled)} enrolled ({_plural(templates, 'template')}), "
        f"{len(report.skipped)} already enrolled, {len(report.refused)} not enrolled, "
        f"{_plural(report.rejected_photos, 'photo')} rejected"
    )
    if not report.ok:
        problems = [
            *([f"{len(report.refused)} not enrolled"] if report.refused else []),
            *(
                [f"{_plural(report.rejected_photos, 'photo')} rejected"]
                if report.rejected_photos
                else []
            ),
        ]
        raise EnrollmentError(
            f"{' and '.join(problems)} (see above): fix them and run the same import again; "
            "people already enrolled are skipped"
        )


# ------------------------------------------------------------------------- the roster
@enroll.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deactivated people.")
@_EXISTING_DB
def list_(show_all: bool, db_path: str) -> None:
    """List the enrolled people (active ones only, unless --all)."""
    with _open(db_path) as store:
        everyone = store.people()
    shown = [p for p in everyone if show_all or p.active]
    rows = [("ID", "NAME", "TEAM", "TEMPLATES", *(("ACTIVE",) if show_all else ()))]
    for p in shown:
        extra = ("yes" if p.active else "no",) if show_all else ()
        rows.append((p.person_id, p.name, p.team or "-", str(p.template_count), *extra))
    if shown:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
    hidden = len(everyone) - len(shown)
    note = f"; {hidden} deactivated not shown (--all)" if hidden else ""
    click.echo(f"{_plural(len(shown), 'person', 'people') if shown else 'nobody'} listed{note}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@_EXISTING_DB
def show(person_id: str, db_path: str) -> None:
    """Show one person: name, team, templates, dates and the audit trail.

    For someone erased, shows the audit trail that remains.
    """
    from clockface.errors import UnknownPersonError

    with _open(db_path) as store:
        trail = store.audit_log(person_id)
        try:
            person = store.get_person(person_id)
        except UnknownPersonError:
            if not trail:
                raise
            person = None
    if person is None:
        click.echo(f"{person_id}: not in the roster (erased)")
    else:
        click.echo(f"{person.person_id}: {person.name}")
        for label, value in (
            ("team", person.team or "-"),
            ("active", "yes" if person.active else "no (deactivated)"),
            ("templates", str(person.template_count)),
            ("created", f"{person.created_utc:%Y-%m-%d %H:%M:%S} UTC"),
            ("updated", f"{person.updated_utc:%Y-%m-%d %H:%M:%S} UTC"),
        ):
            click.echo(f"  {label:<10} {value}")
    click.echo("audit trail:")
    for entry in trail:
        detail = f"  {entry.detail}" if entry.detail else ""
        click.echo(f"  {entry.at_utc:%Y-%m-%d %H:%M:%S} UTC  {entry.actor}  {entry.action}{detail}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@click.option("--name", help="The new display name.")
@click.option("--team", help='The new team; --team "" clears it.')
@_EXISTING_DB
def update(person_id: str, name: str | None, team: str | None, db_path: str) -> None:
    """Change ID's name or team (the face templates stay)."""
    if name is None and team is None:
        raise click.UsageError("nothing to change: give --name, --team or both")
    from enrollment.enroll import check_id

    if name is not None:
        name = check_id(name.strip(), "the name")
    if team is not None:
        team = team.strip()
    with _open(db_path) as store:
        person = store.update_person(person_id, name=name, team=team)
    click.echo(f"updated {_who(person)}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@_EXISTING_DB
def deactivate(person_id: str, db_path: str) -> None:
    """Stop recognising ID (left, on leave), keeping their templates for reactivate."""
    with _open(db_path) as store:
        person = store.set_active(person_id, False)
    click.echo(f"deactivated {_who(person)}: the kiosk no longer recognises them")


@enroll.command()
@click.argument("person_id", metavar="ID")
@_EXISTING_DB
def reactivate(person_id: str, db_path: str) -> None:
    """Recognise ID again after deactivate."""
    with _open(db_path) as store:
        person = store.set_active(person_id, True)
    click.echo(f"reactivated {_who(person)}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_EXISTING_DB
def remove(person_id: str, yes: bool, db_path: str) -> None:
    """Erase ID: the person and all their face templates, for good.

    An audit entry (the id, who, when) and their attendance events are kept. Asks for
    confirmation unless --yes.
    """
    with _open(db_path) as store:
        person = store.get_person(person_id)
        if not yes:
            click.confirm(
                f"Erase {_who(person)} and {_plural(person.template_count, 'face template')}? "
                "This cannot be undone",
                abort=True,
            )
        count = store.remove_person(person_id)
    click.echo(
        f"erased {person_id}: name, team and {_plural(count, 'face template')} deleted; "
        "the audit entry and attendance events are kept"
    )


# ------------------------------------------------------------------------- roster files
@enroll.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@_EXISTING_DB
def export(file: str, force: bool, db_path: str) -> None:
    """Write the roster (people, deactivated ones too, and templates) to a JSON FILE.

    For moving the roster to another machine with import-roster. The file is written
    atomically and readable by its owner only; an existing FILE is refused unless
    --force. The file holds biometric face templates: keep it as safe as the database
    and delete it once imported.
    """
    from enrollment.roster_file import export_roster

    with _open(db_path) as store:
        people, templates = export_roster(store, file, force=force)
    click.echo(
        f"exported {_plural(people, 'person', 'people')} ({_plural(templates, 'template')}) "
        f"to {file}. {_BIOMETRIC}"
    )


@enroll.command("import-roster")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--replace",
    is_flag=True,
    help="Replace people already enrolled with the file's (their templates are erased).",
)
@DB_OPTION
def import_roster(file: str, replace: bool, db_path: str) -> None:
    """Add the people and templates of a roster FILE written by export.

    All or nothing: a malformed file imports nobody. People already enrolled are
    skipped (listed), or replaced with --replace. Templates are taken as they are, with
    no photo checks: run `check` afterwards. The file holds biometric face templates:
    delete it once imported.
    """
    from enrollment.roster_file import import_roster as import_people
    from enrollment.roster_file import read_roster

    people = read_roster(file)
    with _open(db_path, create=True) as store:
        done = import_people(store, people, replace=replace)
    for pid in done.skipped:
        click.echo(f"skipped {pid}: already enrolled (use --replace to replace them)")
    for pid in done.replaced:
        click.echo(f"replaced {pid}")
    click.echo(
        f"imported {_plural(len(done.added) + len(done.replaced), 'person', 'people')} "
        f"({_plural(done.templates, 'template')}) from {file}; {len(done.skipped)} skipped"
    )


@enroll.command()
@click.option(
    "--within",
    type=click.FloatRange(min=0),
    default=None,
    help="Report people closer than this [default: the match threshold plus the margin, 0.62].",
)
@_EXISTING_DB
def check(within: float | None, db_path: str) -> None:
    """Find look-alikes among the active people: twins, siblings, one person twice.

    Reports every pair of different people whose closest templates are within the
    match threshold plus the margin: the kiosk may log one as the other, or neither.
    Enroll clearer photos of them, or remove a person enrolled twice. Exit status 0
    either way.
    """
    from enrollment.lookalikes import look_alikes
    from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD

    limit = DEFAULT_THRESHOLD + DEFAULT_MARGIN if within is None else within
    with _open(db_path) as store:
        gallery = store.load_gallery(threshold=DEFAULT_THRESHOLD, margin=DEFAULT_MARGIN)
        names = {p.person_id: p.name for p in store.people()}
    pairs = look_alikes(gallery, limit)
    active = _plural(len(gallery.people), "active person", "active people")
    size = f"{active}, {_plural(len(gallery), 'template')}"
    if not pairs:
        click.echo(f"no look-alikes: no two people are within {limit:.2f} ({size})")
        return
    click.echo(f"{_plural(len(pairs), 'look-alike pair')} within {limit:.2f} ({size}):")
    for pair in pairs:
        click.echo(
            f"  {pair.first} ({names.get(pair.first, '?')}) and {pair.second} "
            f"({names.get(pair.second, '?')}): distance {pair.distance:.3f}"
        )
