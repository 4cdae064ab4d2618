"""The kiosk's pure logic: tracking faces, voting on identities, the attendance policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.policy import AttendancePolicy, Direction, Mode
from kiosk.tracking import Tracker, iou
from kiosk.voting import Votes
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
    assert policy.decide(None, at("2026-03-02 08:57"), CHICAGO) is Direction.IN
    last = Last("in", at("2026-03-02 08:57"))
    assert policy.decide(last, at("2026-03-02 17:05"), CHICAGO) is Direction.OUT
    last = Last("out", at("2026-03-02 17:05"))
    assert policy.decide(last, at("2026-03-02 18:00"), CHICAGO) is Direction.IN
    # 23:50 local is already the next day in UTC; 00:10 local the next local day.
    last = Last("in", at("2026-03-02 23:50"))
    assert policy.decide(last, at("2026-03-03 00:10"), CHICAGO) is Direction.IN
    last = Last("in", at("2026-03-02 06:00"))
    assert policy.decide(last, at("2026-03-02 23:59"), CHICAGO) is Direction.OUT


def test_cooldown_swallows_the_same_visit_in_every_mode() -> None:
    last = Last("in", at("2026-03-02 08:57"))
    for mode in Mode:
        policy = AttendancePolicy(mode, cooldown=timedelta(minutes=2))
        assert policy.decide(last, at("2026-03-02 08:58"), CHICAGO) is None
        after = policy.decide(last, at("2026-03-02 08:59"), CHICAGO)
        assert after is {"in": Direction.IN, "out": Direction.OUT, "auto": Direction.OUT}[mode]


def test_fixed_modes_log_their_direction() -> None:
    assert AttendancePolicy(Mode.IN).decide(None, at("2026-03-02 08:00"), CHICAGO) is Direction.IN
    assert AttendancePolicy(Mode.OUT).decide(None, at("2026-03-02 08:00"), CHICAGO) is Direction.OUT


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
