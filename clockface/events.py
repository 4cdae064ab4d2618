"""What every shape of an attendance event shares: the direction of a pass.

The kiosk's log (:mod:`kiosk.store`), the wire (:mod:`sync.protocol`), the central
service's records and answers (:mod:`central`), the attendance policy
(:mod:`kiosk.policy`) and the reports (:mod:`reports.model`) take it from here.
"""

from __future__ import annotations

from typing import Literal, get_args

Direction = Literal["in", "out"]
"""A pass into the building or out of it."""
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)
