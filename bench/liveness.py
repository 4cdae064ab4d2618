"""Benchmark: liveness against photo attacks, in ISO/IEC 30107-3 terms (APCER, BPCER).

    uv run python -m bench.liveness              # about 6 minutes on 2 cores
    uv run python -m bench.liveness --quick      # one photo per person, about 3 minutes

Builds the presentation-attack videos of ``bench/attacks.py`` (every photo of
``attacks.PHOTOS`` as a print, a cut-out print and a phone screen, each moved by a hand)
in a temporary folder, enrolls the gallery of ``bench/pipeline.py`` (the 6 real
identities, one photo each: every attack's identity is enrolled, most from the very
photo of the attack) into a fresh SQLite kiosk store per run, and replays through
``kiosk.loop.Kiosk``:

- every attack video with ``liveness = "off"`` (does the attack work at all: does the
  kiosk log anyone?) and with ``liveness = "required"`` (is it still accepted?);
- the bona fide presentations: the real clip ``short_hamilton_clip.mp4`` whole (one
  pass of lin_manuel_miranda), and 2-second pieces of his pass starting every 20 frames,
  each replayed alone (shorter passes, so a harder test; pieces of one performance,
  so not independent samples).

Printed: per presentation what the kiosk logged with and without liveness, its
liveness score and samples; per attack species (PAI species) the APCER (attacks
accepted / attacks) and overall both the pooled rate and the standard's APCER_AP (the
worst species); the BPCER (bona fide passes rejected / bona fide passes); the cost of
the check (CPU per landmark sample and per frame, against the kiosk's whole CPU); and
the measurement that chose the method: on the same landmark samples for every pass, the
planar-motion score and the eye-blink ratio (smallest eye aspect ratio over the median),
real passes against attacks. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt

from bench.attacks import FACES, PHOTOS, SPECIES, AttackVideo, build_attacks, default_specs
from bench.pipeline import ENROLL, SUBJECT, VIDEO
from hardware.frames import Frame
from hardware.sources import VideoFileSource
from kiosk.loop import Kiosk, video_clock
from kiosk.settings import KioskSettings, LivenessMode
from kiosk.store import KioskStore
from recognition.faces import FaceModels
from recognition.liveness import FaceMotion, LivenessLimits

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PIECE_FRAMES = 60  # 2 s pieces of the real pass
PIECE_STARTS = (82, 102, 122, 142)  # his face is detectable (and near) from frame 82
EYES = (slice(36, 42), slice(42, 48))


@dataclass(frozen=True)
class Presentation:
    name: str
    kind: str  # an attack species, or "bona fide"
    identity: str  # whom it shows
    video: Path
    start_frame: int = 0
    frames: int | None = None


@dataclass
class Outcome:
    logged: list[str]  # person ids of the events
    frames: int
    cpu: float
    spoofs: int = 0
    samples: int = 0
    liveness_cpu: float = 0.0
    delays: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """The liveness evidence of one pass, every pass sampled alike (no early stop)."""

    score: float  # the planar-motion score FaceMotion compares with its threshold
    blink: float  # smallest eye aspect ratio over the median (1: no blink)
    samples: int


class Piece:
    """A video source that stops after ``frames`` frames from ``start_frame``."""

    def __init__(self, path: Path, start_frame: int, frames: int | None) -> None:
        self._video = VideoFileSource(path, start_frame=start_frame)
        self.name = self._video.name
        self._left = frames

    def read(self) -> Frame | None:
        if self._left is not None:
            if self._left <= 0:
                return None
            self._left -= 1
        return self._video.read()

    def close(self) -> None:
        self._video.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Gallery:
    """The enrolled templates, and a fresh kiosk store holding them for each run."""

    def __init__(self, models: FaceModels, folder: Path) -> None:
        from recognition.identify import enrollment_template
        from recognition.photos import read_image

        self.folder = folder
        self.templates = {
            person: enrollment_template(models, read_image(FACES / path))[0]
            for person, path in ENROLL.items()
        }
        self._runs = 0

    def fresh_store(self) -> KioskStore:
        self._runs += 1
        store = KioskStore.open(self.folder / f"kiosk-{self._runs}.db")
        for person, template in self.templates.items():
            store.add_person(person, person.replace("_", " ").title())
            store.add_templates(person, template)
        return store


def replay(
    models: FaceModels, gallery: Gallery, shown: Presentation, settings: KioskSettings
) -> Outcome:
    from hardware.feedback import RecordingFeedback

    store = gallery.fresh_store()
    kiosk = Kiosk(
        models=models,
        database=store,
        feedback=RecordingFeedback(),
        settings=settings,
        clock=video_clock(START),
    )
    cpu = time.process_time()
    with Piece(shown.video, shown.start_frame, shown.frames) as source:
        stats = kiosk.run(source)
    cpu = time.process_time() - cpu
    logged = [e.person_id for e in store.events()]
    store.close()
    return Outcome(
        logged,
        stats.frames,
        cpu,
        stats.suspected_spoofs,
        stats.liveness_samples,
        stats.liveness_seconds,
        stats.event_delays,
    )


def eye_aspect_ratio(points: npt.NDArray[np.float64]) -> float:
    """Soukupová and Čech's eye aspect ratio, both eyes averaged (about 0.3 open, under
    0.2 closed)."""
    ratios = []
    for eye in EYES:
        p = points[eye]
        vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        ratios.append(float(vertical / (2 * np.linalg.norm(p[0] - p[3]))))
    return sum(ratios) / 2


def evidence(models: FaceModels, shown: Presentation, settings: KioskSettings) -> list[Evidence]:
    """Each pass's liveness evidence, sampled as the kiosk samples it (on detection
    frames, faces of ``min_face_px`` or more, ``liveness_gap`` apart, ``liveness_samples``
    at most), but never stopping early, so every pass, real or attack, is judged on as
    many samples as the kiosk may take."""
    from kiosk.tracking import Tracker

    limits = dataclasses.replace(settings.liveness_limits, min_residual=float("inf"))
    tracker = Tracker(max_age=settings.track_max_age)
    motions: dict[int, FaceMotion] = {}
    ears: dict[int, list[float]] = {}
    with Piece(shown.video, shown.start_frame, shown.frames) as source:
        since = settings.detect_every_settled
        while (frame := source.read()) is not None:
            since += 1
            waiting = not tracker.tracks or any(
                t.track_id not in motions or motions[t.track_id].due(frame.time)
                for t in tracker.tracks
            )
            if since < (settings.detect_every if waiting else settings.detect_every_settled):
                continue
            since = 0
            live, _ = tracker.update(models.detect(frame.image), frame.time)
            for track in live:
                small = min(track.box.width, track.box.height) < settings.min_face_px
                if track.last_seen != frame.time or small:
                    continue
                motion = motions.setdefault(track.track_id, FaceMotion(limits))
                if motion.due(frame.time):
                    points = models.landmarks68(frame.image, track.box).as_array()
                    motion.add(frame.time, points)
                    ears.setdefault(track.track_id, []).append(eye_aspect_ratio(points))
    return [
        Evidence(m.score, min(ears[t]) / float(np.median(ears[t])), m.samples)
        for t, m in motions.items()
        if m.samples >= 2 * limits.min_pairs
    ]


def presentations(attacks: Sequence[AttackVideo]) -> list[Presentation]:
    shown = [
        Presentation(a.spec.name, a.spec.species, a.spec.identity, a.path, frames=a.frames)
        for a in attacks
    ]
    shown.append(Presentation("real clip, whole", "bona fide", SUBJECT, VIDEO))
    shown.extend(
        Presentation(
            f"real clip, frames {s}-{s + PIECE_FRAMES - 1}", "bona fide", SUBJECT, VIDEO, s
        )
        for s in PIECE_STARTS
    )
    return [dataclasses.replace(p, frames=PIECE_FRAMES) if p.start_frame else p for p in shown]


def rate(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:6.1%}" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one attack photo per person")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each attack")
    parser.add_argument(
        "--no-evidence", action="store_true", help="skip the method comparison (faster)"
    )
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be more than 0")
    if not VIDEO.is_file():
        print(f"bench.liveness: {VIDEO} is missing (the shared faces folder)", file=sys.stderr)
        return 2

    logging.getLogger("clockface.kiosk").setLevel(logging.ERROR)  # each spoof's warning
    base = KioskSettings()
    required = dataclasses.replace(base, liveness=LivenessMode.REQUIRED)
    models = base.face_models()
    photos = tuple(ENROLL.values()) if args.quick else PHOTOS
    with tempfile.TemporaryDirectory(prefix="clockface-liveness-") as folder:
        built = time.perf_counter()
        attacks = build_attacks(
            Path(folder) / "attacks", default_specs(photos), seconds=args.seconds
        )
        built = time.perf_counter() - built
        gallery = Gallery(models, Path(folder))
        shown = presentations(attacks)
        limits = required.liveness_limits
        print(
            f"bench.liveness: {len(attacks)} attack videos ({len(photos)} photos of "
            f"{len({a.spec.identity for a in attacks})} people as {', '.join(SPECIES)}; "
            f"{args.seconds:g} s each, built in {built:.0f} s), bona fide: {VIDEO.name} whole "
            f"and {len(PIECE_STARTS)} pieces of {PIECE_FRAMES} frames; gallery: "
            f"{len(ENROLL)} people, one photo each"
        )
        print(
            f"liveness: planar-motion score >= {limits.min_residual} on {limits.min_pairs} "
            f"disjoint pairs of frames, at most {limits.max_samples} samples "
            f"{limits.min_gap} s apart"
        )
        print(
            f"\n{'presentation':40} {'kind':9} {'shows':20} {'liveness off':14} "
            f"{'liveness required':20} {'samples':>7} {'score':>6}"
        )
        rows: list[tuple[Presentation, Outcome, Outcome, list[Evidence]]] = []
        for p in shown:
            off = replay(models, gallery, p, base)
            on = replay(models, gallery, p, required)
            found = [] if args.no_evidence else evidence(models, p, required)
            rows.append((p, off, on, found))
            score = f"{max(e.score for e in found):.3f}" if found else "-"
            said = ",".join(on.logged) or f"nothing ({on.spoofs} spoof)"
            if on.delays:
                said += f" at {on.delays[0]:.2f} s"
            print(
                f"{p.name:40} {p.kind:9} {p.identity:20} {','.join(off.logged) or 'nothing':14} "
                f"{said:20} {on.samples:7d} {score:>6}"
            )
    report(rows, limits)
    return 0


def report(
    rows: list[tuple[Presentation, Outcome, Outcome, list[Evidence]]], limits: LivenessLimits
) -> None:
    attacks = [r for r in rows if r[0].kind != "bona fide"]
    real = [r for r in rows if r[0].kind == "bona fide"]
    print(f"\n{'species':10} {'attacks':>7} {'work w/o liveness':>18} {'accepted':>9}  APCER")
    worst = 0.0
    for species in SPECIES:
        mine = [r for r in attacks if r[0].kind == species]
        working = sum(1 for _, off, _, _ in mine if off.logged)
        accepted = sum(1 for _, _, on, _ in mine if on.logged)
        worst = max(worst, accepted / len(mine) if mine else 0.0)
        print(
            f"{species:10} {len(mine):7d} {working:18d} {accepted:9d}  {rate(accepted, len(mine))}"
        )
    working = sum(1 for _, off, _, _ in attacks if off.logged)
    accepted = sum(1 for _, _, on, _ in attacks if on.logged)
    print(
        f"{'all':10} {len(attacks):7d} {working:18d} {accepted:9d}  "
        f"{rate(accepted, len(attacks))} pooled; APCER_AP (worst species) {worst:.1%}"
    )
    rejected = sum(1 for p, _, on, _ in real if p.identity not in on.logged)
    whole = [r for r in real if not r[0].start_frame]
    whole_rejected = sum(1 for p, _, on, _ in whole if p.identity not in on.logged)
    print(
        f"bona fide: {len(real)} passes, rejected {rejected}: BPCER {rate(rejected, len(real))} "
        f"(the whole clip alone: {rate(whole_rejected, len(whole))})"
    )
    lost = sum(1 for p, off, _, _ in real if p.identity not in off.logged)
    print(f"  (without liveness, {lost} of those passes log nothing either)")

    samples = sum(on.samples for _, _, on, _ in rows)
    spent = sum(on.liveness_cpu for _, _, on, _ in rows)
    frames = sum(on.frames for _, _, on, _ in rows)
    cpu_on = sum(on.cpu for _, _, on, _ in rows)
    cpu_off = sum(off.cpu for _, off, _, _ in rows)
    if samples and frames:
        print(
            f"\ncost: {samples} landmark samples, {1000 * spent / samples:.1f} ms CPU each "
            f"(68 landmarks and the verdict); {1000 * spent / frames:.2f} ms per frame on "
            f"average over {frames} frames, {spent / cpu_on:.1%} of the kiosk's CPU with "
            f"liveness required ({1000 * cpu_on / frames:.1f} ms/frame; off: "
            f"{1000 * cpu_off / frames:.1f} ms/frame)"
        )
        delays = [
            (off.delays[0], on.delays[0]) for _, off, on, _ in real if off.delays and on.delays
        ]
        if delays:
            print(
                "greeting delay of the real passes (video seconds from the start of the pass): "
                + ", ".join(f"{a:.2f} -> {b:.2f} s" for a, b in delays)
            )

    ev_real = [e for _, _, _, found in real for e in found]
    ev_attack = [e for _, _, _, found in attacks for e in found]
    if ev_real and ev_attack:
        print(
            f"\nmethod comparison, on the same samples for every pass ({limits.max_samples} at "
            f"most, {limits.min_gap} s apart; {len(ev_real)} real passes, "
            f"{len(ev_attack)} attack passes):"
        )
        low_real = min(e.score for e in ev_real)
        high_attack = max(e.score for e in ev_attack)
        print(
            f"  planar-motion score (live when high): real passes >= {low_real:.3f}, attacks "
            f"<= {high_attack:.3f}: "
            + (
                f"separated, {low_real / high_attack:.2f}x apart (threshold {limits.min_residual})"
                if low_real > high_attack
                else "NOT separated"
            )
        )
        blink_real = max(e.blink for e in ev_real)
        blink_attack = min(e.blink for e in ev_attack)
        print(
            f"  eye blink, smallest/median eye aspect ratio (live when low): real passes <= "
            f"{blink_real:.2f} (lowest {min(e.blink for e in ev_real):.2f}), attacks >= "
            f"{blink_attack:.2f}: "
            + ("separated" if blink_real < blink_attack else "NOT separated")
            + "; a blink is about 0.6 or less"
        )


if __name__ == "__main__":
    raise SystemExit(main())
