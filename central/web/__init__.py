"""The supervisors' web page, served by the central service beside its API.

- :mod:`central.web.passwords`: scrypt password hashes (parameters and salt in the text).
- :mod:`central.web.accounts`: supervisor accounts, sign-in with lock-out, all audited.
- :mod:`central.web.sessions`: session cookies (only their SHA-256 stored), idle and
  absolute expiry, the CSRF token of each session.
- :mod:`central.web.board`: today's board per site (in, late, not arrived, off).
- :mod:`central.web.data`: the glue to the report code (the central database's people,
  events and stored schedules; the same reports and exports as ``clockface report``).
- :mod:`central.web.pages`: the HTML, every value escaped; ``static/web.css``.
- :mod:`central.web.routes`: the routes, cookies, CSRF checks and security headers.
"""
