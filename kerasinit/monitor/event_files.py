"""Event files without TensorFlow: the record framing, written and read.

Event files are TFRecord files of `Event` protocol buffers. Each record is
framed as::

    uint64 length | uint32 masked CRC32C of length | data | uint32 masked
    CRC32C of data

(little-endian), the format TensorBoard's own TF-free writer
(`tensorboard.summary.writer.record_writer`) produces. A JAX or PyTorch
process must not import TensorFlow, so the monitor writes and reads the
framing here, with TensorBoard's `Event` proto and its file-system layer
(local paths, and the remote ones TensorBoard itself supports).

TensorBoard's pure-Python CRC32C takes one interpreter step per byte (about
8 ms for a 40 KB event). `masked_crc32c` uses the C implementation of
`google-crc32c` (a dependency of the package; about a microsecond for
20 KB); where only its pure-Python fallback is installed, it computes the
same checksum over blocks of the data at once with NumPy, using that CRC is
linear over GF(2) (about 0.4 ms for 20 KB).
A file cut short by a killed run yields every complete record before the
cut.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator

import numpy as np
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.io import gfile
from tensorboard.util import tensor_util

try:
    import google_crc32c
except ImportError:  # pragma: no cover - a dependency of the package
    google_crc32c = None

from kerasinit_tensorboard import schema

__all__ = [
    "EventValue",
    "RecordWriter",
    "events",
    "masked_crc32c",
    "read_run",
    "records",
]

# CRC32C (Castagnoli), bit-reflected, as TFRecord uses it.
_POLY = np.uint32(0x82F63B78)
_MASK_DELTA = 0xA282EAD8
# Below this many bytes the byte-at-a-time loop is faster than NumPy's
# per-call overhead.
_SMALL = 512
# Bytes per block: the blocks advance together, one byte per NumPy step.
_BLOCK = 64


@functools.cache
def _table() -> np.ndarray:
    """``[256]`` uint32: the register after shifting in one byte."""
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ _POLY, crc >> 1).astype(np.uint32)
    return crc


def _update_bytes(crc: int, data: bytes) -> int:
    table = _table().tolist()
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _shift_zeros(states: np.ndarray, n: int) -> np.ndarray:
    """Registers after shifting in ``n`` zero bytes (NumPy arrays)."""
    table = _table()
    for _ in range(n):
        states = table[states & 0xFF] ^ (states >> 8)
    return states


@functools.cache
def _zeros_operator(blocks_log2: int) -> np.ndarray:
    """``[4, 256]`` uint32: shifting ``_BLOCK * 2**k`` zero bytes, by byte.

    Shifting zeros is linear in the register, so it is fixed by the images
    of the 32 single-bit registers, combined here per byte of the register.
    """
    bits = np.uint32(1) << np.arange(32, dtype=np.uint32)
    if blocks_log2 == 0:
        images = _shift_zeros(bits, _BLOCK)
    else:
        half = _zeros_operator(blocks_log2 - 1)
        images = _apply(half, _apply(half, bits))
    tables = np.zeros((4, 256), np.uint32)
    values = np.arange(256, dtype=np.uint32)
    for byte in range(4):
        for bit in range(8):
            on = ((values >> bit) & 1).astype(bool)
            tables[byte] ^= np.where(on, images[8 * byte + bit], 0).astype(
                np.uint32
            )
    return tables


def _apply(operator: np.ndarray, states: np.ndarray) -> np.ndarray:
    return (
        operator[0][states & 0xFF]
        ^ operator[1][(states >> 8) & 0xFF]
        ^ operator[2][(states >> 16) & 0xFF]
        ^ operator[3][states >> 24]
    )


def _c_crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


def _crc32c(data: bytes) -> int:
    if len(data) < _SMALL:
        return _update_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    # The register after the data from an all-ones start is the register
    # from a zero start plus the all-ones start shifted through as many zero
    # bytes. Zero bytes in front do not change a register that starts at
    # zero, so the data is padded in front to a power-of-two count of
    # blocks; each block's register (from zero) is computed side by side,
    # then neighbours are merged pairwise: left shifted past right, XOR.
    blocks = -(-len(data) // _BLOCK)
    levels = max(blocks - 1, 0).bit_length()
    padded = np.zeros((1 << levels) * _BLOCK, np.uint8)
    padded[padded.size - len(data) :] = np.frombuffer(data, np.uint8)
    columns = padded.reshape(-1, _BLOCK).astype(np.uint32)
    table = _table()
    states = np.zeros(columns.shape[0], np.uint32)
    for i in range(_BLOCK):
        states = table[(states ^ columns[:, i]) & 0xFF] ^ (states >> 8)
    for level in range(levels):
        states = _apply(_zeros_operator(level), states[0::2]) ^ states[1::2]
    start = _apply_length(0xFFFFFFFF, len(data))
    return (int(states[0]) ^ start) ^ 0xFFFFFFFF


def _apply_length(state: int, n: int) -> int:
    """The register ``state`` after shifting in ``n`` zero bytes."""
    states = np.array([state], np.uint32)
    whole, rest = divmod(n, _BLOCK)
    level = 0
    while whole:
        if whole & 1:
            states = _apply(_zeros_operator(level), states)
        whole >>= 1
        level += 1
    return int(_shift_zeros(states, rest)[0])


def masked_crc32c(data: bytes) -> int:
    """The masked CRC32C of the TFRecord format.

    Args:
        data: the bytes to checksum.

    Returns:
        The checksum as an unsigned 32-bit integer.
    """
    crc = _checksum(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# Its pure-Python fallback is slower than the NumPy one.
_checksum = (
    _c_crc32c
    if google_crc32c is not None and google_crc32c.implementation == "c"
    else _crc32c
)


class RecordWriter:
    """Appends TFRecord-framed records to one file.

    Args:
        path: the file, created (or truncated) when the writer opens.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._file = gfile.GFile(self.path, "wb")

    def write(self, data: bytes) -> None:
        """Frame one record and append it."""
        header = struct.pack("<Q", len(data))
        self._file.write(
            header
            + struct.pack("<I", masked_crc32c(header))
            + data
            + struct.pack("<I", masked_crc32c(data))
        )

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _records(path: str) -> Iterator[bytes]:
    """Every intact record of one file, up to the first damaged one."""
    with gfile.GFile(path, "rb") as f:
        content = f.read()
    pos = 0
    while pos + 12 <= len(content):
        header = content[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", content[pos + 8 : pos + 12])
        end = pos + 12 + length
        if header_crc != masked_crc32c(header) or end + 4 > len(content):
            return
        data = content[pos + 12 : end]
        (data_crc,) = struct.unpack("<I", content[end : end + 4])
        if data_crc != masked_crc32c(data):
            return
        yield data
        pos = end + 4


def events(path: str | os.PathLike) -> Iterator[event_pb2.Event]:
    """Every `Event` of one event file, in order.

    Args:
        path: the event file.

    Yields:
        The events up to the first record that cannot be read (a file cut
        short by a killed run ends there).
    """
    for data in _records(os.fspath(path)):
        yield event_pb2.Event.FromString(data)


class EventValue:
    """One summary value of an event, decoded.

    Attributes:
        step: the event's step.
        tag: the value's tag.
        value: the tensor as a NumPy array (`None` for a value without a
            tensor).
        plugin_name: the plugin the value's metadata names.
    """

    __slots__ = ("step", "tag", "value", "plugin_name")

    def __init__(self, step: int, tag: str, value, plugin_name: str):
        self.step = step
        self.tag = tag
        self.value = value
        self.plugin_name = plugin_name

    def __iter__(self):
        return iter((self.step, self.tag, self.value, self.plugin_name))


def read_run(run_dir: str | os.PathLike) -> list[EventValue]:
    """Every summary value of every event file of a run directory.

    Args:
        run_dir: the directory holding the event files (for the monitor,
            ``log_dir/kerasinit``).

    Returns:
        The values, files in name order and events in file order.
    """
    pattern = os.path.join(os.fspath(run_dir), "events.out.tfevents*")
    out = []
    for path in sorted(gfile.glob(pattern)):
        for event in events(path):
            for value in event.summary.value:
                array = (
                    tensor_util.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else None
                )
                out.append(
                    EventValue(
                        event.step,
                        value.tag,
                        array,
                        value.metadata.plugin_data.plugin_name,
                    )
                )
    return out


def records(run_dir: str | os.PathLike) -> list[dict]:
    """The monitor's records (`schema.parse_record`) of a run, in order."""
    return [
        schema.parse_record(np.asarray(v.value).item())
        for v in read_run(run_dir)
        if v.tag == schema.RECORD_TAG
    ]
