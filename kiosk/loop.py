"""The kiosk's frame loop: capture, detect, track, encode, match, decide, store, notify.

Each stage is one object with one verb; :meth:`Kiosk.handle` wires them for one frame:

- :class:`MotionGate` skips detection on frames where nothing moved and nobody is
  being followed (but detects at least every ``idle_detect_seconds``: someone may
  come into view too small or too slowly to count as motion). Detection itself runs
  every ``detect_every`` frames while looking for
  faces or voting on a pass, and only every ``detect_every_settled`` frames (enough to
  keep the tracks alive) while every pass in view is already decided.
- ``FaceModels.detect`` finds faces (YuNet by default) on a downscaled copy whose size
  follows from the frame's and ``min_face_px`` (:meth:`KioskSettings.detection_side`):
  every face big enough to encode is found with room to spare; boxes come back in
  full-frame pixels.
- :class:`~kiosk.tracking.Tracker` turns boxes into passes (tracks), following faces
  that move and grow fast as people walk up to the camera.
- A track is encoded a few times (``max_encodings``, ``encode_gap`` apart), only while
  its face is at least ``min_face_px``: a smaller face is too far away to be walking
  past, and its embedding drifts (see ``recognition/quality.py``). Encoding is handed
  to a :class:`~kiosk.encoders.Encoder`: worker processes (``encoder_workers``) so that
  detection and tracking keep pace with the camera, the nearest face first; results
  are collected on every frame.
- ``Gallery.match`` names each encoding, all of a frame's results in one batch;
  :class:`~kiosk.voting.Votes` settles a track once enough encodings agree, or on one
  decisive encoding; :class:`~kiosk.voting.PassBook` counts the votes of a pass split
  into several tracks together, and keeps its fragments from logging twice.
- With ``liveness = "required"``, a track is also sampled for liveness
  (:class:`recognition.liveness.FaceMotion`: its 68 landmarks, ``liveness_gap`` apart,
  at most ``liveness_samples`` times, on frames the detector runs on when a sample is
  due) while it is undecided; a settled identity waits for the verdict, without more
  encodings. A pass whose landmarks move as a flat picture's (a print, a phone) logs
  nothing and is counted as a suspected spoof, as is one that settled on a person but
  left before it looked alive. The 68-point model is loaded only then.
- :class:`~kiosk.policy.AttendancePolicy` decides in / out / nothing; the event is
  committed to the store before the person is greeted.

A pass that never settles logs nothing and is counted: unknown (no encoding named
anyone), one-vote (named once, never confirmed) or conflicting (named two people).
A kiosk that sees motion but no face for ``no_face_warning_seconds`` says so once, in
the journal and to its heartbeat (``kiosk status`` and the screen's status line), and
again when a face is back.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from clockface import __version__
from clockface.errors import ClockfaceError
from hardware.feedback import Feedback, Greeting
from hardware.frames import Frame, FrameSource
from hardware.watchdog import Heartbeat
from kiosk.encoders import Encoder, EncodeResult, InlineEncoder, one_blas_thread
from kiosk.motion import MotionGate
from kiosk.policy import AttendancePolicy
from kiosk.settings import KioskSettings, LivenessMode
from kiosk.store import Event, EventLog, Roster
from kiosk.tracking import Track, Tracker
from kiosk.voting import PassBook, Verdict
from recognition.faces import Box, FaceModels, FloatArray
from recognition.gallery import Gallery
from recognition.liveness import FaceMotion, LivenessLimits, LivenessVerdict

log = logging.getLogger("clockface.kiosk")

MAX_IN_FLIGHT = 2
"""Encodings of one pass at a time in the encoder: the next waits behind the one being
encoded, so a worker does not sit idle until the frame loop comes round again."""


class KioskDatabase(Roster, EventLog, Protocol):
    """What the loop reads and writes: the roster replica and the event log.

    :class:`kiosk.store.KioskStore` is one; a central-backed roster can be another.
    """


STRANGER_DISTANCE = 0.70
"""A pass whose mean encoding is farther than this from everyone enrolled is a stranger
(on the shared photos, 95 % of impostor distances are over 0.714, every genuine one
under 0.53): it is encoded again less often."""


@dataclass
class KioskStats:
    frames: int = 0
    detected: int = 0  # frames the detector ran on
    faces: int = 0  # faces the detector found, summed over those frames
    tracks: int = 0  # faces followed (a pass, or a fragment of one)
    still: int = 0  # frames skipped: nothing moved, nobody followed
    between: int = 0  # frames between detections: tracks carry on
    encodings: int = 0
    failed_encodings: int = 0  # a worker died, or dlib could not encode the face
    events: int = 0
    repeats: int = 0  # settled passes inside the cooldown: no event
    unknown_passes: int = 0  # encoded, never named anyone
    one_vote_passes: int = 0  # named once, never confirmed: no event
    conflicting_passes: int = 0
    fragments: int = 0  # tracks that were part of a pass settled by another track
    single_vote_events: int = 0  # events settled by one decisive encoding
    suspected_spoofs: int = 0  # settled on a person, but not alive: no event
    liveness_samples: int = 0  # 68-landmark samples taken for liveness
    liveness_seconds: float = 0.0  # CPU time those took, landmarks and verdicts
    event_delays: list[float] = field(default_factory=list)  # source seconds, track start to event


def video_clock(start: datetime) -> Callable[[Frame], datetime]:
    """Event times for a replay: ``start`` plus the frame's position in the video."""
    return lambda frame: start + timedelta(seconds=frame.time)


def wall_clock(_: Frame) -> datetime:
    return datetime.now(UTC)


class Kiosk:
    """The frame loop's state: one kiosk, one camera.

    ``encoder``: where faces are encoded (:func:`kiosk.encoders.open_encoder`); by
    default in this process (:class:`~kiosk.encoders.InlineEncoder`). The kiosk does
    not close it: whoever opened it does. ``wait_for_encodings``: wait on every frame
    for the encodings it asked for, as a replay that is not paced to a camera should
    (a live camera does not wait, so neither does the kiosk then).
    """

    def __init__(
        self,
        *,
        models: FaceModels,
        database: KioskDatabase,
        feedback: Feedback,
        settings: KioskSettings | None = None,
        clock: Callable[[Frame], datetime] = wall_clock,
        encoder: Encoder | None = None,
        wait_for_encodings: bool = False,
    ) -> None:
        self.settings = s = settings or KioskSettings()
        self.wait_for_encodings = wait_for_encodings
        self.models = models
        self.database = database
        self.feedback = feedback
        self.clock = clock
        self.encoder: Encoder = encoder if encoder is not None else InlineEncoder(models)
        self.tz = ZoneInfo(s.timezone)
        self.policy = AttendancePolicy(s.mode, timedelta(seconds=s.cooldown_seconds))
        self.tracker = Tracker(max_age=s.track_max_age)
        self.motion = MotionGate(s.motion_threshold)
        self.book = PassBook(window=s.pass_window)
        # person -> (event id, source time) of the events this kiosk logged, for the
        # cooldown on a clock that cannot go back (kiosk.policy: clocks that jump).
        self._logged: dict[str, tuple[str, float]] = {}
        self.stats = KioskStats()
        self.liveness: LivenessLimits | None = None
        if s.liveness is LivenessMode.REQUIRED:
            self.liveness = s.liveness_limits
            # Load the 68-point model (100 MB) now, not in the first person's pass.
            models.landmarks68(np.zeros((8, 8, 3), dtype=np.uint8), Box(0, 8, 8, 0))
        self._since_detection = s.detect_every_settled  # detect on the first frame
        self._roster_version = -1
        self._roster_checked = float("-inf")
        self._sized_for: tuple[int, int] | None = None
        self._min_face = s.min_face_px
        self._last_detection = -math.inf
        self._encoding: dict[int, Track] = {}  # job key -> its track, encodings in flight
        self._jobs = itertools.count(1)
        self._ended: list[tuple[float, Track]] = []  # (deadline, track): ended, named, unsettled
        self._moving_since: float | None = None  # first motion with no face since
        self.blind = False  # motion but no face for no_face_warning_seconds
        self._heartbeat: Heartbeat | None = None
        self.gallery = Gallery()
        self.reload_gallery()

    def reload_gallery(self) -> bool:
        """Load the roster again if it changed; True when it did."""
        version = self.database.roster_version()
        if version == self._roster_version:
            return False
        self.gallery = self.database.load_gallery(
            threshold=self.settings.threshold, margin=self.settings.margin
        )
        self._roster_version = version
        log.info(
            "gallery loaded: %d people, %d templates", len(self.gallery.people), len(self.gallery)
        )
        return True

    def handle(self, frame: Frame) -> list[Event]:
        """One frame through every stage; the events it committed."""
        s = self.settings
        self.stats.frames += 1
        if frame.time - self._roster_checked >= s.roster_check_seconds:
            self._roster_checked = frame.time
            self.reload_gallery()
        self._size_detection(frame)
        events = self._collect(frame)
        moved = self.motion.moved(frame.image if frame.small is None else frame.small)
        idle = frame.time - self._last_detection < s.idle_detect_seconds
        if not moved and not self.tracker.tracks and idle:
            self.stats.still += 1
            self._finish(self.tracker.expire(frame.time), frame.time)
            return events
        self._since_detection += 1
        if self._since_detection < self._detection_interval(frame.time):
            self.stats.between += 1
            self._finish(self.tracker.expire(frame.time), frame.time)
            return events
        self._since_detection = 0
        self._last_detection = frame.time
        self.stats.detected += 1
        found = self.models.detect_faces(frame.image, frame.small)
        self.stats.faces += len(found)
        self._watch_for_faces(frame.time, moved=moved, found=bool(found))
        before = {t.track_id for t in self.tracker.tracks}
        live, gone = self.tracker.update([hit.box for hit in found], frame.time)
        self.stats.tracks += sum(1 for t in live if t.track_id not in before)
        turns = {hit.box: hit.turn for hit in found}
        for track in live:
            if track.last_seen == frame.time:
                track.turn = turns.get(track.box)
        self._finish(gone, frame.time)
        if not self.gallery.people:
            return events
        near = [  # undecided passes seen now, near enough to judge
            t
            for t in live
            if t.last_seen == frame.time
            and not t.decided
            and min(t.box.width, t.box.height) >= self._min_face
        ]
        in_flight = Counter(t.track_id for t in self._encoding.values())
        due = [
            t
            for t in near
            if in_flight[t.track_id] < MAX_IN_FLIGHT
            and (t.turn is None or t.turn <= s.max_turn)  # a turned head: wait for a view
            and t.due_for_encoding(
                frame.time,
                max_encodings=s.max_encodings,
                min_gap=s.encode_gap,
                slow_gap=self._reencode_gap(t),
            )
            and not (self.liveness and self._verdict(t, frame.time))  # only liveness left
        ]
        if due:
            self._submit(frame, due)
            if self.wait_for_encodings:
                events += self._await(frame)
            else:
                events += self._collect(frame)  # an in-process encoder has them already
        sampled = self._sample_liveness(frame, [t for t in near if not t.decided])
        for track in sampled:
            event = self._settle(track, frame)
            if event is not None:
                events.append(event)
        return events

    def _submit(self, frame: Frame, due: list[Track]) -> None:
        """Hand the due faces to the encoder, the least encoded passes first (a walker
        just come into range before a stranger's sixth look), the nearest first among
        those, until its queue is full."""
        counts = sorted({len(t.encoded_at) for t in due})
        for count in counts:
            group = {next(self._jobs): t for t in due if len(t.encoded_at) == count}
            jobs = [(key, t.box) for key, t in group.items()]
            accepted = set(self.encoder.submit(frame.image, frame.time, jobs))
            for key, track in group.items():
                if key in accepted:
                    track.encoded_at.append(frame.time)
                    self._encoding[key] = track
            if len(accepted) < len(group):
                return  # the queue is full: the rest wait for a later frame

    def _reencode_gap(self, track: Track) -> float:
        """How long an undecided pass waits between encodings once it has had
        ``max_encodings``: ``reencode_gap``, or four times that when the mean of its
        encodings is far from everyone enrolled (a stranger: they need not hold up the
        people behind them)."""
        pooled = track.votes.pooled
        far = pooled is not None and pooled.distance > STRANGER_DISTANCE
        return self.settings.reencode_gap * (4 if far else 1)

    def _size_detection(self, frame: Frame) -> None:
        """Size the detection copy for this frame size (once, and when it changes)."""
        height, width = frame.image.shape[:2]
        if self._sized_for != (width, height):
            self._sized_for = (width, height)
            self.models.detect_max_side = self.settings.detection_side(width, height)
            self._min_face = self.settings.encode_min_face(width, height)
            log.info(
                "%dx%d frames: faces detected on a copy %d px on its longest side, "
                "encoded from %d px",
                width,
                height,
                self.models.detect_max_side,
                self._min_face,
            )

    def _collect(self, frame: Frame) -> list[Event]:
        """Fold the encodings that came back into their tracks' votes; settle them."""
        results = self.encoder.results()
        return self._fold(results, frame) if results else []

    def _fold(self, results: list[EncodeResult], frame: Frame) -> list[Event]:
        done: list[tuple[Track, float, FloatArray]] = []  # track, frame time, embedding
        for result in results:
            track = self._encoding.pop(result.key, None)
            if track is None:
                continue
            if result.embedding is None:
                self.stats.failed_encodings += 1
                if track.encoded_at:
                    track.encoded_at.pop()  # not spent: it may be encoded again
                continue
            done.append((track, result.frame_time, result.embedding))
        if not done:
            return []
        embeddings = np.stack([embedding for _, _, embedding in done])
        self.stats.encodings += len(done)
        touched: list[Track] = []
        for (track, seen, embedding), match in zip(
            done, self.gallery.match(embeddings), strict=True
        ):
            track.votes.add(match)
            track.embeddings.append(embedding)
            if match.person_id is not None:
                self.book.note(match.person_id, seen, track.track_id)
            if track not in touched:
                touched.append(track)
        pooled_min = self.settings.pooled_min
        for track in touched:
            if pooled_min and len(track.embeddings) >= pooled_min:
                mean = np.mean(track.embeddings, axis=0, dtype=np.float32)
                track.votes.pooled = self.gallery.match_one(mean)
        events = []
        for track in touched:
            if not track.decided:
                event = self._settle(track, frame)
                if event is not None:
                    events.append(event)
        return events

    def _watch_for_faces(self, now: float, *, moved: bool, found: bool) -> None:
        """Say so when the camera sees motion but no face for a long time."""
        if found:
            self._moving_since = None
            if self.blind:
                self.blind = False
                log.info("faces are detected again")
                if self._heartbeat is not None:
                    self._heartbeat.warn(None)
            return
        if not moved:
            return
        if self._moving_since is None:
            self._moving_since = now
        limit = self.settings.no_face_warning_seconds
        if not self.blind and now - self._moving_since >= limit:
            self.blind = True
            seconds = now - self._moving_since
            spell = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
            message = (
                f"the camera has seen motion but no face for {spell}: check that it faces "
                "the door at face height, its focus and the light"
            )
            log.warning("%s", message)
            if self._heartbeat is not None:
                self._heartbeat.warn(message)

    def _sample_liveness(self, frame: Frame, tracks: list[Track]) -> list[Track]:
        """Landmarks of the tracks whose liveness evidence is due; those tracks."""
        if self.liveness is None:
            return []
        sampled = []
        for track in tracks:
            if track.votes.named is None:
                continue  # nobody to prove alive yet: sample the views that name someone
            if track.motion is None:
                track.motion = FaceMotion(self.liveness)
            if not track.motion.due(frame.time):
                continue
            started = time.process_time()
            landmarks = self.models.landmarks68(frame.image, track.box)
            track.motion.add(frame.time, landmarks.as_array())
            self.stats.liveness_seconds += time.process_time() - started
            self.stats.liveness_samples += 1
            sampled.append(track)
        return sampled

    def _verdict(self, track: Track, now: float) -> Verdict | None:
        """The track's identity, with the votes of the rest of its pass (PassBook)."""
        named = track.votes.named
        support = 0 if named is None else self.book.support(named, now, track.track_id)
        return track.votes.verdict(
            self.settings.votes_required, decisive=self.settings.decisive, support=support
        )

    def _awaiting_encoding(self, track: Track, now: float) -> bool:
        s = self.settings
        if len(track.encoded_at) >= s.max_encodings:
            return False
        return not (self.liveness and self._verdict(track, now))

    def _awaiting_liveness(self, track: Track, now: float) -> bool:
        """Whether the track needs a liveness sample at ``now`` (so a fresh face box)."""
        if self.liveness is None or track.decided:
            return False
        return track.motion is None or track.motion.due(now)

    def _detection_interval(self, now: float) -> int:
        """Detect often while a pass is being encoded or needs a liveness sample now;
        otherwise (every pass decided, or only waiting for its next sample) seldom."""
        s = self.settings
        tracks = self.tracker.tracks
        busy = any(
            not t.decided and (self._awaiting_encoding(t, now) or self._awaiting_liveness(t, now))
            for t in tracks
        )
        return s.detect_every if busy or not tracks else s.detect_every_settled

    def _settle(self, track: Track, frame: Frame) -> Event | None:
        verdict = self._verdict(track, frame.time)
        if verdict is None:
            return None
        if self.liveness is not None:
            alive = LivenessVerdict.UNDECIDED if track.motion is None else track.motion.verdict
            if alive is LivenessVerdict.UNDECIDED:
                return None  # more frames first
            if alive is LivenessVerdict.SPOOF:
                self._spoof(track, verdict, "its face moved as a flat picture does")
                return None
        track.decided = True
        if self.book.settled_recently(verdict.person_id, frame.time):
            self.stats.fragments += 1  # another track of this pass settled it already
            return None
        self.book.settle(verdict.person_id, frame.time)
        now = self.clock(frame)
        last = self.database.last_event(verdict.person_id)
        direction = self.policy.decide(last, now, self.tz, elapsed=self._elapsed(last, frame))
        if direction is None:
            self.stats.repeats += 1
            return None
        event = self.database.append_event(  # committed before anyone is told
            verdict.person_id,
            direction,
            utc=now,
            tz=self.settings.timezone,
            distance=verdict.distance,
            margin=verdict.margin,
            frames=verdict.agreeing,
            software_version=__version__,
        )
        self._logged[verdict.person_id] = (event.event_id, frame.time)
        self.stats.events += 1
        self.stats.single_vote_events += verdict.agreeing == 1
        self.stats.event_delays.append(frame.time - track.first_seen)
        name = self.database.get_person(verdict.person_id).name
        self.feedback.greet(Greeting(name, direction, now.astimezone(self.tz), verdict.person_id))
        return event

    def _elapsed(self, last: Event | None, frame: Frame) -> float | None:
        """Seconds since ``last`` on the source's clock (monotonic for a camera, the
        position for a video), when this kiosk logged it; None otherwise (or when the
        source's clock went back: another source)."""
        if last is None:
            return None
        logged = self._logged.get(last.person_id)
        if logged is None or logged[0] != last.event_id or frame.time < logged[1]:
            return None
        return frame.time - logged[1]

    def _spoof(self, track: Track, verdict: Verdict, why: str) -> None:
        """A pass that would have been logged, but did not look alive: nothing logged."""
        track.decided = True
        self.stats.suspected_spoofs += 1
        motion = track.motion
        samples, score = (0, 0.0) if motion is None else (motion.samples, motion.score)
        log.warning(
            "suspected spoof: track %d matched %s, but %s (liveness score %.3f < %.3f "
            "over %d frames); no event",
            track.track_id,
            verdict.person_id,
            why,
            score,
            self.settings.liveness_min_residual,
            samples,
        )
        self.feedback.unknown()

    def _finish(self, tracks: list[Track], now: float, *, final: bool = False) -> None:
        """Judge the passes that ended. One that named someone but did not settle waits
        ``pass_window`` (its votes still count for a later fragment of its pass), as
        does one whose encodings are still in flight."""
        for track in tracks:
            if not track.decided and (track.votes.named is not None or self._pending(track)):
                self._ended.append((now + self.settings.pass_window, track))
                continue
            self._judge(track)
        waiting: list[tuple[float, Track]] = []
        for deadline, track in self._ended:
            if track.decided:
                continue
            named = track.votes.named
            if named is not None and self.book.settled_recently(named, now):
                track.decided = True
                self.stats.fragments += 1
            elif not final and (now < deadline or self._pending(track)):
                waiting.append((deadline, track))
            else:
                self._judge(track)
        self._ended = waiting
        self.book.prune(now)

    def _pending(self, track: Track) -> bool:
        return any(t is track for t in self._encoding.values())

    def _judge(self, track: Track) -> None:
        """Count a pass that ended without an event."""
        if track.decided or not track.votes.matches:
            return
        track.decided = True
        verdict = self._verdict(track, math.inf)
        if self.liveness is not None and verdict is not None:
            self._spoof(track, verdict, "it left before it looked alive")
            return
        if track.votes.conflicting:
            self.book.forget(track.track_id)
            self.stats.conflicting_passes += 1
        elif track.votes.named is not None:
            self.stats.one_vote_passes += 1
            self.feedback.unknown()
        else:
            self.stats.unknown_passes += 1
            self.feedback.unknown()

    def drain(self, frame: Frame | None, timeout: float = 30.0) -> list[Event]:
        """Wait (at most ``timeout`` seconds) for the encodings in flight and fold them
        in; the events they settle. Called when the source ends or the kiosk stops."""
        events = [] if frame is None else self._await(frame, timeout)
        self._encoding.clear()
        return events

    def _await(self, frame: Frame, timeout: float = 30.0) -> list[Event]:
        """Fold in the encodings in flight as they come back, for ``timeout`` seconds
        at most; the events they settle."""
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while self._encoding and (left := deadline - time.monotonic()) > 0:
            results = self.encoder.results(timeout=min(left, 1.0))
            if results:
                events += self._fold(results, frame)
        return events

    def run(
        self,
        source: FrameSource,
        stop: threading.Event | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> KioskStats:
        """Read frames until the source ends or ``stop`` is set; then close every pass.

        ``heartbeat`` (systemd's watchdog, the status file) hears ``ready()`` before the
        first read, ``alive()`` only after a frame was read and handled (a camera that
        hangs or fails stops them), and ``stopping()`` at the end. numpy's BLAS runs
        one thread meanwhile (:func:`kiosk.encoders.one_blas_thread`). Encodings still in
        flight at the end are waited for, so a pass seen in the last frames is judged.
        """
        stop = stop or threading.Event()
        self._heartbeat = heartbeat
        if heartbeat is not None:
            heartbeat.ready()
        last: Frame | None = None
        with one_blas_thread():
            try:
                while not stop.is_set():
                    frame = source.read()
                    if frame is None:
                        break
                    last = frame
                    self.handle(frame)
                    if heartbeat is not None:
                        heartbeat.alive()
            except ClockfaceError as err:  # a dead camera, a full disk: tell the operator
                self.feedback.problem(str(err))
                raise
            finally:
                if heartbeat is not None:
                    heartbeat.stopping()
                self.drain(last)
                end = 0.0 if last is None else last.time
                self._finish(self.tracker.finish_all(), end, final=True)
        return self.stats
