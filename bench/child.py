"""Run one benchmark pipeline in a fresh process, so its memory peak is its own.

The child is started with "spawn" (a clean interpreter: no state inherited from the
parent's threads or libraries) and hands its result back through a queue. The parent
polls: a child that dies before answering (an exception, the out-of-memory killer)
stops the bench with its exit status at once, instead of leaving it waiting.
"""

from __future__ import annotations

import multiprocessing
import queue as queues
import time
from collections.abc import Callable
from typing import Any


def run_in_child(target: Callable[..., None], *args: Any, timeout: float = 7200.0) -> Any:
    """``target(*args, queue)`` in a spawned process; what it put on the queue."""
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    process = context.Process(target=target, args=(*args, answers))
    process.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                result = answers.get(timeout=0.5)
                break
            except queues.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"the bench's child process {target.__name__} stopped without an "
                        f"answer (exit status {process.exitcode}): see its error above"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{target.__name__} took more than {timeout:.0f} s"
                    ) from None
        process.join()
        return result
    finally:
        if process.is_alive():
            process.kill()
            process.join()
