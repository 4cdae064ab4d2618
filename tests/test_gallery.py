"""The Gallery against a brute-force face_recognition.face_distance reference."""

from __future__ import annotations

import math
import warnings
from unittest import mock

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clockface.errors import GalleryError
from recognition import gallery as gallery_module
from recognition.gallery import EMBEDDING_DIM, Gallery, Match

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
    import face_recognition

TOL = 2e-4  # float32 storage against float64 reference


def unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    x = rng.standard_normal((n, EMBEDDING_DIM))
    out: npt.NDArray[np.float64] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def reference(
    people: list[str], templates: npt.NDArray[np.float64], probe: npt.NDArray[np.float64]
) -> dict[str, float]:
    """Per person, the smallest face_distance to any of their templates."""
    distances = face_recognition.face_distance(templates, probe)
    best: dict[str, float] = {}
    for person, d in zip(people, distances, strict=True):
        best[person] = min(best.get(person, math.inf), float(d))
    return best


def check_against_reference(m: Match, per_person: dict[str, float]) -> None:
    ranked = sorted(per_person.items(), key=lambda kv: kv[1])
    (_, best_d), *rest = ranked
    assert m.distance == pytest.approx(best_d, abs=TOL)
    # On a near-tie either person is a correct nearest one.
    assert per_person[m.nearest_id or ""] == pytest.approx(best_d, abs=TOL)
    if rest:
        assert m.margin == pytest.approx(rest[0][1] - best_d, abs=2 * TOL)
    else:
        assert m.margin == math.inf


def check_decision(g: Gallery, m: Match) -> None:
    expected = m.distance <= g.threshold and m.margin >= g.margin
    assert m.accepted is expected
    assert m.person_id == (m.nearest_id if expected else None)


galleries = st.tuples(
    st.integers(min_value=1, max_value=9),  # people
    st.integers(min_value=1, max_value=4),  # most templates per person
    st.integers(min_value=1, max_value=6),  # probes
    st.integers(min_value=0, max_value=2**32 - 1),  # seed
    st.booleans(),  # probes near a template (genuine) or anywhere
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(galleries)
def test_match_equals_brute_force_reference(params: tuple[int, int, int, int, bool]) -> None:
    n_people, most, n_probes, seed, near = params
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, most + 1, n_people)
    people = [f"person-{i}" for i, c in enumerate(counts) for _ in range(c)]
    templates = unit(rng, len(people))
    if near:
        probes = templates[rng.integers(0, len(people), n_probes)]
        probes = probes + 0.05 * rng.standard_normal(probes.shape)
    else:
        probes = unit(rng, n_probes)

    g = Gallery(threshold=0.9, margin=0.05)
    g.add_many(people, templates)
    batch = g.match(probes)
    # A chunk of 3 templates: the cross-chunk merge is exercised on every example.
    with (
        mock.patch.object(gallery_module, "_MIN_CHUNK_WIDTH", 3),
        mock.patch.object(gallery_module, "_BATCH_CHUNK_SCORES", 1),
    ):
        chunked = g.match(probes)
    for i, probe in enumerate(probes):
        per_person = reference(people, templates, probe)
        one = g.match_one(probe)
        for m in (one, batch[i], chunked[i]):
            check_against_reference(m, per_person)
            check_decision(g, m)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_add_and_remove_keep_results_exact(ops: list[int], seed: int) -> None:
    """Interleaved adds and removals, growing past capacity, always match the reference."""
    rng = np.random.default_rng(seed)
    g = Gallery()
    held: dict[str, npt.NDArray[np.float64]] = {}
    for op in ops:
        pid = f"p{op}"
        if pid in held and rng.random() < 0.4:
            assert g.remove(pid) == len(held.pop(pid))
        else:
            new = unit(rng, int(rng.integers(1, 300)))
            g.add(pid, new)
            held[pid] = np.vstack([held[pid], new]) if pid in held else new
    assert len(g) == sum(len(t) for t in held.values())
    assert sorted(g.people) == sorted(held)
    for pid, t in held.items():
        assert g.template_count(pid) == len(t)
        stored = g.templates_of(pid)
        expected = t.astype(np.float32)
        # Order within a person may change on removal; the set of rows may not.
        assert np.array_equal(stored[np.lexsort(stored.T)], expected[np.lexsort(expected.T)])
    assume(held)
    people = [pid for pid, t in held.items() for _ in range(len(t))]
    templates = np.vstack(list(held.values()))
    for probe in unit(rng, 3):
        check_against_reference(g.match_one(probe), reference(people, templates, probe))


def test_threshold_and_margin_decide() -> None:
    e = np.zeros(EMBEDDING_DIM)
    e[0] = 1.0
    g = Gallery(threshold=0.5, margin=0.1)
    g.add("ada", e)
    near = e.copy()
    near[1] = 0.3  # distance 0.3 from ada
    m = g.match_one(near)
    assert (m.person_id, m.nearest_id, m.margin) == ("ada", "ada", math.inf)
    assert m.distance == pytest.approx(0.3, abs=1e-6)
    far = e.copy()
    far[1] = 0.6
    assert g.match_one(far).person_id is None  # over the threshold
    # A look-alike: bob sits 0.35 from the probe, only 0.05 farther than ada.
    bob = near.copy()
    bob[2] = math.sqrt(0.35**2 - 0.0)  # distance from near: 0.35
    g.add("bob", bob)
    m = g.match_one(near)
    assert m.nearest_id == "ada" and m.person_id is None
    assert m.margin == pytest.approx(0.05, abs=1e-5)
    g.remove("bob")
    assert g.match_one(near).person_id == "ada"


def test_several_templates_of_one_person_are_no_margin_competitor() -> None:
    rng = np.random.default_rng(1)
    base = unit(rng, 1)[0]
    g = Gallery(threshold=0.6, margin=0.1)
    g.add("ada", np.vstack([base, base + 0.01, base - 0.01]))
    g.add("bob", -base)
    m = g.match_one(base + 0.005)
    assert m.person_id == "ada"
    assert m.margin > 1.0  # measured to bob, not to ada's second template


def test_empty_gallery_knows_nobody() -> None:
    g = Gallery()
    assert g.match_one(np.ones(EMBEDDING_DIM)) == Match(None, None, math.inf, math.inf)
    assert g.match(np.ones((3, EMBEDDING_DIM))) == [Match(None, None, math.inf, math.inf)] * 3
    g.add("ada", np.ones(EMBEDDING_DIM))
    g.remove("ada")
    assert len(g) == 0 and g.people == []
    assert g.match_one(np.ones(EMBEDDING_DIM)).nearest_id is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (np.ones(127), "shape"),
        (np.ones((2, 3, EMBEDDING_DIM)), "shape"),
        (np.array(["a"] * EMBEDDING_DIM), "numbers"),
        (np.full(EMBEDDING_DIM, np.nan), "NaN"),
        (np.full(EMBEDDING_DIM, np.inf), "NaN or infinite"),
    ],
)
def test_bad_embeddings_are_refused(value: npt.NDArray[np.generic], words: str) -> None:
    g = Gallery()
    with pytest.raises(GalleryError, match=words):
        g.add("ada", value)
    g.add("ada", np.ones(EMBEDDING_DIM))
    for call in (g.match_one, g.match):
        with pytest.raises(GalleryError) as err:
            call(value)
        assert "\n" not in str(err.value)
    assert len(g) == 1  # nothing half-added


def test_bad_ids_and_arguments_are_refused() -> None:
    g = Gallery()
    with pytest.raises(GalleryError, match="non-empty"):
        g.add("", np.ones(EMBEDDING_DIM))
    with pytest.raises(GalleryError, match="must match"):
        g.add_many(["a", "b"], np.ones((3, EMBEDDING_DIM)))
    with pytest.raises(GalleryError, match="non-empty"):
        g.add_many(["b", "a", ""], np.ones((3, EMBEDDING_DIM)))
    assert g.people == []
    with pytest.raises(GalleryError, match="no person 'zed'"):
        g.remove("zed")
    with pytest.raises(GalleryError, match="threshold"):
        Gallery(threshold=0)
    with pytest.raises(GalleryError, match="margin"):
        Gallery(margin=-1)
    with pytest.raises(GalleryError, match="128 numbers"):
        g.match_one(np.ones((2, EMBEDDING_DIM)))
    assert len(g) == 0


def test_memory_is_one_float32_matrix_and_bounded() -> None:
    rng = np.random.default_rng(2)
    g = Gallery()
    for i in range(50):  # growth by appends: spare capacity stays a bounded fraction
        g.add(f"p{i}", unit(rng, 97))
    n = len(g)
    per_template = (EMBEDDING_DIM + 1) * 4 + 4  # float32 column plus an int32 label
    assert g.nbytes <= 1.25 * n * per_template + 1024 * per_template
    g.shrink_to_fit()
    assert g.nbytes == n * per_template
    view = g.templates_view
    assert view.dtype == np.float32 and view.shape == (EMBEDDING_DIM, n)
    assert view.base is not None and view.base.flags.c_contiguous
    with pytest.raises(ValueError):
        view[0, 0] = 1.0  # read-only: the matcher's own bytes


def test_float64_and_float32_probes_agree() -> None:
    rng = np.random.default_rng(3)
    t = unit(rng, 40)
    g = Gallery()
    g.add_many([f"p{i // 2}" for i in range(40)], t)
    probe = t[7] + 0.01
    assert g.match_one(probe) == g.match_one(probe.astype(np.float32))
    assert g.match_one(probe).nearest_id == "p3"


def test_batch_and_single_give_identical_answers() -> None:
    rng = np.random.default_rng(4)
    t = unit(rng, 300)
    g = Gallery(threshold=0.8, margin=0.02)
    g.add_many([f"p{i % 70}" for i in range(300)], t)
    noise = np.repeat([[0.02], [0.08]], 20, axis=0)  # half near a template, half far
    probes = t[rng.integers(0, 300, 40)] + noise * rng.standard_normal((40, EMBEDDING_DIM))
    batch = g.match(probes)
    singles = [g.match_one(p) for p in probes]
    # Same people and decisions; distances equal to float32 precision (GEMM and GEMV
    # sum in different orders).
    assert [(m.person_id, m.nearest_id) for m in batch] == [
        (m.person_id, m.nearest_id) for m in singles
    ]
    assert 0 < sum(m.accepted for m in batch) < len(batch)
    for b, s in zip(batch, singles, strict=True):
        assert b.distance == pytest.approx(s.distance, abs=1e-5)
        assert b.margin == pytest.approx(s.margin, abs=1e-5)
