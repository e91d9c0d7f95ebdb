"""Binary layouts of the SQLite store (pure functions, no I/O).

Two shapes exist, both float64 so raw values keep full precision:

* A *row* is one series group at one instant (raw tick or rollup bucket): the values in
  field-layout order, packed little-endian. A field the tick did not have is NaN. Rows
  live in the ``hot`` table until their time window is closed.
* A *chunk* is a closed window of one series group: column-major float64 arrays (one
  column per field, or per field and statistic for rollups), byte-shuffled and
  compressed. Shuffling puts the 8 bytes of every value in 8 separate planes: sign,
  exponent and top mantissa bytes of a slowly varying series are nearly constant, and
  the low bytes of integers and short decimals are runs of zeros or repeating patterns,
  which zlib then finds. Each value is first XOR-ed with the previous one ("XOR
  delta", as in Gorilla), which zeroes the high bytes of unchanged or slowly changing
  values. Both steps run in C (slicing and big-int XOR), no per-value Python loop.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Sequence

_LITTLE = sys.byteorder == "little"
_CHUNK_HEADER = struct.Struct("<BBII")  # codec, version, ncols, nslots
CODEC_ZLIB_XOR_SHUFFLE = 1
_ZLIB_LEVEL = 6

NAN = float("nan")


def pack_row(values: Sequence[float]) -> bytes:
    a = array("d", values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a.tobytes()


def unpack_row(blob: bytes) -> array[float]:
    a = array("d")
    a.frombytes(blob)
    if not _LITTLE:  # pragma: no cover
        a.byteswap()
    return a


def _shuffle(data: bytes, width: int = 8) -> bytes:
    return b"".join(data[i::width] for i in range(width))


def _unshuffle(data: bytes, width: int = 8) -> bytes:
    n = len(data) // width
    out = bytearray(len(data))
    for i in range(width):
        out[i::width] = data[i * n : (i + 1) * n]
    return bytes(out)


def _xor_delta(col: bytes) -> bytes:
    """``out[i] = col[i] ^ col[i-1]`` for 8-byte words, via one big-int XOR."""
    if len(col) <= 8:
        return col
    cur = int.from_bytes(col, "little")
    prev = int.from_bytes(col[:-8], "little") << 64
    return (cur ^ prev).to_bytes(len(col), "little")


def _xor_undelta(col: bytes) -> bytes:
    """Inverse of ``_xor_delta``: prefix XOR by doubling shifts (log2(n) big-int ops).

    Left shifts never change lower bits, so the overflow is cut off once at the end.
    """
    n = len(col)
    if n <= 8:
        return col
    x = int.from_bytes(col, "little")
    shift = 64
    while shift < 8 * n:
        x ^= x << shift
        shift *= 2
    return (x & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def encode_chunk(columns: Sequence[array[float]], nslots: int) -> bytes:
    """Compress ``columns`` (each ``nslots`` float64) into one chunk blob."""
    flat = array("d")
    for col in columns:
        if len(col) != nslots:
            raise ValueError(f"column has {len(col)} slots, expected {nslots}")
        flat.extend(col)
    if not _LITTLE:  # pragma: no cover
        flat.byteswap()
    # One XOR-delta over the concatenated columns (a column's first value is XOR-ed with
    # the previous column's last, which costs nothing measurable and keeps decoding to
    # one big-int pass per chunk instead of one per column).
    body = zlib.compress(_shuffle(_xor_delta(flat.tobytes())), _ZLIB_LEVEL)
    return _CHUNK_HEADER.pack(CODEC_ZLIB_XOR_SHUFFLE, 1, len(columns), nslots) + body


def decode_chunk(blob: bytes) -> tuple[int, list[array[float]]]:
    """``(nslots, columns)`` of a chunk written by ``encode_chunk``."""
    codec, _version, ncols, nslots = _CHUNK_HEADER.unpack_from(blob)
    if codec != CODEC_ZLIB_XOR_SHUFFLE:
        raise ValueError(f"unknown chunk codec {codec}")
    flat = array("d")
    flat.frombytes(_xor_undelta(_unshuffle(zlib.decompress(blob[_CHUNK_HEADER.size :]))))
    if not _LITTLE:  # pragma: no cover
        flat.byteswap()
    return nslots, [flat[i * nslots : (i + 1) * nslots] for i in range(ncols)]
