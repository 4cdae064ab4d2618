"""One base for the things a ``with`` block closes (stores, clients, encoders), and one
protocol for the interfaces of such things."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Closable(Protocol):
    """What a protocol of closable things shares: ``close()`` and the ``with`` block."""

    def close(self) -> None:
        """Let go of what it holds; closing twice is harmless."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


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
