"""The kiosk's HTTP client for the central service's three kiosk endpoints.

:class:`CentralClient` wraps an ``httpx.Client`` (injected: tests pass one with an
``httpx.MockTransport``, or a real one pointed at a server on loopback) and turns every
answer into a protocol model or one of the sync errors, each a one-line message:

- :class:`~clockface.errors.SyncUnavailableError`: the service could not be reached or
  said "not now" (connect error, timeout, dropped connection, 5xx, 408, 429), with the
  ``Retry-After`` it sent, in seconds;
- :class:`~clockface.errors.SyncAuthError`: 401 or 403, the token was refused;
- :class:`~clockface.errors.SyncTooLargeError`: 413 (or a body known to be too big
  before it is sent);
- :class:`~clockface.errors.SyncRefusedError`: any other 4xx, with its status;
- :class:`~clockface.errors.SyncProtocolError`: an answer the protocol does not allow.

It retries nothing itself: that is the agent's job (``sync/agent.py``). It never logs
or repeats the token.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from clockface.errors import (
    SyncAuthError,
    SyncProtocolError,
    SyncRefusedError,
    SyncTooLargeError,
    SyncUnavailableError,
)
from sync.protocol import (
    MAX_BODY_BYTES,
    EventBatch,
    GalleryApplied,
    GalleryDelta,
    IngestResponse,
    LogState,
)

M = TypeVar("M", bound=pydantic.BaseModel)

_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_DETAIL = 200


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP date; None if absent
    or unreadable; never negative; ``inf`` for more digits than a float holds (the
    caller caps every wait)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        try:
            return float(int(text))
        except (OverflowError, ValueError):  # more digits than a float (or int()) holds
            return math.inf
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in the date: UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _detail(response: httpx.Response) -> str:
    """The one line an error answer gives (its Problem ``detail``), shortened."""
    text = ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, str):
            text = detail
        elif isinstance(detail, list) and detail and isinstance(detail[0], dict):
            # FastAPI's validation errors: a list of {loc, msg, ...}; the first will do.
            first = detail[0]
            location = ".".join(str(part) for part in first.get("loc", ()))
            text = f"{location}: {first.get('msg', '')}".strip(": ")
    if not text:
        text = response.reason_phrase or f"HTTP {response.status_code}"
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


def _network_reason(err: httpx.HTTPError) -> str:
    reason = " ".join(str(err).split())
    name = type(err).__name__
    return f"{name}: {reason}" if reason else name


class CentralClient:
    """The central service at ``server`` as this kiosk (bearer ``token``) sees it."""

    def __init__(
        self,
        http: httpx.Client,
        server: str,
        token: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._http = http
        self._server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def server(self) -> str:
        return self._server

    def __repr__(self) -> str:  # never the token
        return f"CentralClient({self._server!r})"

    # ----------------------------------------------------------------- endpoints
    def push_events(self, batch: EventBatch) -> IngestResponse:
        """``POST /v1/events``: the service's per-event answer."""
        body = batch.model_dump_json().encode("utf-8")
        if len(body) > MAX_BODY_BYTES:
            raise SyncTooLargeError(
                f"a batch of {len(batch.events)} events is {len(body)} bytes, over the "
                f"service's {MAX_BODY_BYTES}"
            )
        response = self._request("POST", "/v1/events", content=body)
        return self._model(response, IngestResponse)

    def log_state(self, log_id: str) -> LogState:
        """``GET /v1/logs/{log_id}``: how the service holds this kiosk's log."""
        response = self._request("GET", f"/v1/logs/{quote(log_id, safe='')}")
        return self._model(response, LogState)

    def fetch_gallery(self, since: int, limit: int) -> GalleryDelta:
        """``GET /v1/gallery?since=&limit=``: one page of roster changes."""
        response = self._request("GET", "/v1/gallery", params={"since": since, "limit": limit})
        return self._model(response, GalleryDelta)

    def confirm_gallery(self, version: int) -> None:
        """``POST /v1/gallery/applied``: this kiosk now holds ``version``."""
        body = GalleryApplied(version=version).model_dump_json().encode("utf-8")
        self._request("POST", "/v1/gallery/applied", content=body)

    # ----------------------------------------------------------------- internals
    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        url = self._server + path
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method, url, content=content, params=params, headers=headers
            )
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as err:
            raise SyncUnavailableError(
                f"the central service at {self._server} could not be reached: "
                f"{_network_reason(err)}"
            ) from err
        except httpx.HTTPError as err:
            raise SyncProtocolError(
                f"cannot talk to the central service at {self._server}: {_network_reason(err)}"
            ) from err
        status = response.status_code
        if 200 <= status < 300:
            return response
        what = f"{method} {path}"
        if status in (401, 403):
            raise SyncAuthError(
                f"the central service refused this kiosk's token ({status}): "
                f"{_detail(response)}; check token_file, or ask for a new token"
            )
        if status == 413:
            raise SyncTooLargeError(
                f"the central service refused {what} as too large (413): {_detail(response)}"
            )
        if status >= 500 or status in _RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise SyncUnavailableError(
                f"the central service answered {what} with {status}: {_detail(response)}",
                retry_after=retry_after,
            )
        if 400 <= status < 500:
            raise SyncRefusedError(
                f"the central service refused {what} ({status}): {_detail(response)}",
                status=status,
            )
        where = response.headers.get("Location")
        moved = f" (to {where}: set server to that URL)" if where else ""
        raise SyncProtocolError(
            f"the central service answered {what} with {status}{moved}; expected 2xx"
        )

    def _model(self, response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except pydantic.ValidationError as err:
            errors = err.errors()
            location = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
            message = errors[0]["msg"] if errors else "invalid"
            raise SyncProtocolError(
                f"the central service's answer is not a valid {model.__name__} "
                f"({len(errors)} errors; first: {location or 'body'}: {message})"
            ) from err
