"""The public tile sampler: batches of rotated, scaled tiles from a paletted area, on CPU or torch.

Both back-ends share the fixed-point geometry of ``geometry.py`` and give identical pixels.
torch is imported only when the torch back-end is asked for, so the engine imports fast without it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..raster.area import AreaRaster
from .geometry import TileGeometry, check_centres, check_size, tile_geometry
from .paletted import PalettedArea

TILE_SIZE_M = 500.0  # ground width of a tile at scale 1 (the report's 500 m at 256 px)
BACKENDS = ("cpu", "torch")


class TileSampler:
    """Cut tiles of an area at any centre, rotation and scale.

    area: a PalettedArea, an AreaRaster, or the path of an area GeoTIFF (paletted on load).
    backend: "cpu" (numba; numpy arrays out) or "torch" (torch tensors on ``device``; default CUDA when
    available). threads: CPU threads for one batch (default 1: data loaders parallelise over workers).
    tile_size_m: metres covered by a tile at scale 1, whatever its size in pixels.
    spec: a ChannelSpec to check the area's bands against.
    max_device_bytes: torch only; larger index images are served in windows (default: half the free
    GPU memory, unlimited on CPU). max_scale: torch only; windows overlap by the half-diagonal of a
    tile at this scale, so tiles up to it never need a window of their own (larger ones still work).

    Conventions: ``angles_deg`` > 0 turns the map content counter-clockwise in the tile, so
    ``tile(90) == np.rot90(tile(0), axes=(-2, -1))``; ``scales`` 1.1 = 10 % zoomed out (the tile covers
    1.1 x tile_size_m); sampling is nearest-neighbour; pixels outside the area or its valid mask are 0
    and False in ``valid``.
    """

    def __init__(self, area, backend: str = "cpu", device=None, threads: int | None = None,
                 tile_size_m: float = TILE_SIZE_M, spec=None, max_device_bytes: int | None = None,
                 max_scale: float = 2.0):
        if backend not in BACKENDS:
            raise Loc2VecError(f"unknown tile sampler back-end {backend!r}", f"use one of: {', '.join(BACKENDS)}")
        if not (isinstance(tile_size_m, (int, float)) and math.isfinite(tile_size_m) and tile_size_m > 0):
            raise Loc2VecError(f"tile_size_m must be a positive number of metres, not {tile_size_m!r}",
                               "use e.g. tile_size_m=500")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise Loc2VecError(f"threads must be a positive integer, not {threads!r}", "use e.g. threads=2")
        if isinstance(area, (str, Path, AreaRaster)):
            area = PalettedArea.from_raster(area, spec=spec)
        elif isinstance(area, PalettedArea):
            if spec is not None:
                spec.check_band_names(area.channel_names, "the paletted area")
        else:
            raise Loc2VecError(f"cannot sample tiles from a {type(area).__name__}",
                               "give a PalettedArea, an AreaRaster or the path of an area GeoTIFF")
        self.area = area
        self.backend = backend
        self.threads = threads or 1
        self.tile_size_m = float(tile_size_m)
        self._kpal = None
        if backend == "cpu":
            from .cpu import kernel_palette  # numba: only the CPU back-end needs it

            self._kpal = kernel_palette(area.palette)
        self._torch = None
        if backend == "torch":
            from .torch_backend import TorchTiles  # torch only now

            reach = self.tile_size_m * max_scale / area.pixel_size * math.sqrt(0.5)  # half-diagonal, px
            self._torch = TorchTiles(area, device=device, max_device_bytes=max_device_bytes,
                                     overlap_px=int(math.ceil(reach)) + 2)

    @property
    def channel_names(self) -> list[str]:
        return self.area.channel_names

    @property
    def device(self):
        return self._torch.device if self._torch is not None else None

    # ---- geometry ------------------------------------------------------------------------
    def geometry(self, centres_px, angles_deg=0.0, scales=1.0, size: int = 256) -> TileGeometry:
        """The fixed-point sampling parameters for tiles centred at fractional pixel coordinates."""
        size = check_size(size)
        return tile_geometry(centres_px, angles_deg, scales, size, self.tile_size_m / size / self.area.pixel_size)

    # ---- sampling ------------------------------------------------------------------------
    def sample(self, centres_xy, angles_deg=0.0, scales=1.0, size: int = 256, out=None):
        """Tiles centred at map coordinates ``centres_xy`` (N, 2) in the area's CRS.

        angles_deg, scales: scalars or (N,). Returns ``(tiles (N, C, S, S) uint8, valid (N, S, S) bool)``.
        CPU: numpy arrays; ``tiles`` is a channels-last view ((N, S, S, C) in memory), which torch
        accepts as ``channels_last`` and ``np.ascontiguousarray`` copies correctly. torch: tensors on
        the device, ``tiles`` likewise channels-last. ``out``: a ``(tiles, valid)`` pair from
        ``empty()`` (or a previous call) to fill instead of allocating.
        """
        c = check_centres(centres_xy)
        col, row = self.area.xy_to_pixel(c[:, 0], c[:, 1])
        return self.sample_pixels(np.stack([col, row], axis=1), angles_deg, scales, size, out)

    def sample_lonlat(self, lonlat, angles_deg=0.0, scales=1.0, size: int = 256, out=None):
        """Like ``sample`` with centres as WGS84 (lon, lat) pairs, shape (N, 2)."""
        ll = check_centres(lonlat, "lon/lat centres")
        x, y = self.area.lonlat_to_xy(ll[:, 0], ll[:, 1])
        return self.sample(np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1),
                           angles_deg, scales, size, out)

    def sample_pixels(self, centres_px, angles_deg=0.0, scales=1.0, size: int = 256, out=None):
        """Like ``sample`` with centres as fractional pixel coordinates (col, row); pixel centres at .5."""
        return self.sample_geometry(self.geometry(centres_px, angles_deg, scales, size), out)

    def sample_geometry(self, geom: TileGeometry, out=None):
        if self._torch is not None:
            if out is not None:
                self._check_torch_out(out, len(geom), geom.size)
            return self._torch.sample(geom, out)
        n, s = len(geom), geom.size
        tiles, valid = out if out is not None else self.empty(n, s)
        buf = self._check_cpu_out(tiles, valid, n, s)
        from .cpu import sample_into

        sample_into(self.area.ids, self._kpal, self.area.count, geom, buf, valid, self.threads)
        return tiles, valid

    def empty(self, n: int, size: int = 256):
        """Uninitialised ``(tiles, valid)`` buffers for ``sample(..., out=...)``."""
        size = check_size(size)
        if self._torch is not None:
            return self._torch.empty(int(n), size)
        buf = np.empty((int(n), size, size, self.area.count), np.uint8)
        return buf.transpose(0, 3, 1, 2), np.empty((int(n), size, size), bool)

    # ---- out= checks -----------------------------------------------------------------------
    def _check_cpu_out(self, tiles, valid, n, s) -> np.ndarray:
        c = self.area.count
        ok = (isinstance(tiles, np.ndarray) and isinstance(valid, np.ndarray) and tiles.dtype == np.uint8
              and tiles.shape == (n, c, s, s) and valid.dtype == bool and valid.shape == (n, s, s)
              and valid.flags.c_contiguous)
        buf = tiles.transpose(0, 2, 3, 1) if ok else None
        if buf is None or not buf.flags.c_contiguous:
            raise Loc2VecError(f"out= must be (tiles ({n}, {c}, {s}, {s}) uint8 channels-last, valid ({n}, {s}, {s}) bool)",
                               f"make the buffers with sampler.empty({n}, {s})")
        return buf

    def _check_torch_out(self, out, n, s):
        import torch

        tiles, valid = out
        c = self.area.count
        if (not isinstance(tiles, torch.Tensor) or tuple(tiles.shape) != (n, c, s, s) or tiles.dtype != torch.uint8
                or not tiles.permute(0, 2, 3, 1).is_contiguous() or tuple(valid.shape) != (n, s, s)
                or valid.dtype != torch.bool or not valid.is_contiguous()
                or tiles.device != self.device or valid.device != self.device):
            raise Loc2VecError(f"out= must be (tiles ({n}, {c}, {s}, {s}) uint8 channels-last, valid ({n}, {s}, {s}) bool) "
                               f"on {self.device}", f"make the buffers with sampler.empty({n}, {s})")
