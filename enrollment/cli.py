"""``clockface enroll``: the HR admin's commands to enroll staff faces and manage the roster.

Thin: parses arguments, opens the roster and calls :mod:`enrollment.enroll`,
:mod:`enrollment.folder_import`, :mod:`enrollment.roster_file` and
:mod:`enrollment.lookalikes`; prints what happened. Every command works on one of three
rosters (:class:`enrollment.target.RosterTarget`):

- ``--db PATH`` (``CLOCKFACE_DB``; the default, ``clockface.db``): a kiosk's own
  database, for a kiosk on its own. A kiosk attached to a central service takes its
  roster from there: changes are refused, before any photo is read, with a pointer to
  the two below.
- ``--central-db PATH|URL`` (``CLOCKFACE_CENTRAL_DATABASE``): the central database, on
  the central host.
- ``--server URL`` (``CLOCKFACE_ADMIN_SERVER``) with an admin token from
  ``--admin-token-file FILE`` (``CLOCKFACE_ADMIN_TOKEN_FILE``) or ``CLOCKFACE_ADMIN_TOKEN``:
  the central service's admin API, from an HR laptop. The token is never an option's
  value (it would show in ``ps``).

An option on the command line wins over the environment; two targets given either way
is a usage error. Consent (``--consent-ref`` and ``--notice-version`` on add, import and
import-roster) is recorded with each person enrolled. It is required unless the
configuration declares another legal basis, recorded instead
(:mod:`enrollment.lawful_basis`): kiosk.toml for a kiosk's own database, central.toml for
the central database (``--config``), the service's own central.toml over ``--server``.
Without either, nothing is enrolled. Face models, the
stores, HTTP and numpy are imported only when a command runs, so ``--help`` stays instant.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from click.core import ParameterSource

from clockface.options import (
    CENTRAL_DB_ENV,
    DB_ENV,
    DETECTOR_OPTION,
    central_db_option,
    db_option,
    one_of,
)

if TYPE_CHECKING:
    from clockface.consent import BasisFor, LawfulBasis
    from enrollment.enroll import Enroller, Outcome
    from enrollment.target import EnrollmentRoster, RosterTarget
    from kiosk.store import Person
    from recognition.faces import FaceModels

F = TypeVar("F", bound=Callable[..., Any])

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
_CONSENT_REF = click.option(
    "--consent-ref",
    metavar="REF",
    help="The signed consent form's reference, recorded with the person; {id} in REF "
    "becomes the person's id. Required unless the configuration (kiosk.toml with --db, "
    "central.toml with --central-db or on the --server) declares another legal basis.",
)
_NOTICE_VERSION = click.option(
    "--notice-version",
    metavar="V",
    help="The version of the privacy notice the person was shown (with --consent-ref).",
)
_ROSTER_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="The kiosk.toml (with --db; else $CLOCKFACE_KIOSK_CONFIG) or central.toml (with "
    "--central-db; else $CLOCKFACE_CENTRAL_CONFIG) whose legal_basis (and "
    "legal_basis_note) says whether consent is needed. Over --server the service's own "
    "central.toml decides.",
)
_NEW_DB = "The kiosk's SQLite database (roster and event log); created if missing."
_EXISTING_DB = "The kiosk's SQLite database (roster and event log), as for `clockface kiosk`."
_CENTRAL_DB = central_db_option(
    "Work on the central database instead, on the central host: its SQLite file or "
    "postgresql://USER@HOST/NAME (never created here).",
)
_SERVER = click.option(
    "--server",
    metavar="URL",
    envvar="CLOCKFACE_ADMIN_SERVER",
    show_envvar=True,
    help="Work on the central service instead, through its admin API (from an HR laptop), "
    "e.g. https://attendance.example.org; needs an admin token.",
)
_TOKEN_FILE = click.option(
    "--admin-token-file",
    metavar="FILE",
    envvar="CLOCKFACE_ADMIN_TOKEN_FILE",
    show_envvar=True,
    help="With --server: the file holding your admin token (`clockface central admin add "
    "NAME` prints one); without it, CLOCKFACE_ADMIN_TOKEN holds the token itself.",
)
_BIOMETRIC = "The file holds biometric face templates: keep it as safe as the database."
# (parameter, option, environment variable, kind of roster)
_TARGETS = (
    ("db_path", "--db", DB_ENV, "kiosk"),
    ("central_db", "--central-db", CENTRAL_DB_ENV, "central"),
    ("server", "--server", "CLOCKFACE_ADMIN_SERVER", "server"),
)


@click.group()
def enroll() -> None:
    """Enroll staff faces and manage the roster (for HR admins).

    Photos are checked (one face, large, sharp, frontal) and turned into face templates;
    the photos themselves are never stored. Every command works on one roster: a
    kiosk's database (--db, the default), the central database on the central host
    (--central-db), or the central service from an HR laptop (--server, with an admin
    token in --admin-token-file or CLOCKFACE_ADMIN_TOKEN). They hold biometric
    templates: keep them safe.

    A kiosk attached to a central service takes its roster from there: enroll with
    --server or --central-db. Enrolling needs the person's consent (--consent-ref,
    --notice-version), unless the configuration declares another legal basis
    (legal_basis, legal_basis_note in kiosk.toml for --db, central.toml otherwise).
    """


# ------------------------------------------------------------------------- the roster
def _roster_options(db_help: str) -> Callable[[F], F]:
    """--db, --central-db, --server and --admin-token-file; the command gets ``target``."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(
            *args: Any,
            db_path: str,
            central_db: str | None,
            server: str | None,
            admin_token_file: str | None,
            **kwargs: Any,
        ) -> Any:
            target = _choose_target(
                {"db_path": db_path, "central_db": central_db, "server": server},
                admin_token_file,
            )
            return command(*args, target=target, **kwargs)

        wrapped: Callable[..., Any] = run
        for option in (_TOKEN_FILE, _SERVER, _CENTRAL_DB, db_option(db_help)):
            wrapped = option(wrapped)
        return cast(F, wrapped)

    return decorate


def _choose_target(values: dict[str, str | None], token_file: str | None) -> RosterTarget:
    """The one roster asked for: an option given beats the environment; default --db."""
    from enrollment.target import RosterTarget

    ctx = click.get_current_context()
    name, _, _, kind = one_of(
        _TARGETS,
        values,
        two_given=lambda chosen: (
            f"give one of --db, --central-db and --server, not {' and '.join(c[1] for c in chosen)}"
        ),
        two_set=lambda chosen: (
            f"{' and '.join(c[2] for c in chosen)} are all set: say which roster with "
            "--db, --central-db or --server"
        ),
    )
    where = values[name]
    assert where is not None  # --db has a default
    if kind != "server":
        if ctx.get_parameter_source("admin_token_file") == ParameterSource.COMMANDLINE:
            raise click.UsageError("--admin-token-file goes with --server")
        return RosterTarget("kiosk" if kind == "kiosk" else "central", where)
    from central.admin_client import check_server, read_admin_token

    return RosterTarget("server", check_server(where), read_admin_token(token_file))


def _open(target: RosterTarget, *, create: bool = False, writing: bool = False) -> EnrollmentRoster:
    """The roster; a missing kiosk database is an error unless the command creates
    people (then it says it created one). ``writing``: an attached kiosk is refused now,
    before any model is loaded."""
    store = target.open(create=create, writing=writing)
    if getattr(store, "created", False):
        click.echo(f"created a new kiosk database at {target.where}", err=True)
    return store


def _consent(
    target: RosterTarget,
    reference: str | None,
    notice_version: str | None,
    config_path: str | None,
) -> BasisFor:
    """Each person's consent record, from --consent-ref and --notice-version (given now),
    or the legal basis declared instead: by kiosk.toml for a kiosk database, central.toml
    for the central database, the service itself over --server. Without either,
    ConsentRequiredError, before any photo is read."""
    from datetime import UTC, datetime

    from clockface.consent import basis_for

    if reference is not None or notice_version is not None:
        if reference is None or notice_version is None:
            raise click.UsageError("give --consent-ref and --notice-version together")
        if not reference.strip() or not notice_version.strip():
            raise click.UsageError("--consent-ref and --notice-version must not be empty")
    now = datetime.now(UTC)
    if reference is not None:
        return basis_for(reference=reference, notice_version=notice_version, now=now)
    legal_basis, note, where = _declared_basis(target, config_path)
    from clockface.errors import ConsentRequiredError

    try:
        return basis_for(
            reference=None,
            notice_version=None,
            now=now,
            legal_basis=legal_basis,
            legal_basis_note=note,
            where=where,
        )
    except ConsentRequiredError:
        # A kiosk whose roster the central service manages says so first: the consent
        # goes with the enrollment there.
        if target.kind == "kiosk" and os.path.exists(target.where):
            target.open(writing=True).close()
        raise


@dataclass(frozen=True, slots=True)
class _Privacy:
    """What a roster's configuration says about keeping templates."""

    legal_basis: str
    legal_basis_note: str
    retention_days: int


def _privacy(target: RosterTarget, config_path: str | None) -> _Privacy:
    """The legal basis, its note and the retention period: kiosk.toml for a kiosk
    database, central.toml for the central database (--config, else the variable that
    names the file, else the defaults and the environment)."""
    if target.kind == "kiosk":
        from kiosk.config import load_config as kiosk_config

        kiosk = kiosk_config(config_path or os.environ.get("CLOCKFACE_KIOSK_CONFIG"))
        return _Privacy(kiosk.legal_basis, kiosk.legal_basis_note, kiosk.retention_days)
    from central.config import CONFIG_ENV
    from central.config import load_config as central_config

    central = central_config(config_path or os.environ.get(CONFIG_ENV))
    return _Privacy(central.legal_basis, central.legal_basis_note, central.retention_days)


def _declared_basis(target: RosterTarget, config_path: str | None) -> tuple[str, str, str]:
    """The legal basis (and its note) the roster's configuration declares, and where."""
    from clockface.consent import CENTRAL_CONFIG, KIOSK_CONFIG

    if target.kind != "server":
        privacy = _privacy(target, config_path)
        where = KIOSK_CONFIG if target.kind == "kiosk" else CENTRAL_CONFIG
        return privacy.legal_basis, privacy.legal_basis_note, where
    from central.admin_client import AdminClient

    with target.open() as client:
        assert isinstance(client, AdminClient)
        policy = client.policy()
    return policy.legal_basis, policy.legal_basis_note, f"the service's {CENTRAL_CONFIG}"


def _recorded(record: LawfulBasis) -> str:
    """What was recorded with a person enrolled: their consent or another legal basis."""
    from clockface.consent import Consent

    if isinstance(record, Consent):
        return f"consent recorded: {record.reference} (notice {record.notice_version})"
    return f"legal basis recorded: {record.basis} ({record.note})"


# ------------------------------------------------------------------------- helpers
def _models(detector: str) -> FaceModels:
    from recognition.faces import DETECTORS, FaceModels

    return FaceModels(next(d for d in DETECTORS if d == detector))


def _enroller(store: EnrollmentRoster) -> Enroller:
    """An Enroller with no face models yet: check what needs no photo first, then set
    ``models`` (loading them takes a while)."""
    from enrollment.enroll import Enroller

    return Enroller(store, None)


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


def _report(outcome: Outcome, what: str = "photo", consent: LawfulBasis | None = None) -> None:
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
    if consent is not None:
        click.echo(_recorded(consent))
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
@_CONSENT_REF
@_NOTICE_VERSION
@_ROSTER_CONFIG
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@_roster_options(_NEW_DB)
def add(
    person_id: str,
    photos: tuple[str, ...],
    name: str,
    team: str | None,
    camera: str | None,
    frames: int,
    every: int,
    consent_ref: str | None,
    notice_version: str | None,
    config_path: str | None,
    skip_bad: bool,
    force: bool,
    detector: str,
    target: RosterTarget,
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

    With --consent-ref and --notice-version, the consent record is stored with the
    person, in the same transaction. They are required, unless the configuration
    declares another legal basis, recorded instead: kiosk.toml with --db, central.toml
    with --central-db (--config), the service's own over --server.
    Photos are never stored. Exit status 0 if the person was enrolled from every photo.
    """
    from clockface.errors import EnrollmentError

    if camera is not None and photos:
        raise click.UsageError("give PHOTOs or --camera, not both")
    if camera is None and not photos:
        raise click.UsageError("give at least one PHOTO, or --camera SPEC")
    name = name.strip()
    team = team.strip() if team else None
    consent_for = _consent(target, consent_ref, notice_version, config_path)
    consent = consent_for(person_id)
    with _open(target, create=True, writing=True) as store:
        enroller = _enroller(store)
        enroller.check_new(person_id, name, team, consent=consent)
        enroller.models = _models(detector)
        if camera is None:
            outcome = enroller.add_person(
                person_id, name, team, photos, skip_bad=skip_bad, force=force, consent=consent
            )
            _report(outcome, consent=consent)
            return
        from enrollment.enroll import camera_refusal
        from hardware.sources import open_source

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
        outcome = enroller.enroll_templates(
            person_id, name, team, capture.templates, force=force, consent=consent
        )
        _report(outcome, "frame", consent)


@enroll.command("add-photos")
@click.argument("person_id", metavar="ID")
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO...")
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@_roster_options(_EXISTING_DB)
def add_photos(
    person_id: str,
    photos: tuple[str, ...],
    skip_bad: bool,
    force: bool,
    detector: str,
    target: RosterTarget,
) -> None:
    """Add templates to ID, someone already enrolled, from more PHOTOs.

    The same checks as add: nothing is added if a photo is rejected (unless
    --skip-bad), looks like someone else enrolled, or does not look like ID (unless
    --force).
    """
    from clockface.errors import EnrollmentError
    from clockface.roster import check_known_id

    with _open(target, writing=True) as store:
        enroller = _enroller(store)
        pid = check_known_id(person_id)
        store.get_person(pid)
        if not store.lawful_bases(pid):
            raise EnrollmentError(
                f"{pid} has no consent record (enrolled before one was asked): record it "
                f"first with `clockface enroll consent record {pid} --consent-ref REF "
                "--notice-version V`; no photos were read"
            )
        enroller.models = _models(detector)
        outcome = enroller.add_photos(person_id, photos, skip_bad=skip_bad, force=force)
        _report(outcome)


@enroll.command("import")
@click.argument("folder", type=click.Path(file_okay=False))
@_CONSENT_REF
@_NOTICE_VERSION
@_ROSTER_CONFIG
@_SKIP_BAD
@_FORCE
@DETECTOR_OPTION
@_roster_options(_NEW_DB)
def import_(
    folder: str,
    consent_ref: str | None,
    notice_version: str | None,
    config_path: str | None,
    skip_bad: bool,
    force: bool,
    detector: str,
    target: RosterTarget,
) -> None:
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

    With --consent-ref and --notice-version, each person enrolled gets a consent record
    ({id} in REF becomes their id). They are required, unless the configuration declares
    another legal basis, recorded instead (as for add).
    """
    from clockface.errors import EnrollmentError
    from enrollment.folder_import import import_folder, plan_import

    plan = plan_import(folder)
    consent_for = _consent(target, consent_ref, notice_version, config_path)
    with _open(target, create=True, writing=True) as store:
        enroller = _enroller(store)
        known = enroller.known_ids()
        if any(p.person_id not in known for p in plan.people):
            enroller.models = _models(detector)
        with click.progressbar(length=plan.photo_count, label="enrolling", file=sys.stderr) as bar:
            report = import_folder(
                enroller,
                plan,
                skip_bad=skip_bad,
                force=force,
                progress=bar.update,
                consent_for=consent_for,
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
    if report.enrolled:
        from clockface.consent import Consent

        first = report.enrolled[0].person_id
        example = consent_for(first)
        if isinstance(example, Consent):
            click.echo(
                f"consent recorded for each person enrolled (notice {example.notice_version}; "
                f"e.g. {first}: {example.reference})"
            )
        else:
            click.echo(f"for each person enrolled, {_recorded(example)}")
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
@_roster_options(_EXISTING_DB)
def list_(show_all: bool, target: RosterTarget) -> None:
    """List the enrolled people (active ones only, unless --all).

    People with no consent record (or other legal basis), such as those enrolled before
    one was asked, are marked "no consent recorded" (a kiosk attached to the central
    service holds no consent records: the service does).
    """
    from central.admin_client import AdminClient
    from central.store import CentralStore
    from kiosk.store import KioskStore

    with _open(target) as store:
        everyone = store.people()
        lacking: set[str] = set()
        if isinstance(store, CentralStore | AdminClient) or (
            isinstance(store, KioskStore) and store.managed_by() is None
        ):
            lacking = store.without_lawful_basis()
    shown = [p for p in everyone if show_all or p.active]
    marked = any(p.person_id in lacking for p in shown)
    rows = [
        (
            "ID",
            "NAME",
            "TEAM",
            "TEMPLATES",
            *(("ACTIVE",) if show_all else ()),
            *(("CONSENT",) if marked else ()),
        )
    ]
    for p in shown:
        extra: tuple[str, ...] = ("yes" if p.active else "no",) if show_all else ()
        if marked:
            extra += ("no consent recorded" if p.person_id in lacking else "yes",)
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
@_roster_options(_EXISTING_DB)
def show(person_id: str, target: RosterTarget) -> None:
    """Show one person: name, team, templates, dates, consent and the audit trail.

    Consent records (or the legal basis recorded instead) are shown for every roster.
    For someone erased, shows the audit trail that remains.
    """
    from clockface.consent import describe
    from clockface.errors import UnknownPersonError

    consents: tuple[LawfulBasis, ...] | None = None
    with _open(target) as store:
        trail = store.audit_log(person_id)
        try:
            person = store.get_person(person_id)
            consents = store.lawful_bases(person_id)
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
        if consents is not None and not consents:
            click.echo(f"  {'consent':<10} none recorded")
        for consent in consents or ():
            click.echo(f"  {'consent':<10} {describe(consent)}")
    click.echo("audit trail:")
    for entry in trail:
        detail = f"  {entry.detail}" if entry.detail else ""
        click.echo(f"  {entry.at_utc:%Y-%m-%d %H:%M:%S} UTC  {entry.actor}  {entry.action}{detail}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@click.option("--name", help="The new display name.")
@click.option("--team", help='The new team; --team "" clears it.')
@_roster_options(_EXISTING_DB)
def update(person_id: str, name: str | None, team: str | None, target: RosterTarget) -> None:
    """Change ID's name or team (the face templates stay)."""
    if name is None and team is None:
        raise click.UsageError("nothing to change: give --name, --team or both")
    from enrollment.enroll import check_name

    if name is not None:
        name = check_name(name.strip(), "the name")
    if team is not None:
        team = team.strip()
    with _open(target, writing=True) as store:
        person = store.update_person(person_id, name=name, team=team)
    click.echo(f"updated {_who(person)}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@_roster_options(_EXISTING_DB)
def deactivate(person_id: str, target: RosterTarget) -> None:
    """Stop recognising ID (left, on leave), keeping their templates for reactivate."""
    with _open(target, writing=True) as store:
        person = store.set_active(person_id, False)
    click.echo(f"deactivated {_who(person)}: the kiosk no longer recognises them")


@enroll.command()
@click.argument("person_id", metavar="ID")
@_roster_options(_EXISTING_DB)
def reactivate(person_id: str, target: RosterTarget) -> None:
    """Recognise ID again after deactivate."""
    with _open(target, writing=True) as store:
        person = store.set_active(person_id, True)
    click.echo(f"reactivated {_who(person)}")


@enroll.command()
@click.argument("person_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_roster_options(_EXISTING_DB)
def remove(person_id: str, yes: bool, target: RosterTarget) -> None:
    """Erase ID: the person and all their face templates, for good.

    An audit entry (the id, who, when) and their attendance events are kept. Asks for
    confirmation unless --yes. Erased from the central roster, they are erased from
    every kiosk at its next sync (`clockface central erasures` shows which confirmed).
    """
    with _open(target, writing=True) as store:
        person = store.get_person(person_id)
        if not yes:
            click.confirm(
                f"Erase {_who(person)} and {_plural(person.template_count, 'face template')}? "
                "This cannot be undone",
                abort=True,
            )
        count = store.remove_person(person_id)
    everywhere = "" if target.kind == "kiosk" else "; every kiosk erases them at its next sync"
    click.echo(
        f"erased {person_id}: name, team and {_plural(count, 'face template')} deleted; "
        f"the audit entry and attendance events are kept{everywhere}"
    )


# ------------------------------------------------------------------------- privacy
@enroll.group()
def consent() -> None:
    """Consent records: record one for someone enrolled without it, or withdrawal."""


@consent.command("record")
@click.argument("person_id", metavar="ID")
@_CONSENT_REF
@_NOTICE_VERSION
@_ROSTER_CONFIG
@_roster_options(_EXISTING_DB)
def record(
    person_id: str,
    consent_ref: str | None,
    notice_version: str | None,
    config_path: str | None,
    target: RosterTarget,
) -> None:
    """Record the consent of ID, someone already enrolled (before consent was asked).

    --consent-ref and --notice-version give the consent. Without them, the legal basis
    the configuration declares is recorded (kiosk.toml with --db, central.toml with
    --central-db, the service's own over --server); where that is consent (the
    default), the command refuses. Records are kept, never changed: a second one is
    added beside the first.
    """
    from clockface.roster import check_known_id

    pid = check_known_id(person_id)
    given = _consent(target, consent_ref, notice_version, config_path)(pid)
    with _open(target, writing=True) as store:
        store.record_consent(pid, given)
    click.echo(f"{pid}: {_recorded(given)}")


@consent.command("withdraw")
@click.argument("person_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_roster_options(_EXISTING_DB)
def withdraw(person_id: str, yes: bool, target: RosterTarget) -> None:
    """ID withdrew their consent: erase them, as `enroll remove` does.

    Their name, team and face templates are deleted for good; the audit entry, the
    consent record (proof of what was agreed, and when) and attendance events are kept.
    Erased from the central roster, they are erased from every kiosk at its next sync
    (`clockface central erasures` shows which confirmed). Asks first unless --yes.
    """
    with _open(target, writing=True) as store:
        person = store.get_person(person_id)
        if not yes:
            click.confirm(
                f"{_who(person)} withdrew consent: erase them and "
                f"{_plural(person.template_count, 'face template')}? This cannot be undone",
                abort=True,
            )
        count = store.remove_person(person_id)
    everywhere = "" if target.kind == "kiosk" else "; every kiosk erases them at its next sync"
    click.echo(
        f"consent withdrawn: erased {person_id}: name, team and "
        f"{_plural(count, 'face template')} deleted; the audit entry, consent record and "
        f"attendance events are kept{everywhere}"
    )


@enroll.command()
@click.option("--dry-run", is_flag=True, help="List who would be erased, and change nothing.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="The kiosk.toml (with --db; else $CLOCKFACE_KIOSK_CONFIG) or central.toml (with "
    "--central-db; else $CLOCKFACE_CENTRAL_CONFIG) that holds retention_days.",
)
@_roster_options(_EXISTING_DB)
def purge(dry_run: bool, config_path: str | None, target: RosterTarget) -> None:
    """Erase the templates of people deactivated longer than the retention period.

    The period is retention_days in kiosk.toml's [kiosk] (--db) or central.toml
    (--central-db); default 365 days. Each person is erased as `enroll remove` does
    (name, team and templates), with a retention_purge audit entry; attendance events
    and consent records are kept. On the central roster each is an erasure every kiosk
    applies and confirms (`clockface central erasures`). With --dry-run, lists who would
    go and since when they are deactivated, and changes nothing.
    """

    from central.store import CentralStore
    from clockface.errors import EnrollmentError
    from kiosk.store import KioskStore

    if target.kind == "server":
        raise EnrollmentError(
            "enroll purge runs on the central host (--central-db), not through --server"
        )
    days = _privacy(target, config_path).retention_days
    with _open(target, writing=not dry_run) as store:
        if not isinstance(store, KioskStore | CentralStore):  # pragma: no cover
            raise EnrollmentError("enroll purge needs a kiosk or central database")
        people = store.expired(days) if dry_run else store.purge(days)
    verb = "would erase" if dry_run else "erased"
    for person in people:
        click.echo(
            f"{verb} {person.person_id}: deactivated {person.deactivated_utc:%Y-%m-%d %H:%M:%S} "
            f"UTC, {_plural(person.template_count, 'template')}"
        )
    summary = f"{_plural(len(people), 'person', 'people')} deactivated over {days} days"
    click.echo(
        f"{summary}: {'nothing changed (dry run)' if dry_run else 'erased'}"
        if people
        else f"nobody deactivated over {days} days: nothing to purge"
    )


# ------------------------------------------------------------------------- roster files
@enroll.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@_roster_options(_EXISTING_DB)
def export(file: str, force: bool, target: RosterTarget) -> None:
    """Write the roster (people, deactivated ones too, and templates) to a JSON FILE.

    For moving the roster to another machine with import-roster. The file is written
    atomically and readable by its owner only; an existing FILE is refused unless
    --force. The file holds biometric face templates: keep it as safe as the database
    and delete it once imported.
    """
    from central.store import CentralStore
    from enrollment.roster_file import export_roster
    from kiosk.store import KioskStore

    with _open(target) as store:

        def audit(people: int, templates: int) -> None:
            # Every template leaves in the file: audited before it is written, so no
            # export goes unrecorded (over --server the service audits its gallery read).
            detail = (
                f"{_plural(people, 'person', 'people')}, {_plural(templates, 'template')} "
                f"to {os.path.abspath(file)}"
            )
            if isinstance(store, KioskStore):
                store.audit_read("roster_export", detail)
            elif isinstance(store, CentralStore):
                store.audit_read("roster_export", "roster", detail)

        people, templates = export_roster(store, file, force=force, before_writing=audit)
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
@_CONSENT_REF
@_NOTICE_VERSION
@_ROSTER_CONFIG
@_roster_options(_NEW_DB)
def import_roster(
    file: str,
    replace: bool,
    consent_ref: str | None,
    notice_version: str | None,
    config_path: str | None,
    target: RosterTarget,
) -> None:
    """Add the people and templates of a roster FILE written by export.

    All or nothing: a malformed file imports nobody. People already enrolled are
    skipped (listed), or replaced with --replace. Templates are taken as they are, with
    no photo checks: run `check` afterwards. The file holds biometric face templates:
    delete it once imported.

    With --server too, the file is one transaction, unless it is larger than the
    service's request limit (max_body_bytes, 2 MiB by default: about 3,000 templates):
    then it goes in batches, each all or nothing; if one fails, the batches before it
    stay imported: run the same import again (people already enrolled are skipped).

    As with add: --consent-ref and --notice-version record each person's consent ({id}
    in REF becomes their id); they are required unless the configuration declares
    another legal basis, recorded instead.
    """
    from enrollment.roster_file import import_roster as import_people
    from enrollment.roster_file import read_roster

    people = read_roster(file)
    consent_for = _consent(target, consent_ref, notice_version, config_path)
    with _open(target, create=True, writing=True) as store:
        done = import_people(store, people, replace=replace, consent_for=consent_for)
    for pid in done.skipped:
        click.echo(f"skipped {pid}: already enrolled (use --replace to replace them)")
    for pid in done.replaced:
        click.echo(f"replaced {pid}")
    click.echo(
        f"imported {_plural(len(done.added) + len(done.replaced), 'person', 'people')} "
        f"({_plural(done.templates, 'template')}) from {file}; {len(done.skipped)} skipped"
    )


@enroll.command("check-roster")
@_roster_options(_EXISTING_DB)
def check_roster_rules(target: RosterTarget) -> None:
    """List the people stored under older, looser rules, one line each.

    Today's rules (clockface.roster): an id is 1 to 64 letters, digits, '.', '_' or '-',
    starting with a letter or digit; a name or team at most 200 printable characters; at
    most 100 templates per person, each a face template (finite, not zero, of a face
    descriptor's norm). People enrolled before these rules may break them (an id holding
    '/' or spaces, a zero template): they are listed, not changed, and can still be shown,
    deactivated and erased (enroll remove). Erase each and enroll them again under a
    valid id. Exit status 1 if anyone is listed.
    """
    from enrollment.target import roster_offenders

    with _open(target) as store:
        found = roster_offenders(store)
        everyone = len(store.people())
    for offender in found:
        click.echo(f"{offender.person_id}: {offender.problem}")
    if not found:
        click.echo(f"{_plural(everyone, 'person', 'people')}: all follow the roster's rules")
        return
    click.echo(
        f"{_plural(len(found), 'person', 'people')} of {everyone} stored under older rules: "
        "erase each (clockface enroll remove ID) and enroll them again under a valid id"
    )
    raise SystemExit(1)


@enroll.command()
@click.option(
    "--within",
    type=click.FloatRange(min=0),
    default=None,
    help="Report people closer than this [default: the match threshold plus the margin, 0.62].",
)
@_roster_options(_EXISTING_DB)
def check(within: float | None, target: RosterTarget) -> None:
    """Find look-alikes among the active people: twins, siblings, one person twice.

    Reports every pair of different people whose closest templates are within the
    match threshold plus the margin: the kiosk may log one as the other, or neither.
    Enroll clearer photos of them, or remove a person enrolled twice. Exit status 0
    either way.
    """
    from enrollment.lookalikes import check_roster

    with _open(target) as store:
        found = check_roster(store, within)
    pairs, names, limit = found.pairs, found.names, found.within
    active = _plural(found.people, "active person", "active people")
    size = f"{active}, {_plural(found.templates, 'template')}"
    if not pairs:
        click.echo(f"no look-alikes: no two people are within {limit:.2f} ({size})")
        return
    click.echo(f"{_plural(len(pairs), 'look-alike pair')} within {limit:.2f} ({size}):")
    for pair in pairs:
        click.echo(
            f"  {pair.first} ({names.get(pair.first, '?')}) and {pair.second} "
            f"({names.get(pair.second, '?')}): distance {pair.distance:.3f}"
        )
