"""How the kiosk decides: :class:`KioskSettings`, every value with a default that works
at a door (``kiosk.toml``'s ``[kiosk]`` table, ``kiosk/config.py``, sets them), and how
the detection copy and the smallest face encoded follow from the frame's size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from kiosk.encoders import default_workers
from kiosk.geometry import Reach
from kiosk.policy import Mode
from recognition.faces import DETECTORS, Detector, FaceModels, smallest_face_px
from recognition.gallery import (
    DECISIVE_DISTANCE,
    DECISIVE_MARGIN,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
)
from recognition.liveness import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_MIN_GAP,
    DEFAULT_MIN_PAIRS,
    DEFAULT_MIN_RESIDUAL,
    MAX_PAIRS,
    MAX_SAMPLES,
    LivenessLimits,
)


class LivenessMode(StrEnum):
    """Whether a pass must also look alive (not a photo) before it is logged."""

    OFF = "off"
    REQUIRED = "required"


MAX_AUTO_DETECT_SIDE = 960
"""The largest detection copy :meth:`KioskSettings.detection_side` picks by itself."""


_DAY = 86_400.0
_HIGHEST: dict[str, float] = {
    # The largest value each number may take: more is a typo (or inf, or 1e15), and
    # would overflow the kiosk's clocks and sleeps. The lower bounds are below, with the
    # ranges of detect_max_side, upsample, pooled_min, encoder_workers and liveness_*.
    "cooldown_seconds": _DAY,
    "threshold": 2.0,  # embeddings are about unit length: no two are 2 apart
    "margin": 2.0,
    "decisive_distance": 2.0,
    "decisive_margin": 2.0,
    "min_face_px": 4096,
    "votes_required": 64,
    "max_encodings": 64,
    "encode_gap": 60.0,
    "reencode_gap": 60.0,
    "max_turn": 10.0,
    "pass_window": 3600.0,
    "track_max_age": 60.0,
    "detect_every": 1000,
    "detect_every_settled": 1000,
    "motion_threshold": 255.0,
    "idle_detect_seconds": 60.0,
    "no_face_warning_seconds": 7 * _DAY,
    "roster_check_seconds": _DAY,
    "liveness_min_residual": 10.0,
    "liveness_gap": 60.0,
}


@dataclass(frozen=True)
class KioskSettings:
    """How the kiosk decides; every value has a default that works at a door."""

    timezone: str = "UTC"
    mode: Mode = Mode.AUTO
    cooldown_seconds: float = 120.0
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    decisive_distance: float = DECISIVE_DISTANCE
    decisive_margin: float = DECISIVE_MARGIN
    detector: Detector = "yunet"
    detect_max_side: int = 0  # 0: sized from the frame and min_face_px
    upsample: int = 1
    min_face_px: int = 40
    votes_required: int = 2
    pooled_min: int = 3
    max_encodings: int = 5
    encode_gap: float = 0.1
    reencode_gap: float = 0.3
    max_turn: float = 0.5
    encoder_workers: int = -1  # -1: one per core but one; 0: in the frame loop
    pass_window: float = 6.0
    track_max_age: float = 1.0
    detect_every: int = 2
    detect_every_settled: int = 6
    motion_threshold: float = 1.5
    idle_detect_seconds: float = 0.5
    no_face_warning_seconds: float = 300.0
    roster_check_seconds: float = 5.0
    liveness: LivenessMode = LivenessMode.OFF
    liveness_min_residual: float = DEFAULT_MIN_RESIDUAL
    liveness_pairs: int = DEFAULT_MIN_PAIRS
    liveness_samples: int = DEFAULT_MAX_SAMPLES
    liveness_gap: float = DEFAULT_MIN_GAP

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone
        for name, highest in _HIGHEST.items():
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
            if value > highest:
                raise ValueError(f"{name} must be {highest:g} at most, not {value!r}")
        positive = (
            "threshold",
            "track_max_age",
            "roster_check_seconds",
            "pass_window",
            "no_face_warning_seconds",
            "reencode_gap",
            "max_turn",
            "idle_detect_seconds",
        )
        at_least_one = ("min_face_px", "votes_required", "max_encodings")
        if not (self.pooled_min == 0 or 2 <= self.pooled_min <= 64):
            raise ValueError(f"pooled_min must be 0 (off) or 2 to 64, not {self.pooled_min!r}")
        not_negative = (
            "cooldown_seconds",
            "margin",
            "encode_gap",
            "motion_threshold",
            "decisive_distance",
            "decisive_margin",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, not {getattr(self, name)!r}")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        for name in not_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)!r}")
        if self.detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTORS)}, not {self.detector!r}"
            )
        if not 0 <= self.upsample <= 4:
            raise ValueError(f"upsample must be 0 to 4, not {self.upsample!r}")
        if self.detect_max_side != 0 and not 64 <= self.detect_max_side <= 8192:
            raise ValueError(
                f"detect_max_side must be 0 (sized from the frame) or 64 to 8192, "
                f"not {self.detect_max_side!r}"
            )
        if self.decisive_distance > self.threshold or self.decisive_margin < self.margin:
            raise ValueError(
                "decisive_distance cannot exceed threshold, nor decisive_margin be under margin"
            )
        if not -1 <= self.encoder_workers <= 64:
            raise ValueError(
                f"encoder_workers must be -1 (one per core but one), 0 (in the frame loop) "
                f"or up to 64, not {self.encoder_workers!r}"
            )
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

    def detection_side(self, width: int, height: int) -> int:
        """The longest side of the copy faces are detected on, for frames this size.

        ``detect_max_side`` when set; otherwise the size at which a face of
        ``min_face_px`` (in the full frame) is 1.5 times the smallest face the detector
        finds, so every face big enough to encode is found with room to spare; never
        more than the frame itself, nor :data:`MAX_AUTO_DETECT_SIDE` (a Raspberry Pi 4
        takes about a quarter of a second for YuNet on a 960x540 copy), nor under 64.
        """
        longest = max(width, height)
        if self.detect_max_side:
            return min(self.detect_max_side, longest)
        wanted = 1.5 * smallest_face_px(self.detector, self.upsample) / self.min_face_px
        side = math.ceil(longest * wanted / 32) * 32
        return max(64, min(longest, side, MAX_AUTO_DETECT_SIDE))

    def found_min_face(self, width: int, height: int) -> float:
        """The smallest face (pixels, full frame) the detector finds in frames this size,
        through the detection copy :meth:`detection_side` gives."""
        side = self.detection_side(width, height)
        return smallest_face_px(self.detector, self.upsample) * max(width, height) / side

    def reach(self, width: int, height: int, hfov_deg: float) -> Reach:
        """How far faces are found and encoded, for frames this size across
        ``hfov_deg`` degrees (``kiosk selftest`` prints it)."""
        return Reach(
            width,
            height,
            hfov_deg,
            self.detection_side(width, height),
            self.found_min_face(width, height),
            self.encode_min_face(width, height),
        )

    def encode_min_face(self, width: int, height: int) -> int:
        """The smallest face (pixels, full frame) encoded in frames this size:
        ``min_face_px``, or more where the detection copy is capped and the detector
        cannot find faces that small."""
        return max(self.min_face_px, math.ceil(self.found_min_face(width, height)))

    def worker_count(self) -> int:
        """The encoder worker processes to run: ``encoder_workers``, or one per core but
        one when it is -1 (:func:`kiosk.encoders.default_workers`)."""
        return default_workers() if self.encoder_workers < 0 else self.encoder_workers

    def face_models(self) -> FaceModels:
        """The face models these settings ask for (the detection copy is sized again
        from the first frame, :meth:`detection_side`)."""
        return FaceModels(
            self.detector,
            upsample=self.upsample,
            detect_max_side=self.detect_max_side or None,
        )

    @property
    def decisive(self) -> tuple[float, float] | None:
        """(distance, margin) within which one encoding settles a pass alone; None when
        ``decisive_distance`` is 0 (every pass needs ``votes_required`` encodings)."""
        if self.decisive_distance == 0:
            return None
        return (self.decisive_distance, self.decisive_margin)

    @property
    def liveness_limits(self) -> LivenessLimits:
        return LivenessLimits(
            min_residual=self.liveness_min_residual,
            min_pairs=self.liveness_pairs,
            max_samples=self.liveness_samples,
            min_gap=self.liveness_gap,
        )
