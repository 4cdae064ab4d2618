"""Face encoding off the frame loop: an in-process encoder and a pool of worker processes.

One encoding (dlib's 5-point landmarks and face chip, then the ResNet's 128-d
descriptor in numpy, :mod:`recognition.resnet`) takes about 10 ms on one x86 core
here, and about ten times that on a Raspberry Pi 4 (``bench.pi_factor``); with
dlib-bin's own network it took 75-180 ms here. Done in the frame loop, it stalls
capture and detection, and the kiosk misses people walking past. Both
encoders here take faces with :meth:`Encoder.submit` and hand embeddings back later
with :meth:`Encoder.results`, each tagged with the caller's key (a track id) and the
time of the frame the face came from:

- :class:`InlineEncoder` encodes in ``submit`` itself, as the loop always did (tests,
  and ``encoder_workers = 0``);
- :class:`ProcessEncoder` hands the faces to worker processes and never blocks the
  loop on an encoding.

Why processes, not threads. The landmark predictor and the face chip are dlib calls
that hold the GIL, and the network is 29 matrix products glued by numpy calls that
hold it between them: a thread encoding beside the frame loop would still stall it.
(With dlib-bin's own network, 16 encodings took 1.30 s on one thread and 1.32 s on
two.) So each worker is a process with its own
:class:`~recognition.faces.FaceModels`, started with the "spawn" method: forking a
process that already runs dlib, OpenCV or the screen's threads is unsafe. Each worker's
BLAS runs one thread (:data:`WORKER_ENVIRONMENT`).

Why crops. A 1080p frame is 6 MB; each face is sent as a crop instead: its box grown
by the box's own size on each side, clipped to the image, with the box moved into the
crop's coordinates (:func:`face_crop`). Everything dlib reads lies inside it: the
landmark predictor samples pixels around the box, and the aligned 150x150 chip
(padding 0.25), with the small border dlib's image pyramid adds under it, spans 1.0-1.4
box sizes on the 30 faces of the shared photos, so half a box size beyond the box
would already do (it gives bit-identical embeddings there; a quarter does not, off by
up to 0.003): the full box size is a margin of two. Where the crop is clipped the image
ends too, so the pixels beyond are missing from both. tests/test_encoders.py checks
that the crop's embedding equals the frame's, with a face cut by the image edge. A
crop is 3x3 box sizes at most (a 200-px face: about 1 MB) and is pickled down one pipe
per worker, which takes a millisecond.

Queue and order. A pool holds at most ``queue_size`` faces (default two per worker)
that are waiting for a worker or being encoded; ``submit`` takes a frame's faces
largest first (the nearest person first) and refuses the rest once the pool is full,
and refuses a key that is still in flight: the caller offers it again on a later
frame. A worker holds one face at a time, so a face waits behind at most one other;
the parent hands out the next face whenever ``submit`` or ``results`` runs, so call
``results()`` every frame.

Crashes. A worker that dies (the out-of-memory killer, a segfault in native code, a
SIGKILL) is noticed in ``submit`` and ``results`` (its process sentinel, or its pipe
at end of file); the face it held comes back as an :class:`EncodeResult` with
``embedding=None``, so the caller never waits forever; a warning names the worker and
its exit status (never an embedding: embeddings are biometric data and are never
logged); a fresh worker replaces it, counted in ``restarts``. A worker stuck on one
face for ``job_timeout`` seconds is killed and treated the same way. When workers
keep dying (a death after ``max_restarts`` restarts within ``restart_window`` seconds:
by default a fourth within a minute) the pool closes and raises :class:`EncoderError`,
one line, so the kiosk exits and systemd restarts it rather than limping on.

Signals. Workers ignore SIGINT and SIGTERM: Ctrl-C reaches the whole process group
and systemd signals every process of the unit, but only the kiosk decides when to stop;
it closes the pool (``close()``, or the ``with`` block), which sends each worker a
stop message, waits ``stop_timeout`` seconds and kills what is left. A worker whose
kiosk died outright (its pipe closes) exits on its own; a pool still open when the
interpreter exits is closed by an ``atexit`` hook first.

Sizing. :func:`default_workers` is the machine's cores minus one, at least one: on a
Pi 4's four cores, one for capture, detection and tracking and three encoding three
faces at once. Each worker holds its own models and libraries, about 110 MB resident
here (x86-64): on a 1 GB Pi, use fewer.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import os
import signal
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from clockface.closing import Closable, Closing
from clockface.errors import ClockfaceError, ModelError
from recognition.faces import Box, FaceModels, FloatArray, RGBImage, as_rgb_image

log = logging.getLogger("clockface.kiosk")

CROP_MARGIN = 1.0
"""How far :func:`face_crop` grows a face's box on each side, in box sizes."""

DEFAULT_STARTUP_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_JOB_TIMEOUT = 30.0
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW = 60.0

# The tiny black picture each worker encodes once at start, which loads both models.
_WARMUP_SIDE = 32


class EncoderError(ModelError):
    """The face encoder's worker processes failed: they did not start in time, or keep
    dying. (A model that cannot be loaded raises :class:`~clockface.errors.ModelError`.)"""


@dataclass(frozen=True, slots=True, eq=False)
class EncodeResult:
    """One finished encoding.

    ``key``: the caller's key (a track id). ``frame_time``: the source time of the
    frame the face came from. ``embedding``: a read-only float32 array of shape (128,),
    or None when the face could not be encoded (its worker died, a box outside the
    picture, dlib refused it). Results compare by identity (an array has no single
    truth value to compare by).
    """

    key: int
    frame_time: float
    embedding: FloatArray | None


class Encoder(Closable, Protocol):
    """What the frame loop needs from an encoder; see the module docstring."""

    @property
    def restarts(self) -> int:
        """Workers restarted after dying (always 0 for an in-process encoder)."""
        ...

    def submit(
        self, image: RGBImage, frame_time: float, jobs: Sequence[tuple[int, Box]]
    ) -> list[int]:
        """Queue these faces of ``image`` for encoding; the keys accepted, largest face
        first. A key still in flight is refused; so is every face once the queue is
        full (offer them again on a later frame)."""
        ...

    def results(self, timeout: float = 0.0) -> list[EncodeResult]:
        """The encodings finished so far; when none is and some are in flight, waits up
        to ``timeout`` seconds for the first."""
        ...

    def in_flight(self) -> frozenset[int]:
        """The keys submitted whose results ``results()`` has not returned yet."""
        ...


def default_workers(cpu_count: int | None = None) -> int:
    """How many encoder processes to run: the cores this process may use, minus one for
    the frame loop (capture, detection, tracking), and at least one. A Pi 4 (four
    cores) gets three.

    ``cpu_count``: the cores to size for; by default this process's CPU affinity (which
    a container or systemd's ``CPUAffinity=`` may narrow), else ``os.cpu_count()``.
    """
    if cpu_count is None:
        try:
            cpu_count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux
            cpu_count = os.cpu_count() or 1
    return max(1, cpu_count - 1)


def open_encoder(models: FaceModels, workers: int) -> Encoder:
    """An encoder with ``models``'s settings: in this process when ``workers`` is 0,
    else a pool of that many worker processes (which load their own models). With
    workers, this process's OpenCV is held to one thread: detection keeps one core and
    leaves the others to the workers (on a Pi 4: one and three), instead of all of them
    contending for every core."""
    if workers == 0:
        return InlineEncoder(models)
    cv2.setNumThreads(1)
    return ProcessEncoder(workers, num_jitters=models.num_jitters, model_dir=models.model_dir)


def face_crop(image: RGBImage, box: Box, margin: float = CROP_MARGIN) -> tuple[RGBImage, Box]:
    """A C-contiguous copy of the part of ``image`` an encoding of the face in ``box``
    reads, and the box moved into the crop's coordinates.

    The crop is the box grown by ``margin`` times its larger side on each side, clipped
    to the image. Encoding the crop with the moved box gives the same embedding as
    encoding the whole image with ``box``. A box wholly outside the image gives an
    empty crop (a dimension of 0).
    """
    height, width = image.shape[:2]
    grow = math.ceil(max(box.width, box.height) * margin)
    # dlib's right and bottom are inclusive: keep the pixel at box.right / box.bottom.
    top = min(max(box.top - grow, 0), height)
    left = min(max(box.left - grow, 0), width)
    bottom = max(min(box.bottom + grow + 1, height), top)
    right = max(min(box.right + grow + 1, width), left)
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    moved = Box(
        top=box.top - top, right=box.right - left, bottom=box.bottom - top, left=box.left - left
    )
    return crop, moved


def _is_empty(image: RGBImage, box: Box) -> bool:
    """Whether the box has no pixel inside the image (nothing to encode)."""
    return box.clipped(*image.shape[:2]).area == 0


def _largest_first(jobs: Sequence[tuple[int, Box]], image: RGBImage) -> list[tuple[int, Box]]:
    height, width = image.shape[:2]
    return sorted(jobs, key=lambda job: -job[1].clipped(height, width).area)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _exit_status(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# -- in this process -------------------------------------------------------------------


class InlineEncoder(Closing):
    """Encodes in :meth:`submit`, in this process, with ``models``: the frame loop
    waits for every encoding, as it always did. Accepts every face (there is no
    queue); results come back from the next :meth:`results`, largest face first."""

    restarts = 0

    def __init__(self, models: FaceModels) -> None:
        self.models = models
        self._done: list[EncodeResult] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"InlineEncoder({self.models!r})"

    def submit(
        self, image: RGBImage, frame_time: float, jobs: Sequence[tuple[int, Box]]
    ) -> list[int]:
        _check_open(self._closed)
        image = as_rgb_image(image)
        busy = {result.key for result in self._done}
        accepted = []
        for key, box in _largest_first(jobs, image):
            if key in busy:
                continue
            busy.add(key)
            accepted.append(key)
            self._done.append(EncodeResult(key, frame_time, self._encode(image, box)))
        return accepted

    def _encode(self, image: RGBImage, box: Box) -> FloatArray | None:
        if _is_empty(image, box):
            return None
        try:
            embedding: FloatArray = self.models.encode(image, [box])[0]
        except ClockfaceError:
            raise  # a missing model: nothing will encode, say so
        except Exception as err:  # dlib refusing this one face
            log.warning("could not encode a face: %s", _first_line(err))
            return None
        embedding.flags.writeable = False
        return embedding

    def results(self, timeout: float = 0.0) -> list[EncodeResult]:
        _check_open(self._closed)
        done, self._done = self._done, []
        return done

    def in_flight(self) -> frozenset[int]:
        return frozenset(result.key for result in self._done)

    def close(self) -> None:
        self._closed = True
        self._done = []


def _check_open(closed: bool) -> None:
    if closed:
        raise RuntimeError("the face encoder is closed")


# -- worker processes ------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    id: int
    key: int
    frame_time: float
    crop: RGBImage
    box: Box


@dataclass(slots=True, eq=False)
class _Worker:
    index: int
    process: SpawnProcess
    conn: multiprocessing.connection.Connection
    ready: bool = False
    job: _Job | None = None
    job_started: float = 0.0
    error: str | None = None  # what the worker said before it exited


# Pools still open, closed at interpreter exit before multiprocessing's own exit hook
# (registered when multiprocessing.util was imported, above, so it runs after this one)
# would wait on workers that ignore SIGTERM.
_open_pools: weakref.WeakSet[ProcessEncoder] = weakref.WeakSet()


@atexit.register
def _close_open_pools() -> None:
    for pool in list(_open_pools):
        pool.close()


class ProcessEncoder(Closing):
    """Encodes in ``workers`` worker processes; see the module docstring.

    ``queue_size``: faces waiting or being encoded at most (default two per worker).
    ``num_jitters``, ``model_dir``: as for :class:`~recognition.faces.FaceModels`.
    The constructor returns once every worker has loaded its models (each encodes a
    tiny blank picture once); a model that cannot be loaded raises
    :class:`~clockface.errors.ModelError` here, and a worker that does not start
    within ``startup_timeout`` seconds raises :class:`EncoderError`. ``job_timeout``,
    ``max_restarts``, ``restart_window``, ``stop_timeout``: see Crashes and Signals in
    the module docstring.

    Not thread-safe: one thread (the frame loop) calls it.
    """

    def __init__(
        self,
        workers: int,
        *,
        queue_size: int | None = None,
        num_jitters: int = 1,
        model_dir: str | Path | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        restart_window: float = DEFAULT_RESTART_WINDOW,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        if queue_size is None:
            queue_size = 2 * workers
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be a positive integer, not {queue_size!r}")
        if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 1:
            raise ValueError(f"num_jitters must be a positive integer, not {num_jitters!r}")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer of at least 0, not {max_restarts!r}")
        for name, value in (
            ("startup_timeout", startup_timeout),
            ("job_timeout", job_timeout),
            ("restart_window", restart_window),
            ("stop_timeout", stop_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be more than 0, not {value!r}")
        self.queue_size = queue_size
        self.num_jitters = num_jitters
        self.model_dir = None if model_dir is None else str(model_dir)
        self.job_timeout = job_timeout
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.stop_timeout = stop_timeout
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._pending: deque[_Job] = deque()
        self._done: list[EncodeResult] = []
        self._keys: set[int] = set()
        self._next_id = 0
        self._deaths: deque[float] = deque()
        self._closed = False
        _open_pools.add(self)
        try:
            for index in range(workers):
                self._workers.append(self._start(index))
            self._await_ready(startup_timeout)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return (
            f"ProcessEncoder(workers={len(self._workers)}, queue_size={self.queue_size}, "
            f"num_jitters={self.num_jitters})"
        )

    # -- the interface -----------------------------------------------------------------

    def submit(
        self, image: RGBImage, frame_time: float, jobs: Sequence[tuple[int, Box]]
    ) -> list[int]:
        _check_open(self._closed)
        image = as_rgb_image(image)
        self._poll()
        accepted = []
        for key, box in _largest_first(jobs, image):
            if key in self._keys:
                continue
            if self._load() >= self.queue_size:
                break
            self._keys.add(key)
            accepted.append(key)
            if _is_empty(image, box):
                self._done.append(EncodeResult(key, frame_time, None))
                continue
            crop, moved = face_crop(image, box)
            self._pending.append(_Job(self._next_id, key, frame_time, crop, moved))
            self._next_id += 1
        self._dispatch()
        return accepted

    def results(self, timeout: float = 0.0) -> list[EncodeResult]:
        _check_open(self._closed)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            self._poll()
            if self._done or self._load() == 0:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wait(remaining)
        done, self._done = self._done, []
        for result in done:
            self._keys.discard(result.key)
        return done

    def in_flight(self) -> frozenset[int]:
        return frozenset(self._keys)

    def worker_pids(self) -> list[int]:
        """The workers' process ids, in worker order (for tests and the status page)."""
        pids = [worker.process.pid for worker in self._workers]
        assert None not in pids, "every worker has been started"
        return [pid for pid in pids if pid is not None]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _open_pools.discard(self)
        workers, self._workers = self._workers, []
        self._pending.clear()
        self._done = []
        self._keys.clear()
        for worker in workers:
            with contextlib.suppress(OSError):  # it is gone already
                worker.conn.send(None)  # the stop message
        deadline = time.monotonic() + self.stop_timeout
        for worker in workers:
            worker.process.join(max(deadline - time.monotonic(), 0.0))
        for worker in workers:
            _reap(worker)

    # -- workers -----------------------------------------------------------------------

    def _start(self, index: int) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(theirs, self.num_jitters, self.model_dir),
            name=f"clockface-encoder-{index}",
            daemon=True,
        )
        try:
            with _one_blas_thread():
                process.start()
        except OSError as err:  # no memory or process slots left for another process
            ours.close()
            raise EncoderError(
                f"cannot start face encoder worker {index} ({_first_line(err)}): "
                "check memory or use fewer encoder workers"
            ) from err
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker's end lives in the worker only: its death is EOF here
        return _Worker(index, process, ours)

    def _await_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(worker.ready for worker in self._workers):
            for worker in self._workers:
                if worker.ready:
                    continue
                self._read(worker)
                if worker.error is not None:
                    raise ModelError(
                        f"face encoder worker {worker.index} could not load its models: "
                        f"{worker.error}"
                    )
                if not worker.ready and not worker.process.is_alive():
                    worker.process.join(1.0)
                    raise EncoderError(
                        f"face encoder worker {worker.index} stopped before it was ready "
                        f"({_exit_status(worker.process.exitcode)})"
                    )
            remaining = deadline - time.monotonic()
            if all(worker.ready for worker in self._workers):
                break
            if remaining <= 0:
                raise EncoderError(
                    f"the face encoder workers did not load their models within {timeout:g} s: "
                    "the machine is overloaded or out of memory; use fewer encoder workers"
                )
            self._wait(remaining)

    def _load(self) -> int:
        """Faces waiting for a worker or being encoded."""
        return len(self._pending) + sum(worker.job is not None for worker in self._workers)

    def _wait(self, timeout: float) -> None:
        handles: list[Any] = []
        for worker in self._workers:
            handles += (worker.conn, worker.process.sentinel)
        busy = [w.job_started + self.job_timeout for w in self._workers if w.job is not None]
        if busy:
            timeout = min(timeout, max(min(busy) - time.monotonic(), 0.0))
        multiprocessing.connection.wait(handles, timeout)

    def _poll(self) -> None:
        """Take in what the workers sent, replace the dead, hand out waiting faces."""
        now = time.monotonic()
        for i, worker in enumerate(self._workers):
            self._read(worker)
            if worker.job is not None and now - worker.job_started > self.job_timeout:
                log.warning(
                    "face encoder worker %d (pid %s) spent more than %g s on one face: killing it",
                    worker.index,
                    worker.process.pid,
                    self.job_timeout,
                )
                worker.process.kill()
                worker.process.join(1.0)
            if not worker.process.is_alive():
                self._workers[i] = self._replace(worker)
        self._dispatch()

    def _read(self, worker: _Worker) -> None:
        """Every message the worker has sent so far; a broken pipe kills it."""
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            if worker.process.is_alive():  # a pipe that broke under a live worker
                worker.process.kill()
            worker.process.join(1.0)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "failed":
            worker.error = str(message[1])
        elif kind == "done":
            _, job_id, data, error = message
            job = worker.job
            if job is None or job.id != job_id:
                return  # cannot happen: a worker holds one job at a time
            worker.job = None
            embedding: FloatArray | None = None
            if data is not None:
                embedding = np.frombuffer(data, dtype=np.float32)  # read-only: bytes
            else:
                log.warning(
                    "face encoder worker %d could not encode a face: %s", worker.index, error
                )
            self._done.append(EncodeResult(job.key, job.frame_time, embedding))

    def _replace(self, worker: _Worker) -> _Worker:
        """A dead worker's face comes back failed; a new worker takes its place, unless
        workers keep dying."""
        worker.process.join(1.0)
        pid, status = worker.process.pid, _exit_status(worker.process.exitcode)
        said = f" ({worker.error})" if worker.error else ""
        now = time.monotonic()
        while self._deaths and now - self._deaths[0] > self.restart_window:
            self._deaths.popleft()
        if len(self._deaths) >= self.max_restarts:
            self.close()
            raise EncoderError(
                f"face encoder workers keep dying ({len(self._deaths) + 1} within "
                f"{self.restart_window:g} s; worker {worker.index} {status}{said}): "
                "check memory (journalctl -k | grep -i oom) or use fewer encoder workers"
            )
        self._deaths.append(now)
        if worker.job is not None:
            self._done.append(EncodeResult(worker.job.key, worker.job.frame_time, None))
            worker.job = None
        _reap(worker)
        log.warning(
            "face encoder worker %d (pid %s) stopped (%s)%s; starting a new one",
            worker.index,
            pid,
            status,
            said,
        )
        self.restarts += 1
        return self._start(worker.index)

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._pending:
                return
            if not worker.ready or worker.job is not None or not worker.process.is_alive():
                continue
            job = self._pending.popleft()
            worker.job, worker.job_started = job, time.monotonic()
            box = (job.box.top, job.box.right, job.box.bottom, job.box.left)
            try:
                worker.conn.send((job.id, job.crop, box))
            except OSError:  # it died: the next poll returns the job as failed
                if worker.process.is_alive():
                    worker.process.kill()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS held to one thread in this process while the block runs.

    The kiosk's process runs the frame loop, the gallery's match and, with
    ``encoder_workers = 0``, the encodings: small matrix products, which OpenBLAS would
    split over every core, its threads spinning between products and competing with
    the encoder workers and the camera. Measured with bench.pipeline (encodings in the
    loop, on this 2-core machine beside other work): 0.0326 CPU-seconds a frame with
    OpenBLAS's default threads, 0.0062 with one. :meth:`kiosk.loop.Kiosk.run` runs in
    this block; workers get :data:`WORKER_ENVIRONMENT` instead."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
"""Set for each worker process: numpy's BLAS (OpenBLAS, which runs the encoder's
network) uses one thread in it. A worker encodes one face at a time, and the pool
already has a process per core; BLAS threads on top would only contend. The variables
must be in the environment before the worker imports numpy, so they are set in this
process while the worker starts (a spawned process copies the environment), then put
back."""


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in WORKER_ENVIRONMENT}
    os.environ.update(WORKER_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _reap(worker: _Worker) -> None:
    """Make sure the worker's process is gone and joined, and free its handles."""
    process = worker.process
    if process.is_alive():
        process.kill()  # it ignores SIGTERM
        process.join(1.0)
    worker.conn.close()
    if process.exitcode is not None:
        process.close()


def _worker_main(
    conn: multiprocessing.connection.Connection, num_jitters: int, model_dir: str | None
) -> None:
    """A worker: load the models, then encode crops until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        models = FaceModels(num_jitters=num_jitters, model_dir=model_dir)
        blank = np.zeros((_WARMUP_SIDE, _WARMUP_SIDE, 3), dtype=np.uint8)
        models.encode(blank, [Box(0, _WARMUP_SIDE - 1, _WARMUP_SIDE - 1, 0)])
    except Exception as err:
        message = str(err) if isinstance(err, ClockfaceError) else _first_line(err)
        _send(conn, ("failed", message))
        return
    if not _send(conn, ("ready",)):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the kiosk is gone
        if message is None:
            return
        job_id, crop, (top, right, bottom, left) = message
        try:
            vector = models.encode(crop, [Box(top, right, bottom, left)])[0]
            reply: tuple[Any, ...] = ("done", job_id, vector.tobytes(), None)
        except Exception as err:
            reply = ("done", job_id, None, _first_line(err))
        if not _send(conn, reply):
            return


def _send(conn: multiprocessing.connection.Connection, message: tuple[Any, ...]) -> bool:
    try:
        conn.send(message)
    except OSError:
        return False
    return True
