"""A paletted area: the area raster as an index image plus a palette of its distinct pixel values.

A map has few distinct N-channel pixel values (hundreds to a few thousand), so ``ids`` (H, W) uint16
(uint32 beyond 65535 values) and ``palette`` (K, C) uint8 hold the area in 1/6 of the memory of the
12-band raster, and a tile is one id read plus one palette row copy per pixel. Id 0 is reserved for
"invalid / outside" and its palette row is zero, so ``valid == (ids != 0)``; valid all-zero pixels get
their own non-zero id.

The palette is built chunk by chunk (bounded memory) with an exact open-addressing hash table in
numba: keys are the pixels' full byte values, so there are no hash collisions to worry about, and an
optional check re-decodes every chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # e.g. a bare GPU machine: the numpy builder below takes over
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        return lambda f: f

from ..errors import Loc2VecError
from ..raster.grid import GridGeometry

_MUL = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing constant (odd)
_SHIFT = np.uint64(29)
CHUNK_ROWS = 2048
CHUNK_PIXELS = 1 << 24  # at most ~200 MB of 12-band pixels per read, whatever the area's width


@njit(nogil=True, cache=True)
def _slot(words, nw, mask):
    h = np.uint64(0)
    for k in range(nw):
        h = (h ^ np.uint64(words[k])) * _MUL
    h ^= h >> _SHIFT
    return np.int64(h & mask)


@njit(nogil=True, cache=True)
def _insert(table_ids, palette_words, words, nw, mask, count):
    """Find ``words`` in the table, adding it as id ``count`` if new. Returns (id, new count)."""
    s = _slot(words, nw, mask)
    while True:
        tid = table_ids[s]
        if tid == 0:
            table_ids[s] = count
            for k in range(nw):
                palette_words[count, k] = words[k]
            return count, count + 1
        same = True
        for k in range(nw):
            if palette_words[tid, k] != words[k]:
                same = False
                break
        if same:
            return tid, count
        s = (s + 1) & mask


@njit(nogil=True, cache=True)
def _index_pixels(data, valid, start, table_ids, palette_words, count, out_ids):
    """Give each pixel of a (C, h, w) chunk its palette id, from flat pixel ``start`` on.

    Stops early when the palette is full (``count == len(palette_words)``, the table is then half
    full) and returns ``(count, next_pixel)`` so the caller can grow both and resume.
    """
    c_n, h, w = data.shape
    nw = palette_words.shape[1]
    mask = np.uint64(table_ids.shape[0] - 1)
    words = np.zeros(nw, np.uint32)
    prev = np.zeros(nw, np.uint32)
    prev_id = np.int64(-1)
    cap = palette_words.shape[0]
    for p in range(start, h * w):
        r = p // w
        col = p - r * w
        if not valid[r, col]:
            out_ids[r, col] = 0
            continue
        for k in range(nw):
            words[k] = 0
        for c in range(c_n):
            words[c >> 2] |= np.uint32(data[c, r, col]) << np.uint32(8 * (c & 3))
        same = prev_id >= 0
        if same:
            for k in range(nw):
                if words[k] != prev[k]:
                    same = False
                    break
        if not same:  # neighbouring pixels are usually equal: skip the table for runs
            if count == cap:
                return count, p
            prev_id, count = _insert(table_ids, palette_words, words, nw, mask, count)
            for k in range(nw):
                prev[k] = words[k]
        out_ids[r, col] = prev_id
    return count, h * w


@njit(nogil=True, cache=True)
def _rehash(table_ids, palette_words, count):
    nw = palette_words.shape[1]
    mask = np.uint64(table_ids.shape[0] - 1)
    for i in range(1, count):
        s = _slot(palette_words[i], nw, mask)
        while table_ids[s] != 0:
            s = (s + 1) & mask
        table_ids[s] = i


@njit(nogil=True, cache=True)
def _count_mismatches(data, valid, ids, palette):
    """Pixels whose palette row differs from the data (valid) or whose id is not 0 (invalid)."""
    c_n, h, w = data.shape
    bad = 0
    for r in range(h):
        for col in range(w):
            i = ids[r, col]
            if not valid[r, col]:
                bad += i != 0
                continue
            if i == 0:
                bad += 1
                continue
            for c in range(c_n):
                if palette[i, c] != data[c, r, col]:
                    bad += 1
                    break
    return bad


class _PaletteBuilder:
    """Accumulates ids and palette over row chunks; grows the table as values appear."""

    def __init__(self, n_channels: int, height: int, width: int):
        self.c = n_channels
        self.nw = (n_channels + 3) // 4
        self.cap = 1024
        self.table = np.zeros(2 * self.cap, np.int64)
        self.words = np.zeros((self.cap, self.nw), np.uint32)
        self.count = 1  # id 0 = invalid
        self.ids = np.zeros((height, width), np.uint16)

    def _grow(self):
        self.cap *= 2
        words = np.zeros((self.cap, self.nw), np.uint32)
        words[:self.count] = self.words[:self.count]
        self.words = words
        self.table = np.zeros(2 * self.cap, np.int64)
        _rehash(self.table, self.words, self.count)

    def add(self, row0: int, data: np.ndarray, valid: np.ndarray, verify: bool):
        h, w = valid.shape
        chunk = np.empty((h, w), np.uint32)
        if HAVE_NUMBA:
            start = 0
            while start < h * w:
                self.count, start = _index_pixels(data, valid, start, self.table, self.words, self.count, chunk)
                if start < h * w:
                    self._grow()
        else:
            self._index_numpy(data, valid, chunk)
            verify = False  # the numpy path is exact by construction (np.unique on the pixel bytes)
        if self.count > 65536 and self.ids.dtype == np.uint16:
            self.ids = self.ids.astype(np.uint32)  # once, when the 65536th distinct value appears
        self.ids[row0:row0 + h] = chunk
        if verify and _count_mismatches(data, valid, chunk, self.palette()):
            raise Loc2VecError("the area's palette does not reproduce its pixels (internal error)",
                               "report this as a bug in loc2vec; use verify=False only to investigate")

    def _index_numpy(self, data: np.ndarray, valid: np.ndarray, chunk: np.ndarray) -> None:
        """Without numba: exact ids from np.unique over each valid pixel's bytes (slower, same result)."""
        c, h, w = data.shape
        padded = np.zeros((h * w, 4 * self.nw), np.uint8)
        padded[:, :c] = np.moveaxis(data, 0, -1).reshape(-1, c)
        ok = valid.ravel()
        keys = padded[ok].view(np.dtype((np.void, 4 * self.nw))).ravel()
        uniq, inverse = np.unique(keys, return_inverse=True)
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = self._lookup = {}
        gids = np.empty(len(uniq), np.uint32)
        for j, key in enumerate(uniq):
            gid = lookup.get(key.tobytes())
            if gid is None:
                while self.count >= self.cap:
                    self.cap *= 2
                    self.words = np.concatenate([self.words, np.zeros_like(self.words)])
                gid = lookup[key.tobytes()] = self.count
                self.words[gid] = np.frombuffer(key.tobytes(), np.uint32)
                self.count += 1
            gids[j] = gid
        flat = np.zeros(h * w, np.uint32)
        flat[ok] = gids[inverse.ravel()]
        chunk[:] = flat.reshape(h, w)

    def palette(self) -> np.ndarray:
        b = self.words[:self.count].astype("<u4").view(np.uint8).reshape(self.count, 4 * self.nw)
        return np.ascontiguousarray(b[:, :self.c])


@dataclass
class PalettedArea(GridGeometry):
    """An area as ``ids`` (H, W) uint16/uint32 and ``palette`` (K, C) uint8; id 0 = invalid."""

    ids: np.ndarray
    palette: np.ndarray
    transform: tuple[float, float, float, float, float, float]
    channel_names: list[str]
    crs_wkt: str = ""

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, data, valid=None, transform=(0.0, 500 / 256, 0.0, 0.0, 0.0, -500 / 256),
                    channel_names=None, crs_wkt: str = "", verify: bool = True) -> "PalettedArea":
        """From ``data`` (C, H, W) uint8 and ``valid`` (H, W) bool (default: all valid)."""
        data = np.asarray(data)
        if data.ndim != 3 or data.dtype != np.uint8 or min(data.shape) == 0:
            raise Loc2VecError(f"area data must be a non-empty (C, H, W) uint8 array, not {data.dtype} {data.shape}",
                               "pass the bands of an area raster, e.g. AreaRaster.read()[0]")
        c, h, w = data.shape
        valid = np.ones((h, w), bool) if valid is None else np.asarray(valid, dtype=bool)
        if valid.shape != (h, w):
            raise Loc2VecError(f"valid mask has shape {valid.shape}, the data {(h, w)}", "give an (H, W) mask")
        names = list(channel_names) if channel_names is not None else [f"band{i + 1}" for i in range(c)]
        if len(names) != c:
            raise Loc2VecError(f"{len(names)} channel names for {c} bands", "give one name per band")
        _check_transform(transform)
        builder = _PaletteBuilder(c, h, w)
        for r in range(0, h, CHUNK_ROWS):
            builder.add(r, np.ascontiguousarray(data[:, r:r + CHUNK_ROWS]),
                        np.ascontiguousarray(valid[r:r + CHUNK_ROWS]), verify)
        return cls(builder.ids, builder.palette(), tuple(float(v) for v in transform), names, crs_wkt)

    @classmethod
    def from_raster(cls, raster, spec=None, chunk_rows: int = CHUNK_ROWS, verify: bool = True) -> "PalettedArea":
        """From an ``AreaRaster`` (or its path), read ``chunk_rows`` rows at a time.

        With ``spec`` (a ChannelSpec), refuse a raster whose bands are not the spec's channels.
        """
        from ..raster.area import AreaRaster

        if not isinstance(raster, AreaRaster):
            raster = AreaRaster.open(raster)
        if spec is not None:
            spec.check_band_names(raster.channel_names, f"area raster {raster.path.name}")
        _check_transform(raster.transform)
        builder = _PaletteBuilder(raster.count, raster.height, raster.width)
        chunk_rows = max(1, min(int(chunk_rows), CHUNK_PIXELS // raster.width))
        for r in range(0, raster.height, chunk_rows):
            data, valid = raster.read((0, r, raster.width, min(chunk_rows, raster.height - r)))
            builder.add(r, np.ascontiguousarray(data), valid, verify)
        return cls(builder.ids, builder.palette(), tuple(raster.transform), list(raster.channel_names),
                   raster.crs_wkt)

    # ---- geometry ------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.ids.shape[0]

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    @property
    def count(self) -> int:
        return self.palette.shape[1]

    @property
    def n_values(self) -> int:
        """Palette entries including the reserved invalid entry 0."""
        return self.palette.shape[0]

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.palette.nbytes

    # ---- pixels --------------------------------------------------------------------------
    def decode(self, window: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(data (C, h, w) uint8, valid (h, w) bool)`` like ``AreaRaster.read`` (outside = invalid)."""
        col, row, w, h = (0, 0, self.width, self.height) if window is None else (int(v) for v in window)
        ids = np.zeros((h, w), self.ids.dtype)
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + w, self.width), min(row + h, self.height)
        if c1 > c0 and r1 > r0:
            ids[r0 - row:r1 - row, c0 - col:c1 - col] = self.ids[r0:r1, c0:c1]
        return np.moveaxis(self.palette[ids], -1, 0), ids != 0


def _check_transform(t):
    if len(t) != 6 or t[2] != 0 or t[4] != 0 or not t[1] > 0 or abs(t[5] + t[1]) > 1e-9 * t[1]:
        raise Loc2VecError(f"the area's geotransform {tuple(t)} is not north-up with square pixels",
                           "rasterize the area with loc2vec rasterize (north-up, square pixels)")
