"""One base for the things a ``with`` block closes: stores and clients."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with thing:`` closes it at the end, whatever happened; subclasses define
    ``close()`` (closing twice must be harmless)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
