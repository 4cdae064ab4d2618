"""Face templates for the tests that need some but no real faces."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recognition.gallery import EMBEDDING_DIM


def vectors(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Random templates far apart from each other (about 1.6)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(count, EMBEDDING_DIM)) * 0.1).astype(np.float32)
