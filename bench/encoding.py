"""Benchmark: one face's embedding, dlib-bin's ResNet against clockface's numpy one.

    uv run python -m bench.encoding              # the shared photos' faces, 5 rounds
    uv run python -m bench.encoding --rounds 9   # steadier on a busy machine

Both start from the same 5 landmarks of each face in the shared photos:

- baseline: ``dlib.face_recognition_model_v1.compute_face_descriptor(image, shape)``,
  what face_recognition's ``face_encodings`` calls (dlib-bin: no BLAS);
- clockface: ``dlib.get_face_chip`` (the same 150x150 alignment) and
  :class:`recognition.resnet.ResNet` (the same weights, numpy's BLAS), one face at a time
  and all of a photo's faces at once.

numpy's BLAS is held to one thread, as in a kiosk's encoder worker, so both run on one
core. The rounds are interleaved and each figure is the best round's mean per face.
Before timing, every face's two embeddings are compared: the largest difference of any
component is printed. Timings are never asserted anywhere: read the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
from threadpoolctl import threadpool_limits

from clockface.errors import ClockfaceError
from recognition.faces import FaceModels, Model
from recognition.photos import read_image
from recognition.resnet import CHIP_SIZE

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
PHOTOS = (
    "obama/obama1.jpg",
    "biden/biden1.jpg",
    "alex_lacamoire/alex_lacamoire1.png",
    "kit_harington/kit_harington1.jpg",
    "group/obama_and_biden.jpg",
)


def _best(calls: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Each call's best round, in ms per face (a call returns how many faces it did)."""
    best = dict.fromkeys(calls, float("inf"))
    for call in calls.values():
        call()  # warm up
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            faces = call()
            best[name] = min(best[name], (time.perf_counter() - start) * 1000 / faces)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--faces", type=Path, default=FACES, help="the shared faces folder")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    models = FaceModels()
    theirs = dlib.face_recognition_model_v1(str(models._model_file(Model.ENCODER)))
    net = models._model(Model.ENCODER)
    work = []
    for photo in PHOTOS:
        try:
            image = read_image(args.faces / photo)
        except ClockfaceError as err:
            print(f"bench.encoding: {err}", file=sys.stderr)
            return 1
        shapes = [models._shape(image, box, Model.SHAPE_5) for box in models.detect(image)]
        work.append((image, shapes))
    faces = sum(len(shapes) for _, shapes in work)

    def baseline() -> list[np.ndarray]:
        return [
            np.asarray(theirs.compute_face_descriptor(image, shape, 1))
            for image, shapes in work
            for shape in shapes
        ]

    def chips(image: np.ndarray, shapes: list[object]) -> np.ndarray:
        return np.stack(
            [dlib.get_face_chip(image, s, size=CHIP_SIZE, padding=0.25) for s in shapes]
        )

    def one_at_a_time() -> list[np.ndarray]:
        return [net.embed(chips(image, [shape]))[0] for image, shapes in work for shape in shapes]

    def together() -> list[np.ndarray]:
        return [row for image, shapes in work for row in net.embed(chips(image, shapes))]

    with threadpool_limits(limits=1):
        expected = np.stack(baseline())
        gaps = {
            name: float(np.abs(np.stack(call()) - expected).max())
            for name, call in (("one at a time", one_at_a_time), ("together", together))
        }
        best = _best(
            {
                "baseline": lambda: len(baseline()),
                "one at a time": lambda: len(one_at_a_time()),
                "together": lambda: len(together()),
            },
            args.rounds,
        )
    print(
        f"bench.encoding: {faces} faces in {len(PHOTOS)} shared photos, one thread, "
        f"best of {args.rounds} rounds"
    )
    print(f"{'encoder':44}{'ms/face':>9}{'speed-up':>10}{'max |diff|':>12}")
    rows = (
        ("baseline: dlib-bin compute_face_descriptor", "baseline", "-"),
        (
            "clockface: numpy ResNet, one face a call",
            "one at a time",
            f"{gaps['one at a time']:.1e}",
        ),
        ("clockface: numpy ResNet, a photo's faces", "together", f"{gaps['together']:.1e}"),
    )
    for label, name, gap in rows:
        ratio = best["baseline"] / best[name]
        print(f"{label:44}{best[name]:9.1f}{ratio:9.1f}x{gap:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
