"""The central service's HTTP API (FastAPI, served by uvicorn): ``create_app(store, config)``.

Kiosk endpoints (a kiosk token) follow :mod:`sync.protocol` exactly: ``POST /v1/events``,
``GET /v1/logs/{log_id}``, ``GET /v1/gallery``, ``POST /v1/gallery/applied``. Admin
endpoints (an admin token) are under ``/v1/admin``: sites, kiosks (tokens shown once),
people with templates and consent, erasures and who confirmed them, events, the audit
log. ``GET /healthz`` (the database answers), ``GET /readyz`` (it also takes a write:
not when its disk is full) and ``GET /metrics`` need no token. The OpenAPI spec is at
``/openapi.json``. The supervisors' web page (``/``, ``/login``, ``/report``:
:mod:`central.web.routes`) has
sessions of its own and is left out of the spec.

- Authentication: ``Authorization: Bearer <token>``. Missing, unknown or revoked: 401
  with ``WWW-Authenticate: Bearer``. A valid token of the other kind: 403. The kiosk of
  an event is the token's, never the body's. A client (address) whose tokens failed 10
  times within a minute gets 429 with ``Retry-After`` for a minute, even with a right
  token (:mod:`central.ratelimit`).
- A body larger than ``max_body_bytes`` is refused with 413 before it is parsed (by its
  Content-Length, or by counting a chunked body as it arrives).
- People follow the roster's rules (:mod:`clockface.roster`): a person id, name, team or
  template a request model refuses is 422 with the rule's own line. A person's routes
  (``/v1/admin/people/{person_id}...``) take any id a store holds, one stored under older
  rules with a ``/`` in it too (sent as ``%2F``), so every person can be shown, changed
  and erased.
- Every error answer is ``{"detail": "one line"}``: 422 names the first fields that are
  wrong; a database that fails is 503 (details in the server's log only); no traceback
  ever reaches a client.
- Endpoints are plain functions, run in the server's threadpool; the store hands each
  call its own pooled connection.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from central.config import CentralConfig
from central.metrics import CONTENT_TYPE, Metrics
from central.ratelimit import FailureLimiter
from central.store import CentralStore, EventRecord, KioskInfo, PersonRecord, Principal
from central.web.passwords import DEFAULT_COST, ScryptCost
from central.web.routes import web_router
from clockface import __version__
from clockface.consent import Consent, LawfulBasis, basis_for
from clockface.errors import (
    AuthenticationError,
    CentralConflictError,
    CentralNotFoundError,
    ClockfaceError,
    DuplicatePersonError,
    EnrollmentError,
    NotAllowedError,
    StoreError,
    StoreValueError,
    TemplateKeyError,
    UnknownPersonError,
)
from clockface.roster import (
    MAX_LABEL,
    MAX_TEMPLATES_PER_PERSON,
    PERSON_ID_RULE,
    NewPerson,
    check_label,
    check_person_id,
    check_templates,
)
from clockface.values import ID_PATTERN
from kiosk.store import Person
from sync.protocol import (
    MAX_GALLERY_PAGE,
    EventBatch,
    GalleryApplied,
    GalleryDelta,
    IngestResponse,
    LogState,
    Problem,
    Template,
    ZoneName,
    decode_template,
)

log = logging.getLogger("clockface.central")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_LARGEST = 2**62  # versions and seqs fit a signed 64-bit column
_KIOSK_NAME = f"^{ID_PATTERN}$"


# ------------------------------------------------------------------------- admin models
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteIn(_Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    timezone: ZoneName


class SiteOut(_Model):
    name: str
    timezone: str
    created_utc: datetime


class KioskIn(_Model):
    name: Annotated[str, Field(pattern=_KIOSK_NAME)]
    site: Annotated[str, Field(min_length=1, max_length=100)]


class KioskOut(_Model):
    name: str
    site: str
    created_utc: datetime
    revoked_utc: datetime | None
    last_seen_utc: datetime | None
    clock_skew_seconds: float | None
    clock_flagged: bool
    gallery_version: int | None
    backlog: int = Field(description="events sent past a gap: max seq minus contiguous seq")
    chain_state: Literal["none", "verified", "unchained", "broken"] = Field(
        description="the kiosk's event chain: none (no events yet), verified, unchained "
        "(events came without a chain) or broken (an event does not follow from the one "
        "before it: edited, inserted or deleted)"
    )
    chain_break_seq: int | None = Field(description="the first seq whose chain fails")


class KioskToken(_Model):
    """A kiosk and its new token: the only time the token is shown."""

    kiosk: KioskOut
    token: str


class ConsentIn(_Model):
    reference: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="the signed consent form's reference"
    )
    notice_version: Annotated[str, Field(min_length=1, max_length=100)]
    at_utc: AwareDatetime | None = Field(
        default=None, description="when consent was given (default: now)"
    )


class ConsentOut(_Model):
    """A consent record (``basis`` "consent", with its reference and notice version) or
    another legal basis the operator declared (``basis`` and ``note``)."""

    basis: str = Field(default="consent", description='"consent" or the declared legal basis')
    reference: str | None = Field(description="the consent form's reference (consent only)")
    notice_version: str | None = Field(description="the privacy notice shown (consent only)")
    note: str | None = Field(default=None, description="where another basis is written down")
    at_utc: datetime


class PolicyOut(_Model):
    """What the operator configured about keeping face templates (central.toml)."""

    legal_basis: str = Field(
        description='"consent": each enrollment needs a consent record; another basis is '
        "recorded with each person enrolled without one"
    )
    legal_basis_note: str
    retention_days: int = Field(description="deactivated people's templates are purged after")
    max_body_bytes: int = Field(description="the largest request body the service takes")


# The roster's rules (clockface.roster), as every store applies them: a request that
# breaks one is refused whole (422) with the rule's own line.
def _face_template(text: str) -> str:
    check_templates(decode_template(text))
    return text


PersonId = Annotated[
    str, AfterValidator(check_person_id), Field(description=PERSON_ID_RULE, examples=["E1042"])
]
Name = Annotated[
    str,
    AfterValidator(lambda v: check_label(v, "a name")),
    Field(description=f"1 to {MAX_LABEL} printable characters"),
]
Team = Annotated[
    str,
    AfterValidator(lambda v: check_label(v, "a team")),
    Field(description=f"1 to {MAX_LABEL} printable characters"),
]
FaceTemplate = Annotated[Template, AfterValidator(_face_template)]


class PersonIn(_Model):
    """A person to enroll with their templates (and consent): all of it or nothing."""

    person_id: PersonId
    name: Name
    team: Team | None = None
    active: bool = True
    templates: list[FaceTemplate] = Field(default_factory=list, max_length=MAX_TEMPLATES_PER_PERSON)
    consent: ConsentIn | None = Field(
        default=None,
        description="required with templates, unless the service declares another legal "
        "basis (GET /v1/admin/policy); that basis is then recorded",
    )


class RosterIn(_Model):
    """People to enroll in one transaction: all of them or none."""

    people: list[PersonIn] = Field(min_length=1, max_length=10_000)
    replace: bool = Field(
        default=False,
        description="people the roster holds are erased (an erasure every kiosk receives) "
        "and added anew; without it, one already held refuses the whole batch (409)",
    )


class RosterOut(_Model):
    people: list[PersonOut]


class PersonPatch(_Model):
    """Fields to change; ``team: null`` clears the team, an absent field stays."""

    name: Name | None = None
    team: Annotated[str, Field(max_length=MAX_LABEL)] | None = None
    active: bool | None = None


class PersonOut(_Model):
    person_id: str
    name: str
    team: str | None
    active: bool
    template_count: int
    created_utc: datetime
    updated_utc: datetime
    version: int = Field(description="the roster version of this person's last change")
    consent_recorded: bool = Field(
        description="whether a consent record (or another legal basis) is held for them; "
        "false for people enrolled before one was asked"
    )


class PersonDetail(PersonOut):
    consents: list[ConsentOut]


class TemplatesIn(_Model):
    templates: list[FaceTemplate] = Field(min_length=1, max_length=MAX_TEMPLATES_PER_PERSON)


class TemplatesAdded(_Model):
    added: int
    person: PersonOut


class ErasureOut(_Model):
    person_id: str
    version: int
    templates_erased: int


class ErasureStatusOut(_Model):
    version: int
    person_id: str
    at_utc: datetime
    actor: str
    confirmed: list[str] = Field(description="kiosks that hold a roster version past it")
    pending: list[str] = Field(description="kiosks (not revoked) that have not confirmed yet")


class EventsPage(_Model):
    events: list[EventRecord]
    more: bool = Field(description="more follow: ask again with after= the last event_id")


class AuditOut(_Model):
    id: int
    at_utc: datetime
    actor: str
    kind: str
    action: str
    subject: str
    detail: str | None


class AppliedOut(_Model):
    version: int
    receipts: int = Field(description="erasure receipts newly recorded")


class Health(_Model):
    status: str


# ------------------------------------------------------------------------- body limit
class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the app parses them.

    A declared Content-Length over the limit is refused at once; otherwise the body is
    read as it arrives, counted, and handed on whole only if it stayed under the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _problem(send, 400, "Content-Length is not a number")
                return
            if length > self.max_bytes:
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _problem(
            send,
            413,
            f"the request body is larger than {self.max_bytes} bytes; send fewer events per batch",
        )


async def _problem(send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


# ------------------------------------------------------------------------- errors
def _validation_detail(err: RequestValidationError) -> str:
    """The first few problems of a refused request, on one line."""
    problems = []
    errors = list(err.errors())
    for item in errors[:3]:
        loc = [str(part) for part in item.get("loc", ())]
        where = ""
        if loc and loc[0] in ("body", "query", "path", "header"):
            kind, loc = loc[0], loc[1:]
            where = "" if kind == "body" else f"{kind} parameter "
        path = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".")
        message = " ".join(str(item.get("msg", "invalid")).split()).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":  # loc holds the character position
            reason = (item.get("ctx") or {}).get("error", "")
            at = f" at character {path.strip('[]')}" if path else ""
            message, path = f"not valid JSON{at}" + (f" ({reason})" if reason else ""), ""
        problems.append(f"{where}{path or 'body'}: {message}")
    more = len(errors) - len(problems)
    suffix = f" (and {more} more)" if more > 0 else ""
    return "; ".join(problems) + suffix


def _unparsable(cause: BaseException | None) -> str:
    """Why a body could not be parsed as JSON at all, on one line."""
    if isinstance(cause, RecursionError):
        return "body: not valid JSON here: nested too deeply"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "body: not valid JSON here: a number has too many digits"
    return "body: not valid JSON in UTF-8"


def _status_of(err: ClockfaceError) -> int:
    if isinstance(err, AuthenticationError):
        return 401
    if isinstance(err, NotAllowedError):
        return 403
    if isinstance(err, UnknownPersonError | CentralNotFoundError):
        return 404
    if isinstance(err, DuplicatePersonError | CentralConflictError):
        return 409
    if isinstance(err, StoreValueError | EnrollmentError):
        return 422
    if isinstance(err, TemplateKeyError):
        return 500  # the service's own set-up, not a passing outage: no Retry-After
    if isinstance(err, StoreError):
        return 503
    return 400


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(err)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> Response:
        detail = err.detail if isinstance(err.detail, str) else str(err.detail)
        if err.status_code in (204, 304):
            return Response(status_code=err.status_code, headers=err.headers)
        if err.status_code == 400 and "parsing the body" in detail:
            # FastAPI's answer to a body json.loads could not take: malformed, as the rest.
            return JSONResponse({"detail": _unparsable(err.__cause__)}, status_code=422)
        return JSONResponse(
            {"detail": " ".join(detail.split())}, status_code=err.status_code, headers=err.headers
        )

    @app.exception_handler(ClockfaceError)
    async def _clockface(request: Request, err: ClockfaceError) -> JSONResponse:
        status = _status_of(err)
        headers: dict[str, str] = {}
        detail = " ".join(str(err).split())
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        elif status == 503:
            log.error("%s %s: %s", request.method, request.url.path, detail)
            detail = "the service's database is unavailable; try again later"
            headers["Retry-After"] = "5"
        elif status == 500:
            log.error("%s %s: %s", request.method, request.url.path, detail)
            detail = (
                "the service cannot open its stored templates (its template key); "
                "its operator must check template_key_file"
            )
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, err: OverflowError) -> JSONResponse:
        # A time near year 1 or 9999 that cannot be moved to UTC (pydantic lets it through).
        return JSONResponse({"detail": f"a value is out of range: {err}"}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the service's log"}, status_code=500)


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        401: "Missing, unknown or revoked token",
        403: "A token of the wrong kind",
        404: "Not found",
        409: "Already exists",
        413: "Request body too large",
        422: "Malformed request",
        429: "Too many failed token checks from this address: wait Retry-After seconds",
        503: "The database is unavailable",
    }
    return {code: {"model": Problem, "description": words[code]} for code in codes}


# ------------------------------------------------------------------------- authentication
_kiosk_bearer = HTTPBearer(
    auto_error=False, scheme_name="kioskToken", description="a kiosk token, cfk_..."
)
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="adminToken", description="an admin token, cfa_..."
)


def _store(request: Request) -> CentralStore:
    store: CentralStore = request.app.state.store
    return store


def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None, kind: str
) -> Principal:
    """The token's holder; 429 while the client is limited for failed checks (see
    :mod:`central.ratelimit`), counting a token that fails as one more failure."""
    if credentials is None:
        raise AuthenticationError("a token is required: Authorization: Bearer <token>")
    limiter: FailureLimiter = request.app.state.auth_limiter
    address = request.client.host if request.client is not None else None
    wait = limiter.retry_after(address)
    if wait is not None:
        raise _too_many_failures(wait)
    try:
        principal = _store(request).authenticate(credentials.credentials)
    except AuthenticationError:
        limiter.failed(address)
        raise
    if principal.kind != kind:
        raise NotAllowedError(f"this endpoint needs a {kind} token, not a {principal.kind} token")
    return principal


def _too_many_failures(wait: int) -> StarletteHTTPException:
    return StarletteHTTPException(
        429,
        detail=f"too many failed token checks from this address; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


def _kiosk_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_kiosk_bearer)],
) -> Principal:
    return _principal(request, credentials, "kiosk")


def _admin_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> CentralStore:
    """The store, naming the admin in the audit log."""
    return _store(request).with_actor(_principal(request, credentials, "admin").name)


KioskAuth = Annotated[Principal, Depends(_kiosk_auth)]
Admin = Annotated[CentralStore, Depends(_admin_auth)]


# ------------------------------------------------------------------------- the app
def create_app(
    store: CentralStore,
    config: CentralConfig | None = None,
    *,
    auth_limiter: FailureLimiter | None = None,
    password_cost: ScryptCost = DEFAULT_COST,
) -> FastAPI:
    """The ASGI app over ``store``; ``config`` gives the body limit (the store already
    has the clock skew bound); ``auth_limiter`` limits failed token checks per client
    (default: 10 failures a minute, :mod:`central.ratelimit`); ``password_cost``: the
    scrypt cost of supervisors' password hashes (the default but in tests)."""
    config = config or CentralConfig()
    metrics = Metrics()
    app = FastAPI(
        title="clockface central",
        version=__version__,
        description="The central attendance service: event ingest and roster "
        "distribution for kiosks (sync.protocol, version 1), and the admin API.",
    )
    app.state.store = store
    app.state.metrics = metrics
    app.state.auth_limiter = auth_limiter if auth_limiter is not None else FailureLimiter()
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    _install_error_handlers(app)

    # ----------------------------------------------------------------- kiosks
    kiosk_api = APIRouter(
        prefix="/v1", tags=["kiosk"], responses=_problems(401, 403, 413, 422, 429, 503)
    )

    @kiosk_api.post("/events", response_model=IngestResponse)
    def post_events(batch: EventBatch, kiosk: KioskAuth) -> IngestResponse:
        """Store a batch of events; each is accepted, duplicate or conflict."""
        response = store.ingest(kiosk, batch)
        metrics.record(response)
        conflicts = sum(r.status == "conflict" for r in response.results)
        if conflicts:
            log.warning("kiosk %s: %d conflicting events refused", kiosk.name, conflicts)
        if response.clock_flagged:
            log.warning("kiosk %s: clock off by %.1f s", kiosk.name, response.clock_skew_seconds)
        return response

    @kiosk_api.get("/logs/{log_id}", response_model=LogState)
    def get_log(
        log_id: Annotated[str, Path(min_length=1, max_length=200)], kiosk: KioskAuth
    ) -> LogState:
        """How the service holds one kiosk log: whose it is, and up to which seq every
        event is held (with that event's id), so a re-provisioned or restored kiosk can
        tell and continue in a new log."""
        return store.log_state(kiosk, log_id)

    @kiosk_api.get("/gallery", response_model=GalleryDelta, responses=_problems(409))
    def get_gallery(
        kiosk: KioskAuth,
        since: Annotated[int, Query(ge=0, le=_LARGEST)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_GALLERY_PAGE)] = MAX_GALLERY_PAGE,
    ) -> GalleryDelta:
        """Roster changes after version ``since``, in version order."""
        delta = store.gallery_delta(since, limit)
        store.touch_kiosk(kiosk)
        return delta

    @kiosk_api.post("/gallery/applied", response_model=AppliedOut)
    def post_gallery_applied(applied: GalleryApplied, kiosk: KioskAuth) -> AppliedOut:
        """The kiosk now holds roster ``version``: erasures up to it are confirmed."""
        receipts = store.gallery_applied(kiosk, applied.version)
        return AppliedOut(version=applied.version, receipts=receipts)

    # ----------------------------------------------------------------- admin
    admin = APIRouter(
        prefix="/v1/admin", tags=["admin"], responses=_problems(401, 403, 413, 422, 429, 503)
    )

    @admin.get("/sites", response_model=list[SiteOut])
    def list_sites(db: Admin) -> list[SiteOut]:
        return [
            SiteOut(name=s.name, timezone=s.timezone, created_utc=s.created_utc) for s in db.sites()
        ]

    @admin.post("/sites", response_model=SiteOut, status_code=201, responses=_problems(409))
    def add_site(site: SiteIn, db: Admin) -> SiteOut:
        s = db.add_site(site.name, site.timezone)
        return SiteOut(name=s.name, timezone=s.timezone, created_utc=s.created_utc)

    @admin.get("/kiosks", response_model=list[KioskOut])
    def list_kiosks(db: Admin) -> list[KioskOut]:
        return [_kiosk_out(k) for k in db.kiosks()]

    @admin.post(
        "/kiosks", response_model=KioskToken, status_code=201, responses=_problems(404, 409)
    )
    def add_kiosk(kiosk: KioskIn, db: Admin) -> KioskToken:
        """Add a kiosk; the answer holds its token, shown this once."""
        issued = db.create_kiosk(kiosk.name, kiosk.site)
        return KioskToken(kiosk=_kiosk_out(issued.kiosk), token=issued.token)

    @admin.post("/kiosks/{name}/rotate", response_model=KioskToken, responses=_problems(404))
    def rotate_kiosk(name: str, db: Admin) -> KioskToken:
        """A new token for the kiosk; the old one stops working now."""
        token = db.rotate_kiosk_token(name)
        return KioskToken(kiosk=_kiosk_out(db.get_kiosk(name)), token=token)

    @admin.post("/kiosks/{name}/revoke", response_model=KioskOut, responses=_problems(404))
    def revoke_kiosk(name: str, db: Admin) -> KioskOut:
        return _kiosk_out(db.revoke_kiosk(name))

    @admin.get("/people", response_model=list[PersonOut])
    def list_people(db: Admin, active_only: Annotated[bool, Query()] = False) -> list[PersonOut]:
        versions, lacking = db.people_versions(), db.without_lawful_basis()
        return [
            _person_out(p, versions.get(p.person_id, 0), p.person_id not in lacking)
            for p in db.people(active_only=active_only)
        ]

    @admin.get("/people/{person_id:path}", response_model=PersonDetail, responses=_problems(404))
    def get_person(person_id: str, db: Admin) -> PersonDetail:
        return _person_detail(db.person_record(person_id))

    @admin.post("/people", response_model=PersonDetail, status_code=201, responses=_problems(409))
    def add_person(person: PersonIn, db: Admin) -> PersonDetail:
        """Enroll a person with their templates and consent, all or nothing. Templates
        need the person's consent, unless the service declares another legal basis (GET
        /v1/admin/policy), then recorded with them: 422 otherwise."""
        new, consents = _new_person(person, config, db.now())
        db.enroll_many([new], consents=consents)
        return _person_detail(db.person_record(person.person_id))

    @admin.post("/roster", response_model=RosterOut, status_code=201, responses=_problems(409))
    def add_people(roster: RosterIn, db: Admin) -> RosterOut:
        """Enroll many people (a roster import) in one transaction: all or none, each as
        ``POST /v1/admin/people`` would, consent rule included."""
        people: list[NewPerson] = []
        consents: dict[str, LawfulBasis] = {}
        now = db.now()
        for person in roster.people:
            new, given = _new_person(person, config, now)
            people.append(new)
            consents.update(given)
        added = db.enroll_many(people, replace=roster.replace, consents=consents)
        versions = db.people_versions()
        return RosterOut(
            people=[
                _person_out(p, versions.get(p.person_id, 0), p.person_id in consents) for p in added
            ]
        )

    @admin.post(
        "/people/{person_id:path}/consents",
        response_model=PersonDetail,
        status_code=201,
        responses=_problems(404),
    )
    def record_consent(person_id: str, db: Admin, consent: ConsentIn | None = None) -> PersonDetail:
        """Record the consent of someone already enrolled (before consent was asked); with
        no body, the legal basis the service declares (422 if that is consent)."""
        db.record_consent(person_id, _lawful_basis(consent, config, db.now())(person_id))
        return _person_detail(db.person_record(person_id))

    @admin.get("/policy", response_model=PolicyOut)
    def policy(db: Admin) -> PolicyOut:
        """The legal basis enrollments are recorded under, and the retention period."""
        return PolicyOut(
            legal_basis=config.legal_basis,
            legal_basis_note=config.legal_basis_note,
            retention_days=config.retention_days,
            max_body_bytes=config.max_body_bytes,
        )

    @admin.patch("/people/{person_id:path}", response_model=PersonDetail, responses=_problems(404))
    def patch_person(person_id: str, patch: PersonPatch, db: Admin) -> PersonDetail:
        """Change a name, a team (null clears it) or whether the person is active."""
        given = patch.model_fields_set
        if not given:
            raise StoreValueError("nothing to change: give name, team or active")
        if "name" in given and patch.name is None:
            raise StoreValueError("name cannot be null")
        if "active" in given and patch.active is None:
            raise StoreValueError("active must be true or false")
        db.get_person(person_id)
        if "name" in given or "team" in given:
            team = None if "team" not in given else (patch.team or "")
            db.update_person(person_id, name=patch.name, team=team)
        if patch.active is not None:
            db.set_active(person_id, patch.active)
        return _person_detail(db.person_record(person_id))

    @admin.post(
        "/people/{person_id:path}/templates",
        response_model=TemplatesAdded,
        responses=_problems(404),
    )
    def add_templates(person_id: str, body: TemplatesIn, db: Admin) -> TemplatesAdded:
        """More templates for someone enrolled, who must have a consent record (or
        another legal basis) recorded."""
        if not db.lawful_bases(person_id):
            db.get_person(person_id)  # 404 for nobody
            raise StoreValueError(
                f"{person_id} has no consent record (enrolled before one was asked): record "
                f"it first (POST /v1/admin/people/{person_id}/consents, or clockface enroll "
                "consent record); no templates were added"
            )
        added = db.add_templates(person_id, np.stack([decode_template(t) for t in body.templates]))
        record = db.person_record(person_id)
        return TemplatesAdded(
            added=added, person=_person_out(record.person, record.version, bool(record.consents))
        )

    @admin.delete("/people/{person_id:path}", response_model=ErasureOut, responses=_problems(404))
    def erase_person(person_id: str, db: Admin) -> ErasureOut:
        """Erase a person and their templates; every kiosk receives the erasure."""
        erased = db.erase_person(person_id)
        return ErasureOut(
            person_id=erased.person_id, version=erased.version, templates_erased=erased.templates
        )

    @admin.get("/gallery", response_model=GalleryDelta)
    def full_gallery(db: Admin) -> GalleryDelta:
        """Every person with their templates (for the duplicate-face check, or a roster
        export): audited, as it hands out every template."""
        gallery = db.full_gallery()
        people, templates = len(gallery.people), sum(len(p.templates) for p in gallery.people)
        db.audit_read(
            "gallery_read",
            "gallery",
            f"{people} {'person' if people == 1 else 'people'}, "
            f"{templates} template{'' if templates == 1 else 's'}",
        )
        return gallery

    @admin.get("/erasures", response_model=list[ErasureStatusOut])
    def list_erasures(db: Admin) -> list[ErasureStatusOut]:
        return [
            ErasureStatusOut(
                version=e.version,
                person_id=e.person_id,
                at_utc=e.at_utc,
                actor=e.actor,
                confirmed=list(e.confirmed),
                pending=list(e.pending),
            )
            for e in db.erasures()
        ]

    @admin.get("/events", response_model=EventsPage, responses=_problems(404))
    def list_events(
        db: Admin,
        since_utc: Annotated[AwareDatetime | None, Query()] = None,
        until_utc: Annotated[AwareDatetime | None, Query()] = None,
        after: Annotated[uuid.UUID | None, Query(description="the last event_id seen")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> EventsPage:
        """Events by time (``since_utc <= utc < until_utc``), then event id."""
        found, more = db.events(since_utc=since_utc, until_utc=until_utc, after=after, limit=limit)
        return EventsPage(
            events=[e.shown() for e in found],
            more=more,
        )

    @admin.get("/audit", response_model=list[AuditOut])
    def list_audit(
        db: Admin,
        after_id: Annotated[int, Query(ge=0, le=_LARGEST)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[AuditOut]:
        return [
            AuditOut(
                id=a.id,
                at_utc=a.at_utc,
                actor=a.actor,
                kind=a.kind,
                action=a.action,
                subject=a.subject,
                detail=a.detail,
            )
            for a in db.audit(after_id=after_id, limit=limit)
        ]

    # ----------------------------------------------------------------- public
    @app.get("/healthz", response_model=Health, tags=["service"], responses=_problems(503))
    def healthz() -> Response:
        """200 when the database answers, else 503."""
        try:
            store.ping()
        except StoreError as err:
            log.error("health check: %s", err)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", response_model=Health, tags=["service"], responses=_problems(503))
    def readyz() -> Response:
        """200 when the template key opens the templates held and the database answers
        and takes a write (a disk that is full or refuses writes fails it), else 503:
        what a load balancer should ask before it sends kiosks here. ``/healthz`` asks
        only that the database answers."""
        try:
            store.check_ready()
        except StoreError as err:
            log.error("readiness check: %s", err)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus() -> PlainTextResponse:
        """Prometheus metrics (text format 0.0.4); no person data."""
        return PlainTextResponse(metrics.render(store), media_type=CONTENT_TYPE)

    app.include_router(kiosk_api)
    app.include_router(admin)
    app.include_router(web_router(store, config, password_cost=password_cost))
    return app


def _kiosk_out(k: KioskInfo) -> KioskOut:
    return KioskOut(
        name=k.name,
        site=k.site,
        created_utc=k.created_utc,
        revoked_utc=k.revoked_utc,
        last_seen_utc=k.last_seen_utc,
        clock_skew_seconds=k.clock_skew_seconds,
        clock_flagged=k.clock_flagged,
        gallery_version=k.gallery_version,
        backlog=k.backlog,
        chain_state=k.chain_state,
        chain_break_seq=k.chain_break_seq,
    )


def _person_out(p: Person, version: int, consent_recorded: bool) -> PersonOut:
    return PersonOut(
        person_id=p.person_id,
        name=p.name,
        team=p.team,
        active=p.active,
        template_count=p.template_count,
        created_utc=p.created_utc,
        updated_utc=p.updated_utc,
        version=version,
        consent_recorded=consent_recorded,
    )


def _person_detail(record: PersonRecord) -> PersonDetail:
    p = record.person
    return PersonDetail(
        **_person_out(p, record.version, bool(record.consents)).model_dump(),
        consents=[_consent_out(c) for c in record.consents],
    )


def _consent_out(record: LawfulBasis) -> ConsentOut:
    if isinstance(record, Consent):
        return ConsentOut(
            reference=record.reference, notice_version=record.notice_version, at_utc=record.at_utc
        )
    return ConsentOut(
        basis=record.basis,
        reference=None,
        notice_version=None,
        note=record.note,
        at_utc=record.at_utc,
    )


def _new_person(
    person: PersonIn, config: CentralConfig, now: datetime
) -> tuple[NewPerson, dict[str, LawfulBasis]]:
    """A person of a request, and their lawful basis (none needed without templates)."""
    embeddings = (
        np.stack([decode_template(t) for t in person.templates])
        if person.templates
        else np.empty((0, 128), dtype=np.float32)
    )
    consents: dict[str, LawfulBasis] = {}
    if person.templates or person.consent or config.legal_basis != "consent":
        # Templates are kept only with a lawful basis; a person without any (a name to
        # add templates to later) needs none yet.
        consents[person.person_id] = _lawful_basis(person.consent, config, now)(person.person_id)
    new = NewPerson(person.person_id, person.name, person.team, embeddings, person.active)
    return new, consents


def _lawful_basis(
    given: ConsentIn | None, config: CentralConfig, now: datetime
) -> Callable[[str], LawfulBasis]:
    """The consent given, or the legal basis central.toml declares; without either,
    ConsentRequiredError (422), so nobody is enrolled without a lawful basis."""
    return basis_for(
        reference=None if given is None else given.reference,
        notice_version=None if given is None else given.notice_version,
        now=now if given is None or given.at_utc is None else given.at_utc,
        legal_basis=config.legal_basis,
        legal_basis_note=config.legal_basis_note,
        where="the service's central.toml [central]",
        option="consent (reference, notice_version) in the request",
    )
