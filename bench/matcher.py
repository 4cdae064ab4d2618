"""Benchmark: clockface's Gallery against the baselines, side by side in one process.

    uv run python -m bench.matcher                      # 1k, 10k, 100k, 1M templates
    uv run python -m bench.matcher --sizes 1000,10000   # quicker

For each gallery size (synthetic unit-norm 128-d templates, several per person) and
each thread count, it times, interleaved round by round so that the machine's drift
hits every method alike:

- baseline: what a face_recognition user writes, ``face_distance(known, probe)`` over
  a float64 (n, 128) array, then ``argmin``;
- FAISS ``IndexFlatL2``, k=1 (nearest template only: less than clockface computes),
  one probe and a batch;
- clockface ``Gallery.match_one`` and ``Gallery.match`` on a batch of 16 probes
  (nearest person, distance, margin to the nearest other person, decision);
- the memory floor: the faster of ``templates.sum()`` and a bare ``probe @ templates``
  over the same template bytes, with no scoring, argmin or margin; and for batches, a
  bare ``probes @ templates``. A single probe is bound by memory bandwidth, a batch by
  the multiply-adds: the ratio of the two bare products is the most a batch can gain.

Each cell is the best of the rounds. Before timing, every method's nearest distance is
checked against the baseline's. Timings are never asserted anywhere: read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recognition.gallery import EMBEDDING_DIM, Gallery

BATCH = 16
TEMPLATES_PER_PERSON = 4


@dataclass(frozen=True)
class Row:
    name: str
    seconds: float  # best time of one call
    probes: int  # probes answered by one call

    @property
    def per_probe(self) -> float:
        return self.seconds / self.probes


def unit_vectors(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    out = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def best_of(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Run each function once per round, interleaved; the best time of each.

    Each timed call follows an untimed call of the same function, so every method
    starts with its own data as warm in the caches as it can be, whatever ran before.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(count)
    with threadpool_limits(limits=count):
        yield


def rounds_for(n: int, budget: float) -> int:
    return max(3, min(300, int(budget * 2e7 / max(n, 1))))


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def check(label: str, ok: bool) -> str:
    return f"{label}: {'met' if ok else 'NOT met'}"


def run_size(n: int, thread_counts: list[int], budget: float, seed: int) -> list[str]:
    import faiss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
        import face_recognition

    rng = np.random.default_rng(seed)
    templates = unit_vectors(rng, n)
    people = np.char.add("p", (np.arange(n) // TEMPLATES_PER_PERSON).astype(str))
    # Probes near enrolled templates, as real probes would be.
    probes = templates[rng.integers(0, n, BATCH)] + 0.03 * unit_vectors(rng, BATCH)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    probe = probes[0].copy()

    gallery = Gallery()
    gallery.add_many(people, templates)
    gallery.shrink_to_fit()
    known = templates.astype(np.float64)  # face_recognition's encodings are float64
    probe64 = probe.astype(np.float64)
    index = faiss.IndexFlatL2(EMBEDDING_DIM)
    index.add(templates)
    view = gallery.templates_view  # the same bytes the gallery reads, without the norms
    bare_probe = np.ascontiguousarray(probe)
    bare_probes = np.ascontiguousarray(probes)
    # The same bytes in the usual template-major layout: what clockface's layout is
    # measured against.
    by_template = np.ascontiguousarray(view.T)
    del templates
    gc.collect()

    # Every method must find the same nearest template before its time means anything.
    reference = float(face_recognition.face_distance(known, probe64).min())
    got_one = gallery.match_one(probe).distance
    got_batch = gallery.match(probes)[0].distance
    faiss_d = float(np.sqrt(index.search(probe[None, :], 1)[0][0, 0]))
    agree = all(abs(d - reference) < 1e-4 for d in (got_one, got_batch, faiss_d))
    if not agree:
        raise SystemExit(
            f"methods disagree at n={n}: baseline {reference}, clockface {got_one}/"
            f"{got_batch}, FAISS {faiss_d}"
        )

    lines = [
        "",
        f"== {n:,} templates ({n // TEMPLATES_PER_PERSON:,} people), "
        f"nearest distances agree with face_distance (|diff| < 1e-4)",
        f"   clockface gallery memory: {gallery.nbytes / (n / 1000) / 1024:.1f} KiB per 1k "
        f"templates ({gallery.nbytes / 2**20:,.1f} MiB in all)",
    ]
    rounds = rounds_for(n, budget)
    for count in thread_counts:
        with threads(count):
            fns: dict[str, Callable[[], object]] = {
                "face_distance + argmin": lambda: int(
                    np.argmin(face_recognition.face_distance(known, probe64))
                ),
                "FAISS IndexFlatL2, k=1": lambda: index.search(probe[None, :], 1),
                "clockface match_one": lambda: gallery.match_one(probe),
                f"FAISS batch of {BATCH}": lambda: index.search(probes, 1),
                f"clockface match, batch of {BATCH}": lambda: gallery.match(probes),
                "floor: templates.sum()": lambda: view.sum(),
                "floor: bare probe @ templates": lambda: np.dot(bare_probe, view),
                f"floor: bare batch of {BATCH} @ templates": lambda: np.dot(bare_probes, view),
                "layout: bare (n, 128) @ probe": lambda: np.dot(by_template, bare_probe),
            }
            # The baseline is slow at large sizes: give it fewer rounds.
            slow = {"face_distance + argmin": fns.pop("face_distance + argmin")}
            best = best_of(fns, rounds) | best_of(slow, max(2, min(20, rounds // 10)))
        batch_names = {
            f"FAISS batch of {BATCH}",
            f"clockface match, batch of {BATCH}",
            f"floor: bare batch of {BATCH} @ templates",
        }
        rows = [Row(k, v, BATCH if k in batch_names else 1) for k, v in best.items()]
        ours = best["clockface match_one"]
        lines.append(f"-- {count} thread{'s' if count > 1 else ''}, best of {rounds} rounds")
        lines.append(f"   {'method':36} {'per call':>11} {'per probe':>11} {'vs match_one':>13}")
        for row in rows:
            lines.append(
                f"   {row.name:36} {fmt_time(row.seconds)} {fmt_time(row.per_probe)} "
                f"{row.per_probe / ours:12.2f}x"
            )
        floor = min(best["floor: templates.sum()"], best["floor: bare probe @ templates"])
        vs_faiss = ours / best["FAISS IndexFlatL2, k=1"]
        vs_baseline = best["face_distance + argmin"] / ours
        vs_floor = ours / floor
        layout_gain = best["layout: bare (n, 128) @ probe"] / best["floor: bare probe @ templates"]
        batch_gain = ours / (best[f"clockface match, batch of {BATCH}"] / BATCH)
        # The most a batch can gain here: a bare matrix-vector product against a bare
        # matrix product of the batch, neither scoring nor deciding anything.
        batch_bound = best["floor: bare probe @ templates"] / (
            best[f"floor: bare batch of {BATCH} @ templates"] / BATCH
        )
        targets = [
            f"single probe / FAISS flat = {vs_faiss:.2f} "
            f"({check('target <= 1.00', vs_faiss <= 1)})",
            f"face_distance baseline / single probe = {vs_baseline:.1f}x"
            + (f" ({check('target >= 10x at 100k', vs_baseline >= 10)})" if n == 100_000 else ""),
            f"dimension-major (129, n) storage reads {layout_gain:.2f}x as fast as "
            f"template-major (n, 128) for a bare product",
            f"single probe / memory floor = {vs_floor:.2f}"
            + (f" ({check('target <= 1.15 at 1M', vs_floor <= 1.15)})" if n == 1_000_000 else ""),
            f"batch of {BATCH}: {batch_gain:.1f}x cheaper per probe than single "
            f"({check('target >= 5x', batch_gain >= 5)}); bare product of the batch "
            f"against bare single product, the most a batch can gain here: {batch_bound:.1f}x",
        ]
        lines.extend(f"   {t}" for t in targets)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="1000,10000,100000,1000000", help="gallery sizes, comma separated"
    )
    parser.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="rough seconds of rounds per size and method"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        thread_counts = [int(s) for s in args.threads.split(",")]
    except ValueError:
        parser.error("--sizes and --threads take comma-separated whole numbers")
    if any(s < 2 * TEMPLATES_PER_PERSON for s in sizes) or any(t < 1 for t in thread_counts):
        parser.error(f"sizes must be at least {2 * TEMPLATES_PER_PERSON}, threads at least 1")

    print(
        f"bench.matcher: numpy {np.__version__}, {BATCH} probes per batch, "
        f"{TEMPLATES_PER_PERSON} templates per person, times are best of interleaved rounds"
    )
    for n in sizes:
        for line in run_size(n, thread_counts, args.budget, args.seed):
            print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
