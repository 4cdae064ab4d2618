"""The web page's HTML: plain forms and tables, no script, every value escaped.

Each function returns a whole document as text. Whatever came from a person or a
database (names, teams, sites, messages, form values) goes through :func:`esc` on its
way in, in text and in attributes alike. The one stylesheet is ours
(``/web/web.css``); nothing is loaded from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from central.web.board import Board, SiteBoard
from central.web.data import KINDS, ReportRequest, rows_sha256
from reports.model import PersonInfo
from reports.tables import Report, Table

STYLESHEET = "/web/web.css"
KIND_LABELS = {
    "late": "Late arrivals",
    "early": "Early departures",
    "absent": "Absences",
    "hours": "Hours worked",
    "summary": "Summary per person",
    "anomalies": "Anomalies",
}


def esc(value: object) -> str:
    """Text for HTML, in element content or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def document(
    title: str,
    body: str,
    *,
    user: str | None = None,
    csrf_token: str | None = None,
    current: str = "",
    refresh_seconds: int | None = None,
    main_class: str = "",
) -> str:
    """A whole page: head, the header with navigation and sign-out (when signed in)."""
    refresh = (
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">\n' if refresh_seconds else ""
    )
    header = ""
    if user is not None and csrf_token is not None:
        here = ' aria-current="page"'
        links = "".join(
            f'<a href="{href}"{here if href == current else ""}>{label}</a>'
            for href, label in (("/", "Today"), ("/report", "Reports"))
        )
        header = (
            f"<header><nav>{links}</nav>"
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf_token" value="{esc(csrf_token)}">'
            f'<span class="who">Signed in as <strong id="user">{esc(user)}</strong></span>'
            '<button type="submit" id="sign-out">Sign out</button></form></header>\n'
        )
    classes = f' class="{esc(main_class)}"' if main_class else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="referrer" content="no-referrer">\n{refresh}'
        f"<title>{esc(title)} \N{MIDDLE DOT} clockface</title>\n"
        f'<link rel="stylesheet" href="{STYLESHEET}">\n</head>\n<body>\n'
        f"{header}<main{classes}>\n{body}\n</main>\n</body>\n</html>\n"
    )


def message(text: str | None) -> str:
    return f'<p class="message" role="alert" id="message">{esc(text)}</p>\n' if text else ""


# --------------------------------------------------------------------- sign-in
def login_page(login_token: str, text: str | None = None, name: str = "") -> str:
    body = (
        "<h1>clockface \N{EN DASH} supervisors</h1>\n"
        f"{message(text)}"
        '<form method="post" action="/login" id="login">\n'
        f'<input type="hidden" name="login_token" value="{esc(login_token)}">\n'
        '<label>Name <input name="name" id="name" autocomplete="username" required '
        f'maxlength="64" value="{esc(name)}"></label>\n'
        '<label>Password <input type="password" name="password" id="password" '
        'autocomplete="current-password" required maxlength="1024"></label>\n'
        '<button type="submit" id="sign-in">Sign in</button>\n</form>'
    )
    return document("Sign in", body, main_class="login")


def problem_page(title: str, text: str, *, user: str | None = None, csrf: str | None = None) -> str:
    return document(title, f"<h1>{esc(title)}</h1>\n{message(text)}", user=user, csrf_token=csrf)


# --------------------------------------------------------------------- today
def board_page(
    board: Board | None,
    user: str,
    csrf_token: str,
    refresh_seconds: int,
    text: str | None = None,
) -> str:
    parts = ["<h1>Today</h1>", message(text)]
    if board is not None:
        if not board.sites:
            parts.append('<p class="none">No sites have schedules.</p>')
        parts.extend(_site(site) for site in board.sites)
    return document(
        "Today",
        "\n".join(parts),
        user=user,
        csrf_token=csrf_token,
        current="/",
        refresh_seconds=refresh_seconds,
    )


def _site(site: SiteBoard) -> str:
    counts = (
        f"{site.scheduled} scheduled, {len(site.in_now)} in now, {len(site.late)} late, "
        f"{len(site.not_arrived)} not arrived, {len(site.off)} off"
    )
    return (
        f'<section class="site" data-site="{esc(site.site)}">\n'
        f"<h2>{esc(site.site)} \N{EN DASH} {site.today:%A %Y-%m-%d}, "
        f"{site.local_now:%H:%M} ({esc(site.timezone)})</h2>\n"
        f'<p class="counts">{esc(counts)}</p>\n'
        + _list(
            "In now",
            "in-now",
            ("Name", "Team", "Shift", "In since"),
            [(a.person, (a.shift, f"{a.at:%H:%M}")) for a in site.in_now],
        )
        + _list(
            "Late",
            "late",
            ("Name", "Team", "Shift", "Arrived", "Minutes late"),
            [(a.person, (a.shift, f"{a.at:%H:%M}", a.late_minutes)) for a in site.late],
        )
        + _list(
            "Not arrived",
            "not-arrived",
            ("Name", "Team", "Shift", "Late after"),
            [(w.person, (w.shift, f"{w.late_after:%H:%M}")) for w in site.not_arrived],
        )
        + _list(
            "Expected later",
            "expected",
            ("Name", "Team", "Shift", "Starts"),
            [(w.person, (w.shift, f"{w.start:%H:%M}")) for w in site.expected],
        )
        + _list(
            "Off today",
            "off",
            ("Name", "Team", "Shift", "Why"),
            [(o.person, (o.shift, o.why)) for o in site.off],
        )
        + "</section>"
    )


def _list(
    title: str,
    kind: str,
    headers: Sequence[str],
    rows: Sequence[tuple[PersonInfo, tuple[str | int | None, ...]]],
) -> str:
    head = f'<h3>{esc(title)} <span class="count">({len(rows)})</span></h3>\n'
    if not rows:
        return head + f'<p class="none {kind}">Nobody.</p>\n'
    cells = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for person, rest in rows:
        values = "".join(
            f'<td class="num">{v}</td>' if isinstance(v, int) else f"<td>{esc(v)}</td>"
            for v in rest
        )
        body.append(
            f'<tr data-person="{esc(person.person_id)}"><td class="name">{esc(person.name)}</td>'
            f"<td>{esc(person.team)}</td>{values}</tr>"
        )
    return (
        head
        + f'<table class="{kind}"><thead><tr>{cells}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table>\n"
    )


# --------------------------------------------------------------------- reports
def report_page(
    fields: dict[str, str],
    user: str,
    csrf_token: str,
    *,
    request: ReportRequest | None = None,
    report: Report | None = None,
    text: str | None = None,
) -> str:
    parts = ["<h1>Reports</h1>", _report_form(fields), message(text)]
    if report is not None and request is not None:
        parts.append(f'<h2 id="report-title">{esc(report.title)}</h2>')
        parts.append(_downloads(fields, rows_sha256(report)))
        parts.append(_table(report.table, "report"))
        parts.append(f"<h2>{esc(report.anomalies.title)}</h2>")
        parts.append(_table(report.anomalies, "anomalies"))
    return document(
        "Reports", "\n".join(parts), user=user, csrf_token=csrf_token, current="/report"
    )


def _report_form(fields: dict[str, str]) -> str:
    chosen = fields.get("kind", "late")
    options = "".join(
        f'<option value="{k}"{" selected" if k == chosen else ""}>{esc(KIND_LABELS[k])}</option>'
        for k in KINDS
    )

    def box(name: str, label: str, kind: str = "text") -> str:
        required = " required" if kind == "date" else ""
        return (
            f'<label>{esc(label)} <input type="{kind}" name="{name}" id="{name}" '
            f'value="{esc(fields.get(name, ""))}"{required}></label>'
        )

    return (
        '<form method="get" action="/report" class="report-form" id="report-form">\n'
        f'<label>Report <select name="kind" id="kind">{options}</select></label>\n'
        f"{box('from', 'From', 'date')}\n{box('to', 'To', 'date')}\n"
        f"{box('person', 'Person (id)')}\n{box('team', 'Team')}\n{box('site', 'Site')}\n"
        '<button type="submit" id="show">Show</button>\n</form>'
    )


def _downloads(fields: dict[str, str], rows: str) -> str:
    """The download buttons: one GET form with the report's fields and the digest of the
    rows shown (a download whose report has other rows by then is refused: 409)."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{esc(fields[name])}">'
        for name in ("kind", "from", "to", "person", "team", "site")
        if fields.get(name)
    )
    return (
        '<form method="get" action="/report/download" class="downloads" id="downloads">'
        f'{hidden}<input type="hidden" name="rows_sha256" value="{esc(rows)}">'
        '<button type="submit" name="format" value="csv" id="download-csv">Download CSV</button>'
        '<button type="submit" name="format" value="csv-verify" id="download-csv-verify">'
        "Verification record for the CSV</button>"
        '<button type="submit" name="format" value="xlsx" id="download-xlsx">'
        "Download XLSX</button></form>\n"
        '<p class="note downloads-note" id="verify-note">Save the CSV and its verification '
        "record in one folder to check the CSV later with <code>clockface report verify "
        "FILE.csv --central-db DATABASE</code> (the XLSX carries its own).</p>"
    )


def _table(table: Table, kind: str) -> str:
    from reports.tables import text_of

    if not table.rows:
        return f'<p class="none" id="{kind}-none">None.</p>'
    head = "".join(f'<th data-key="{esc(c.key)}">{esc(c.header)}</th>' for c in table.columns)
    rows = []
    for row in table.rows:
        cells = "".join(
            ('<td class="num">' if c.kind in ("int", "float") else "<td>")
            + esc(text_of(cell, c.kind))
            + "</td>"
            for c, cell in zip(table.columns, row, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="{kind}" id="{kind}"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table>"
    )
