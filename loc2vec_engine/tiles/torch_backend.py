"""Torch back-end: the CPU kernel's integer arithmetic on a device-resident paletted area.

Positions are ``X = xc + (2u+1-S)*hxu + (2v+1-S)*hxv`` in int64 (exact, so identical to numba), then
``col = X >> FRAC_BITS``, an id gather (out of bounds -> id 0) and ``palette[ids]``.

Areas whose index image exceeds ``max_device_bytes`` are served window by window: a grid of core
cells, each window = cell + ``overlap`` pixels on every side (clipped to the area), at most two
windows resident. A tile goes to the window of its centre's cell when its footprint inside the area
fits that window (true for every tile up to ``overlap`` half-diagonal); any other tile gets a
window of its own footprint. Either way it reads exactly the pixels the whole-area path reads.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

from ..errors import Loc2VecError
from .geometry import FRAC_BITS, TileGeometry
from .paletted import PalettedArea

CHUNK_PIXELS = 1 << 23  # output pixels per gather: bounds the int64 temporaries (~5 x 64 MiB)
CACHED_WINDOWS = 2


class TorchTiles:
    """Samples tiles of a PalettedArea on a torch device."""

    def __init__(self, area: PalettedArea, device=None, max_device_bytes: int | None = None, overlap_px: int = 400):
        self.area = area
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.palette = torch.from_numpy(np.ascontiguousarray(area.palette)).to(self.device)
        # uint16 ids travel as int16 (torch gathers them) and are widened with & 0xFFFF after the gather.
        self._u16 = area.ids.dtype == np.uint16
        self._ids_np = area.ids.view(np.int16) if self._u16 else area.ids.view(np.int32)
        self.budget = budget = int(max_device_bytes if max_device_bytes is not None else self._default_budget())
        h, w = area.ids.shape
        itemsize = area.ids.dtype.itemsize
        if h * w * itemsize <= budget:
            self.core, self.overlap = max(h, w), 0  # one window: the whole area
        else:
            side = math.isqrt(max(budget // CACHED_WINDOWS // itemsize, 1))
            self.core, self.overlap = side - 2 * overlap_px, int(overlap_px)
            if self.core < max(16, overlap_px):  # else most of each upload would be overlap
                raise Loc2VecError(
                    f"max_device_bytes={budget} allows windows of {side} px, too small for tiles reaching "
                    f"{overlap_px} px from their centre",
                    f"raise max_device_bytes to at least {CACHED_WINDOWS * itemsize * (3 * max(overlap_px, 16)) ** 2}")
        self.grid = (-(-w // self.core), -(-h // self.core))  # (columns, rows) of cells
        self._cache: OrderedDict = OrderedDict()
        self.uploads = 0  # windows sent to the device (tests and benchmarks watch this)

    def _default_budget(self) -> int:
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return free // 2  # leave the other half to the model
        return 1 << 62  # host memory: the whole area is already there

    # ---- windows -------------------------------------------------------------------------
    def _window_of_cell(self, i: int, j: int) -> tuple[int, int, int, int]:
        h, w = self.area.ids.shape
        return (max(i * self.core - self.overlap, 0), max(j * self.core - self.overlap, 0),
                min((i + 1) * self.core + self.overlap, w), min((j + 1) * self.core + self.overlap, h))

    def _ids_on_device(self, box: tuple[int, int, int, int], cache: bool):
        if box in self._cache:
            self._cache.move_to_end(box)
            return self._cache[box]
        c0, r0, c1, r1 = box
        size = (c1 - c0) * (r1 - r0) * self._ids_np.itemsize
        while self._cache and size + sum(v.nbytes for v in self._cache.values()) > self.budget:
            self._cache.popitem(last=False)  # a one-off window for an oversized tile: stay in budget
        t = torch.from_numpy(np.ascontiguousarray(self._ids_np[r0:r1, c0:c1])).to(self.device)
        self.uploads += 1
        if cache:
            while len(self._cache) >= CACHED_WINDOWS:
                self._cache.popitem(last=False)
            self._cache[box] = t
        return t

    def _groups(self, geom: TileGeometry):
        """Yield (window box, cacheable, tile indices) covering every tile once."""
        h, w = self.area.ids.shape
        n = len(geom)
        if self.grid == (1, 1):
            yield (0, 0, w, h), True, np.arange(n)
            return
        gi = np.clip((geom.xc >> FRAC_BITS) // self.core, 0, self.grid[0] - 1)
        gj = np.clip((geom.yc >> FRAC_BITS) // self.core, 0, self.grid[1] - 1)
        cmin, rmin, cmax, rmax = geom.footprint()
        cmin, rmin = np.maximum(cmin, 0), np.maximum(rmin, 0)
        cmax, rmax = np.minimum(cmax, w - 1), np.minimum(rmax, h - 1)
        outside = (cmin > cmax) | (rmin > rmax)  # reads nothing inside the area: any window will do
        boxes = np.array([self._window_of_cell(i, j) for i, j in zip(gi.tolist(), gj.tolist())],
                         np.int64).reshape(n, 4)
        fits = outside | ((cmin >= boxes[:, 0]) & (rmin >= boxes[:, 1]) & (cmax < boxes[:, 2]) & (rmax < boxes[:, 3]))
        keys = gj * self.grid[0] + gi
        groups = {}
        for k in sorted(set(keys[fits].tolist())):
            idx = np.flatnonzero(fits & (keys == k))
            groups[tuple(int(v) for v in boxes[idx[0]])] = idx
        # Resident windows first, so a batch that overlaps the last one costs no extra upload.
        for box in sorted(groups, key=lambda b: b not in self._cache):
            yield box, True, groups[box]
        for t in np.flatnonzero(~fits):  # larger than planned: a window of its own footprint
            box = (int(cmin[t]), int(rmin[t]), int(cmax[t]) + 1, int(rmax[t]) + 1)
            if (box[2] - box[0]) * (box[3] - box[1]) * self.area.ids.dtype.itemsize > self.budget:
                raise Loc2VecError("a tile is too large for the device memory budget",
                                   "use a smaller scale or raise max_device_bytes")
            yield box, False, np.array([t])

    # ---- sampling ------------------------------------------------------------------------
    def empty(self, n: int, size: int):
        buf = torch.empty((n, size, size, self.area.count), dtype=torch.uint8, device=self.device)
        return buf.permute(0, 3, 1, 2), torch.empty((n, size, size), dtype=torch.bool, device=self.device)

    def sample(self, geom: TileGeometry, out=None):
        """``(tiles (N, C, S, S) uint8 channels_last, valid (N, S, S) bool)`` on the device."""
        n, s = len(geom), geom.size
        tiles, valid = out if out is not None else self.empty(n, s)
        buf = tiles.permute(0, 2, 3, 1)  # (N, S, S, C) contiguous
        per_chunk = max(1, CHUNK_PIXELS // (s * s))
        for box, cacheable, idx in self._groups(geom):
            ids = self._ids_on_device(box, cacheable)
            sub = geom.subset(idx).shifted(box[0], box[1])
            for a in range(0, len(idx), per_chunk):
                part = idx[a:a + per_chunk]
                t_ids = self._gather(ids, sub.subset(slice(a, a + per_chunk)))
                if part[-1] - part[0] + 1 == len(part):  # consecutive tiles: write in place, no temporary
                    lo, hi = int(part[0]), int(part[-1]) + 1
                    torch.index_select(self.palette, 0, t_ids.reshape(-1), out=buf[lo:hi].view(-1, buf.shape[-1]))
                    torch.ne(t_ids, 0, out=valid[lo:hi])
                else:
                    where = torch.from_numpy(part).to(self.device)
                    buf.index_copy_(0, where, self.palette[t_ids])
                    valid.index_copy_(0, where, t_ids != 0)
        return tiles, valid

    def _gather(self, ids, g: TileGeometry):
        dev = self.device
        h, w = ids.shape
        s = g.size
        k = torch.arange(s, device=dev, dtype=torch.int64) * 2 + (1 - s)  # 2u+1-S
        p = [torch.from_numpy(np.ascontiguousarray(a)).to(dev)[:, None, None]
             for a in (g.xc, g.yc, g.hxu, g.hxv, g.hyu, g.hyv)]
        xc, yc, hxu, hxv, hyu, hyv = p
        col = (xc + k[None, None, :] * hxu + k[None, :, None] * hxv) >> FRAC_BITS
        row = (yc + k[None, None, :] * hyu + k[None, :, None] * hyv) >> FRAC_BITS
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        flat = torch.where(inside, row * w + col, 0)
        del col, row
        got = ids.reshape(-1)[flat].to(torch.int32)
        if self._u16:
            got &= 0xFFFF
        return torch.where(inside, got, 0).long()
