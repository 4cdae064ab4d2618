"""dlib's face-recognition ResNet, read from its own model file and run in numpy.

The 128-d embedding clockface stores is the output of dlib's
``dlib_face_recognition_resnet_model_v1`` on a 150x150 face chip aligned on 5
landmarks. dlib-bin, the prebuilt dlib clockface installs, is built without BLAS: its
convolutions run in dlib's own loops, about 75 ms a face on one x86 core here and
seconds on a Raspberry Pi. The same network in numpy, one matrix product per
convolution through the BLAS numpy ships with (OpenBLAS, with NEON kernels on a Pi's
ARM cores), takes about 10 ms here and gives the same numbers: over the shared photos
the two differ by under 1e-6 per component (tests/test_resnet.py checks it against
dlib on every run). So templates enrolled with either stay interchangeable.

What is read. :func:`load_resnet` walks the file the way dlib wrote it (``dlib::serialize``:
integers as a size byte and little-endian bytes, strings as a length and bytes,
scalars as mantissa and exponent, tensors as version, four dimensions and raw
little-endian float32) and takes each layer it meets in order: the input layer's
channel means, each ``con_`` layer's filters, biases, stride and padding, each
``affine_`` layer's scale and shift (dlib's batch norm, frozen), the pools' sizes,
strides and padding, and the final ``fc_`` layer's weights. The layers must be exactly
those of dlib's ``anet_type`` (dlib's ``dnn_face_recognition_ex.cpp``), shape for shape;
anything else (another model, a truncated or altered file) is refused with
:class:`~clockface.errors.ModelError` in one line.

The network (input 150x150 RGB, minus the channel means, divided by 256):

- a 7x7 convolution, stride 2, no padding (to 72x72x32), scale and shift, ReLU, then a
  3x3 max pool, stride 2 (35x35);
- 14 residual blocks, each two 3x3 convolutions with scale and shift and a ReLU
  between them, added to the block's input, then a ReLU: 3 blocks of 32 channels, then
  4 of 64, 3 of 128, 3 of 256 and 1 more of 256. The first block of each new width
  (a "down" block) has its first convolution at stride 2 without padding, and its
  input is averaged over 2x2 cells (stride 2) before the sum; where the two differ in
  size, dlib adds them as if the smaller were padded with zeros after its end (its
  ``add_prev`` layer), which is what :func:`_add` does;
- the average over what is left of the image, then a 256x128 matrix: the embedding.

Each convolution's scale and shift are folded into its filters and bias at load, and
activations are kept as (faces, height, width, channels), so each convolution is one
window view, one copy and one matrix product. Faces are encoded together when there
are several (:meth:`ResNet.embed` takes a stack of chips).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from clockface.errors import ModelError
from recognition.gallery import EMBEDDING_DIM

CHIP_SIZE = 150
"""The side of the aligned face chip the network reads (dlib's ``get_face_chip``)."""

FloatArray = npt.NDArray[np.float32]

# dlib's anet_type: (channels, down) for each residual block, input side first.
_BLOCKS: tuple[tuple[int, bool], ...] = (
    ((32, False),) * 3
    + ((64, True),) + ((64, False),) * 3
    + ((128, True),) + ((128, False),) * 2
    + ((256, True),) + ((256, False),) * 2
    + ((256, True),)
)  # fmt: skip
_STEM_CHANNELS = 32


@dataclass(frozen=True)
class _Conv:
    """One convolution with its scale and shift folded in: ``weights`` is
    (size * size * inputs, outputs), rows in (row, column, input channel) order."""

    weights: FloatArray
    bias: FloatArray
    size: int
    stride: int
    padding: int


class ResNet:
    """dlib's face-recognition ResNet with its weights; :meth:`embed` runs it."""

    def __init__(self, means: FloatArray, stem: _Conv, blocks: list[tuple[_Conv, _Conv, bool]],
                 fc: FloatArray) -> None:  # fmt: skip
        self._means = means
        self._stem = stem
        self._blocks = blocks
        self._fc = fc

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        """The embeddings of aligned face chips, shape (n, 150, 150, 3) RGB uint8 (or
        one chip of shape (150, 150, 3)): float32, shape (n, 128)."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(
                f"face chips must have shape (n, {CHIP_SIZE}, {CHIP_SIZE}, 3), not {chips.shape}"
            )
        if chips.shape[0] == 0:
            return np.empty((0, EMBEDDING_DIM), dtype=np.float32)
        x = (chips.astype(np.float32) - self._means) * np.float32(1 / 256)
        x = _relu(_convolve(x, self._stem))
        x = _windows(x, 3, 2).max(axis=(4, 5))
        for first, second, down in self._blocks:
            y = _convolve(_relu(_convolve(x, first)), second)
            x = _relu(_add(y, _windows(x, 2, 2).mean(axis=(4, 5), dtype=np.float32) if down else x))
        pooled: FloatArray = x.mean(axis=(1, 2), dtype=np.float32)
        return np.ascontiguousarray(pooled @ self._fc, dtype=np.float32)


def _relu(x: FloatArray) -> FloatArray:
    return np.maximum(x, 0, out=x)


def _windows(x: FloatArray, size: int, stride: int) -> FloatArray:
    """(n, out_h, out_w, channels, size, size) views of ``x`` (n, h, w, channels)."""
    out_h = (x.shape[1] - size) // stride + 1
    out_w = (x.shape[2] - size) // stride + 1
    view = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return view[:, ::stride, ::stride][:, :out_h, :out_w]


def _convolve(x: FloatArray, conv: _Conv) -> FloatArray:
    if conv.padding:
        p = conv.padding
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = _windows(x, conv.size, conv.stride)
    n, out_h, out_w = win.shape[:3]
    columns = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * out_h * out_w, -1)
    out = columns @ conv.weights
    out += conv.bias
    return out.reshape(n, out_h, out_w, -1)


def _add(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a + b`` as dlib's ``add_prev`` does it: the smaller zero-padded after its end."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros([max(i, j) for i, j in zip(a.shape, b.shape, strict=True)], np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


# --------------------------------------------------------------------------- the file


class _Corrupt(Exception):
    """The file is not what dlib wrote for this network (the message says where)."""


_GAP = 1 << 16
"""The most bytes of dlib's wrappers (versions, flags, empty tensors) looked through for
the next layer's name; in the published file the longest run is a few hundred."""


class _Reader:
    """dlib's serialisation, read forward from a file a piece at a time: loading holds
    one tensor of the file at once, not the whole 22 MB beside the weights."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    @property
    def pos(self) -> int:
        return self.handle.tell()

    def _take(self, count: int) -> bytes:
        chunk = self.handle.read(count)
        if len(chunk) != count:
            raise _Corrupt(f"the file ends early (at byte {self.pos})")
        return chunk

    def integer(self) -> int:
        (head,) = self._take(1)
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise _Corrupt(f"no integer at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def text(self) -> str:
        length = self.integer()
        if not 0 <= length <= 64:
            raise _Corrupt(f"no layer name at byte {self.pos}")
        try:
            return self._take(length).decode("ascii")
        except UnicodeDecodeError:
            raise _Corrupt(f"no layer name at byte {self.pos - length}") from None

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        if not -1100 < exponent < 1100:
            raise _Corrupt(f"no number at byte {self.pos}")
        return float(mantissa * 2.0**exponent)

    def tensor(self) -> FloatArray:
        if self.integer() != 2:
            raise _Corrupt(f"no tensor at byte {self.pos}")
        dims = [self.integer() for _ in range(4)]
        count = int(np.prod(dims))
        if min(dims) < 0 or count > 1 << 24:
            raise _Corrupt(f"a tensor of impossible size {dims} at byte {self.pos}")
        values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        if not np.isfinite(values).all():
            raise _Corrupt(f"a tensor with non-finite values before byte {self.pos}")
        return values

    def skip_to(self, name: str) -> None:
        """Move past the next layer called ``name`` (written as its length, then the
        name); the bytes skipped are dlib's wrappers (versions, flags) and must hold no
        other layer's name."""
        start = self.pos
        ahead = self.handle.read(_GAP)
        at = ahead.find(_key(name))
        if at < 0:
            raise _Corrupt(f"no {name} layer after byte {start}")
        for other in _LAYER_NAMES:
            if _key(other) in ahead[:at]:
                raise _Corrupt(f"layer {other} where dlib's network has {name} (byte {start})")
        self.handle.seek(start + at + len(_key(name)))


_LAYER_NAMES = (
    "input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2", "avg_pool_2",
    "add_prev_", "fc_2",
)  # fmt: skip


def _key(name: str) -> bytes:
    return bytes([1, len(name)]) + name.encode("ascii")


def _read_pool(reader: _Reader, kind: str, size: int, stride: int) -> None:
    reader.skip_to(kind)
    got = [reader.integer() for _ in range(6)]
    if got != [size, size, stride, stride, 0, 0]:
        raise _Corrupt(f"a {kind} layer with size/stride/padding {got} (byte {reader.pos})")


def _read_conv(reader: _Reader, inputs: int, outputs: int, size: int, stride: int) -> _Conv:
    padding = 0 if stride > 1 else size // 2
    reader.skip_to("con_4")
    params = reader.tensor()
    shape = [reader.integer() for _ in range(7)]
    if shape != [outputs, size, size, stride, stride, padding, padding]:
        raise _Corrupt(
            f"a convolution with filters/size/stride/padding {shape} where dlib's network has "
            f"{[outputs, size, size, stride, stride, padding, padding]} (byte {reader.pos})"
        )
    count = outputs * inputs * size * size
    if params.size != count + outputs:
        raise _Corrupt(f"a convolution with {params.size} parameters, not {count + outputs}")
    filters = params[:count].reshape(outputs, inputs, size, size)
    bias = params[count:]
    reader.skip_to("affine_")
    affine = reader.tensor()
    if affine.size != 2 * outputs:
        raise _Corrupt(f"an affine layer with {affine.size} parameters, not {2 * outputs}")
    scale, shift = affine[:outputs], affine[outputs:]
    folded = (filters * scale[:, None, None, None]).transpose(2, 3, 1, 0)
    return _Conv(
        weights=np.ascontiguousarray(folded.reshape(size * size * inputs, outputs)),
        bias=(bias * scale + shift).astype(np.float32),
        size=size,
        stride=stride,
        padding=padding,
    )


def _parse(handle: BinaryIO) -> ResNet:
    reader = _Reader(handle)
    if reader.integer() != 1 or reader.text() != "loss_metric_2":
        raise _Corrupt("it does not start as dlib's metric-learning network")
    reader.skip_to("input_rgb_image_sized")
    means = np.array([reader.real() for _ in range(3)], dtype=np.float32)
    if [reader.integer(), reader.integer()] != [CHIP_SIZE, CHIP_SIZE]:
        raise _Corrupt(f"its input is not {CHIP_SIZE}x{CHIP_SIZE}")
    if not ((means > 0) & (means < 255)).all():
        raise _Corrupt("its input's channel means are not pixel values")
    stem = _read_conv(reader, 3, _STEM_CHANNELS, 7, 2)
    reader.skip_to("relu_")
    _read_pool(reader, "max_pool_2", 3, 2)
    blocks = []
    inputs = _STEM_CHANNELS
    for channels, down in _BLOCKS:
        first = _read_conv(reader, inputs, channels, 3, 2 if down else 1)
        reader.skip_to("relu_")
        second = _read_conv(reader, channels, channels, 3, 1)
        if down:
            _read_pool(reader, "avg_pool_2", 2, 2)
        reader.skip_to("add_prev_")
        reader.skip_to("relu_")
        blocks.append((first, second, down))
        inputs = channels
    _read_pool(reader, "avg_pool_2", 0, 1)  # the average over everything
    reader.skip_to("fc_2")
    outputs, fc_inputs = reader.integer(), reader.integer()
    weights = reader.tensor()
    if (outputs, fc_inputs) != (EMBEDDING_DIM, inputs) or weights.size != outputs * fc_inputs:
        raise _Corrupt(f"its last layer maps {fc_inputs} values to {outputs}, not {inputs} to 128")
    fc = np.ascontiguousarray(weights.reshape(fc_inputs, outputs))
    return ResNet(means, stem, blocks, fc)


def load_resnet(path: Path) -> ResNet:
    """dlib's face-recognition ResNet from its ``.dat`` file; :class:`ModelError` in one
    line when the file cannot be read or is not that network."""
    try:
        with path.open("rb") as handle:
            return _parse(handle)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ModelError(f"cannot read the face encoder model {path} ({reason})") from err
    except (_Corrupt, ValueError) as err:
        raise ModelError(
            f"the face encoder model {path} is not dlib's face-recognition ResNet ({err}): "
            "reinstall face_recognition_models"
        ) from err
