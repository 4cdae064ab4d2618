"""The clock probe: adjtimex(2) through ctypes, checked against the C library's own
``struct timex`` (compiled here when a C compiler is at hand)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hardware import clock
from hardware.clock import (
    STA_UNSYNC,
    TIME_ERROR,
    FakeClockStatus,
    Timex,
    clock_state,
    clock_synced,
    system_clock_synchronised,
)

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux's")

_PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include <sys/timex.h>
int main(void) {
    struct timex t = {0};
    int answer = adjtimex(&t);
    printf("%zu %zu %zu %zu %zu %zu %d %d\n", sizeof(struct timex),
           offsetof(struct timex, status), offsetof(struct timex, time),
           offsetof(struct timex, shift), offsetof(struct timex, tai),
           offsetof(struct timex, stbcnt), answer, t.status);
    return 0;
}
"""


@linux
def test_adjtimex_answers_one_of_the_states_here() -> None:
    state = clock_state()
    assert state in ("synchronised", "unsynchronised")  # Linux: known, never "unknown"
    read = clock.read_timex()
    assert read is not None
    answer, timex = read
    assert 0 <= answer <= 5  # TIME_OK ... TIME_ERROR
    assert timex.tick > 0  # the kernel filled the struct in: a tick is some microseconds
    expected = (
        "unsynchronised" if answer == TIME_ERROR or timex.status & STA_UNSYNC else ("synchronised")
    )
    assert state == expected
    assert clock_synced() is (state == "synchronised")
    assert system_clock_synchronised() is (state == "synchronised")


@linux
def test_the_struct_matches_the_c_library(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to read <sys/timex.h> with")
    source = tmp_path / "timex.c"
    source.write_text(_PROBE)
    binary = tmp_path / "timex"
    subprocess.run([compiler, str(source), "-o", str(binary)], check=True, timeout=60)
    out = subprocess.run([str(binary)], check=True, capture_output=True, text=True, timeout=10)
    size, status, time, shift, tai, stbcnt, answer, status_bits = map(int, out.stdout.split())
    assert ctypes.sizeof(Timex) == size
    assert Timex.status.offset == status
    assert Timex.time.offset == time
    assert Timex.shift.offset == shift
    assert Timex.stbcnt.offset == stbcnt
    assert Timex.tai.offset == tai
    # The same kernel, asked through ctypes and through C, says the same.
    read = clock.read_timex()
    assert read is not None
    assert read[0] == answer
    assert bool(read[1].status & STA_UNSYNC) == bool(status_bits & STA_UNSYNC)


def test_the_64_bit_layout_is_the_kernels() -> None:
    if ctypes.sizeof(ctypes.c_long) != 8:
        pytest.skip("a 32-bit Python")
    # linux/timex.h on x86_64 and aarch64 alike: 208 bytes, status at 40, time at 72.
    assert (ctypes.sizeof(Timex), Timex.status.offset, Timex.time.offset) == (208, 40, 72)


def test_no_adjtimex_means_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_function", lambda: None)
    assert clock_state() == "unknown"
    assert clock_synced() is None
    assert system_clock_synchronised() is False


@pytest.mark.parametrize(
    ("answer", "status", "state"),
    [
        (0, 0x0001, "synchronised"),  # TIME_OK, PLL
        (1, 0x2001, "synchronised"),  # TIME_INS: a leap second is coming, still in sync
        (0, STA_UNSYNC, "unsynchronised"),
        (TIME_ERROR, 0, "unsynchronised"),
        (-1, 0, "unknown"),  # the call failed
    ],
)
def test_the_answer_and_status_bits_decide(
    monkeypatch: pytest.MonkeyPatch, answer: int, status: int, state: str
) -> None:
    def fake_adjtimex(pointer: object) -> int:
        ctypes.cast(pointer, ctypes.POINTER(Timex)).contents.status = status  # type: ignore[arg-type]
        return answer

    monkeypatch.setattr(clock, "_function", lambda: fake_adjtimex)
    assert clock_state() == state


def test_the_fake() -> None:
    fake = FakeClockStatus()
    assert fake() is True
    fake.state = "unsynchronised"
    assert fake() is False
    fake.state = "unknown"
    assert fake() is None
    assert fake.calls == 3
