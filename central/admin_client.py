"""An HTTP client of the central service's admin API, for enrolling from an HR laptop.

:class:`AdminClient` offers the roster methods of :class:`kiosk.store.Roster` (the same
signatures, return types and errors), ``enroll`` and ``enroll_many`` with consent,
``full_gallery`` and ``person_record``, as :class:`central.store.CentralStore` does; so
the :class:`~enrollment.enroll.Enroller`, bulk imports, roster files and
``clockface enroll --server URL`` run against the central service exactly as against a
database (:class:`enrollment.target.CentralRoster`).

It wraps an ``httpx.Client`` (injected; :meth:`AdminClient.connect` makes one) and
turns each answer into what a store would return or raise, one line each:

- 401: :class:`~clockface.errors.AuthenticationError` (a wrong, unknown or revoked
  token); 403: :class:`~clockface.errors.NotAllowedError` (a kiosk's token);
- 404: :class:`~clockface.errors.UnknownPersonError`; 409:
  :class:`~clockface.errors.DuplicatePersonError`; 413 and 422:
  :class:`~clockface.errors.StoreValueError`, each with the service's own line;
- the service unreachable, a timeout, 5xx, 408, 429:
  :class:`~clockface.errors.AdminUnavailableError` naming the URL; any other answer
  (a redirect, a body that is not the documented model):
  :class:`~clockface.errors.AdminApiError`.

Where it differs from a database:

- ``enroll_many`` sends the people in one ``POST /v1/admin/roster``, one transaction:
  all or none. A roster larger than the service's body limit (``max_body_bytes``,
  2 MiB by default: about 3,000 templates) goes in several such batches, each all or
  none: if one fails, the batches before it stay written, and the error says how many
  people they held.
- ``roster_version``, ``templates`` and ``load_gallery`` read the whole roster
  (``GET /v1/admin/gallery``); ``audit_log`` pages through ``GET /v1/admin/audit``.
- Every person is addressed in a URL path: a person id (:func:`clockface.roster.check_person_id`)
  is one path segment as it stands; an id stored under older rules (a ``/`` in it) is
  sent percent-encoded, and the service's person routes take it whole, so it can still
  be shown, changed and erased.
- A 404 for a person says there is no such person on that service, never that the
  service might be of another version.

The token is sent in the ``Authorization`` header only: never logged, never in a
message or a ``repr``. :func:`read_admin_token` reads it from a file or the
environment, never from the command line (it would show in ``ps``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import numpy.typing as npt
import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict

from central.config import MIN_BODY_BYTES
from clockface.closing import Closing
from clockface.consent import Consent, LawfulBasis, LegalBasis
from clockface.errors import (
    AdminApiError,
    AdminUnavailableError,
    AuthenticationError,
    ConfigError,
    DuplicatePersonError,
    NotAllowedError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.roster import (
    EnrollsOne,
    NewPerson,
    check_known_id,
    check_new_people,
    check_template_count,
    check_templates,
)
from kiosk.store import AuditEntry, Person
from recognition.gallery import EMBEDDING_DIM, Gallery
from sync.config import check_token
from sync.protocol import GalleryDelta, decode_template, encode_template

if TYPE_CHECKING:
    from central.store import PersonRecord

TOKEN_ENV = "CLOCKFACE_ADMIN_TOKEN"
"""The environment variable that may hold the admin token itself."""
DEFAULT_TIMEOUT_S = 30.0
_AUDIT_PAGE = 10_000
_MAX_DETAIL = 300
_MAX_TOKEN_BYTES = 4096
_RETRYABLE = frozenset({408, 429})
_BATCH_OVERHEAD = 64  # '{"people": [...], "replace": false}' around the people

M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------- the token
def read_admin_token(
    token_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The admin token: from ``token_file`` if given, else ``CLOCKFACE_ADMIN_TOKEN``.

    Raises ConfigError (never repeating the token) when there is none, or the file
    cannot be read or does not hold one word of printable ASCII.
    """
    environ = os.environ if environ is None else environ
    if token_file is not None and os.fspath(token_file) != "":
        path = Path(token_file)
        where = f"the admin token file {os.fspath(path)!r}"
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_TOKEN_BYTES + 1)
        except FileNotFoundError:
            raise ConfigError(f"{where} does not exist: check the path") from None
        except IsADirectoryError:
            raise ConfigError(f"{where} is a folder: give the file holding the token") from None
        except OSError as err:
            raise ConfigError(f"cannot read {where}: {err.strerror or err}") from None
        if len(data) > _MAX_TOKEN_BYTES:
            raise ConfigError(f"{where} is too big to hold a token")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigError(f"{where} does not hold a token (not ASCII text)") from None
        return check_token(text, where)
    if TOKEN_ENV in environ:
        return check_token(environ[TOKEN_ENV], TOKEN_ENV)
    raise ConfigError(
        "no admin token: give --admin-token-file FILE (the token `clockface central admin "
        f"add NAME` printed, saved in a file only you can read) or set {TOKEN_ENV}"
    )


def check_server(url: str) -> str:
    """The central service's URL (http or https, no user, query or fragment), without a
    trailing slash; ConfigError if it is not one."""
    from sync.config import check_server_url

    try:
        return check_server_url(url)
    except ValueError as err:
        raise ConfigError(f"--server: {err}") from None


# --------------------------------------------------------------------- answers
class _Answer(BaseModel):
    # Lenient on purpose: a newer service may add fields.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _PersonOut(_Answer):
    person_id: str
    name: str
    team: str | None
    active: bool
    template_count: int
    created_utc: AwareDatetime
    updated_utc: AwareDatetime
    version: int
    consent_recorded: bool = True


class _ConsentOut(_Answer):
    basis: str = "consent"
    reference: str | None
    notice_version: str | None
    note: str | None = None
    at_utc: AwareDatetime

    def record(self) -> LawfulBasis:
        at = self.at_utc.astimezone(UTC)
        if self.basis == "consent":
            if not self.reference or not self.notice_version:
                raise AdminApiError("the service answered a consent without its reference")
            return Consent(self.reference, self.notice_version, at)
        return LegalBasis(self.basis, self.note or "", at)


class _Policy(_Answer):
    legal_basis: str
    legal_basis_note: str
    retention_days: int
    max_body_bytes: int


class _RosterOut(_Answer):
    people: list[_PersonOut]


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    """What the service's operator configured (central.toml): the legal basis recorded
    with enrollments that carry no consent ("consent": none; they are refused), its
    note, the retention period in days, and the largest request body it takes."""

    legal_basis: str
    legal_basis_note: str
    retention_days: int
    max_body_bytes: int


class _PersonDetail(_PersonOut):
    consents: list[_ConsentOut]


class _TemplatesAdded(_Answer):
    added: int
    person: _PersonOut


class _ErasureOut(_Answer):
    person_id: str
    version: int
    templates_erased: int


class _AuditOut(_Answer):
    id: int
    at_utc: AwareDatetime
    actor: str
    kind: str
    action: str
    subject: str
    detail: str | None


_People = pydantic.TypeAdapter(list[_PersonOut])
_Audit = pydantic.TypeAdapter(list[_AuditOut])


def _consent_body(consent: Consent) -> dict[str, str]:
    return {
        "reference": consent.reference,
        "notice_version": consent.notice_version,
        "at_utc": consent.at_utc.isoformat(),
    }


def _person(p: _PersonOut) -> Person:
    return Person(
        person_id=p.person_id,
        name=p.name,
        team=p.team,
        active=p.active,
        template_count=p.template_count,
        created_utc=p.created_utc.astimezone(UTC),
        updated_utc=p.updated_utc.astimezone(UTC),
    )


def _detail(response: httpx.Response) -> str:
    """The one line of an error answer (its ``detail``), shortened."""
    text = ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        text = body["detail"]
    line = " ".join(text.split()) or response.reason_phrase or f"HTTP {response.status_code}"
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


def _network_reason(err: httpx.HTTPError) -> str:
    reason = " ".join(str(err).split())
    return f"{type(err).__name__}: {reason}" if reason else type(err).__name__


def _path_id(person_id: str) -> str:
    """A person id as one URL path segment (``.`` and ``..`` too)."""
    pid = check_known_id(person_id)
    segment = quote(pid, safe="")
    return segment.replace(".", "%2E") if set(pid) == {"."} else segment


# --------------------------------------------------------------------- the client
class AdminClient(Closing, EnrollsOne[Person, LawfulBasis]):
    """The central service at ``server`` as an HR admin (bearer ``token``) sees it."""

    def __init__(self, http: httpx.Client, server: str, token: str, *, owns: bool = False) -> None:
        """``http`` does the requests (tests may pass one with a mock transport);
        ``owns``: close it with this client."""
        self._http = http
        self._server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._owns = owns

    @classmethod
    def connect(cls, server: str, token: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Self:
        """A client with its own connection pool; close it (or use ``with``)."""
        url = check_server(server)
        return cls(httpx.Client(timeout=timeout_s, follow_redirects=False), url, token, owns=True)

    @property
    def server(self) -> str:
        return self._server

    def close(self) -> None:
        """Close the connections (if this client made them); closing twice is harmless."""
        if self._owns:
            self._http.close()

    def __repr__(self) -> str:  # never the token
        return f"AdminClient({self._server!r})"

    # ----------------------------------------------------------------- roster reads
    def roster_version(self) -> int:
        """The central roster's version (reads the whole roster: the API has no cheaper way)."""
        return self.full_gallery().version

    def people(self, *, active_only: bool = False) -> list[Person]:
        """Everyone in the roster (or the active only), by person id."""
        params = {"active_only": "true"} if active_only else None
        response = self._request("GET", "/v1/admin/people", params=params)
        return [_person(p) for p in self._parse(response, _People, "a list of people")]

    def get_person(self, person_id: str) -> Person:
        return self.person_record(person_id).person

    def person_record(self, person_id: str) -> PersonRecord:
        """A person, the roster version of their last change, and their consent records
        (and other legal bases)."""
        from central.store import PersonRecord

        response = self._request("GET", f"/v1/admin/people/{_path_id(person_id)}")
        detail = self._model(response, _PersonDetail)
        return PersonRecord(
            person=_person(detail),
            version=detail.version,
            consents=tuple(c.record() for c in detail.consents),
        )

    def without_lawful_basis(self) -> set[str]:
        """The ids of the people with no consent record or other legal basis."""
        response = self._request("GET", "/v1/admin/people")
        people = self._parse(response, _People, "a list of people")
        return {p.person_id for p in people if not p.consent_recorded}

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]:
        """A person's consent records and other legal bases, oldest first."""
        return self.person_record(person_id).consents

    def policy(self) -> ServicePolicy:
        """The service's configured legal basis and retention (``GET /v1/admin/policy``)."""
        answer = self._model(self._request("GET", "/v1/admin/policy"), _Policy)
        return ServicePolicy(
            answer.legal_basis,
            answer.legal_basis_note,
            answer.retention_days,
            answer.max_body_bytes,
        )

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None:
        """Record the consent of someone already enrolled; a legal basis other than
        consent must be the one the service declares (its central.toml), which it records."""
        if not isinstance(consent, Consent):
            self._check_declared(consent, self.policy())
        self._request(
            "POST",
            f"/v1/admin/people/{_path_id(person_id)}/consents",
            body=_consent_body(consent) if isinstance(consent, Consent) else None,
        )

    @staticmethod
    def _check_declared(given: LegalBasis, declared: ServicePolicy) -> None:
        if given.basis != declared.legal_basis:
            raise StoreValueError(
                f"the central service records the legal basis {declared.legal_basis!r} "
                f"(its central.toml), not {given.basis!r}; nothing was written"
            )

    def full_gallery(self) -> GalleryDelta:
        """Every person with their templates, deactivated ones too (``GET /v1/admin/gallery``)."""
        response = self._request("GET", "/v1/admin/gallery")
        return self._model(response, GalleryDelta)

    def templates(self, person_id: str) -> npt.NDArray[np.float32]:
        """One person's templates, shape (k, 128) float32, in the order they were added."""
        pid = check_known_id(person_id)
        for p in self.full_gallery().people:
            if p.person_id == pid:
                return _decode(p.templates)
        raise UnknownPersonError(f"no person {pid!r} in the roster")

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people."""
        gallery = Gallery(threshold=threshold, margin=margin)
        ids: list[str] = []
        rows: list[npt.NDArray[np.float32]] = []
        for p in self.full_gallery().people:
            if p.active and p.templates:
                ids.extend([p.person_id] * len(p.templates))
                rows.append(_decode(p.templates))
        if rows:
            gallery.add_many(ids, np.concatenate(rows))
        return gallery

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]:
        """The roster's audit entries (of one person id, if given), oldest first."""
        found: list[AuditEntry] = []
        after = 0
        while True:
            response = self._request(
                "GET", "/v1/admin/audit", params={"after_id": after, "limit": _AUDIT_PAGE}
            )
            page = self._parse(response, _Audit, "a list of audit entries")
            found.extend(
                AuditEntry(
                    id=a.id,
                    at_utc=a.at_utc.astimezone(UTC),
                    actor=a.actor,
                    action=a.action,
                    person_id=a.subject,
                    detail=a.detail,
                )
                for a in page
                if a.kind == "person" and (person_id is None or a.subject == person_id)
            )
            if len(page) < _AUDIT_PAGE:
                return found
            after = page[-1].id

    # ----------------------------------------------------------------- roster writes
    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person:
        """Add someone to the roster, active, with no templates yet."""
        (person,) = self.enroll_many([NewPerson(person_id, name, team, _no_templates())])
        return person

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person:
        """Change a name or team; None leaves a field as it is, ``team=""`` clears the team."""
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if team is not None:
            body["team"] = team or None
        return self._patch(person_id, body)

    def set_active(self, person_id: str, active: bool) -> Person:
        """Deactivate (out of every kiosk's gallery, kept in the roster) or reactivate."""
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        return self._patch(person_id, {"active": active})

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)); returns how many."""
        path = f"/v1/admin/people/{_path_id(person_id)}/templates"
        rows = check_templates(embeddings)
        check_template_count(person_id, len(rows))
        response = self._request("POST", path, body={"templates": _encode(rows)})
        return self._model(response, _TemplatesAdded).added

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]:
        """Add people with their templates in one request, one transaction (see the
        module doc for a roster larger than the service's body limit).

        An id the roster already holds raises DuplicatePersonError before anything is
        written, unless ``replace``: then that person is erased first (an erasure every
        kiosk receives) and added anew. ``consents``: consent records by person id; a
        legal basis other than consent must be the one the service declares (its
        central.toml), which the service records itself. The service refuses a person
        with neither (422).
        """
        bodies: list[dict[str, Any]] = [
            {
                "person_id": new.person_id,
                "name": new.name,
                "team": new.team,
                "active": new.active,
                "templates": _encode(new.templates),
            }
            for new in check_new_people(people)
        ]
        ids = [body["person_id"] for body in bodies]
        declared: ServicePolicy | None = None
        for pid, consent in (consents or {}).items():
            if pid not in ids:
                raise StoreValueError(f"a consent for {pid!r}, who is not being enrolled")
            if isinstance(consent, Consent):
                bodies[ids.index(pid)]["consent"] = _consent_body(consent)
                continue
            declared = declared or self.policy()
            self._check_declared(consent, declared)
        added: list[Person] = []
        for batch in self._batches(bodies):
            try:
                response = self._request(
                    "POST", "/v1/admin/roster", body={"people": batch, "replace": replace}
                )
                added += [_person(p) for p in self._model(response, _RosterOut).people]
            except (StoreValueError, DuplicatePersonError, AdminApiError) as err:
                if not added:
                    raise
                raise type(err)(
                    f"{err} (in the batch from {batch[0]['person_id']!r}; the {len(added)} "
                    "people of the batches before were enrolled: run the same import again)"
                ) from err
        return added

    def _batches(self, bodies: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """The people in as few requests as the service's body limit allows: one, for
        any roster up to 64 KiB (the least a service takes) or up to its limit."""
        sizes = [len(json.dumps(body, ensure_ascii=False).encode("utf-8")) + 1 for body in bodies]
        limit = MIN_BODY_BYTES
        if sum(sizes) + _BATCH_OVERHEAD > limit:
            limit = self.policy().max_body_bytes
        batch: list[dict[str, Any]] = []
        used = _BATCH_OVERHEAD
        for body, size in zip(bodies, sizes, strict=True):
            if batch and used + size > limit:
                yield batch
                batch, used = [], _BATCH_OVERHEAD
            batch.append(body)
            used += size
        if batch:
            yield batch

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, an erasure that every kiosk
        receives. Returns how many templates were erased."""
        response = self._request("DELETE", f"/v1/admin/people/{_path_id(person_id)}")
        return self._model(response, _ErasureOut).templates_erased

    # ----------------------------------------------------------------- internals
    def _patch(self, person_id: str, body: dict[str, Any]) -> Person:
        response = self._request("PATCH", f"/v1/admin/people/{_path_id(person_id)}", body=body)
        return _person(self._model(response, _PersonDetail))

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        what = f"{method} {path}"
        headers = dict(self._headers)
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method, self._server + path, content=content, params=params, headers=headers
            )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as err:
            raise AdminUnavailableError(
                f"cannot reach the central service at {self._server}: {_network_reason(err)}; "
                "check --server and that the service is running"
            ) from err
        except httpx.HTTPError as err:
            raise AdminApiError(
                f"cannot talk to the central service at {self._server}: {_network_reason(err)}"
            ) from err
        status = response.status_code
        if 200 <= status < 300:
            return response
        detail = _detail(response)
        if status == 401:
            raise AuthenticationError(
                f"the central service at {self._server} refused the admin token ({detail}): "
                f"check --admin-token-file or {TOKEN_ENV}, or ask for a new token "
                "(clockface central admin add NAME)"
            )
        if status == 403:
            raise NotAllowedError(
                f"the central service at {self._server} refused the token ({detail}): use an "
                "admin token (clockface central admin add NAME), not a kiosk's"
            )
        if status == 404 and path.startswith("/v1/admin/people/"):
            if detail == "Not Found":  # no route: say so, not that it is of another version
                detail = f"the central service at {self._server} has no such person ({what})"
            raise UnknownPersonError(detail)
        if status == 409:
            raise DuplicatePersonError(detail)
        if status in (413, 422):
            raise StoreValueError(detail)
        if status >= 500 or status in _RETRYABLE:
            raise AdminUnavailableError(
                f"the central service at {self._server} answered {what} with {status} "
                f"({detail}); try again later"
            )
        moved = response.headers.get("Location")
        hint = (
            f" (to {moved}: give that URL to --server)"
            if moved
            else ": is it a clockface central service, of this version?"
        )
        raise AdminApiError(
            f"the central service at {self._server} answered {what} with {status} ({detail}){hint}"
        )

    def _model(self, response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except pydantic.ValidationError as err:
            raise self._unexpected(response, model.__name__.lstrip("_"), err) from err

    def _parse(
        self, response: httpx.Response, adapter: pydantic.TypeAdapter[Any], what: str
    ) -> Any:
        try:
            return adapter.validate_json(response.content)
        except pydantic.ValidationError as err:
            raise self._unexpected(response, what, err) from err

    def _unexpected(
        self, response: httpx.Response, what: str, err: pydantic.ValidationError
    ) -> AdminApiError:
        errors = err.errors()
        first = ""
        if errors:
            where = ".".join(str(part) for part in errors[0]["loc"]) or "body"
            first = f"; first: {where}: {errors[0]['msg']}"
        request = response.request
        return AdminApiError(
            f"the central service at {self._server} answered {request.method} "
            f"{request.url.path} with something that is not {what} ({len(errors)} "
            f"problems{first}): is it a clockface central service, of this version?"
        )


def _no_templates() -> npt.NDArray[np.float32]:
    return np.empty((0, EMBEDDING_DIM), dtype=np.float32)


def _encode(rows: npt.NDArray[Any]) -> list[str]:
    return [encode_template(row) for row in rows]


def _decode(templates: list[str]) -> npt.NDArray[np.float32]:
    if not templates:
        return _no_templates()
    return np.stack([decode_template(t) for t in templates])
