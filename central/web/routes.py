"""The supervisors' web page's routes: sign-in, today's board, reports and downloads.

==========================  ===============================================================
``GET  /login``             the sign-in form (already signed in: 303 to ``/``)
``POST /login``             name, password and the form's token; success: 303 to ``/``
``POST /logout``            the session's CSRF token; 303 to ``/login``
``GET  /``                  today's board, reloading itself every ``web_refresh_seconds``
``GET  /report``            the report form; with ``kind``, ``from``, ``to`` (and optional
                            ``person``, ``team``, ``site``) the report as a table
``GET  /report/download``   the same fields and ``format=csv|xlsx|csv-verify``: the file;
                            ``csv-verify`` is the CSV's verification record (JSON), named
                            as the CSV plus ``.verify.json``, as ``clockface report
                            --output FILE.csv`` writes it beside the CSV; with
                            ``rows_sha256`` (the page's form sends the rows it shows) 409
                            and the report as it is now, unless its rows are still those
``GET  /web/web.css``       the stylesheet
==========================  ===============================================================

- **Nothing readable without a session**: every page and download answers a browser
  without a live session with 303 to ``/login``.
- **Session cookie** ``clockface_session``: 32 random bytes, HttpOnly, SameSite=Strict,
  Path=/, Secure when the request came over https (as uvicorn sees it, proxy headers
  included) or ``web_secure_cookies`` says so. Only its SHA-256 is stored
  (:mod:`central.web.sessions`).
- **CSRF**: every POST of a session carries the session's token in a hidden field;
  without it (or with another) the answer is 403 and nothing happens. Reading pages
  are GETs and change nothing. The sign-in form is guarded by a *pre-session token*
  (signed double submit): ``GET /login`` sets a random value in a ``clockface_login``
  cookie (HttpOnly, SameSite=Strict, Path=/login) and puts HMAC-SHA256(key, value) in
  the form, with a key the service draws at start-up; ``POST /login`` is refused (403)
  unless the two agree. Chosen over an Origin/Referer check because it does not depend
  on what a TLS proxy in front does to the Host header, and on browsers that send no
  Origin (or on a no-referrer policy, which this page itself sets) it still works; a
  site elsewhere can neither read the cookie nor forge the field, and a cookie planted
  by a sibling host is useless without the key. (So a sign-in form does not survive a
  restart of the service: reload it.)
- **Headers** on every answer: ``Cache-Control: no-store``, a Content-Security-Policy
  that allows our own stylesheet and forms and nothing else (no script at all),
  ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``, ``Referrer-Policy:
  no-referrer``, ``X-Content-Type-Options: nosniff``.
- **Errors**: a bad date, a backwards range or one over 366 days is a message on the
  page with 400; a database that fails is a page with 503 (details in the log only).
- **A CSV and its record describe the same rows**: the two are separate downloads, and
  events can arrive between them. Every download from the report page carries the
  SHA-256 of the rows the page shows; when the report has other rows by then, the
  answer is no file but the report page with the report as it is now, a message to
  download again, and 409. Saved into one folder, the CSV and its record then pass
  ``clockface report verify FILE.csv --central-db DATABASE`` for as long as the
  database gives the same rows for those parameters (events that arrive later in the
  range change them, and verify says so, as for a report the CLI wrote).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central.config import CentralConfig
from central.store import CentralStore
from central.web import data, pages
from central.web.accounts import Accounts, LoginPolicy
from central.web.passwords import DEFAULT_COST, ScryptCost
from central.web.sessions import SessionPolicy, Sessions, WebSession
from clockface.errors import (
    ClockfaceError,
    LoginRefusedError,
    ReportError,
    ScheduleError,
    StoreError,
)

log = logging.getLogger("clockface.central.web")

SESSION_COOKIE = "clockface_session"
LOGIN_COOKIE = "clockface_login"
MAX_FORM_BYTES = 16 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_UNAVAILABLE = "The service's database is unavailable just now; try again in a moment."


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each
    field); anything else, or too big, is an empty dict (the route then refuses it)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(
        body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20
    )
    return {name: values[0] for name, values in fields.items()}


Form = Annotated[dict[str, str], Depends(_form)]


def web_router(
    store: CentralStore, config: CentralConfig, *, password_cost: ScryptCost = DEFAULT_COST
) -> APIRouter:
    """The web page's routes over ``store`` (left out of the OpenAPI description);
    ``password_cost``: the scrypt cost sign-in rehashes weaker hashes to."""
    accounts = Accounts(
        store,
        LoginPolicy(
            max_failed=config.web_max_failed_logins,
            lockout=timedelta(minutes=config.web_lockout_minutes),
        ),
        password_cost=password_cost,
    )
    sessions = Sessions(
        store,
        SessionPolicy(
            idle=timedelta(minutes=config.web_idle_minutes),
            lifetime=timedelta(hours=config.web_session_hours),
        ),
    )
    key = secrets.token_bytes(32)  # signs the sign-in form's token; new at each start
    router = APIRouter(include_in_schema=False)

    def secure(request: Request) -> bool:
        return config.web_secure_cookies or request.url.scheme == "https"

    def session_of(request: Request) -> WebSession | None:
        return sessions.find(request.cookies.get(SESSION_COOKIE))

    def login_token(nonce: str) -> str:
        return hmac.new(key, nonce.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def login_form(
        request: Request, status: int = 200, text: str | None = None, name: str = ""
    ) -> Response:
        nonce = secrets.token_urlsafe(32)
        response = _html(pages.login_page(login_token(nonce), text, name), status)
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=3600, path="/login", secure=secure(request),
            httponly=True, samesite="strict",
        )  # fmt: skip
        return response

    def to_login(request: Request) -> Response:
        response = _redirect("/login")
        if SESSION_COOKIE in request.cookies:
            response.delete_cookie(
                SESSION_COOKIE, path="/", secure=secure(request), httponly=True,
                samesite="strict",
            )  # fmt: skip
        return response

    def signed_in(
        page: Callable[[Request, WebSession], Response],
    ) -> Callable[[Request], Response]:
        """A page that needs a live session; a database that fails is a 503 page."""

        def route(request: Request) -> Response:
            try:
                found = session_of(request)
                if found is None:
                    return to_login(request)
                return page(request, found)
            except StoreError as err:
                log.error("%s %s: %s", request.method, request.url.path, err)
                return _html(pages.problem_page("Unavailable", _UNAVAILABLE), 503)

        return route

    # ----------------------------------------------------------------- sign-in
    @router.get("/login")
    def get_login(request: Request) -> Response:
        try:
            if session_of(request) is not None:
                return _redirect("/")
        except StoreError as err:
            log.error("GET /login: %s", err)
            return _html(pages.problem_page("Unavailable", _UNAVAILABLE), 503)
        return login_form(request)

    @router.post("/login")
    def post_login(request: Request, form: Form) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("login_token", "")
        name = form.get("name", "")
        if not nonce or not hmac.compare_digest(given.encode(), login_token(nonce).encode()):
            return login_form(
                request,
                403,
                "This sign-in form has expired or did not come from this page: sign in again.",
                name[:64],
            )
        client = request.client.host if request.client else ""
        try:
            supervisor = accounts.login(name, form.get("password", ""), client=client)
            started = sessions.start(supervisor.id, supervisor.name)
        except LoginRefusedError as err:
            return login_form(request, 401, f"Not signed in: {err}.", name[:64])
        except StoreError as err:
            log.error("POST /login: %s", err)
            return _html(pages.problem_page("Unavailable", _UNAVAILABLE), 503)
        response = _redirect("/")
        response.set_cookie(
            SESSION_COOKIE, started.token, path="/", secure=secure(request), httponly=True,
            samesite="strict",
        )  # fmt: skip
        response.delete_cookie(
            LOGIN_COOKIE, path="/login", secure=secure(request), httponly=True, samesite="strict"
        )
        return response

    @router.post("/logout")
    def post_logout(request: Request, form: Form) -> Response:
        try:
            found = session_of(request)
            if found is None:
                return to_login(request)
            if not hmac.compare_digest(
                form.get("csrf_token", "").encode(), found.csrf_token.encode()
            ):
                return _html(
                    pages.problem_page(
                        "Refused",
                        "This form did not come from this page (its security token is "
                        "missing or wrong): nothing was done. Go back, reload, try again.",
                        user=found.supervisor,
                        csrf=found.csrf_token,
                    ),
                    403,
                )
            client = request.client.host if request.client else ""
            sessions.end(request.cookies.get(SESSION_COOKIE), client=client)
        except StoreError as err:
            log.error("POST /logout: %s", err)
            return _html(pages.problem_page("Unavailable", _UNAVAILABLE), 503)
        return to_login(request)

    # ----------------------------------------------------------------- pages
    def board(request: Request, session: WebSession) -> Response:
        try:
            found = data.today_board(store)
        except (ReportError, ScheduleError) as err:
            page = pages.board_page(
                None, session.supervisor, session.csrf_token, config.web_refresh_seconds,
                text=_sentence(err),
            )  # fmt: skip
            return _html(page)
        return _html(
            pages.board_page(
                found, session.supervisor, session.csrf_token, config.web_refresh_seconds
            )
        )

    def report(request: Request, session: WebSession) -> Response:
        fields = _report_fields(request)
        if not any(fields.get(k) for k in ("from", "to")):
            return _html(pages.report_page(fields, session.supervisor, session.csrf_token))
        try:
            asked = _asked(fields)
            made = data.make_report(store, asked)
        except (ReportError, ScheduleError) as err:
            page = pages.report_page(
                fields, session.supervisor, session.csrf_token, text=_sentence(err)
            )
            return _html(page, 400)
        page = pages.report_page(
            fields, session.supervisor, session.csrf_token, request=asked, report=made
        )
        return _html(page)

    def download(request: Request, session: WebSession) -> Response:
        fields = _report_fields(request)
        fmt = request.query_params.get("format", "")
        try:
            asked = _asked(fields)
            rows = data.check_digest(request.query_params.get("rows_sha256"))
            content = data.download(store, asked, fmt, rows=rows)
        except data.ReportChangedError as err:
            page = pages.report_page(
                fields, session.supervisor, session.csrf_token, request=asked,
                report=err.report, text=_sentence(err),
            )  # fmt: skip
            return _html(page, 409)
        except (ReportError, ScheduleError) as err:
            page = pages.report_page(
                fields, session.supervisor, session.csrf_token, text=_sentence(err)
            )
            return _html(page, 400)
        return _headers(
            Response(
                content,
                media_type=data.FORMATS[fmt],
                headers={"Content-Disposition": f'attachment; filename="{asked.file_name(fmt)}"'},
            )
        )

    router.add_api_route("/", signed_in(board), methods=["GET"])
    router.add_api_route("/report", signed_in(report), methods=["GET"])
    router.add_api_route("/report/download", signed_in(download), methods=["GET"])

    @router.get("/web/web.css")
    def stylesheet() -> Response:
        css = resources.files("central.web").joinpath("static", "web.css").read_bytes()
        return _headers(Response(css, media_type="text/css; charset=utf-8"))

    return router


def _report_fields(request: Request) -> dict[str, str]:
    query = request.query_params
    return {
        name: query.get(name, "")[:200]
        for name in ("kind", "from", "to", "person", "team", "site")
        if query.get(name)
    }


def _asked(fields: dict[str, str]) -> data.ReportRequest:
    return data.report_request(
        fields.get("kind"),
        fields.get("from"),
        fields.get("to"),
        fields.get("person"),
        fields.get("team"),
        fields.get("site"),
    )


def _sentence(err: ClockfaceError) -> str:
    text = " ".join(str(err).split())
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _html(text: str, status: int = 200) -> Response:
    return _headers(HTMLResponse(text, status_code=status))


def _redirect(where: str) -> Response:
    return _headers(RedirectResponse(where, status_code=303))
