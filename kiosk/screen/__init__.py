"""The kiosk screen: a local web page, served by the kiosk process, for a browser in
full-screen kiosk mode (``systemd/clockface-screen.service`` opens it on a Pi).

The page shows a large greeting ("Good morning, / Ada Lovelace / in at 08:57") within
moments of the event, a clock, the kiosk's status (camera and frames per second, sync
backlog, last event), a short privacy notice and, only when turned on, a live preview
with face boxes. It shows nothing about a person beyond the greeting, loads nothing from
elsewhere, and nothing it serves may be cached.

- ``server.py``: :class:`Screen`, the web server and the Feedback the loop tells.
- ``feed.py``: the messages on show, handed from the loop to every open page (SSE).
- ``status.py``: the status line, fed by a heartbeat between the loop and systemd's.
- ``preview.py``: the optional live preview, in memory only.
- ``page/``: ``index.html``, ``screen.css``, ``screen.js`` (package data).

In ``clockface kiosk run``: ``--screen`` (``--screen-port``, ``--screen-bind``,
``--screen-preview``).
"""

from kiosk.screen.server import DEFAULT_HOST, DEFAULT_PORT, Screen

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Screen"]
