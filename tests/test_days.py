"""The calendar clockface supports (clockface/days.py)."""

from __future__ import annotations

from datetime import date

import pytest

from clockface.days import FIRST_DAY, LAST_DAY, check_day, parse_day


def test_the_range_and_its_edges() -> None:
    assert (date(1970, 1, 1), date(2199, 12, 31)) == (FIRST_DAY, LAST_DAY)
    assert check_day(FIRST_DAY) == FIRST_DAY and check_day(LAST_DAY) == LAST_DAY
    assert parse_day(" 2024-02-29 ") == date(2024, 2, 29)
    for outside in (date(1969, 12, 31), date(2200, 1, 1), date.min, date.max):
        with pytest.raises(ValueError, match="outside the dates clockface supports"):
            check_day(outside)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("9999-12-31", "9999-12-31 is outside the dates clockface supports, 1970-01-01 to"),
        ("0001-01-01", "is outside"),
        ("2024-13-01", "'2024-13-01' is not a date YYYY-MM-DD"),
        ("x" * 1000, "is not a date YYYY-MM-DD"),
        ("", "is not a date"),
    ],
)
def test_parse_day_refuses_in_one_line(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        parse_day(text)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200
