"""Benchmark: people walking up to the kiosk, at a Raspberry Pi's speed.

    uv run python -m bench.walkby                     # every K and pipeline, 3 rounds (12 min)
    uv run python -m bench.walkby --quick --ks 1      # the short test scenes, K = 1
    uv run python -m bench.walkby --ks 1,6 --pipelines clockface,hog-kiosk

Renders the walk-through scenes of :mod:`bench.walkby_scenes` (720p and 1080p, the
Camera Module 3's 66 degree and the Wide's 102 degree lens, one to three walkers, some
crossing, dim light and backlight, strangers among them) into a temporary folder and
replays each through three pipelines, each with 1,000 people enrolled (the enrolled
identities' photos of bench.pipeline, the rest synthetic templates):

- ``clockface``: the kiosk with its defaults (YuNet, the tracker, encoder worker
  processes, a real SQLite store), as ``clockface kiosk run --time-scale K`` runs it;
- ``hog-kiosk``: the kiosk as it was before YuNet, on the same code: dlib's HOG on a
  320 px copy, faces encoded from 60 px, two agreeing encodings per pass and no other
  way to settle, no pooling of a fragmented pass, encoding in the frame loop; the
  threshold of that release (0.52). It runs on today's tracker;
- ``recipe``: face_recognition's ``facerec_from_webcam_faster.py`` (1/2 scale, every
  other frame, ``compare_faces`` at 0.6, first match). It has no notion of a pass: a
  walker counts as logged at the first frame his name is shown, and a name shown on a
  face that is not that person is a false event.

Each runs at each time scale K: 1 (this machine), the Pi 5's and the Pi 4's
(:data:`bench.pi_factor.PI5_K`, ``PI4_K``: published Raspberry Pi figures for the same
operations divided by this machine's; ``python -m bench.pi_factor`` prints the method
and sources). At K the video plays K times faster than real time and frames the
pipeline was not ready for are dropped (:class:`hardware.sources.LiveReplay`), so a
pass is judged as on a CPU K times slower. Each (pipeline, K) runs in a fresh process,
so its peak memory is its own; the encoder workers' peak is printed apart. A replay at
K drops frames by the wall clock, so two runs differ: each runs ``--rounds`` times (3)
and the counts are added up, with each round's count of walkers logged printed too.

Printed per K and pipeline: enrolled walkers logged exactly once (%), the median and
the worst distance of a walker from the camera when his event was committed (metres,
from the scene's truth), false events (a stranger logged, or anyone logged as someone
not in the scene), unknown passes (the kiosk's own count), CPU seconds per frame read
(the main process; the workers' total apart) and peak resident memory. Timings are
never asserted anywhere; run it on an idle machine (K assumes the CPU is this
process's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.child import run_in_child
from bench.pi_factor import PI4_K, PI5_K
from bench.pipeline import peak_rss_mib, synthetic_templates, vm_hwm_mib
from bench.walkby_scenes import (
    ENROLL_PHOTOS,
    FACES,
    SceneSpec,
    SceneTruth,
    default_scenes,
    enrolled_identities,
    load_truth,
    render_scene,
)

PIPELINES = ("clockface", "hog-kiosk", "recipe")
PEOPLE = 1000
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def scene_start(index: int) -> datetime:
    """Video time 0 of the ``index``-th scene replayed into one store: an hour apart, so
    no scene's events come before an earlier scene's (the kiosk's policy refuses an
    event older than the person's last one, as a clock that went back)."""
    return EPOCH + timedelta(hours=index)


NEAR_M = 1.0  # the target: every walker logged before he comes this close

Result = dict[str, Any]


@dataclass(frozen=True)
class Logged:
    """One event (or, for the recipe, one first naming): who, and when in the video."""

    person_id: str
    video_time: float


@dataclass
class Judged:
    """A pipeline's events on one scene, against the truth."""

    walkers: int = 0  # enrolled walkers in the scene
    once: int = 0  # ... logged exactly once
    twice: int = 0  # ... logged more than once
    distances: list[float] = field(default_factory=list)  # at each first event (m)
    false_events: int = 0
    missed: list[str] = field(default_factory=list)  # enrolled walkers never logged


def judge(truth: SceneTruth, logged: Sequence[Logged]) -> Judged:
    """Each enrolled walker logged exactly once? Any event for a stranger, or for
    someone who is not in the scene, is false."""
    out = Judged()
    present = {w.identity: w for w in truth.walkers if not w.stranger}
    for event in logged:
        if event.person_id not in present:
            out.false_events += 1
    for identity, walker in present.items():
        out.walkers += 1
        mine = sorted(e.video_time for e in logged if e.person_id == identity)
        if len(mine) == 1:
            out.once += 1
        elif len(mine) > 1:
            out.twice += 1
        if mine:
            out.distances.append(walker.distance_at(mine[0]))
        else:
            out.missed.append(identity)
    return out


def enroll_store(store: Any, models: Any, people: int) -> list[npt.NDArray[np.float32]]:
    """The enrolled identities from their photos, then synthetic people up to
    ``people``; the real templates."""
    from recognition.identify import enrollment_template
    from recognition.photos import read_image

    real = []
    for identity in enrolled_identities():
        template, _ = enrollment_template(models, read_image(FACES / ENROLL_PHOTOS[identity]))
        store.add_person(identity, identity.replace("_", " ").title())
        store.add_templates(identity, template)
        real.append(template)
    fake = synthetic_templates(people - len(real), np.array(real, dtype=np.float64))
    for i, template in enumerate(fake):
        store.add_person(f"synthetic-{i}", f"Synthetic {i}")
        store.add_templates(f"synthetic-{i}", template.astype(np.float32))
    return real


def hog_kiosk_settings() -> Any:
    """The kiosk's settings before YuNet (the previous release), on today's code."""
    from kiosk.settings import KioskSettings

    return KioskSettings(
        detector="hog",
        detect_max_side=320,
        upsample=1,
        min_face_px=60,
        threshold=0.52,
        decisive_distance=0.0,
        pass_window=1e-6,
        reencode_gap=60.0,  # the longest allowed: never again within a walk-by
        encoder_workers=0,
    )


def enrolled_database(folder: Path, people: int) -> Path:
    """A kiosk database with ``people`` enrolled, made once and copied for each run (its
    template key beside it), so no run's memory holds the enrollment photos."""
    from kiosk.settings import KioskSettings
    from kiosk.store import KioskStore

    path = folder / "enrolled" / "kiosk.db"
    path.parent.mkdir()
    with KioskStore.open(path) as store:
        enroll_store(store, KioskSettings().face_models(), people)
    return path


def run_kiosk(
    kind: str,
    truths: Sequence[SceneTruth],
    scale: float,
    enrolled: Path,
    overrides: dict[str, str] | None = None,
) -> Result:
    import shutil

    from hardware.feedback import RecordingFeedback
    from hardware.sources import LiveReplay, VideoFileSource
    from kiosk.encoders import open_encoder
    from kiosk.loop import Kiosk, video_clock
    from kiosk.settings import KioskSettings
    from kiosk.store import KioskStore

    settings = KioskSettings() if kind == "clockface" else hog_kiosk_settings()
    settings = replace(settings, cooldown_seconds=0.0)  # one scene's events are its own
    if kind == "clockface" and overrides:
        typed = {k: type(getattr(settings, k))(v) for k, v in overrides.items()}
        settings = replace(settings, **typed)
    models = settings.face_models()
    workers = settings.worker_count()
    models.preload(encoder=workers == 0)  # as `clockface kiosk run` does
    judged: list[Judged] = []
    frames = dropped = unknown = one_vote = 0
    cpu = 0.0
    worker_rss = 0.0
    with tempfile.TemporaryDirectory() as folder, open_encoder(models, workers) as encoder:
        copy = Path(folder) / "kiosk"
        shutil.copytree(enrolled.parent, copy)
        store = KioskStore.open(copy / enrolled.name)
        for index, truth in enumerate(truths):
            seen, start = len(store.events()), scene_start(index)
            kiosk = Kiosk(
                models=models,
                database=store,
                feedback=RecordingFeedback(),
                settings=settings,
                clock=video_clock(start),
                encoder=encoder,
            )
            video = VideoFileSource(truth.video)
            lores = settings.detection_side(*video.size)  # a Pi camera's lores stream
            source = LiveReplay(video, scale, lores=lores)
            started = time.process_time()
            with source:
                stats = kiosk.run(source)
            cpu += time.process_time() - started
            frames += source.delivered
            dropped += source.dropped
            unknown += stats.unknown_passes
            one_vote += stats.one_vote_passes
            logged = [
                Logged(e.person_id, (e.utc - start).total_seconds()) for e in store.events()[seen:]
            ]
            judged.append(judge(truth, logged))
        store.close()
        pids: list[int] = getattr(encoder, "worker_pids", list)()
        worker_rss = max((vm_hwm_mib(pid) for pid in pids), default=0.0)
    return {
        "judged": judged,
        "frames": frames,
        "dropped": dropped,
        "unknown": unknown,
        "one_vote": one_vote,
        "cpu": cpu,
        "rss": peak_rss_mib(),
        "worker_rss": worker_rss,
        "workers": workers,
    }


def run_recipe(truths: Sequence[SceneTruth], scale: float, people: int) -> Result:
    """face_recognition's webcam recipe, fed by the same live replay."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
        import face_recognition

    from hardware.sources import LiveReplay, VideoFileSource
    from recognition.faces import Box

    names: list[str] = []
    known: list[npt.NDArray[np.float64]] = []
    for identity in enrolled_identities():
        image = face_recognition.load_image_file(str(FACES / ENROLL_PHOTOS[identity]))
        known.append(face_recognition.face_encodings(image)[0])
        names.append(identity)
    for i, template in enumerate(synthetic_templates(people - len(known), np.array(known))):
        known.append(template)
        names.append(f"synthetic-{i}")
    judged: list[Judged] = []
    frames = dropped = 0
    cpu = 0.0
    for truth in truths:
        first: dict[str, float] = {}
        false_names = 0
        process_this_frame = True
        source = LiveReplay(VideoFileSource(truth.video), scale)
        started = time.process_time()
        with source:
            while (frame := source.read()) is not None:
                if process_this_frame:
                    small = np.ascontiguousarray(frame.image[::2, ::2])  # 1/2 scale
                    locations = face_recognition.face_locations(small)
                    encodings = face_recognition.face_encodings(small, locations)
                    for (top, right, bottom, left), encoding in zip(
                        locations, encodings, strict=True
                    ):
                        matches = face_recognition.compare_faces(known, encoding)
                        if True not in matches:
                            continue
                        name = names[matches.index(True)]
                        box = Box(top * 2, right * 2, bottom * 2, left * 2)
                        walker = truth.walker_for_box(box, frame.time, min_iou=0.2)
                        if walker is None or walker.identity != name:
                            false_names += 1
                        first.setdefault(name, frame.time)
                process_this_frame = not process_this_frame
        cpu += time.process_time() - started
        frames += source.delivered
        dropped += source.dropped
        result = judge(truth, [Logged(n, t) for n, t in first.items()])
        result.false_events = false_names  # every wrong name shown, not only the first
        judged.append(result)
    return {
        "judged": judged,
        "frames": frames,
        "dropped": dropped,
        "unknown": None,
        "one_vote": None,
        "cpu": cpu,
        "rss": peak_rss_mib(),
        "worker_rss": 0.0,
        "workers": 0,
    }


def _child(
    kind: str,
    videos: list[str],
    scale: float,
    people: int,
    enrolled: str,
    overrides: dict[str, str],
    queue: Any,
) -> None:
    truths = [load_truth(Path(v).with_suffix(".truth.json")) for v in videos]
    if kind == "recipe":
        queue.put(run_recipe(truths, scale, people))
    else:
        queue.put(run_kiosk(kind, truths, scale, Path(enrolled), overrides))


def in_child(
    kind: str,
    truths: Sequence[SceneTruth],
    scale: float,
    people: int,
    enrolled: Path,
    overrides: dict[str, str] | None = None,
) -> Result:
    """Run one pipeline over every scene in a fresh process: its memory is its own."""
    videos = [str(t.video) for t in truths]
    args = (kind, videos, scale, people, str(enrolled), overrides or {})
    result: Result = run_in_child(_child, *args)
    return result


def merged(results: Sequence[Result]) -> Result:
    """Several rounds of one pipeline at one K, as one result: counts added up, memory
    the largest."""
    first = results[0]
    out: Result = {
        "judged": [j for r in results for j in r["judged"]],
        "workers": first["workers"],
        "rss": max(r["rss"] for r in results),
        "worker_rss": max(r["worker_rss"] for r in results),
    }
    for key in ("frames", "dropped", "cpu"):
        out[key] = sum(r[key] for r in results)
    for key in ("unknown", "one_vote"):
        out[key] = None if first[key] is None else sum(r[key] for r in results)
    return out


def summarise(result: Result) -> dict[str, str]:
    judged: list[Judged] = result["judged"]
    walkers = sum(j.walkers for j in judged)
    once = sum(j.once for j in judged)
    distances = [d for j in judged for d in j.distances]
    near = sum(1 for d in distances if d < NEAR_M)
    frames = max(1, result["frames"])
    unknown = result["unknown"]
    return {
        "logged once": f"{once}/{walkers} {once / max(1, walkers):4.0%}",
        "twice": str(sum(j.twice for j in judged)),
        "median m": f"{statistics.median(distances):.2f}" if distances else "-",
        "worst m": f"{min(distances):.2f}" if distances else "-",
        "< 1 m": str(near),
        "false": str(sum(j.false_events for j in judged)),
        "unknown": "-" if unknown is None else str(unknown),
        "one-vote": "-" if result["one_vote"] is None else str(result["one_vote"]),
        "dropped": f"{result['dropped'] / (frames + result['dropped']):.0%}",
        "CPU s/frame": f"{result['cpu'] / frames:.4f}",
        "RSS MiB": f"{result['rss']:.0f}"
        + (f" +{result['workers']}x{result['worker_rss']:.0f}" if result["workers"] else ""),
    }


def rendered(spec: SceneSpec, folder: Path) -> SceneTruth:
    """The scene rendered in ``folder``: rendered now unless it is there, from this spec."""
    path = folder / f"{spec.name}.truth.json"
    if path.is_file():
        truth = load_truth(path)
        if truth.spec == spec and truth.video.is_file():
            return truth
    folder.mkdir(parents=True, exist_ok=True)
    return render_scene(spec, folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="the short test scenes")
    parser.add_argument(
        "--ks", default=f"1,{PI5_K:g},{PI4_K:g}", help="time scales, comma-separated"
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated")
    parser.add_argument("--people", type=int, default=PEOPLE, help="enrolled people")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs of each pipeline at each K, added up (a replay at K drops frames by the "
        "wall clock: two runs differ)",
    )
    parser.add_argument("--scenes", default="", help="only these scenes (comma-separated)")
    parser.add_argument(
        "--videos",
        metavar="DIR",
        help="keep the rendered scenes here and reuse them next time (default: a temporary folder)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a kiosk setting for the clockface pipeline (as in kiosk.toml), to try one",
    )
    args = parser.parse_args(argv)
    from kiosk.settings import KioskSettings

    overrides = dict(item.partition("=")[::2] for item in args.set)
    bad = [k for k, v in overrides.items() if not hasattr(KioskSettings, k) or not v]
    if bad:
        parser.error(f"--set takes KEY=VALUE with a kiosk setting as KEY, not {bad}")
    try:
        ks = [float(k) for k in args.ks.split(",")]
    except ValueError:
        parser.error(f"--ks takes comma-separated numbers, not {args.ks!r}")
    pipelines = [p for p in args.pipelines.split(",") if p]
    unknown = sorted(set(pipelines) - set(PIPELINES))
    if unknown or not pipelines:
        parser.error(f"--pipelines: choose from {', '.join(PIPELINES)}")
    if not all(0.01 <= k <= 1000 for k in ks) or args.people < len(enrolled_identities()):
        parser.error("--ks must be 0.01 to 1000 and --people at least the real identities")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not (FACES / "MANIFEST.csv").is_file():
        print(f"bench.walkby: {FACES} is missing (the shared faces folder)", file=sys.stderr)
        return 2
    specs = default_scenes(quick=args.quick)
    if args.scenes:
        wanted = set(args.scenes.split(","))
        specs = [s for s in specs if s.name in wanted]
        if not specs:
            parser.error(f"--scenes: no such scene among {[s.name for s in default_scenes()]}")
    with tempfile.TemporaryDirectory() as folder:
        truths = [rendered(spec, Path(args.videos or folder)) for spec in specs]
        enrolled = enrolled_database(Path(folder), args.people)
        walkers = sum(1 for t in truths for w in t.walkers if not w.stranger)
        strangers = sum(1 for t in truths for w in t.walkers if w.stranger)
        seconds = sum(t.frames / t.fps for t in truths)
        print(
            f"bench.walkby: {len(truths)} scenes, {seconds:.0f} s of video, {walkers} enrolled "
            f"walkers and {strangers} strangers, {args.people} people enrolled; K(Pi 5) = "
            f"{PI5_K:g}, K(Pi 4) = {PI4_K:g} (bench.pi_factor)"
        )
        for truth in truths:
            who = ", ".join(
                f"{w.identity}{' (stranger)' if w.stranger else ''}" for w in truth.walkers
            )
            print(f"  {truth.spec.name}: {truth.frames} frames; {who}")
        for k in ks:
            print(f"\nK = {k:g} (the video at {k:g}x real time)")
            runs = {
                kind: [
                    in_child(kind, truths, k, args.people, enrolled, overrides)
                    for _ in range(args.rounds)
                ]
                for kind in pipelines
            }
            rows = {kind: summarise(merged(results)) for kind, results in runs.items()}
            columns = list(next(iter(rows.values())))
            print(f"{'pipeline':10} " + " ".join(f"{c:>12}" for c in columns))
            for kind, row in rows.items():
                print(f"{kind:10} " + " ".join(f"{row[c]:>12}" for c in columns))
            for kind, results in runs.items():
                rounds = [sum(j.once for j in r["judged"]) for r in results]
                missed = Counter(
                    f"{truth.spec.name}: {who}"
                    for result in results
                    for truth, judged in zip(truths, result["judged"], strict=True)
                    for who in judged.missed
                )
                line = f"  {kind}: logged once per round {rounds}"
                if missed:
                    line += "; missed " + "; ".join(
                        f"{what}{'' if n == 1 else f' (x{n})'}" for what, n in missed.items()
                    )
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
