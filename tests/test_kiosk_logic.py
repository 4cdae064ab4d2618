"""The kiosk's pure logic: tracking faces, voting on identities, the attendance policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.motion import MotionGate
from kiosk.policy import AttendancePolicy, Mode
from kiosk.tracking import Tracker, iou
from kiosk.voting import PassBook, Votes
from recognition.faces import Box
from recognition.gallery import Match

CHICAGO = ZoneInfo("America/Chicago")


def ada(distance: float = 0.3) -> Match:
    return Match("ada", "ada", distance, 0.3)


def bob() -> Match:
    return Match("bob", "bob", 0.35, 0.2)


UNKNOWN = Match(None, "ada", 0.7, 0.1)


# ------------------------------------------------------------------ voting
def test_a_track_settles_only_after_enough_agreeing_encodings() -> None:
    votes = Votes()
    votes.add(ada(0.35))
    assert votes.verdict(required=2) is None
    votes.add(UNKNOWN)  # unknown neither helps nor blocks
    assert votes.verdict(required=2) is None
    votes.add(ada(0.31))
    verdict = votes.verdict(required=2)
    assert verdict is not None
    assert (verdict.person_id, verdict.agreeing, verdict.distance) == ("ada", 2, 0.31)
    assert votes.unknown == 1


def test_one_encoding_naming_someone_else_blocks_the_track() -> None:
    votes = Votes()
    for match in (ada(), ada(), ada(), bob()):
        votes.add(match)
    assert votes.conflicting
    assert votes.verdict(required=2) is None


def test_required_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Votes().verdict(required=0)


# ------------------------------------------------------------------ tracking
def box(left: int, top: int = 100, size: int = 80) -> Box:
    return Box(top=top, right=left + size, bottom=top + size, left=left)


def test_iou() -> None:
    assert iou(box(0), box(0)) == 1.0
    assert iou(box(0), box(200)) == 0.0
    assert iou(box(0), box(40)) == pytest.approx(40 * 80 / (2 * 80 * 80 - 40 * 80))


def test_a_moving_face_stays_one_track_and_a_second_face_gets_its_own() -> None:
    tracker = Tracker(min_iou=0.25, max_age=0.5)
    (first,), gone = tracker.update([box(100)], now=0.0)
    assert gone == []
    for step in range(1, 10):  # walks right 15 px per detection
        live, gone = tracker.update([box(100 + 15 * step)], now=step * 0.1)
        assert [t.track_id for t in live] == [first.track_id] and gone == []
    assert first.hits == 10 and first.box == box(235)
    live, _ = tracker.update([box(235), box(500)], now=1.0)
    assert len(live) == 2 and live[1].track_id != first.track_id


def test_tracks_expire_after_max_age_of_absence() -> None:
    tracker = Tracker(max_age=0.5)
    tracker.update([box(100)], now=0.0)
    live, gone = tracker.update([], now=0.4)
    assert len(live) == 1 and gone == []
    live, gone = tracker.update([], now=0.6)
    assert live == [] and len(gone) == 1
    tracker.update([box(100)], now=0.7)  # the same place later: a new pass, a new track
    assert tracker.tracks[0].track_id != gone[0].track_id
    assert len(tracker.finish_all()) == 1 and tracker.tracks == []


def test_each_box_and_track_is_used_once_best_overlap_first() -> None:
    tracker = Tracker()
    tracker.update([box(100), box(170)], now=0.0)
    a, b = tracker.tracks
    live, _ = tracker.update([box(175), box(105)], now=0.1)
    assert a.box == box(105) and b.box == box(175) and len(live) == 2


def test_encoding_is_spaced_and_bounded() -> None:
    tracker = Tracker()
    (track,), _ = tracker.update([box(0)], now=0.0)
    assert track.due_for_encoding(0.0, max_encodings=2, min_gap=0.2)
    track.encoded_at.append(0.0)
    assert not track.due_for_encoding(0.1, max_encodings=2, min_gap=0.2)
    assert track.due_for_encoding(0.25, max_encodings=2, min_gap=0.2)
    track.encoded_at.append(0.25)
    assert not track.due_for_encoding(5.0, max_encodings=2, min_gap=0.2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 600), max_size=4), max_size=30))
def test_tracks_never_share_a_box(frames: list[list[int]]) -> None:
    tracker = Tracker()
    for i, lefts in enumerate(frames):
        live, _ = tracker.update([box(left) for left in lefts], now=i * 0.1)
        assert len({t.track_id for t in live}) == len(live)
        current = [t for t in live if t.last_seen == i * 0.1]
        assert len(current) == len(lefts)


# ------------------------------------------------------------------ policy
@dataclass(frozen=True)
class Last:
    direction: str
    utc: datetime


def at(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=CHICAGO).astimezone(UTC)


def test_auto_alternates_within_a_local_day_and_restarts_each_day() -> None:
    policy = AttendancePolicy(Mode.AUTO, cooldown=timedelta(minutes=2))
    assert policy.decide(None, at("2026-03-02 08:57"), CHICAGO) == "in"
    last = Last("in", at("2026-03-02 08:57"))
    assert policy.decide(last, at("2026-03-02 17:05"), CHICAGO) == "out"
    last = Last("out", at("2026-03-02 17:05"))
    assert policy.decide(last, at("2026-03-02 18:00"), CHICAGO) == "in"
    # 23:50 local is already the next day in UTC; 00:10 local the next local day.
    last = Last("in", at("2026-03-02 23:50"))
    assert policy.decide(last, at("2026-03-03 00:10"), CHICAGO) == "in"
    last = Last("in", at("2026-03-02 06:00"))
    assert policy.decide(last, at("2026-03-02 23:59"), CHICAGO) == "out"


def test_cooldown_swallows_the_same_visit_in_every_mode() -> None:
    last = Last("in", at("2026-03-02 08:57"))
    for mode in Mode:
        policy = AttendancePolicy(mode, cooldown=timedelta(minutes=2))
        assert policy.decide(last, at("2026-03-02 08:58"), CHICAGO) is None
        after = policy.decide(last, at("2026-03-02 08:59"), CHICAGO)
        assert after == {"in": "in", "out": "out", "auto": "out"}[mode]


def test_an_event_dated_in_the_future_has_expired_after_the_clock_is_corrected() -> None:
    """A kiosk whose clock ran a day ahead logged her at 08:57 "tomorrow"; once the clock
    is put right (a restart), her passes today are logged, not dropped for a day."""
    ahead = Last("in", at("2026-03-03 08:57"))
    for mode, expected in ((Mode.AUTO, "in"), (Mode.IN, "in")):
        policy = AttendancePolicy(mode, cooldown=timedelta(minutes=2))
        assert policy.decide(ahead, at("2026-03-02 08:58"), CHICAGO) == expected
        assert policy.decide(ahead, at("2026-03-02 17:00"), CHICAGO) == expected


def test_a_running_kiosk_times_the_cooldown_on_a_clock_that_cannot_go_back() -> None:
    policy = AttendancePolicy(Mode.AUTO, cooldown=timedelta(minutes=2))
    last = Last("in", at("2026-03-02 08:57"))
    # The wall clock jumps back a day after the event; 5 minutes have really passed:
    # her next pass is a departure, not "the same visit" for a day.
    assert policy.decide(last, at("2026-03-01 09:02"), CHICAGO, elapsed=300.0) == "out"
    # It jumps forward a day; 30 s have really passed: still the same visit.
    assert policy.decide(last, at("2026-03-03 08:58"), CHICAGO, elapsed=30.0) is None
    # The day of "now" follows the event's, moved on by the real gap.
    assert policy.decide(last, at("2026-03-01 09:02"), CHICAGO, elapsed=86_400.0) == "in"
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="elapsed must be a finite number"):
            policy.decide(last, at("2026-03-02 09:00"), CHICAGO, elapsed=bad)


def test_fixed_modes_log_their_direction() -> None:
    assert AttendancePolicy(Mode.IN).decide(None, at("2026-03-02 08:00"), CHICAGO) == "in"
    assert AttendancePolicy(Mode.OUT).decide(None, at("2026-03-02 08:00"), CHICAGO) == "out"


def test_policy_refuses_naive_times_and_negative_cooldowns() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AttendancePolicy().decide(None, datetime(2026, 3, 2, 8), CHICAGO)
    with pytest.raises(ValueError, match="negative"):
        AttendancePolicy(cooldown=timedelta(seconds=-1))
    assert math.isfinite(AttendancePolicy().cooldown.total_seconds())


@pytest.mark.parametrize(
    ("hour", "direction", "text"),
    [
        (8, "in", "Good morning, Ada, in at 08:57"),
        (11, "in", "Good morning, Ada, in at 11:57"),
        (12, "in", "Good afternoon, Ada, in at 12:57"),
        (18, "in", "Good evening, Ada, in at 18:57"),
        (17, "out", "Goodbye, Ada, out at 17:57"),
    ],
)
def test_greeting_by_local_time_and_direction(hour: int, direction: str, text: str) -> None:
    from hardware.feedback import Greeting

    local = datetime(2026, 3, 2, hour, 57, tzinfo=CHICAGO)
    assert Greeting("Ada", direction, local).text == text


# ------------------------------------------------------------------ walking past
def test_a_face_walking_up_fast_and_growing_stays_one_track() -> None:
    """A face near the camera moves more than its width and grows 20 % between
    detections: overlap alone loses it; the predicted box keeps it."""
    tracker = Tracker(max_age=0.5)
    left, size, top = 100.0, 60.0, 100.0
    first = None
    for step in range(10):
        right, bottom = round(left + size), round(top + size)
        live, gone = tracker.update(
            [Box(top=round(top), right=right, bottom=bottom, left=round(left))], now=step * 0.2
        )
        assert gone == [] and len(live) == 1
        first = first or live[0].track_id
        assert live[0].track_id == first
        left, top, size = left + 0.9 * size, top + 0.2 * size, size * 1.2
    assert tracker.tracks[0].hits == 10


def test_a_missed_detection_does_not_split_the_pass() -> None:
    tracker = Tracker(max_age=0.5)
    for step in range(4):
        tracker.update([box(100 + 30 * step)], now=step * 0.1)
    tracker.update([], now=0.4)  # missed: the face was behind someone for a frame
    tracker.update([], now=0.5)
    live, _ = tracker.update([box(100 + 30 * 6)], now=0.6)
    assert len(live) == 1 and live[0].hits == 5


def test_crossing_faces_of_different_sizes_keep_their_tracks() -> None:
    """A near face (120 px) walking right and a far one (50 px) walking left cross;
    their sizes tell them apart where their boxes overlap."""
    tracker = Tracker(max_age=0.5)
    near_left, far_left = 100.0, 500.0
    ids: tuple[int, int] | None = None
    for step in range(12):
        near = Box(top=100, right=round(near_left) + 120, bottom=220, left=round(near_left))
        far = Box(top=140, right=round(far_left) + 50, bottom=190, left=round(far_left))
        live, _ = tracker.update([near, far], now=step * 0.1)
        by_size = {t.box.width: t.track_id for t in live if t.last_seen == step * 0.1}
        pair = (by_size[120], by_size[50])
        ids = ids or pair
        assert pair == ids, f"tracks swapped at step {step}"
        near_left += 40
        far_left -= 40
    assert len(tracker.tracks) == 2


def test_a_new_face_far_from_a_lost_one_is_a_new_track() -> None:
    tracker = Tracker(max_age=1.0)
    (a,), _ = tracker.update([box(100)], now=0.0)
    live, _ = tracker.update([box(400)], now=0.1)  # 3.75 widths away: someone else
    assert len(live) == 2 and a.box == box(100)
    live, _ = tracker.update([box(100, size=200)], now=0.2)  # the same place, 2.5x larger
    assert len(live) == 3 and a.box == box(100)


def test_an_undecided_pass_is_encoded_again_slowly_after_its_budget() -> None:
    tracker = Tracker()
    (track,), _ = tracker.update([box(0)], now=0.0)
    track.encoded_at.extend([0.0, 0.1])

    def due(now: float) -> bool:
        return track.due_for_encoding(now, max_encodings=2, min_gap=0.1, slow_gap=0.5)

    assert not due(0.3)
    assert due(0.6)
    track.decided = True
    assert not due(5.0)


def test_one_decisive_encoding_settles_alone_and_a_weak_one_does_not() -> None:
    votes = Votes()
    votes.add(Match("ada", "ada", 0.45, 0.3))
    assert votes.verdict(required=2, decisive=(0.42, 0.20)) is None
    votes = Votes()
    votes.add(Match("ada", "ada", 0.40, 0.15))  # close, but the runner-up is near
    assert votes.verdict(required=2, decisive=(0.42, 0.20)) is None
    votes = Votes()
    votes.add(Match("ada", "ada", 0.40, 0.25))
    verdict = votes.verdict(required=2, decisive=(0.42, 0.20))
    assert verdict is not None and verdict.agreeing == 1
    votes.add(bob())  # and a conflicting vote still blocks it
    assert votes.verdict(required=2, decisive=(0.42, 0.20)) is None


def test_votes_of_one_pass_split_in_two_tracks_count_together() -> None:
    book = PassBook(window=3.0)
    first, second = Votes(), Votes()
    first.add(ada(0.45))
    book.note("ada", 1.0, track_id=1)
    assert first.verdict(required=2, support=book.support("ada", 1.0, 1)) is None
    second.add(ada(0.47))
    book.note("ada", 1.5, track_id=2)
    verdict = second.verdict(required=2, support=book.support("ada", 1.5, 2))
    assert verdict is not None and verdict.agreeing == 2
    assert book.support("ada", 5.0, 2) == 0  # the first track's vote is too old by then
    book.settle("ada", 1.5)
    assert book.settled_recently("ada", 4.0) and not book.settled_recently("ada", 4.6)
    book.forget(1)
    assert book.support("ada", 1.6, 3) == 1
    book.prune(10.0)
    assert book.support("ada", 10.0, 3) == 0 and not book.settled_recently("ada", 10.0)


def test_the_mean_of_a_tracks_encodings_can_settle_it_but_never_against_a_vote() -> None:
    votes = Votes()
    for distance in (0.56, 0.58, 0.55):  # each over the threshold: unknown
        votes.add(Match(None, "ada", distance, 0.2))
    assert votes.verdict(required=2) is None
    votes.pooled = Match("ada", "ada", 0.50, 0.2)  # their mean is accepted
    verdict = votes.verdict(required=2)
    assert verdict is not None and (verdict.person_id, verdict.agreeing) == ("ada", 3)
    votes.add(bob())  # one encoding named somebody else: no verdict
    assert votes.verdict(required=2) is None
    votes.pooled = Match(None, "ada", 0.56, 0.2)
    assert Votes(matches=votes.matches[:3], pooled=votes.pooled).verdict(required=2) is None


def test_motion_counts_a_small_far_change_and_adds_up_slow_ones() -> None:
    gate = MotionGate(threshold=1.5)
    room = np.full((720, 1280, 3), 90, np.uint8)
    assert gate.moved(room)  # the first frame
    assert not gate.moved(room.copy())
    far = room.copy()
    far[300:330, 600:620] = 200  # a small face far down the corridor: mean change ~0.1
    assert gate.moved(far)
    creeping = far.copy()
    steps = []
    for shift in range(1, 8):  # a slow walker: 3 px a frame
        creeping = room.copy()
        creeping[300:330, 600 + 3 * shift : 620 + 3 * shift] = 200
        steps.append(gate.moved(creeping))
    assert any(steps) and not all(steps)  # small steps count once they add up
