"""Text cells made safe for spreadsheets: the one copy of the formula-injection rule.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel and LibreOffice when a CSV (or XLSX) is opened; a leading ``'`` makes
it text. Report exporters and the kiosk's event export both use :func:`neutralise`.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A text cell made safe for spreadsheets: formula starters get a leading '."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
