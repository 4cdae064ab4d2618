"""Who may use the service: :class:`AccessMixin` (sites, kiosks and their tokens,
admins, and ``authenticate``: who a token belongs to)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from central import tokens
from central.store_base import StoreBase
from central.store_records import AdminInfo, IssuedKiosk, KioskInfo, Principal, Site, _chain_state
from central.store_values import (
    _check_name,
    _check_zone,
    _known_name,
    _opt_int,
    _parse,
    _parse_opt,
)
from clockface.errors import (
    AuthenticationError,
    CentralConflictError,
    CentralNotFoundError,
    CentralValueError,
)
from clockface.roster import check_label


class AccessMixin(StoreBase):
    """Sites, kiosks, tokens and admins."""

    # ----------------------------------------------------------------- sites
    def add_site(self, name: str, timezone: str) -> Site:
        """Add a site (where kiosks stand) with its IANA time zone: the zone of the
        schedule site of that name, if there is one (CentralConflictError otherwise)."""
        name = check_label(name, "a site name", 100)
        timezone = _check_zone(timezone)
        sites = self._t["sites"]
        now = self._now()
        with self._write("adding a site") as conn:
            if conn.execute(sa.select(sites.c.id).where(sites.c.name == name)).first():
                raise CentralConflictError(f"site {name!r} already exists")
            schedule_sites = self._t["schedule_sites"]
            zone = conn.execute(
                sa.select(schedule_sites.c.timezone).where(schedule_sites.c.name == name)
            ).scalar_one_or_none()
            if zone is not None and zone != timezone:
                raise CentralConflictError(
                    f"site {name!r}: the schedule site of that name (clockface schedule) is "
                    f"in {zone}, not {timezone}; give the same zone to both"
                )
            conn.execute(sa.insert(sites).values(name=name, timezone=timezone, created_utc=now))
            self._audit(conn, "site", "add", name, f"timezone {timezone}", now)
        return Site(name, timezone, _parse(now))

    def sites(self) -> list[Site]:
        sites = self._t["sites"]
        with self._read("reading sites") as conn:
            rows = conn.execute(
                sa.select(sites.c.name, sites.c.timezone, sites.c.created_utc).order_by(
                    sites.c.name
                )
            ).all()
        return [Site(r.name, r.timezone, _parse(r.created_utc)) for r in rows]

    # ----------------------------------------------------------------- kiosks and tokens
    def create_kiosk(self, name: str, site: str) -> IssuedKiosk:
        """Add a kiosk at ``site`` and make its token (returned once, stored hashed)."""
        name = _check_name(name, "a kiosk name")
        site = check_label(site, "a site name", 100)
        sites, kiosks = self._t["sites"], self._t["kiosks"]
        now = self._now()
        token = tokens.new_token("kiosk")
        with self._write("adding a kiosk") as conn:
            site_id = conn.execute(sa.select(sites.c.id).where(sites.c.name == site)).scalar()
            if site_id is None:
                raise CentralNotFoundError(
                    f"no site {site!r}; add it first (clockface central site add)"
                )
            if conn.execute(sa.select(kiosks.c.id).where(kiosks.c.name == name)).first():
                raise CentralConflictError(f"kiosk {name!r} already exists; choose another name")
            kiosk_id = conn.execute(
                sa.insert(kiosks)
                .values(name=name, site_id=site_id, created_utc=now, clock_flagged=False)
                .returning(kiosks.c.id)
            ).scalar_one()
            self._insert_token(conn, token, name, kiosk_id, now)
            self._audit(conn, "kiosk", "add", name, f"site {site}, token {token.token_id}", now)
            info = self._kiosk_infos(conn, name)[0]
        return IssuedKiosk(info, token.text)

    def rotate_kiosk_token(self, name: str) -> str:
        """A new token for kiosk ``name``; its old tokens are revoked in the same
        transaction. Returns the new token's text (show it once)."""
        name = _known_name(name, "kiosk")
        kiosks, tok = self._t["kiosks"], self._t["tokens"]
        now = self._now()
        token = tokens.new_token("kiosk")
        with self._write("rotating a kiosk token") as conn:
            row = conn.execute(
                sa.select(kiosks.c.id, kiosks.c.revoked_utc).where(kiosks.c.name == name)
            ).first()
            if row is None:
                raise CentralNotFoundError(f"no kiosk {name!r}")
            if row.revoked_utc is not None:
                raise CentralValueError(
                    f"kiosk {name!r} is revoked; add a new kiosk instead of rotating its token"
                )
            conn.execute(
                sa.update(tok)
                .where(tok.c.kiosk_id == row.id, tok.c.revoked_utc.is_(None))
                .values(revoked_utc=now)
            )
            self._insert_token(conn, token, name, row.id, now)
            self._audit(conn, "kiosk", "rotate", name, f"new token {token.token_id}", now)
        return token.text

    def revoke_kiosk(self, name: str) -> KioskInfo:
        """Revoke kiosk ``name`` and every token of it: it gets 401 from now on."""
        name = _known_name(name, "kiosk")
        kiosks, tok = self._t["kiosks"], self._t["tokens"]
        now = self._now()
        with self._write("revoking a kiosk") as conn:
            row = conn.execute(
                sa.select(kiosks.c.id, kiosks.c.revoked_utc).where(kiosks.c.name == name)
            ).first()
            if row is None:
                raise CentralNotFoundError(f"no kiosk {name!r}")
            if row.revoked_utc is None:
                conn.execute(sa.update(kiosks).where(kiosks.c.id == row.id).values(revoked_utc=now))
                conn.execute(
                    sa.update(tok)
                    .where(tok.c.kiosk_id == row.id, tok.c.revoked_utc.is_(None))
                    .values(revoked_utc=now)
                )
                self._audit(conn, "kiosk", "revoke", name, None, now)
            return self._kiosk_infos(conn, name)[0]

    def kiosks(self) -> list[KioskInfo]:
        """Every kiosk (revoked ones too), by name."""
        with self._read("reading kiosks") as conn:
            return self._kiosk_infos(conn)

    def get_kiosk(self, name: str) -> KioskInfo:
        name = _known_name(name, "kiosk")
        with self._read("reading a kiosk") as conn:
            found = self._kiosk_infos(conn, name)
        if not found:
            raise CentralNotFoundError(f"no kiosk {name!r}")
        return found[0]

    def create_admin(self, name: str) -> str:
        """An admin token for ``name`` (an HR admin or a tool); returns its text, once."""
        name = _check_name(name, "an admin name")
        tok = self._t["tokens"]
        now = self._now()
        token = tokens.new_token("admin")
        with self._write("adding an admin") as conn:
            taken = conn.execute(
                sa.select(tok.c.token_id).where(
                    tok.c.kind == "admin", tok.c.owner == name, tok.c.revoked_utc.is_(None)
                )
            ).first()
            if taken:
                raise CentralConflictError(
                    f"admin {name!r} already has a valid token; revoke it first"
                )
            self._insert_token(conn, token, name, None, now)
            self._audit(conn, "admin", "add", name, f"token {token.token_id}", now)
        return token.text

    def admins(self) -> list[AdminInfo]:
        """Every admin token (revoked ones too), by name then age."""
        tok = self._t["tokens"]
        with self._read("reading admins") as conn:
            rows = conn.execute(
                sa.select(tok.c.owner, tok.c.token_id, tok.c.created_utc, tok.c.revoked_utc)
                .where(tok.c.kind == "admin")
                .order_by(tok.c.owner, tok.c.created_utc)
            ).all()
        return [
            AdminInfo(r.owner, r.token_id, _parse(r.created_utc), _parse_opt(r.revoked_utc))
            for r in rows
        ]

    def revoke_admin(self, name: str) -> int:
        """Revoke every valid token of admin ``name``; returns how many."""
        name = _known_name(name, "admin")
        tok = self._t["tokens"]
        now = self._now()
        with self._write("revoking an admin") as conn:
            known = conn.execute(
                sa.select(tok.c.token_id).where(tok.c.kind == "admin", tok.c.owner == name)
            ).first()
            if known is None:
                raise CentralNotFoundError(f"no admin {name!r}")
            count = conn.execute(
                sa.update(tok)
                .where(tok.c.kind == "admin", tok.c.owner == name, tok.c.revoked_utc.is_(None))
                .values(revoked_utc=now)
            ).rowcount
            if count:
                self._audit(conn, "admin", "revoke", name, f"{count} tokens", now)
        return int(count)

    def authenticate(self, token_text: str) -> Principal:
        """Who ``token_text`` belongs to; AuthenticationError for a malformed, unknown,
        wrong or revoked token (or the token of a revoked kiosk)."""
        presented = tokens.parse_token(token_text)
        tok, kiosks = self._t["tokens"], self._t["kiosks"]
        with self._read("checking a token") as conn:
            row = conn.execute(
                sa.select(
                    tok.c.kind,
                    tok.c.owner,
                    tok.c.kiosk_id,
                    tok.c.secret_sha256,
                    tok.c.revoked_utc,
                    kiosks.c.revoked_utc.label("kiosk_revoked_utc"),
                )
                .select_from(tok.outerjoin(kiosks, kiosks.c.id == tok.c.kiosk_id))
                .where(tok.c.token_id == presented.token_id)
            ).first()
        stored = None if row is None else row.secret_sha256
        if not tokens.secret_matches(presented.secret, stored) or row is None:
            raise AuthenticationError("unknown token")
        if row.kind != presented.kind:
            raise AuthenticationError("unknown token")
        if row.revoked_utc is not None or row.kiosk_revoked_utc is not None:
            raise AuthenticationError("this token has been revoked")
        return Principal(
            kind=presented.kind, name=row.owner, token_id=presented.token_id, kiosk_id=row.kiosk_id
        )

    def _insert_token(
        self,
        conn: sa.Connection,
        token: tokens.NewToken,
        owner: str,
        kiosk_id: int | None,
        now: str,
    ) -> None:
        conn.execute(
            sa.insert(self._t["tokens"]).values(
                token_id=token.token_id,
                kind=token.kind,
                owner=owner,
                kiosk_id=kiosk_id,
                secret_sha256=token.secret_sha256,
                created_utc=now,
            )
        )

    def _kiosk_infos(self, conn: sa.Connection, name: str | None = None) -> list[KioskInfo]:
        kiosks, sites, logs = self._t["kiosks"], self._t["sites"], self._t["kiosk_logs"]

        def over_logs(value: sa.ColumnElement[Any], label: str) -> sa.Label[Any]:
            return (
                sa.select(value)
                .where(logs.c.kiosk_id == kiosks.c.id)
                .scalar_subquery()
                .label(label)
            )

        query = sa.select(
            kiosks,
            sites.c.name.label("site_name"),
            over_logs(
                sa.func.coalesce(sa.func.sum(logs.c.max_seq - logs.c.contiguous_seq), 0), "backlog"
            ),
            over_logs(sa.func.coalesce(sa.func.max(logs.c.chain_seq), 0), "chain_checked"),
            over_logs(sa.func.min(logs.c.chain_break_seq), "chain_break"),
            over_logs(sa.func.min(logs.c.unchained_seq), "chain_unchained"),
        ).join(sites, sites.c.id == kiosks.c.site_id)
        if name is not None:
            query = query.where(kiosks.c.name == name)
        rows = conn.execute(query.order_by(kiosks.c.name)).all()
        return [
            KioskInfo(
                name=r.name,
                site=r.site_name,
                created_utc=_parse(r.created_utc),
                revoked_utc=_parse_opt(r.revoked_utc),
                last_seen_utc=_parse_opt(r.last_seen_utc),
                clock_skew_seconds=r.clock_skew_seconds,
                clock_flagged=bool(r.clock_flagged),
                gallery_version=None if r.gallery_version is None else int(r.gallery_version),
                backlog=int(r.backlog),
                chain_state=_chain_state(
                    int(r.chain_checked), _opt_int(r.chain_break), _opt_int(r.chain_unchained)
                ),
                chain_break_seq=_opt_int(r.chain_break),
                unchained_seq=_opt_int(r.chain_unchained),
            )
            for r in rows
        ]
