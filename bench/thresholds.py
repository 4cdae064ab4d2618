"""Measure match distances on the shared real faces and choose the 1:N threshold and margin.

    uv run python -m bench.thresholds             # distances, rates, 1:N margins
    uv run python -m bench.thresholds --quality   # also the enrollment quality measures

Encodes every single-face photo in ../shared/faces/MANIFEST.csv and every face of the
group photos (named left to right from the manifest; "unknown" is nobody in the set),
with clockface's defaults (HOG, upsample 1, detection on a copy at most 1024 px).
Then prints:

- the genuine (same person) and impostor (different people) distance distributions,
  the largest genuine and the smallest impostor distance;
- for thresholds 0.40..0.60 the false non-match rate (genuine pairs over the threshold)
  and false match rate (impostor pairs at or under it), as ``Gallery`` accepts
  ``distance <= threshold``;
- a 1:N search with one enrollment photo per person (each person's first photo in
  manifest order): for each other face, the distance to its own person and to the
  nearest other person, and the margin between them;
- a recommended threshold and margin, with the reasoning.

odd/ holds input-format cases (an RGBA copy of obama2.jpg), not new photos: skipped,
as a duplicate would add a near-zero genuine pair.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import cv2
import numpy as np
import numpy.typing as npt

from recognition.faces import FaceModels
from recognition.images import decode_image
from recognition.quality import DEFAULT_LIMITS, measure
from recognition.quality import check as check_quality

FACES_DIR = Path(__file__).resolve().parents[2] / "shared" / "faces"
UNKNOWN = "unknown"
CANDIDATES = [round(0.40 + 0.01 * i, 2) for i in range(21)]  # 0.40 .. 0.60
DLIB_THRESHOLD = 0.6  # dlib's and face_recognition's customary 1:1 threshold
# How far under the smallest impostor distance seen here the threshold must sit: with
# 6 people the nearest impostor is a poor estimate of the nearest one among hundreds.
SAFETY_GAP = 0.08
GALLERY_SIZE = 500  # "hundreds" of enrolled people
KIOSK_GALLERY = 1000  # the walk-by bench's gallery size
STRANGER_RISK = 0.01  # accepted chance that a stranger matches someone, per face
MIN_MARGIN = 0.04


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of MANIFEST.csv."""

    path: str
    identities: tuple[str, ...]
    faces: int | None  # None for "many" (the video)
    notes: str


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """One encoded face: where it comes from, whose it is, its embedding."""

    path: str
    face_index: int  # left to right; 0 for single-face photos
    faces_in_photo: int
    identity: str
    embedding: npt.NDArray[np.float32]

    @property
    def label(self) -> str:
        name = self.path.split("/")[-1]
        return name if self.faces_in_photo == 1 else f"{name}#{self.face_index + 1}"


def read_manifest(folder: Path) -> list[Entry]:
    with (folder / "MANIFEST.csv").open(newline="", encoding="utf-8") as handle:
        return [
            Entry(
                path=row["path"],
                identities=tuple(row["identity"].split(";")),
                faces=int(row["faces"]) if row["faces"].isdigit() else None,
                notes=row["notes"],
            )
            for row in csv.DictReader(handle)
        ]


def load_rgb(path: Path) -> npt.NDArray[np.uint8]:
    return decode_image(path.read_bytes(), subject=f"photo {path.name!r}")


def encode_all(
    folder: Path, entries: Sequence[Entry], models: FaceModels
) -> tuple[list[Sample], list[str]]:
    """Every usable face of the manifest's photos, and notes on what was skipped."""
    samples: list[Sample] = []
    notes: list[str] = []
    for entry in entries:
        if entry.faces is None:
            notes.append(f"skipped {entry.path}: a video")
            continue
        if entry.path.startswith("odd/"):
            notes.append(f"skipped {entry.path}: an input-format case, a copy of another photo")
            continue
        if len(entry.identities) != entry.faces:
            raise SystemExit(f"MANIFEST.csv: {entry.path} names {len(entry.identities)} people")
        image = load_rgb(folder / entry.path)
        faces = models.analyze(image)
        if len(faces) != entry.faces:
            raise SystemExit(
                f"{entry.path}: found {len(faces)} faces, the manifest says {entry.faces}"
            )
        for index, (face, identity) in enumerate(zip(faces, entry.identities, strict=True)):
            samples.append(Sample(entry.path, index, entry.faces, identity, face.embedding))
    return samples, notes


def distance(a: Sample, b: Sample) -> float:
    return float(np.linalg.norm(a.embedding.astype(np.float64) - b.embedding))


def describe(name: str, values: Sequence[float]) -> str:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return f"{name:9s} n=0"
    p5, p25, p50, p75, p95 = np.percentile(arr, [5, 25, 50, 75, 95])
    return (
        f"{name:9s} n={arr.size:3d}  min {arr.min():.3f}  p5 {p5:.3f}  p25 {p25:.3f}  "
        f"median {p50:.3f}  p75 {p75:.3f}  p95 {p95:.3f}  max {arr.max():.3f}"
    )


@dataclass(frozen=True, slots=True)
class Probe:
    """A 1:N search of one face against the one-photo-per-person gallery."""

    sample: Sample
    own: float | None  # distance to the person's enrolled photo; None if not enrolled
    other: float  # distance to the nearest enrolled other person
    other_identity: str

    @property
    def margin(self) -> float | None:
        return None if self.own is None else self.other - self.own


def search(samples: Sequence[Sample]) -> tuple[list[Sample], list[Probe]]:
    """Enroll each person's first face; search every other face among them."""
    gallery: dict[str, Sample] = {}
    for sample in samples:
        if sample.identity != UNKNOWN and sample.faces_in_photo == 1:
            gallery.setdefault(sample.identity, sample)
    enrolled = set(map(id, gallery.values()))
    probes = []
    for sample in samples:
        if id(sample) in enrolled:
            continue
        own = gallery.get(sample.identity)
        others = [(distance(sample, g), g.identity) for g in gallery.values() if g is not own]
        other, other_identity = min(others)
        probes.append(
            Probe(sample, None if own is None else distance(sample, own), other, other_identity)
        )
    return list(gallery.values()), probes


def decide(probe: Probe, threshold: float, margin: float) -> str:
    """The gallery's verdict for this probe: "right", "wrong" (a false match) or "unknown"."""
    if probe.own is not None and probe.own < probe.other:
        nearest, d, runner_up = probe.sample.identity, probe.own, probe.other
    else:
        nearest, d = probe.other_identity, probe.other
        runner_up = math.inf if probe.own is None else probe.own
    if d <= threshold and runner_up - d >= margin:
        return "right" if nearest == probe.sample.identity else "wrong"
    return "unknown"


def recommend(
    impostor: Sequence[float], same_shot: Sequence[float], probes: Sequence[Probe]
) -> tuple[float, float, list[str]]:
    """A threshold and margin for 1:N search, and the reasons, from the measurements."""
    min_impostor = min(impostor)
    mean, sd = float(np.mean(impostor)), float(np.std(impostor, ddof=1))
    z = NormalDist().inv_cdf(STRANGER_RISK / GALLERY_SIZE)
    tail = mean + z * sd
    ceiling = min(min_impostor - SAFETY_GAP, tail)
    threshold = max((t for t in CANDIDATES if t <= ceiling + 1e-9), default=CANDIDATES[0])

    if same_shot:
        jitter = float(np.median(same_shot))
        margin = max(MIN_MARGIN, round(jitter, 2))
        why_margin = (
            f"margin {margin:.2f}: the median distance between re-captures of one shot "
            f"({len(same_shot)} pairs, {min(same_shot):.3f}..{max(same_shot):.3f}, median "
            f"{jitter:.3f}) is the embedding's own jitter; a runner-up nearer than that "
            "cannot be told from the winner;"
        )
    else:
        margin = MIN_MARGIN
        why_margin = f"margin {margin:.2f}: no re-captures of one shot to measure jitter on;"

    enrolled = [p for p in probes if p.own is not None]
    own = [p.own for p in enrolled if p.own is not None]
    accepted = [p for p in enrolled if decide(p, threshold, margin) == "right"]
    under = [p for p in enrolled if p.own is not None and p.own <= threshold]
    margins = [p.margin for p in under if p.margin is not None]
    people = ({p.sample.identity for p in probes} | {p.other_identity for p in probes}) - {UNKNOWN}
    borderline = [p for p in enrolled if p.own is not None and abs(p.own - threshold) < 0.01]
    reasons = [
        f"smallest impostor distance {min_impostor:.3f}; with "
        f"{len(people)} "
        f"people the nearest impostor among hundreds will be nearer, so the threshold "
        f"sits at least {SAFETY_GAP} under it: <= {min_impostor - SAFETY_GAP:.3f};",
        f"a normal fit to the {len(impostor)} impostor distances (mean {mean:.3f}, sd "
        f"{sd:.3f}) puts a {STRANGER_RISK:.0%} chance that a stranger falls under the "
        f"threshold of one of {GALLERY_SIZE} people at {tail:.3f} (z {z:.2f}; optimistic: "
        "look-alikes and relatives thicken the tail);",
        f"threshold {threshold:.2f}: the highest candidate under both; dlib's "
        f"{DLIB_THRESHOLD} is a 1:1 threshold, {min_impostor - DLIB_THRESHOLD:.3f} from "
        "the nearest impostor here;",
        f"largest genuine distance with one enrollment photo {max(own):.3f}: "
        f"{len(under)} of {len(own)} genuine probes within {threshold:.2f}"
        + (
            f" ({len(borderline)} within 0.01 of it: "
            + ", ".join(f"{p.sample.label} {p.own:.3f}" for p in borderline)
            + ")"
            if borderline
            else ""
        )
        + ";",
        why_margin,
        f"margins of those probes: min {min(margins):.3f}, all >= {margin:.2f}: "
        f"{all(m >= margin for m in margins)}; {len(accepted)} of {len(own)} accepted.",
    ]
    return threshold, margin, reasons


def print_quality(folder: Path, entries: Sequence[Entry], models: FaceModels) -> None:
    """Quality measures of each single-face photo and of degraded copies."""
    limits = DEFAULT_LIMITS
    print(f"\n== enrollment quality (limits: {limits}) ==")
    print(
        "photo                               face px  sharpness    yaw    roll  | "
        "blur w/64: sharp  | ~40 px: face  | verdict"
    )
    for entry in entries:
        if entry.faces != 1:
            continue
        image = load_rgb(folder / entry.path)
        boxes = models.detect(image)
        if len(boxes) != 1:
            print(f"{entry.path:36s} {len(boxes)} faces found")
            continue
        face = measure(models, image, boxes[0])
        issues = check_quality(face, limits)
        sigma = face.box.width / 64
        blurred = np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)
        blurry = measure(models, blurred, face.box)
        factor = 40 / face.face_px
        height, width = image.shape[:2]
        small = cv2.resize(
            image,
            (max(1, round(width * factor)), max(1, round(height * factor))),
            interpolation=cv2.INTER_AREA,
        )
        small_boxes = models.detect(np.ascontiguousarray(small))
        small_px = str(min(small_boxes[0].width, small_boxes[0].height)) if small_boxes else "-"
        verdict = "ok" if not issues else ",".join(i.reason.value for i in issues)
        print(
            f"{entry.path:36s} {face.face_px:7d} {face.sharpness:10.1f} {face.yaw:+6.3f} "
            f"{face.roll_degrees:+6.1f}  | {blurry.sharpness:16.1f}  | {small_px:>12s}  | "
            f"{verdict}"
        )


def decisive_lines(impostor: Sequence[float], probes: Sequence[Probe]) -> list[str]:
    """How the kiosk's single decisive encoding (recognition.gallery.DECISIVE_DISTANCE
    and DECISIVE_MARGIN) stands against these measurements."""
    from recognition.gallery import DECISIVE_DISTANCE, DECISIVE_MARGIN

    mean, sd = float(np.mean(impostor)), float(np.std(impostor, ddof=1))
    per_pair = NormalDist(mean, sd).cdf(DECISIVE_DISTANCE)
    genuine = [p for p in probes if p.own is not None and p.margin is not None]
    sure = [
        p
        for p in genuine
        if (p.own or 0.0) <= DECISIVE_DISTANCE and (p.margin or 0.0) >= DECISIVE_MARGIN
    ]
    return [
        f"\n== one decisive encoding: distance <= {DECISIVE_DISTANCE:.2f} and margin >= "
        f"{DECISIVE_MARGIN:.2f} ==",
        f"   a stranger under it for one person: {per_pair:.1e} (normal fit); for one of "
        f"{KIOSK_GALLERY:,} people: {min(1.0, per_pair * KIOSK_GALLERY):.1e} per face",
        f"   genuine probes it settles alone: {len(sure)} of {len(genuine)}; the rest need "
        "two agreeing encodings",
        f"   nearest impostor here: {min(impostor):.3f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--faces", type=Path, default=FACES_DIR, help="the shared faces folder (with MANIFEST.csv)"
    )
    parser.add_argument(
        "--quality", action="store_true", help="also print the enrollment quality measures"
    )
    args = parser.parse_args(argv)
    folder: Path = args.faces
    if not (folder / "MANIFEST.csv").is_file():
        print(
            f"error: no shared faces at {folder} (MANIFEST.csv missing): this benchmark "
            "needs the real photos beside the checkout, as ../shared/faces",
            file=sys.stderr,
        )
        return 2

    models = FaceModels()
    entries = read_manifest(folder)
    samples, notes = encode_all(folder, entries, models)
    print(f"== faces: {len(samples)} from {len({s.path for s in samples})} photos, {models} ==")
    for note in notes:
        print(f"   {note}")

    genuine: list[tuple[float, Sample, Sample]] = []
    impostor: list[tuple[float, Sample, Sample]] = []
    for i, a in enumerate(samples):
        for b in samples[i + 1 :]:
            pair = (distance(a, b), a, b)
            if a.identity == b.identity and a.identity != UNKNOWN:
                genuine.append(pair)
            else:
                impostor.append(pair)
    g = [d for d, _, _ in genuine]
    im = [d for d, _, _ in impostor]

    print("\n== distance distributions (all pairs) ==")
    print(describe("genuine", g))
    print(describe("impostor", im))
    worst_g = max(genuine, key=lambda p: p[0])
    best_i = min(impostor, key=lambda p: p[0])
    print(
        f"largest genuine:   {worst_g[0]:.3f}  {worst_g[1].label} vs {worst_g[2].label} "
        f"({worst_g[1].identity})"
    )
    print(
        f"smallest impostor: {best_i[0]:.3f}  {best_i[1].label} ({best_i[1].identity}) vs "
        f"{best_i[2].label} ({best_i[2].identity})"
    )
    print(f"gap between them:  {best_i[0] - worst_g[0]:+.3f}")

    print("\n== error rates by threshold (accept distance <= threshold) ==")
    print("threshold   FNMR (genuine rejected)   FMR (impostors accepted)")
    for t in CANDIDATES:
        fn = sum(d > t for d in g)
        fm = sum(d <= t for d in im)
        print(
            f"  {t:.2f}     {fn:3d}/{len(g)} = {fn / len(g):6.1%}        "
            f"{fm:3d}/{len(im)} = {fm / len(im):6.2%}"
        )

    gallery, probes = search(samples)
    print("\n== 1:N search, one enrollment photo per person ==")
    print("enrolled: " + ", ".join(f"{s.identity} ({s.label})" for s in gallery))
    print("probe                          person               own   nearest other         margin")
    for p in sorted(probes, key=lambda p: (p.sample.identity, p.sample.path)):
        own = "    -" if p.own is None else f"{p.own:.3f}"
        gap = "     -" if p.margin is None else f"{p.margin:+.3f}"
        print(
            f"{p.sample.label:30s} {p.sample.identity:18s} {own}   "
            f"{p.other:.3f} {p.other_identity:14s} {gap}"
        )

    shots = {e.path for e in entries if e.notes.startswith("same shot")}
    same_shot = [d for d, a, b in genuine if a.path in shots and b.path in shots]
    threshold, margin, reasons = recommend(im, same_shot, probes)
    print("\n== 1:N outcome by threshold (with the recommended margin) ==")
    print("threshold   right   wrong   unknown  (of", len(probes), "probes)")
    for t in CANDIDATES:
        verdicts = [decide(p, t, margin) for p in probes]
        print(
            f"  {t:.2f}      {verdicts.count('right'):3d}     {verdicts.count('wrong'):3d}     "
            f"{verdicts.count('unknown'):3d}"
        )

    print(f"\n== recommended: threshold {threshold:.2f}, margin {margin:.2f} ==")
    for reason in reasons:
        print(f"   {reason}")
    unaccepted = [
        p for p in probes if p.own is not None and decide(p, threshold, margin) != "right"
    ]
    for p in unaccepted:
        print(
            f"   not accepted: {p.sample.label} ({p.sample.identity}) at {p.own:.3f}, "
            f"margin {p.margin:+.3f}"
        )
    wrong = [p for p in probes if decide(p, threshold, margin) == "wrong"]
    print(f"   false matches at the recommendation: {len(wrong)}")
    for line in decisive_lines(im, probes):
        print(line)

    if args.quality:
        print_quality(folder, entries, models)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
