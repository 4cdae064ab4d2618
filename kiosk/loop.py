"""The kiosk's frame loop: capture, detect, track, encode, match, decide, store, notify.

Each stage is one object with one verb; :meth:`Kiosk.handle` wires them for one frame:

- :class:`MotionGate` skips detection on frames where nothing moved and nobody is
  being followed. Detection itself runs every ``detect_every`` frames while looking for
  faces or voting on a pass, and only every ``detect_every_settled`` frames (enough to
  keep the tracks alive) while every pass in view is already decided.
- ``FaceModels.detect`` finds faces on a downscaled copy (``detect_max_side``); boxes
  come back in full-frame pixels.
- :class:`~kiosk.tracking.Tracker` turns boxes into passes (tracks).
- A track is encoded a few times (``max_encodings``, ``encode_gap`` apart), only while
  its face is at least ``min_face_px``: a smaller face is too far away to be walking
  past, and its embedding drifts (see ``recognition/quality.py``).
- ``Gallery.match`` names each encoding, all of a frame's faces in one batch;
  :class:`~kiosk.voting.Votes` settles a track once enough encodings agree.
- With ``liveness = "required"``, a track is also sampled for liveness
  (:class:`recognition.liveness.FaceMotion`: its 68 landmarks, ``liveness_gap`` apart,
  at most ``liveness_samples`` times, on frames the detector runs on when a sample is
  due) while it is undecided; a settled identity waits for the verdict, without more
  encodings. A pass whose landmarks move as a flat picture's (a print, a phone) logs
  nothing and is counted as a suspected spoof, as is one that settled on a person but
  left before it looked alive. The 68-point model is loaded only then.
- :class:`~kiosk.policy.AttendancePolicy` decides in / out / nothing; the event is
  committed to the store before the person is greeted.

A pass that never settles logs nothing and is counted (unknown or conflicting).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from clockface import __version__
from clockface.errors import ClockfaceError
from hardware.feedback import Feedback, Greeting
from hardware.sources import Frame, FrameSource
from hardware.watchdog import Heartbeat
from kiosk.policy import AttendancePolicy, Direction, Mode
from kiosk.store import Event, EventLog, Roster
from kiosk.tracking import Track, Tracker
from kiosk.voting import Verdict
from recognition.faces import Box, FaceModels
from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD, Gallery
from recognition.liveness import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_MIN_GAP,
    DEFAULT_MIN_PAIRS,
    DEFAULT_MIN_RESIDUAL,
    MAX_PAIRS,
    MAX_SAMPLES,
    FaceMotion,
    LivenessLimits,
    LivenessVerdict,
)

log = logging.getLogger("clockface.kiosk")


class KioskDatabase(Roster, EventLog, Protocol):
    """What the loop reads and writes: the roster replica and the event log.

    :class:`kiosk.store.KioskStore` is one; a central-backed roster can be another.
    """


class LivenessMode(StrEnum):
    """Whether a pass must also look alive (not a photo) before it is logged."""

    OFF = "off"
    REQUIRED = "required"


@dataclass(frozen=True)
class KioskSettings:
    """How the kiosk decides; every value has a default that works at a door."""

    timezone: str = "UTC"
    mode: Mode = Mode.AUTO
    cooldown_seconds: float = 120.0
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    detect_max_side: int = 320
    upsample: int = 1
    min_face_px: int = 60
    votes_required: int = 2
    max_encodings: int = 5
    encode_gap: float = 0.1
    track_max_age: float = 1.0
    detect_every: int = 2
    detect_every_settled: int = 6
    motion_threshold: float = 1.5
    roster_check_seconds: float = 5.0
    liveness: LivenessMode = LivenessMode.OFF
    liveness_min_residual: float = DEFAULT_MIN_RESIDUAL
    liveness_pairs: int = DEFAULT_MIN_PAIRS
    liveness_samples: int = DEFAULT_MAX_SAMPLES
    liveness_gap: float = DEFAULT_MIN_GAP

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone
        positive = ("threshold", "track_max_age", "roster_check_seconds")
        at_least_one = ("min_face_px", "votes_required", "max_encodings")
        not_negative = ("cooldown_seconds", "margin", "encode_gap", "motion_threshold")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, not {getattr(self, name)!r}")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        for name in not_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)!r}")
        if not 0 <= self.upsample <= 4 or self.detect_max_side < 64:
            raise ValueError("upsample must be 0 to 4 and detect_max_side at least 64")
        if self.votes_required > self.max_encodings:
            raise ValueError("votes_required cannot exceed max_encodings")
        if not 1 <= self.detect_every <= self.detect_every_settled:
            raise ValueError("need 1 <= detect_every <= detect_every_settled")
        if not isinstance(self.liveness, LivenessMode):
            raise ValueError(f'liveness must be "off" or "required", not {self.liveness!r}')
        if not self.liveness_min_residual > 0 or not self.liveness_gap >= 0:
            raise ValueError("liveness_min_residual must be more than 0 and liveness_gap 0 or more")
        if not 1 <= self.liveness_pairs <= MAX_PAIRS:
            raise ValueError(
                f"liveness_pairs must be 1 to {MAX_PAIRS}, not {self.liveness_pairs!r}"
            )
        if not 2 * self.liveness_pairs <= self.liveness_samples <= MAX_SAMPLES:
            raise ValueError(
                f"liveness_samples must be at least twice liveness_pairs and {MAX_SAMPLES} at "
                f"most, not {self.liveness_samples!r}"
            )

    @property
    def liveness_limits(self) -> LivenessLimits:
        return LivenessLimits(
            min_residual=self.liveness_min_residual,
            min_pairs=self.liveness_pairs,
            max_samples=self.liveness_samples,
            min_gap=self.liveness_gap,
        )


@dataclass
class KioskStats:
    frames: int = 0
    detected: int = 0  # frames the detector ran on
    still: int = 0  # frames skipped: nothing moved, nobody followed
    between: int = 0  # frames between detections: tracks carry on
    encodings: int = 0
    events: int = 0
    repeats: int = 0  # settled passes inside the cooldown: no event
    unknown_passes: int = 0
    conflicting_passes: int = 0
    suspected_spoofs: int = 0  # settled on a person, but not alive: no event
    liveness_samples: int = 0  # 68-landmark samples taken for liveness
    liveness_seconds: float = 0.0  # CPU time those took, landmarks and verdicts
    event_delays: list[float] = field(default_factory=list)  # source seconds, track start to event


class MotionGate:
    """Did anything move since the last frame the detector saw?"""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._last: npt.NDArray[np.int16] | None = None

    def moved(self, image: npt.NDArray[np.uint8]) -> bool:
        small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
        last, self._last = self._last, grey
        return last is None or float(np.abs(grey - last).mean()) >= self.threshold


def video_clock(start: datetime) -> Callable[[Frame], datetime]:
    """Event times for a replay: ``start`` plus the frame's position in the video."""
    return lambda frame: start + timedelta(seconds=frame.time)


def wall_clock(_: Frame) -> datetime:
    return datetime.now(UTC)


class Kiosk:
    def __init__(
        self,
        *,
        models: FaceModels,
        database: KioskDatabase,
        feedback: Feedback,
        settings: KioskSettings | None = None,
        clock: Callable[[Frame], datetime] = wall_clock,
    ) -> None:
        self.settings = s = settings or KioskSettings()
        self.models = models
        self.database = database
        self.feedback = feedback
        self.clock = clock
        self.tz = ZoneInfo(s.timezone)
        self.policy = AttendancePolicy(s.mode, timedelta(seconds=s.cooldown_seconds))
        self.tracker = Tracker(max_age=s.track_max_age)
        self.motion = MotionGate(s.motion_threshold)
        self.stats = KioskStats()
        self.liveness: LivenessLimits | None = None
        if s.liveness is LivenessMode.REQUIRED:
            self.liveness = s.liveness_limits
            # Load the 68-point model (100 MB) now, not in the first person's pass.
            models.landmarks68(np.zeros((8, 8, 3), dtype=np.uint8), Box(0, 8, 8, 0))
        self._since_detection = s.detect_every_settled  # detect on the first frame
        self._roster_version = -1
        self._roster_checked = float("-inf")
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
        if not self.motion.moved(frame.image) and not self.tracker.tracks:
            self.stats.still += 1
            self._finish(self.tracker.expire(frame.time))
            return []
        self._since_detection += 1
        if self._since_detection < self._detection_interval(frame.time):
            self.stats.between += 1
            self._finish(self.tracker.expire(frame.time))
            return []
        self._since_detection = 0
        self.stats.detected += 1
        live, gone = self.tracker.update(self.models.detect(frame.image, frame.small), frame.time)
        self._finish(gone)
        if not self.gallery.people:
            return []
        near = [  # undecided passes seen now, near enough to judge
            t
            for t in live
            if t.last_seen == frame.time
            and not t.decided
            and min(t.box.width, t.box.height) >= s.min_face_px
        ]
        due = [
            t
            for t in near
            if t.due_for_encoding(frame.time, max_encodings=s.max_encodings, min_gap=s.encode_gap)
            and not (self.liveness and t.votes.verdict(s.votes_required))  # only liveness left
        ]
        sampled = self._sample_liveness(frame, near)
        if due:
            embeddings = self.models.encode(frame.image, [t.box for t in due])
            self.stats.encodings += len(due)
            for track, match in zip(due, self.gallery.match(embeddings), strict=True):
                track.encoded_at.append(frame.time)
                track.votes.add(match)
        events = []
        for track in near:
            if track in due or track in sampled:
                event = self._settle(track, frame)
                if event is not None:
                    events.append(event)
        return events

    def _sample_liveness(self, frame: Frame, tracks: list[Track]) -> list[Track]:
        """Landmarks of the tracks whose liveness evidence is due; those tracks."""
        if self.liveness is None:
            return []
        sampled = []
        for track in tracks:
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

    def _awaiting_encoding(self, track: Track) -> bool:
        s = self.settings
        if len(track.encoded_at) >= s.max_encodings:
            return False
        return not (self.liveness and track.votes.verdict(s.votes_required))

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
            not t.decided and (self._awaiting_encoding(t) or self._awaiting_liveness(t, now))
            for t in tracks
        )
        return s.detect_every if busy or not tracks else s.detect_every_settled

    def _settle(self, track: Track, frame: Frame) -> Event | None:
        verdict = track.votes.verdict(self.settings.votes_required)
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
        now = self.clock(frame)
        direction = self.policy.decide(self.database.last_event(verdict.person_id), now, self.tz)
        if direction is None:
            self.stats.repeats += 1
            return None
        event = self.database.append_event(  # committed before anyone is told
            verdict.person_id,
            "in" if direction is Direction.IN else "out",
            utc=now,
            tz=self.settings.timezone,
            distance=verdict.distance,
            margin=verdict.margin,
            frames=verdict.agreeing,
            software_version=__version__,
        )
        self.stats.events += 1
        self.stats.event_delays.append(frame.time - track.first_seen)
        name = self.database.get_person(verdict.person_id).name
        self.feedback.greet(
            Greeting(name, direction.value, now.astimezone(self.tz), verdict.person_id)
        )
        return event

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

    def _finish(self, tracks: list[Track]) -> None:
        for track in tracks:
            if track.decided or not track.votes.matches:
                continue
            verdict = track.votes.verdict(self.settings.votes_required)
            if self.liveness is not None and verdict is not None:
                self._spoof(track, verdict, "it left before it looked alive")
                continue
            if track.votes.conflicting:
                self.stats.conflicting_passes += 1
            else:
                self.stats.unknown_passes += 1
                self.feedback.unknown()

    def run(
        self,
        source: FrameSource,
        stop: threading.Event | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> KioskStats:
        """Read frames until the source ends or ``stop`` is set; then close every pass.

        ``heartbeat`` (systemd's watchdog, the status file) hears ``ready()`` before the
        first read, ``alive()`` only after a frame was read and handled (a camera that
        hangs or fails stops them), and ``stopping()`` at the end.
        """
        stop = stop or threading.Event()
        if heartbeat is not None:
            heartbeat.ready()
        try:
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    break
                self.handle(frame)
                if heartbeat is not None:
                    heartbeat.alive()
        except ClockfaceError as err:  # a dead camera, a full disk: tell the operator
            self.feedback.problem(str(err))
            raise
        finally:
            if heartbeat is not None:
                heartbeat.stopping()
            self._finish(self.tracker.finish_all())
        return self.stats
