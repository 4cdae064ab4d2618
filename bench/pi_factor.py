"""The "Pi factor" K: how many times slower a Raspberry Pi 4 and a Pi 5 run clockface's
two hot operations than the machine this runs on.

    uv run python -m bench.pi_factor              # measure here, print the table and K
    uv run python -m bench.pi_factor --rounds 5   # steadier on a busy machine

The kiosk's video replay (``hardware.sources.LiveReplay``) plays a video K times faster
than real time, so that a frame loop taking T seconds here is judged as if it took K*T,
as it would on the Pi. K comes from two halves:

1. **Measured here** (:func:`measure_here`): YuNet face detection (``cv2.FaceDetectorYN``,
   ``face_detection_yunet_2023mar.onnx``) on an image of exactly the published input
   size, pre- and post-processing included as in the published benchmarks, with one
   OpenCV thread and with OpenCV's default (all cores); and one embedding
   (``FaceModels().encode``: dlib's 5-point landmarks and face chip, then the ResNet in
   numpy, :mod:`recognition.resnet`, with one BLAS thread) of the face in
   ``obama/obama1.jpg``. Each figure is the best of ``rounds`` interleaved rounds of
   several calls.
2. **Published** (:data:`PUBLISHED`): figures for the same model at the same input size
   and thread count, each with its source. Every number in :data:`PUBLISHED` and
   :data:`PI5_SPEEDUPS` is copied from its source; nothing is estimated there.

:func:`factors` divides the published milliseconds by those measured here, operation
by operation (the median where a source gives several images), then:

- **detection ratio** of a board: the geometric mean of its single-thread YuNet ratios
  (320x320 and 640x640; the kiosk detects on a copy at most 320 px on its longer side,
  ``kiosk.loop``'s default). The all-core rows are printed but not used: a Pi 4 has 4
  cores and this machine 2, so their ratio mixes the speed of a core with the number
  of cores.
- **encoding ratio**: from a published Pi figure for this embedding where there is
  one. **None was found** (searched: dlib's and face_recognition's issues, PyImageSearch,
  Q-engineering, the opencv_zoo and ncnn benchmark tables). The nearest published
  figures are for dlib's own implementation on other boards (davisking/dlib issue
  #1493: a Pi 3B+, the descriptor network alone in C++, 3245 ms, then 248 ms once built
  with NEON and ``-march=native``), too far to carry over; clockface runs the network
  in numpy's BLAS instead. So the encoding ratio is a **proxy: the detection ratio**,
  both being float32 convolutional networks on one core run by vendor-tuned kernels
  (OpenCV's DNN for YuNet, OpenBLAS for the ResNet; AVX2 here, NEON on a Pi); the
  table marks it.
- **Pi 5**: no published Pi 5 figure for either operation was found as text (the
  chowar23/rpi-yunet-benchmark repository compares YuNet on the Pi 5 and Pi 4, but only
  in plots; its CSV is not published). The Pi 5's milliseconds are derived as the Pi 4's
  divided by the Pi 5's CPU speedup over the Pi 4: the **median of the measured
  speedups** in :data:`PI5_SPEEDUPS` (sysbench, single thread: 1.5x, 1.85x, 2.27x; so
  1.85x). Raspberry Pi's own claim, "two to three times" ("roughly two-and-a-half" in
  Eben Upton's words), is listed but not used: it would give a K(Pi 5) 1.35x lower.
- **K** of a board: the larger of its detection and encoding ratios. The kiosk's
  frame loop is detection-bound and its encoder workers encoding-bound; one K cannot be
  right for both, and the larger one errs on the safe side: every operation replayed
  here takes at least as long, in video time, as on the Pi, so a pass here is a pass
  there (within the limits below). The geometric mean would be right for neither and
  optimistic for one. While the encoding ratio is a proxy the two are equal anyway.

Limits, each of which moves the true factor:

- **Single thread vs cores.** K compares one core with one core. Here, ``default_workers``
  gives the kiosk 1 encoder process (2 cores); a Pi 4 or 5 gets 3. Replayed at K, this
  machine encodes a third as many faces per video second as the Pi would: pessimistic
  for the encoder queue, on top of the max rule. OpenCV in the frame loop uses every
  core on both machines, shared with the encoders.
- **NEON vs AVX.** The ratios compare whole software stacks, not bare CPUs: OpenCV's
  DNN runs AVX2/AVX-512 kernels here and NEON kernels on the Pi, and so does OpenBLAS,
  under numpy, for the encoder (its build is printed). Only the landmarks and the face
  chip (about 1 ms here) are dlib's own code, whose build no longer decides the
  encoding time. The encoding proxy is still the weakest number here. Measure on a
  real Pi before trusting it: run this module there and divide its "here" column by this machine's.
- **OpenCV version.** The published Pi figures ran OpenCV 4.x (opencv_zoo: 4.10.0;
  cv_facedetection_eval: pip's opencv-python of early 2024); this project runs OpenCV
  5.0, whose new DNN engine is faster. On this machine (2026-12-03) OpenCV 4.10.0 took
  1.14x as long as 5.0 at 320x320 and 1.34x at 640x640, one thread. Unless the Pi gains
  as much from 5.0, the detection ratios (and K) are that much too high: conservative.
- **"1 thread".** Here ``cv2.setNumThreads(1)`` holds YuNet to one core (0.97
  CPU-seconds per second, measured). cv_facedetection_eval's README suspects that
  opencv-python used more threads than asked on its Pi; if so, its single-thread
  figures are optimistic and the true ratios higher (its 4-thread figures are 1.6x
  faster, so it was not using all four).
- **Clock.** cv_facedetection_eval's Pi 4 ran at 1.5 GHz (early boards); later Pi 4
  boards run at 1.8 GHz, up to 1.2x faster: K is conservative for those too.
- **Thermal throttling.** The published figures are short runs on cool boards. A Pi 4
  without a heatsink, or a Pi 5 without its Active Cooler, slows its clock under
  sustained load; a kiosk in a closed case at a door may run slower than K says.
- **64-bit OS.** Every Pi figure used was measured on 64-bit Raspberry Pi OS (Debian
  Bookworm, aarch64); a 32-bit (armhf) system runs the same code slower.
- **This machine** is shared: a busy neighbour makes "here" slower and K smaller. The
  best of several rounds keeps most of that out; run with more rounds when in doubt.

Timings are printed, never asserted (tests/test_pi_factor.py checks only that it runs).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from clockface.errors import ClockfaceError
from recognition.faces import (
    YUNET_FILE,
    YUNET_NMS,
    YUNET_SCORE,
    FaceModels,
    opencv_errors_only,
)
from recognition.photos import read_image

PI4 = "Pi 4"
PI5 = "Pi 5"
BOARDS = (PI4, PI5)
"""The boards K is worked out for, in the table's order."""

YUNET = "yunet"
ENCODE = "encoding"
ENCODE_INPUT = "150x150"
"""Every face is aligned to a 150x150 chip before the ResNet, whatever the box's size."""

_SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_PHOTO = _SHARED / "faces" / "obama" / "obama1.jpg"
_SHARED_YUNET = _SHARED / "models" / YUNET_FILE.name

# Fallback K, for when measuring is not wanted. Derived with this module on 2026-12-03 on
# this project's development machine (lscpu: "Intel(R) Xeon(R) Processor", 2 cores,
# shared; OpenCV 5.0.0, dlib-bin 20.0.1 with AVX, no BLAS), from the fastest of several
# runs (a neighbour's load slows "here" and shrinks K: loaded runs gave K(Pi 4) 7.5-10.3):
# YuNet with one thread took 5.05 ms at 320x320 and 20.9 ms at 640x640 here, the Pi 4
# 54.4 and 213.2 ms (cv_facedetection_eval, medians): ratios 10.8 and 10.2, geometric
# mean 10.5; the encoding ratio is that proxy (no published Pi figure), so K(Pi 4) =
# 10.5. K(Pi 5) = 10.5 / 1.85 (the median measured Pi 5 speedup) = 5.7. Both rounded up
# to the next 0.5. They hold for *that* machine: on another, run the module.
PI4_K = 10.5
PI5_K = 6.0


@dataclass(frozen=True, slots=True)
class PublishedFigure:
    """One published timing: ``ms`` per call of ``operation`` on ``input`` on ``board``.

    ``threads``: the thread count, or None for all the board's cores (OpenCV's
    default). ``source``: where the number is printed (repository and path, or URL),
    with what the source says about how it was measured.
    """

    board: str
    operation: str
    input: str
    threads: int | None
    ms: float
    source: str

    @property
    def key(self) -> str:
        return key(self.operation, self.input, self.threads)


@dataclass(frozen=True, slots=True)
class PublishedSpeedup:
    """A published comparison of the Pi 5's CPU with the Pi 4's: ``pi5 / pi4`` of a
    higher-is-faster ``score``. ``measured`` is False for a maker's claim."""

    score: str
    pi4: float
    pi5: float
    measured: bool
    source: str

    @property
    def ratio(self) -> float:
        return self.pi5 / self.pi4


def key(operation: str, input: str, threads: int | None) -> str:
    """The name of a measurement, shared by :data:`PUBLISHED` and :func:`measure_here`:
    "yunet 320x320, 1 thread", "yunet 160x120, all cores"."""
    if threads is None:
        return f"{operation} {input}, all cores"
    return f"{operation} {input}, {threads} thread{'' if threads == 1 else 's'}"


def parse_key(name: str) -> tuple[str, str, int | None]:
    """(operation, input, threads) back from a :func:`key`."""
    head, _, count = name.rpartition(", ")
    operation, _, input = head.rpartition(" ")
    if not operation or not input:
        raise ValueError(f"not a measurement name: {name!r}")
    if count == "all cores":
        return operation, input, None
    number, _, word = count.partition(" ")
    if not number.isdigit() or word not in ("thread", "threads"):
        raise ValueError(f"not a measurement name: {name!r}")
    return operation, input, int(number)


_CV_EVAL_PI = (
    "TonyCongqianWang/cv_facedetection_eval, time_comparison_pi.md: Raspberry Pi 4 "
    "(Cortex-A72 at 1.5 GHz, Debian Bookworm aarch64, kernel 6.1.0-rpi8), pip "
    "opencv-python, face_detection_yunet_2023mar.onnx, 'Average processing time' on test "
    "images 0, 1, 2 in that order (the rows for images 3 and 4 were not in the stored copy)"
)
_CV_EVAL_LAPTOP = (
    "TonyCongqianWang/cv_facedetection_eval, time_comparison_laptop.md: i7-1255U laptop "
    "(Windows 11, 1.7-2.7 GHz), same script and model, test images 0-4 in that order"
)
_ZOO = (
    "opencv/opencv_zoo, benchmark/README.md at f301435: `python3 benchmark.py --all`, "
    "opencv-python 4.10.0, face_detection_yunet_2023mar.onnx, median, default threads"
)

PUBLISHED: tuple[PublishedFigure, ...] = (
    # Raspberry Pi 4: YuNet 2023mar, one thread and four (all its cores).
    PublishedFigure(PI4, YUNET, "320x320", 1, 58.7, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "320x320", 1, 54.4, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "320x320", 1, 54.4, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", 1, 213.2, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", 1, 212.6, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", 1, 229.8, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "320x320", None, 37.1, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "320x320", None, 33.1, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "320x320", None, 33.0, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", None, 130.6, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", None, 130.6, _CV_EVAL_PI),
    PublishedFigure(PI4, YUNET, "640x640", None, 148.3, _CV_EVAL_PI),
    PublishedFigure(
        PI4, YUNET, "160x120", None, 6.27, _ZOO + ', "Raspberry Pi 4B" (BCM2711, 4x A72 1.5 GHz)'
    ),
    # x86 machines in the same benchmarks: not used for K, printed as a check that the
    # "here" column is in line with other x86 CPUs.
    PublishedFigure("i7-1255U", YUNET, "320x320", 1, 6.3, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "320x320", 1, 6.5, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "320x320", 1, 5.7, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "320x320", 1, 5.9, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "320x320", 1, 6.0, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "640x640", 1, 28.1, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "640x640", 1, 27.9, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "640x640", 1, 29.0, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "640x640", 1, 28.1, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-1255U", YUNET, "640x640", 1, 28.3, _CV_EVAL_LAPTOP),
    PublishedFigure("i7-12700K", YUNET, "160x120", None, 0.70, _ZOO + ', "Intel 12700K"'),
    # No published Raspberry Pi figure for this embedding, nor any Pi 5 figure for
    # YuNet as text: see the module docstring. Add them here when found.
)

PI5_SPEEDUPS: tuple[PublishedSpeedup, ...] = (
    PublishedSpeedup(
        "sysbench 1.0.20 cpu, 1 thread, events/s",
        1477.83,
        2737.49,
        True,
        "https://leoncode.co.uk/articles/raspberry-pi-benchmarks",
    ),
    PublishedSpeedup(
        "sysbench cpu, 1 thread, 10 s, events/s (Pi 4 at 1.8 GHz)",
        812.0,
        1847.0,
        True,
        "https://zbotic.in/raspberry-pi-5-benchmarks-real-performance-numbers-vs-pi-4/",
    ),
    PublishedSpeedup(
        'sysbench, single and multi thread: "about 50% quicker" (alpha Bookworm, both cooled)',
        1.0,
        1.5,
        True,
        "https://core-electronics.com.au/guides/raspberry-pi/"
        "raspberry-pi-5-vs-raspberry-pi-4-model-b-comparison-and-benchmarking/",
    ),
    PublishedSpeedup(
        'Raspberry Pi\'s claim: "roughly two-and-a-half times as fast as a Raspberry Pi 4" '
        '(Eben Upton; the launch said "two to three times")',
        1.0,
        2.5,
        False,
        "https://hackspace.raspberrypi.com/articles/raspberry-pi-5",
    ),
)


# -- measuring here ----------------------------------------------------------------------

_YUNET_CASES: tuple[tuple[int, int, int | None, int], ...] = (
    # (width, height, threads, calls per round): each round takes about 0.1 s here.
    (320, 320, 1, 20),
    (640, 640, 1, 5),
    (160, 120, None, 100),
    (320, 320, None, 30),
    (640, 640, None, 8),
)
_ENCODE_CALLS = 2


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    call: Callable[[], object]
    calls: int
    threads: int  # OpenCV's thread count while it runs; -1: OpenCV's default


def _best_ms(cases: Sequence[_Case], rounds: int) -> dict[str, float]:
    """Each case's fastest of ``rounds`` rounds of ``calls`` calls, in ms per call.

    The rounds are interleaved (every case once per round), so a burst of load from
    a neighbour on a shared machine spoils one round of several cases rather than every
    round of one. Each case is called once untimed first (caches, lazy set-up).
    """
    previous = cv2.getNumThreads()
    best = dict.fromkeys((case.name for case in cases), math.inf)
    try:
        for case in cases:
            cv2.setNumThreads(case.threads)
            case.call()
        for _ in range(rounds):
            for case in cases:
                cv2.setNumThreads(case.threads)
                start = time.perf_counter()
                for _ in range(case.calls):
                    case.call()
                best[case.name] = min(best[case.name], (time.perf_counter() - start) / case.calls)
    finally:
        cv2.setNumThreads(previous)
    return {name: seconds * 1000.0 for name, seconds in best.items()}


def _yunet_model() -> Path:
    return YUNET_FILE if YUNET_FILE.is_file() else _SHARED_YUNET


def _yunet(width: int, height: int) -> cv2.FaceDetectorYN:
    with opencv_errors_only():
        return cv2.FaceDetectorYN.create(
            str(_yunet_model()), "", (width, height), YUNET_SCORE, YUNET_NMS, 5000
        )


def measure_here(rounds: int = 3, photo: Path = DEFAULT_PHOTO) -> dict[str, float]:
    """Milliseconds per call here, the best of ``rounds`` interleaved rounds, keyed
    by :func:`key`.

    YuNet runs on ``photo`` resized to each published input size (BGR, as OpenCV
    takes it), with one OpenCV thread and with OpenCV's default; the thread setting is
    restored afterwards. The encoding is ``FaceModels().encode(image, [box])`` of the
    first face YuNet finds in ``photo``, with numpy's BLAS held to one thread (dlib's
    landmarks and chip are single-threaded). Raises
    :class:`~clockface.errors.ClockfaceError` when the photo or a model cannot be read.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds!r}")
    image = read_image(photo)
    cases = []
    for width, height, threads, calls in _YUNET_CASES:
        bgr = cv2.cvtColor(
            cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR
        )
        cases.append(
            _Case(
                key(YUNET, f"{width}x{height}", threads),
                functools.partial(_yunet(width, height).detect, bgr),
                calls,
                -1 if threads is None else threads,
            )
        )
    models = FaceModels()
    boxes = models.detect(image)[:1]
    if not boxes:
        raise ClockfaceError(f"no face found in {photo}: give a photo of one face")
    cases.append(
        _Case(key(ENCODE, ENCODE_INPUT, 1), lambda: models.encode(image, boxes), _ENCODE_CALLS, 1)
    )
    with threadpool_limits(limits=1):  # numpy's BLAS: one thread, as in a kiosk's worker
        return _best_ms(cases, rounds)


# -- the factors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """A board's milliseconds for one measurement, and their ratio to here's.

    ``how``: "published" (the median of :data:`PUBLISHED`'s figures), "derived" (the
    Pi 4's published figure divided by the Pi 5 speedup) or "proxy" (no figure: the
    board's detection ratio stands in, ``ms`` is here's times that).
    """

    ms: float
    ratio: float
    how: str


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement: its name, the milliseconds here and each board's :class:`Cell`
    (a board without a figure is absent)."""

    key: str
    here_ms: float
    cells: Mapping[str, Cell]


@dataclass(frozen=True, slots=True)
class Factors:
    """What :func:`factors` works out, per board of :data:`BOARDS`."""

    rows: tuple[Row, ...]
    detection: Mapping[str, float]
    """The geometric mean of the single-thread YuNet ratios."""
    encoding: Mapping[str, float]
    """The encoding ratio: published or derived, else the detection ratio (proxy)."""
    encoding_is_proxy: Mapping[str, bool]
    k: Mapping[str, float]
    """max(detection, encoding): see the module docstring for why the larger."""
    pi5_speedup: float
    """The Pi 5 over the Pi 4: the median of the measured :data:`PI5_SPEEDUPS`."""


def _geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def published_ms(
    published: Sequence[PublishedFigure] = PUBLISHED,
) -> dict[tuple[str, str], float]:
    """The median published milliseconds per (board, measurement name)."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for figure in published:
        grouped.setdefault((figure.board, figure.key), []).append(figure.ms)
    return {name: statistics.median(values) for name, values in grouped.items()}


def pi5_speedup(speedups: Sequence[PublishedSpeedup] = PI5_SPEEDUPS) -> float:
    """The median of the measured speedups (claims left out)."""
    measured = [s.ratio for s in speedups if s.measured]
    if not measured:
        raise ValueError("no measured Pi 5 speedup to derive the Pi 5 figures from")
    return statistics.median(measured)


def factors(
    measured: Mapping[str, float],
    published: Sequence[PublishedFigure] = PUBLISHED,
    speedups: Sequence[PublishedSpeedup] = PI5_SPEEDUPS,
) -> Factors:
    """Per measurement and board, published ms / measured ms; then per board the
    detection and encoding ratios and K (the rules are in the module docstring).

    ``measured``: ms per call here keyed by :func:`key`, as :func:`measure_here` gives.
    Raises ValueError when a board has no single-thread YuNet figure matching a
    measurement (K would have nothing to stand on) or when a time is not positive.
    """
    if any(not (math.isfinite(ms) and ms > 0) for ms in measured.values()):
        raise ValueError("measured times must be positive")
    medians = published_ms(published)
    speedup = pi5_speedup(speedups)
    cells: dict[str, dict[str, Cell]] = {name: {} for name in measured}
    for name, here in measured.items():
        pi4 = medians.get((PI4, name))
        if pi4 is not None:
            cells[name][PI4] = Cell(pi4, pi4 / here, "published")
        pi5 = medians.get((PI5, name))
        if pi5 is not None:
            cells[name][PI5] = Cell(pi5, pi5 / here, "published")
        elif pi4 is not None:
            cells[name][PI5] = Cell(pi4 / speedup, pi4 / speedup / here, "derived")

    detection: dict[str, float] = {}
    encoding: dict[str, float] = {}
    proxy: dict[str, bool] = {}
    k: dict[str, float] = {}
    for board in BOARDS:
        detect = [
            cells[name][board].ratio
            for name in measured
            if board in cells[name] and parse_key(name)[0] == YUNET and parse_key(name)[2] == 1
        ]
        if not detect:
            raise ValueError(f"no single-thread YuNet figure for the {board} matches a measurement")
        detection[board] = _geomean(detect)
        encode_names = [name for name in measured if parse_key(name)[0] == ENCODE]
        encode = [cells[name][board].ratio for name in encode_names if board in cells[name]]
        proxy[board] = not encode
        if encode:
            encoding[board] = _geomean(encode)
        else:
            encoding[board] = detection[board]
            for name in encode_names:
                cells[name][board] = Cell(
                    measured[name] * detection[board], detection[board], "proxy"
                )
        k[board] = max(detection[board], encoding[board])
    rows = tuple(Row(name, here, dict(cells[name])) for name, here in measured.items())
    return Factors(rows, detection, encoding, proxy, k, speedup)


# -- the command line ----------------------------------------------------------------------


def machine_name() -> str:
    """The CPU's model name (lscpu's "Model name"), or a Pi's board name."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for field in ("model name", "Model"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == field and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _libraries() -> str:
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    blas = ", ".join(
        " ".join(str(pool.get(k) or "") for k in ("internal_api", "version", "architecture"))
        for pool in pools
    )

    def flag(name: str) -> str:
        value = getattr(dlib, name, None)
        return "?" if value is None else ("on" if value else "off")

    return (
        f"OpenCV {cv2.__version__}; dlib {dlib.__version__} (AVX {flag('USE_AVX_INSTRUCTIONS')}, "
        f"NEON {flag('USE_NEON_INSTRUCTIONS')}, BLAS {flag('DLIB_USE_BLAS')}); numpy "
        f"{np.__version__} (BLAS: {blas or 'unknown'})"
    )


def _ms(value: float) -> str:
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(cell: Cell | None) -> tuple[str, str]:
    """The (ms, ratio) columns of a board: "~" marks a derived figure, "p" a proxy."""
    if cell is None:
        return "-", "-"
    if cell.how == "proxy":
        return "-", f"{cell.ratio:.1f} p"
    mark = "~" if cell.how == "derived" else ""
    return f"{mark}{_ms(cell.ms)}", f"{mark}{cell.ratio:.1f}"


def report(
    measured: Mapping[str, float],
    result: Factors,
    published: Sequence[PublishedFigure] = PUBLISHED,
    speedups: Sequence[PublishedSpeedup] = PI5_SPEEDUPS,
) -> list[str]:
    """The lines the command prints: the table, the cross-checks, the sources, K."""
    width = max(len(row.key) for row in result.rows) + 2
    lines = [
        f"{'operation':<{width}}{'here ms':>9}{'Pi 4 ms':>10}{'ratio':>8}"
        f"{'Pi 5 ms':>10}{'ratio':>8}"
    ]
    for row in result.rows:
        pi4_ms, pi4_ratio = _cell(row.cells.get(PI4))
        pi5_ms, pi5_ratio = _cell(row.cells.get(PI5))
        star = " *" if parse_key(row.key)[2] is None else ""
        lines.append(
            f"{row.key + star:<{width}}{_ms(row.here_ms):>9}{pi4_ms:>10}{pi4_ratio:>8}"
            f"{pi5_ms:>10}{pi5_ratio:>8}"
        )
    lines += [
        "  * all cores (a Pi has 4, this machine "
        f"{_cores()}): shown, not used for K, which compares one core with one.",
        f"  ~ derived: the Pi 4's figure / {result.pi5_speedup:.2f}, the Pi 5's CPU speedup "
        "(no published Pi 5 figure for these operations).",
        "  p proxy: no published Raspberry Pi figure for this embedding; the board's "
        "detection ratio stands in.",
        "",
    ]

    medians = published_ms(published)
    checks = sorted(
        {(f.board, f.key) for f in published if f.board not in BOARDS and f.key in measured}
    )
    if checks:
        lines.append("cross-check, other x86 CPUs in the same benchmarks (not used for K):")
        for board, name in checks:
            theirs, here = medians[(board, name)], measured[name]
            lines.append(
                f"  {board}: {name} {_ms(theirs)} ms, here {_ms(here)} ms: this machine is "
                f"{theirs / here:.2f}x as fast"
            )
        lines.append("")

    sources: list[str] = []
    for figure in published:
        if figure.key in measured and figure.source not in sources:
            sources.append(figure.source)
    lines.append("sources (each figure as published; the table uses the median):")
    for number, source in enumerate(sources, 1):
        lines.append(f"  [{number}] {source}")
        used: dict[tuple[str, str], list[float]] = {}
        for figure in published:
            if figure.source == source and figure.key in measured:
                used.setdefault((figure.board, figure.key), []).append(figure.ms)
        for (board, name), values in used.items():
            shown = ", ".join(str(v) for v in values)
            lines.append(f"      {board}, {name}: {shown} ms")
    lines.append(
        f"  Pi 5 CPU speedup over the Pi 4 (median of the measured: {result.pi5_speedup:.2f}):"
    )
    for speedup in speedups:
        used_note = "" if speedup.measured else " (a claim: not used)"
        lines.append(f"      {speedup.ratio:.2f}x  {speedup.score}{used_note}; {speedup.source}")
    lines.append("")

    for board in BOARDS:
        encoding_how = "proxy = detection" if result.encoding_is_proxy[board] else "published"
        lines.append(
            f"{board}: detection ratio {result.detection[board]:.2f} (geometric mean of the "
            f"1-thread YuNet rows), encoding ratio {result.encoding[board]:.2f} "
            f"({encoding_how}); K = the larger"
        )
    for board in BOARDS:
        lines.append(f"K({board}) = {result.k[board]:.1f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pi_factor",
        description="Measure YuNet and a face embedding here and work out how many times "
        "slower a Raspberry Pi 4 and 5 run them, from published figures.",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed rounds per operation, best kept (default 3)"
    )
    parser.add_argument(
        "--photo",
        type=Path,
        default=DEFAULT_PHOTO,
        help=f"a photo of one face (default {DEFAULT_PHOTO})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    print(
        f"bench.pi_factor: here = {machine_name()}, {_cores()} cores, {platform.machine()}; "
        f"{_libraries()}; best of {args.rounds} rounds"
    )
    sys.stdout.flush()
    try:
        measured = measure_here(args.rounds, args.photo)
    except ClockfaceError as err:
        print(f"bench.pi_factor: {err}", file=sys.stderr)
        return 1
    for line in report(measured, factors(measured)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
