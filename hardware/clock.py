"""Is the system clock synchronised (by NTP, chrony, systemd-timesyncd, GPS ...)?

A kiosk stamps every event with its own clock. A Raspberry Pi has no battery-backed
clock: after a power cut it boots with the time it last saved, and is wrong until the
network time daemon has synchronised it. Events stamped in that window are marked, so
the central service and the reports can tell them apart.

The kernel knows: ``adjtimex(2)`` with ``modes = 0`` reads the clock's state without
changing anything (no privilege needed). It answers ``TIME_ERROR`` (5), or sets the
``STA_UNSYNC`` status bit, while the clock is not synchronised. Called through ctypes,
no subprocess (``timedatectl`` asks the same question of the same kernel, through D-Bus).

Three answers, :func:`clock_state`:

- ``"synchronised"``: the kernel says so;
- ``"unsynchronised"``: the kernel says it is not (TIME_ERROR or STA_UNSYNC);
- ``"unknown"``: not Linux, no C library, or the call failed (a sandbox refusing it).

:func:`clock_synced` maps them to True / False / None, which is what the kiosk stores
with each event (None: "not known", as the wire protocol says); :func:`system_clock_
synchronised` is True only when the clock is known to be synchronised. Unknown is not
reported as unsynchronised: a development machine that cannot ask would otherwise flag
every event it records, which says nothing true about its clock.

:class:`FakeClockStatus` is the fake for tests: a state you set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable
from typing import Literal

ClockState = Literal["synchronised", "unsynchronised", "unknown"]

log = logging.getLogger("clockface.clock")

TIME_ERROR = 5  # adjtimex's answer while the clock is not synchronised
STA_UNSYNC = 0x0040  # status bit: the clock is not synchronised


class Timeval(ctypes.Structure):
    """``struct timeval``: two ``long`` (``time_t`` and ``suseconds_t``) on Linux."""

    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class Timex(ctypes.Structure):
    """``struct timex`` of glibc's ``bits/timex.h`` (from the kernel's ``linux/timex.h``).

    ``__syscall_slong_t`` is ``long`` on every Linux ABI ctypes meets here: x86_64 and
    aarch64 (64-bit, 208 bytes), and the legacy 32-bit layout that the plain
    ``adjtimex`` symbol keeps on 32-bit ARM (the 64-bit-time layout is another symbol,
    ``__adjtimex64``). ctypes inserts the same alignment padding as the C compiler (after
    ``modes``, ``status`` and ``shift`` on 64-bit); the 11 anonymous ``int :32`` at the
    end are ``_reserved``.
    """

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


_adjtimex: Callable[[ctypes._Pointer[Timex]], int] | None = None
_looked_up = False


def _function() -> Callable[[ctypes._Pointer[Timex]], int] | None:
    """The C library's ``adjtimex``, looked up once; None where there is none."""
    global _adjtimex, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                function = libc.adjtimex
            except (OSError, AttributeError) as err:
                log.warning("cannot reach adjtimex in the C library: %s", err)
            else:
                function.argtypes = (ctypes.POINTER(Timex),)
                function.restype = ctypes.c_int
                _adjtimex = function
    return _adjtimex


def read_timex() -> tuple[int, Timex] | None:
    """``adjtimex`` with ``modes = 0`` (read only): its answer and the struct, or None
    where it cannot be called or fails."""
    function = _function()
    if function is None:
        return None
    timex = Timex()  # zeroed: modes = 0 changes nothing
    answer = function(ctypes.byref(timex))  # type: ignore[arg-type]
    if answer < 0:
        log.warning("adjtimex failed: errno %d", ctypes.get_errno())
        return None
    return answer, timex


def clock_state() -> ClockState:
    """Whether the kernel says the system clock is synchronised (see the module doc)."""
    read = read_timex()
    if read is None:
        return "unknown"
    answer, timex = read
    if answer == TIME_ERROR or timex.status & STA_UNSYNC:
        return "unsynchronised"
    return "synchronised"


def clock_synced() -> bool | None:
    """True (synchronised), False (known not to be), None (cannot tell)."""
    return {"synchronised": True, "unsynchronised": False, "unknown": None}[clock_state()]


def system_clock_synchronised() -> bool:
    """True only when the clock is known to be synchronised."""
    return clock_state() == "synchronised"


class FakeClockStatus:
    """A clock probe for tests: returns the state you set, and counts the questions."""

    def __init__(self, state: ClockState = "synchronised") -> None:
        self.state: ClockState = state
        self.calls = 0

    def clock_state(self) -> ClockState:
        self.calls += 1
        return self.state

    def __call__(self) -> bool | None:
        """The same answer as :func:`clock_synced`, from the state you set."""
        return {"synchronised": True, "unsynchronised": False, "unknown": None}[self.clock_state()]
