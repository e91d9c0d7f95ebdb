"""A small byte-bounded LRU of decoded rollup chunks (read path only).

Why: a one-year query decodes all 52 weekly 1h chunks of its group (zlib + unshuffle,
~40 % of its time), and dashboards ask the same long ranges again and again. A closed
chunk's decoded columns depend only on its compressed bytes, so the cache is keyed by
those bytes: a rewritten chunk (late rows merged by compaction) has other bytes and
misses, a deleted one (retention) is never fetched again, and both entries age out.
No invalidation hook exists that could be forgotten.

Memory is bounded by ``max_bytes`` (decoded arrays plus the key bytes); the service's
RSS budget is why the default is small (16 MiB: the year of ~6 typical series groups).
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from typing import TypeAlias

from sysmon.storage.encoding import decode_flat

DEFAULT_CHUNK_CACHE_BYTES = 16 * 1024 * 1024
_ENTRY_OVERHEAD = 200  # dict slot, tuple, array and bytes headers (approximate)

Decoded: TypeAlias = "tuple[int, int, array[float]]"
"""``(nslots, ncols, flat columns)`` as returned by ``encoding.decode_flat``."""


class ChunkCache:
    """Thread-safe LRU ``compressed blob -> decode_flat(blob)``, at most ``max_bytes``.

    Callers must not modify the returned array (it is shared by every reader).
    """

    def __init__(self, max_bytes: int = DEFAULT_CHUNK_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[Decoded, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, blob: bytes) -> Decoded:
        key = bytes(blob)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        decoded = decode_flat(key)  # outside the lock: readers decode in parallel
        cost = len(decoded[2]) * decoded[2].itemsize + len(key) + _ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return decoded
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (decoded, cost)
                self.size_bytes += cost
                while self.size_bytes > self.max_bytes:
                    _, (_, old) = self._entries.popitem(last=False)
                    self.size_bytes -= old
        return decoded

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size_bytes = 0
