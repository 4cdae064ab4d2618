"""Why a person's templates may be kept: their consent, or another legal basis declared.

Biometric templates are special-category personal data: enrolling someone needs a
lawful basis, recorded with them. By default that is their **consent** (the signed
form's reference and the version of the privacy notice they were shown, given now).
An operator may declare **another legal basis** in the configuration instead
(``legal_basis`` with its ``legal_basis_note`` in kiosk.toml's ``[kiosk]`` for a kiosk's own
roster, in central.toml's ``[central]`` for the central roster, one of
:data:`kiosk.store.LEGAL_BASES`): then no consent is asked, and that basis is recorded
with each person enrolled. A consent given anyway is recorded as consent.

:func:`basis_for` turns the command line and the configuration into each person's
record, or refuses, before any photo is read, when consent is needed and not given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from clockface.errors import ConsentRequiredError, EnrollmentError
from kiosk.store import Consent, LawfulBasis, LegalBasis

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
