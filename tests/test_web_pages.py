"""The supervisors' web page over a real uvicorn server on loopback, spoken to with httpx.

Sign-in, sessions and refusals run on SQLite and PostgreSQL; the board and reports on
SQLite, with the database filled through the real paths (sites, kiosk and people through
the store, schedules through ScheduleStore, events posted by the kiosk API). The store's
clock is a settable one: "now" is Monday 4 March 2024, 10:30 in Berlin. A CSV and its
verification record, downloaded from the page into one folder, are checked by the real
``clockface report verify --central-db`` (click's CliRunner) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from central.config import CentralConfig
from central.web import data
from central.web.accounts import Accounts
from central.web.sessions import Sessions
from clockface.cli import main
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.web import (
    EVIL,
    PASSWORD,
    Site,
    csrf_of,
    fill,
    login_token,
    running,
    sign_in,
)

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def site(database: str) -> Iterator[Site]:
    with running(database) as s:
        yield s


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Site]:
    with running(str(tmp_path / "central.db")) as s:
        yield s


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "'unsafe-inline'" not in csp


def cookie_header(response: httpx.Response, name: str) -> str:
    found = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def assert_to_login(response: httpx.Response) -> None:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    assert response.headers["location"] == "/login"
    assert_secure(response)


# --------------------------------------------------------------------- sign-in
def test_nothing_is_readable_without_a_session(lite: Site) -> None:
    with lite.client() as client:
        for path in (
            "/",
            "/report",
            "/report?kind=late&from=2024-03-01&to=2024-03-04",
            "/report/download?kind=late&from=2024-03-01&to=2024-03-04&format=csv",
            "/report/download?kind=late&from=2024-03-01&to=2024-03-04&format=csv-verify",
            "/report/download?kind=late&from=2024-03-01&to=2024-03-04&format=xlsx",
        ):
            assert_to_login(client.get(path))
        client.cookies.set("clockface_session", "x" * 43)
        assert_to_login(client.get("/"))
        page = client.get("/login")
    assert page.status_code == 200 and "<form" in page.text and 'type="password"' in page.text
    assert_secure(page)
    cookie = cookie_header(page, "clockface_login").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/login" in cookie
    assert "secure" not in cookie
    css = httpx.get(f"{lite.base}/web/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "openapi" not in css.text and "/login" not in httpx.get(f"{lite.base}/openapi.json").text


def test_sign_in_a_page_and_sign_out(site: Site) -> None:
    with site.client() as client:
        signed = sign_in(client)
        assert signed.status_code == 303 and signed.headers["location"] == "/", signed.text
        assert_secure(signed)
        cookie = cookie_header(signed, "clockface_session")
        token = cookie.split(";")[0].split("=", 1)[1]
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
        assert "secure" not in lowered and len(token) == 43
        assert client.get("/login").headers.get("location") == "/"  # signed in already
        page = client.get("/report")
        assert page.status_code == 200 and 'id="user">ada<' in page.text
        assert_secure(page)
        csrf = csrf_of(page)

        refused = client.post("/logout", data={})
        assert refused.status_code == 403 and "nothing was done" in refused.text
        assert_secure(refused)
        wrong = client.post("/logout", data={"csrf_token": "A" * 43})
        assert wrong.status_code == 403
        assert client.get("/report").status_code == 200  # still signed in

        out = client.post("/logout", data={"csrf_token": csrf})
        assert_to_login(out)
        assert (
            'clockface_session=""' in out.headers["set-cookie"]
            or "Max-Age=0" in (out.headers["set-cookie"])
        )
        client.cookies.set("clockface_session", token)  # the old cookie is worth nothing now
        assert_to_login(client.get("/report"))
    actions = [(a.action, a.subject) for a in site.store.audit() if a.kind == "supervisor"]
    assert actions[-2:] == [("login", "ada"), ("logout", "ada")]


def test_wrong_passwords_and_the_lock_out(site: Site) -> None:
    with site.client() as client:
        for _ in range(5):
            wrong = sign_in(client, password="not the password")
            assert wrong.status_code == 401 and "Not signed in" in wrong.text
            assert "clockface_session" not in wrong.headers.get("set-cookie", "")
        locked = sign_in(client)  # the right password, but locked
        assert locked.status_code == 401
        unknown = sign_in(client, name="nobody")
        assert unknown.status_code == 401
        assert re.sub(r'value="[^"]*"', "", unknown.text) == re.sub(
            r'value="[^"]*"', "", locked.text
        ).replace('"ada"', '"nobody"')  # the same page whatever the reason
        site.clock.advance(minutes=15)
        assert sign_in(client).status_code == 303


def test_the_sign_in_form_needs_its_own_token(lite: Site) -> None:
    with lite.client() as client, lite.client() as other:
        token = login_token(other)
        no_cookie = client.post(
            "/login", data={"name": "ada", "password": PASSWORD, "login_token": token}
        )
        assert no_cookie.status_code == 403 and "sign in again" in no_cookie.text
        login_token(client)  # a cookie of its own, but the other's token
        mixed = client.post(
            "/login", data={"name": "ada", "password": PASSWORD, "login_token": token}
        )
        assert mixed.status_code == 403
        nothing = client.post("/login", data={"name": "ada", "password": PASSWORD})
        assert nothing.status_code == 403
        as_json = client.post(
            "/login", json={"name": "ada", "password": PASSWORD, "login_token": login_token(client)}
        )
        assert as_json.status_code == 403
        assert "clockface_session" not in client.cookies
        assert sign_in(client).status_code == 303  # and the real form works
    failures = [a for a in lite.store.audit() if a.kind == "supervisor" and a.action == "login"]
    assert len(failures) == 1  # refused forms never reach the password check


@pytest.fixture
def hourly(database: str) -> Iterator[Site]:
    """A service whose sessions last an hour at most (web_session_hours = 1)."""
    config = CentralConfig(database=database, web_session_hours=1, web_idle_minutes=20)
    with running(database, config) as s:
        yield s


def test_sessions_expire_when_idle_and_at_the_end_of_their_lifetime(hourly: Site) -> None:
    site = hourly
    with site.client() as client:
        assert sign_in(client).status_code == 303
        site.clock.advance(minutes=19, seconds=59)
        assert client.get("/report").status_code == 200
        site.clock.advance(minutes=19, seconds=59)
        assert client.get("/report").status_code == 200  # each request starts the idle time
        site.clock.advance(minutes=20)
        expired = client.get("/report")
        assert_to_login(expired)
        assert "clockface_session" in expired.headers.get("set-cookie", "")  # cleared

        assert sign_in(client).status_code == 303
        for _ in range(3):
            site.clock.advance(minutes=19, seconds=59)
            assert client.get("/report").status_code == 200
        site.clock.advance(seconds=3)  # an hour after sign-in
        assert_to_login(client.get("/report"))


def test_a_disabled_account_is_signed_out_at_once(site: Site) -> None:
    with site.client() as client:
        assert sign_in(client).status_code == 303
        assert client.get("/report").status_code == 200
        Accounts(site.store).disable("ada")
        assert_to_login(client.get("/report"))
        assert sign_in(client).status_code == 401
        Accounts(site.store).enable("ada")
        assert sign_in(client).status_code == 303
        ada = Accounts(site.store).get("ada")
        assert Sessions(site.store).count(ada.id) == 1


def test_the_cookie_is_secure_over_https_or_when_configured(tmp_path: Path) -> None:
    proxied = CentralConfig(database=str(tmp_path / "a.db"), trusted_proxies="127.0.0.1")
    with running(proxied.database, proxied) as plain, plain.client() as client:
        # X-Forwarded-Proto from the TLS proxy named in trusted_proxies (here loopback).
        client.headers["X-Forwarded-Proto"] = "https"
        page = client.get("/login")
        assert "secure" in cookie_header(page, "clockface_login").lower()
    with running(str(tmp_path / "c.db")) as plain, plain.client() as client:
        # From anyone else the header is not believed: plain http, no Secure.
        client.headers["X-Forwarded-Proto"] = "https"
        page = client.get("/login")
        assert "secure" not in cookie_header(page, "clockface_login").lower()
    config = CentralConfig(database=str(tmp_path / "b.db"), web_secure_cookies=True)
    with running(config.database, config) as strict, strict.client() as client:
        page = client.get("/login")
        assert "secure" in cookie_header(page, "clockface_login").lower()
        nonce = client.cookies["clockface_login"]
        token = re.search(r'name="login_token" value="([0-9a-f]{64})"', page.text)
        assert token
        # httpx keeps a Secure cookie from plain http: send it back by hand.
        signed = httpx.post(
            f"{strict.base}/login",
            data={"name": "ada", "password": PASSWORD, "login_token": token.group(1)},
            headers={"Cookie": f"clockface_login={nonce}"},
        )
        assert signed.status_code == 303
        assert "secure" in cookie_header(signed, "clockface_session").lower()


# --------------------------------------------------------------------- the board
def test_todays_board_shows_who_is_in_late_not_arrived_and_off(lite: Site) -> None:
    fill(lite)
    with lite.client() as client:
        assert sign_in(client).status_code == 303
        page = client.get("/")
    assert page.status_code == 200, page.text
    assert_secure(page)
    text = page.text
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert '<meta http-equiv="refresh" content="60">' in text
    assert "Monday 2024-03-04, 10:30 (Europe/Berlin)" in text

    def people(kind: str) -> list[str]:
        table = re.search(rf'<table class="{kind}">(.*?)</table>', text, re.S)
        return re.findall(r'data-person="([^"]+)"', table.group(1)) if table else []

    assert people("in-now") == ["eve", "bob"]  # by name: "<" before "B"
    assert people("late") == ["bob"]
    assert people("not-arrived") == ["carl"]
    assert people("expected") == ["fay"]
    assert people("off") == ["dan"]
    late = re.search(r'<tr data-person="bob">(.*?)</tr>', text.split('class="late"')[1], re.S)
    assert (
        late
        and "<td>10:20</td>" not in late.group(1)
        and '<td class="num">20</td>' in (late.group(1))
    )
    assert "<td>09:20</td>" in late.group(1)  # arrived 09:20 local
    assert "5 scheduled, 2 in now, 1 late, 1 not arrived, 1 off" in text


def test_the_board_agrees_with_the_late_report_for_today(lite: Site) -> None:
    fill(lite)
    board = data.today_board(lite.store)
    (hq,) = board.sites
    made = data.make_report(lite.store, data.report_request("late", "2024-03-04", "2024-03-04"))
    assert [(a.person.person_id, a.late_minutes) for a in hq.late] == [
        (r[1], r[-1]) for r in made.table.rows
    ]
    absent = data.make_report(lite.store, data.report_request("absent", "2024-03-04", "2024-03-04"))
    assert {r[1] for r in absent.table.rows} == {"carl", "fay"}  # fay: not yet, but no arrival
    lite.clock.advance(hours=4)  # 14:30: fay is now late to arrive
    later = data.today_board(lite.store)
    assert [w.person.person_id for w in later.sites[0].not_arrived] == ["carl", "fay"]


def test_the_board_without_schedules_says_so(lite: Site) -> None:
    with lite.client() as client:
        assert sign_in(client).status_code == 303
        page = client.get("/")
    assert page.status_code == 200 and "No schedules are stored yet" in page.text


# --------------------------------------------------------------------- reports
def test_a_report_page_and_its_downloads(lite: Site) -> None:
    from openpyxl import load_workbook

    fill(lite)
    query = {"kind": "late", "from": "2024-02-26", "to": "2024-03-04"}
    expected = data.make_report(lite.store, data.report_request("late", "2024-02-26", "2024-03-04"))
    assert [(r[0], r[1], r[-1]) for r in expected.table.rows] == [
        (date(2024, 3, 1), "ada", 12),
        (date(2024, 3, 4), "bob", 20),
    ]
    with lite.client() as client:
        assert sign_in(client).status_code == 303
        page = client.get("/report", params=query)
        assert page.status_code == 200, page.text
        assert_secure(page)
        table = page.text.split('id="report"')[1].split("</table>")[0]
        rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
        assert len(rows) == 2 and "ada" in rows[0] and "bob" in rows[1]
        assert 'id="download-csv"' in page.text and 'id="download-xlsx"' in page.text
        assert 'id="download-csv-verify"' in page.text

        csv = client.get("/report/download", params={**query, "format": "csv"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.headers["content-disposition"] == (
            'attachment; filename="clockface-late-2024-02-26-to-2024-03-04.csv"'
        )
        assert_secure(csv)
        assert csv.content == data.render(expected, "csv")

        xlsx = client.get("/report/download", params={**query, "format": "xlsx"})
        assert xlsx.status_code == 200 and xlsx.headers["content-disposition"].endswith('.xlsx"')
        ours = load_workbook(io.BytesIO(xlsx.content))
        theirs = load_workbook(io.BytesIO(data.render(expected, "xlsx")))
        assert ours.sheetnames == [*theirs.sheetnames, "verification"]
        for name in theirs.sheetnames:
            assert [list(r) for r in ours[name].iter_rows(values_only=True)] == [
                list(r) for r in theirs[name].iter_rows(values_only=True)
            ]

        one = client.get("/report/download", params={**query, "person": "bob", "format": "csv"})
        assert one.text.count("\n") == 2 and "bob" in one.text  # header and bob's row

        summary = client.get("/report", params={**query, "kind": "summary"})
        assert summary.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in summary.text and EVIL not in summary.text


BAD_REQUESTS = (
    ({"kind": "late", "from": "2024-13-01", "to": "2024-03-04"}, "is not a date"),
    ({"kind": "late", "from": "yesterday", "to": "2024-03-04"}, "is not a date"),
    ({"kind": "late", "from": "2024-03-04", "to": "2024-03-01"}, "runs backwards"),
    ({"kind": "late", "from": "9999-12-01", "to": "9999-12-31"}, "outside the dates clockface"),
    ({"kind": "late", "from": "0001-01-01", "to": "0001-01-02"}, "1970-01-01 to 2199-12-31"),
    ({"kind": "late", "from": "2023-01-01", "to": "2024-01-02"}, "366 days at most"),
    ({"kind": "nonsense", "from": "2024-03-01", "to": "2024-03-04"}, "choose a report"),
    ({"kind": "late", "to": "2024-03-04"}, "give the from date"),
)


def test_bad_report_requests_are_a_message_with_400(lite: Site) -> None:
    fill(lite)
    with lite.client() as client:
        assert sign_in(client).status_code == 303
        for params, words in BAD_REQUESTS:
            page = client.get("/report", params=params)
            assert page.status_code == 400 and words in page.text.lower(), page.text
            assert 'role="alert"' in page.text and "Traceback" not in page.text
            assert_secure(page)
            for kind in ("csv", "csv-verify"):
                download = client.get("/report/download", params={**params, "format": kind})
                assert download.status_code == 400 and words in download.text.lower()
                assert "content-disposition" not in download.headers
        fmt = client.get(
            "/report/download",
            params={"kind": "late", "from": "2024-03-01", "to": "2024-03-04", "format": "pdf"},
        )
        assert fmt.status_code == 400 and "csv or xlsx, or csv-verify" in fmt.text
        good = {"kind": "late", "from": "2024-03-01", "to": "2024-03-04", "format": "csv"}
        for digest in ("xyz", "A" * 64, "0" * 63):
            bad = client.get("/report/download", params={**good, "rows_sha256": digest})
            assert bad.status_code == 400 and "is not a sha-256" in bad.text.lower(), digest
            assert "content-disposition" not in bad.headers
        year = client.get(
            "/report", params={"kind": "late", "from": "2023-03-05", "to": "2024-03-04"}
        )
        assert year.status_code == 200, year.text  # 366 days, 29 February included


# --------------------------------------------------------------------- a CSV's record
def download_form(page: httpx.Response) -> dict[str, str]:
    """The report page's download form: its hidden fields (the report's and the digest)."""
    assert page.status_code in (200, 409), page.text
    form = re.search(r'<form method="get" action="/report/download"[^>]*>(.*?)</form>', page.text)
    assert form, page.text
    fields = re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', form.group(1))
    return {name: html.unescape(value) for name, value in fields}


def save(answer: httpx.Response, folder: Path) -> Path:
    """A download saved as a browser saves it: under its Content-Disposition name."""
    assert answer.status_code == 200, answer.text
    assert_secure(answer)
    found = re.fullmatch(
        r'attachment; filename="([A-Za-z0-9.-]+)"', answer.headers["content-disposition"]
    )
    assert found, answer.headers["content-disposition"]
    path = folder / found.group(1)
    path.write_bytes(answer.content)
    return path


def verify(path: Path, database: str) -> Result:
    """The real ``clockface report verify FILE --central-db DATABASE``."""
    return CliRunner().invoke(
        main, ["report", "verify", str(path), "--central-db", database], catch_exceptions=False
    )


LATE_QUERY = {"kind": "late", "from": "2024-02-26", "to": "2024-03-04"}


def test_a_csv_and_its_record_from_the_page_verify_against_the_database(
    site: Site, tmp_path: Path
) -> None:
    fill(site)
    folder = tmp_path / "downloads"
    folder.mkdir()
    with site.client() as client:
        assert sign_in(client).status_code == 303
        page = client.get("/report", params=LATE_QUERY)
        assert ">Verification record for the CSV</button>" in page.text
        form = download_form(page)
        assert {k: v for k, v in form.items() if k != "rows_sha256"} == LATE_QUERY
        csv_file = save(client.get("/report/download", params={**form, "format": "csv"}), folder)
        answer = client.get("/report/download", params={**form, "format": "csv-verify"})
        assert answer.headers["content-type"] == "application/json"
        record_file = save(answer, folder)
    assert csv_file.name == "clockface-late-2024-02-26-to-2024-03-04.csv"
    assert record_file.name == csv_file.name + ".verify.json"

    record = json.loads(record_file.read_text(encoding="utf-8"))
    assert record["format"] == "clockface-report-verification" and record["report"] == "late"
    assert record["parameters"] == {
        "from": "2024-02-26", "to": "2024-03-04", "person": None, "team": None, "site": None,
        "schedules": None,
    }  # fmt: skip
    assert record["database"]["kind"] == "central" and record["rows"] == 2
    assert record["rows_sha256"] == form["rows_sha256"]  # the rows the page showed
    assert [(h["log_id"], h["seq"]) for h in record["chain_heads"]] == [("door-1-log", 8)]
    assert record["database"]["where"] == site.store.where  # a URL without its password

    checked = verify(csv_file, site.database)
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines() == [
        f"verified: {csv_file}: 2 rows match the recorded digest; the chain head still "
        "holds; the database gives the same rows"
    ]

    lines = csv_file.read_text(encoding="utf-8").splitlines()
    assert lines[2].startswith("2024-03-04,bob,") and lines[2].endswith(",20")
    lines[2] = lines[2][: -len("20")] + "2"  # bob was 2 minutes late, not 20
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    edited = verify(csv_file, site.database)
    assert edited.exit_code == 1
    assert f"{csv_file}: row 2 differs in the file" in edited.stdout.splitlines()
    assert "row 1 " not in edited.stdout

    record_file.unlink()  # without its record beside it, the CSV cannot be checked
    alone = verify(csv_file, site.database)
    assert alone.exit_code == 1 and "no verification record" in alone.output


def test_a_download_whose_report_changed_since_the_page_is_refused(
    lite: Site, tmp_path: Path
) -> None:
    door = fill(lite)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with lite.client() as client:
        assert sign_in(client).status_code == 303
        form = download_form(client.get("/report", params=LATE_QUERY))
        csv_file = save(client.get("/report/download", params={**form, "format": "csv"}), first)
        # An event that changes nothing in this report (weeks before it) moves the head:
        # the record, fetched after it, still describes the CSV's rows.
        door.post(lite.base, (("carl", "in", "2024-02-01T08:00:00"),))
        record_file = save(
            client.get("/report/download", params={**form, "format": "csv-verify"}), first
        )
        assert json.loads(record_file.read_text())["chain_heads"][0]["seq"] == 9
        assert verify(csv_file, lite.database).exit_code == 0

        # Carl arrives 40 minutes late today: the page's rows are no longer the report's.
        door.post(lite.base, (("carl", "in", "2024-03-04T08:40:00"),))
        for fmt in ("csv", "csv-verify", "xlsx"):
            refused = client.get("/report/download", params={**form, "format": fmt})
            assert refused.status_code == 409, (fmt, refused.text[:300])
            assert "content-disposition" not in refused.headers
            assert_secure(refused)
            assert "has changed since the page showed it" in refused.text
            assert 'role="alert"' in refused.text
            table = refused.text.split('id="report"')[1].split("</table>")[0]
            assert len(re.findall(r"<tr>", table.split("<tbody>")[1])) == 3  # carl too
        again = download_form(refused)  # the refusal is the page as it is now
        assert again["rows_sha256"] != form["rows_sha256"]
        new_csv = save(client.get("/report/download", params={**again, "format": "csv"}), second)
        save(client.get("/report/download", params={**again, "format": "csv-verify"}), second)

        # A record fetched without the page's digest (a URL typed by hand) is the report
        # as it is now: beside a CSV of before, verify names the rows that differ.
        bare = {**LATE_QUERY, "format": "csv-verify"}
        save(client.get("/report/download", params=bare), first)
    assert new_csv.read_text().count("\n") == 4 and ",carl," in new_csv.read_text()
    assert verify(new_csv, lite.database).exit_code == 0
    stale = verify(csv_file, lite.database)  # carl's row: not an edit, a later report
    assert stale.exit_code == 1
    assert stale.stdout.splitlines() == [f"{csv_file}: row 3 is missing from the file"]

    # An event that arrives later inside the range is not part of the report: verify
    # recomputes as of the record's chain heads, and says the database now differs.
    door.post(lite.base, (("carl", "in", "2024-03-01T08:30:00"),))
    later = verify(new_csv, lite.database)
    assert later.exit_code == 0, later.output
    assert later.stdout.splitlines() == [
        f"verified: {new_csv}: 3 rows match the recorded digest; the chain head still holds; "
        "the database gives the same rows as of the chain heads",
        f"{new_csv}: 1 later event in this range arrived after the report was made; as of "
        "its chain heads the database gives the same rows",
    ]
