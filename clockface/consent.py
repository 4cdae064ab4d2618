"""Why a person's templates may be kept: consent, or another legal basis: the one home
of the rules, for the kiosk store, the central store, the admin API and the enrollment
commands.

Biometric templates are special-category personal data: enrolling someone needs a
lawful basis, recorded with them. By default that is their **consent** (the signed
form's reference and the version of the privacy notice they were shown, given now).
An operator may declare **another legal basis** in the configuration instead
(``legal_basis`` with its ``legal_basis_note`` in kiosk.toml's ``[kiosk]`` for a kiosk's own
roster, in central.toml's ``[central]`` for the central roster, one of
:data:`LEGAL_BASES`): then no consent is asked, and that basis is recorded with each
person enrolled. A consent given anyway is recorded as consent.

- :class:`Consent`, :class:`LegalBasis` (:data:`LawfulBasis`, either): the records;
- :func:`check_lawful_basis`: what every store checks before it records one;
- :func:`basis_for` turns the command line and the configuration into each person's
  record, or refuses, before any photo is read, when consent is needed and not given;
- :func:`describe`: one line for ``enroll show``;
- the retention period's default and longest (templates of people deactivated longer
  are purged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from clockface.errors import ConsentRequiredError, EnrollmentError, StoreValueError
from clockface.roster import check_label
from clockface.values import as_utc


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent record: the signed form's reference and the privacy notice's version."""

    reference: str
    notice_version: str
    at_utc: datetime


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """A legal basis other than consent the operator declared for keeping templates
    (``basis``, e.g. ``employment-contract``; ``note``: where it is written down)."""

    basis: str
    note: str
    at_utc: datetime


LawfulBasis = Consent | LegalBasis  # why a person's templates may be kept

# The legal bases an operator may declare (``legal_basis`` in kiosk.toml and central.toml):
# "consent" asks each person's consent record at enrollment; the others need a note
# saying where that basis is written down (GDPR Art. 6(1) and 9(2)).
LEGAL_BASES = (
    "consent",
    "employment-contract",
    "legal-obligation",
    "public-task",
    "vital-interests",
)
DEFAULT_RETENTION_DAYS = 365  # templates of deactivated people are purged after this
MAX_RETENTION_DAYS = 1095  # three years: the longest retention period accepted

MAX_REFERENCE = 200  # characters of a consent reference
MAX_NOTICE_VERSION = 100  # ... of a privacy notice's version
MAX_NOTE = 1000  # ... of a legal basis's note


def check_lawful_basis(given: object) -> None:
    """Raise StoreValueError, in one line, unless ``given`` is a consent record (with a
    reference and a notice version) or one of :data:`LEGAL_BASES` other than consent
    (with its note), each at a real time."""
    if isinstance(given, LegalBasis):
        if given.basis not in LEGAL_BASES or given.basis == "consent":
            raise StoreValueError(
                f"a legal basis must be one of {', '.join(LEGAL_BASES[1:])}, not {given.basis!r}"
                + (" (consent is a Consent record)" if given.basis == "consent" else "")
            )
        check_label(given.note, "a legal basis note", MAX_NOTE)
        as_utc(given.at_utc, "the legal basis's time")
        return
    if not isinstance(given, Consent):
        raise StoreValueError(
            f"a consent must be a Consent or LegalBasis, not {type(given).__name__}"
        )
    check_label(given.reference, "a consent reference", MAX_REFERENCE)
    check_label(given.notice_version, "a notice version", MAX_NOTICE_VERSION)
    as_utc(given.at_utc, "the consent's time")


BasisFor = Callable[[str], LawfulBasis]
"""A person's consent record (or legal basis), by person id."""

KIOSK_CONFIG = "kiosk.toml [kiosk]"
CENTRAL_CONFIG = "central.toml [central]"
CONSENT_OPTIONS = (
    "--consent-ref REF (the signed form; {id} in REF becomes the person id) and "
    "--notice-version V (the privacy notice shown)"
)


def consent_needed(where: str = KIOSK_CONFIG, option: str = CONSENT_OPTIONS) -> str:
    """The one line that refuses an enrollment without a lawful basis."""
    return (
        f"enrolling needs the person's consent record: give {option}, or declare another "
        f"legal basis (legal_basis and legal_basis_note in {where}); nothing was enrolled"
    )


def basis_for(
    *,
    reference: str | None,
    notice_version: str | None,
    now: datetime,
    legal_basis: str = "consent",
    legal_basis_note: str = "",
    where: str = KIOSK_CONFIG,
    option: str = CONSENT_OPTIONS,
) -> BasisFor:
    """Each person's record: a Consent from ``reference`` (``{id}`` becomes the person
    id) and ``notice_version``, given at ``now``; without them, the declared
    ``legal_basis`` other than consent with its note. Raises ConsentRequiredError when
    the basis is consent and none is given (its line names ``where`` the basis is
    declared and the ``option`` that gives consent), EnrollmentError for half a consent."""
    if reference is not None or notice_version is not None:
        if reference is None or notice_version is None:
            raise EnrollmentError("give --consent-ref and --notice-version together")
        ref, version = reference.strip(), notice_version.strip()
        if not ref or not version:
            raise EnrollmentError("--consent-ref and --notice-version must not be empty")

        def consent_for(person_id: str) -> LawfulBasis:
            return Consent(ref.replace("{id}", person_id), version, now)

        return consent_for
    if legal_basis == "consent":
        raise ConsentRequiredError(consent_needed(where, option))
    basis = LegalBasis(legal_basis, legal_basis_note.strip(), now)

    def declared(person_id: str) -> LawfulBasis:
        return basis

    return declared


def describe(record: LawfulBasis) -> str:
    """One line for ``enroll show``: the consent (or other legal basis) and its time."""
    when = f"{record.at_utc:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(record, Consent):
        return f"{record.reference} (notice {record.notice_version}, given {when})"
    return f"legal basis {record.basis}: {record.note} (recorded {when})"
