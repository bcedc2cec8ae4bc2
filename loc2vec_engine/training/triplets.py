"""Triplets for training (report §3.6): an anchor, a positive 100-200 m away, a far or contrasting negative.

Centres are drawn on the host (numpy Generator) over the coarse cells where the split's tiles may lie
(``blocks.py``: the split's blocks minus the guard band, and enough valid ground for a whole tile);
tiles are then cut by ``TileSampler`` (on the torch device, or with numba and moved there). Each view
gets its own rotation, scale and shift (§3.4.1), so geometric augmentation costs no resampling.

Distances (positive range, negative minimum) are between the *locations* (``centres_m``); a view's tile is
cut at its location plus its shift (``view_centres_m``), as the report shifts tiles, not places.
A triplet any of whose tiles is less than ``min_valid`` valid is drawn again.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import Loc2VecError
from ..tiles import TileSampler
from .blocks import (DEFAULT_CELL_PX, DEFAULT_FRACTIONS, SPLITS, BlockSplit, auto_block_m, cell_stats,
                     guard_margin_m, split_blocks, split_index, window_mean)
from .triplet_params import check_areas, check_built_up, check_count, check_params

MAX_ROUNDS = 50      # redraws of a triplet whose tiles are not valid enough, before giving up
POS_TRIES = 16       # directions / distances tried per anchor for its positive


@dataclass
class Triplets:
    """A batch of triplets. Tiles: float32 (B, C, S, S) in [0, 1] on the sampler's device.

    Host tensors (CPU) for mining and diagnostics, view order (anchor, positive, negative):
    ``centres_m`` (B, 3, 2) float64 location centres in the area's CRS; ``area_index`` (B, 3) int64
    (a negative may come from another area); ``view_centres_m`` (B, 3, 2) the tile centres (location +
    shift); ``angles_deg``, ``scales`` (B, 3).
    """

    anchor: "torch.Tensor"
    positive: "torch.Tensor"
    negative: "torch.Tensor"
    centres_m: "torch.Tensor"
    area_index: "torch.Tensor"
    view_centres_m: "torch.Tensor"
    angles_deg: "torch.Tensor"
    scales: "torch.Tensor"

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    def __getitem__(self, index) -> "Triplets":
        return Triplets(*(getattr(self, f.name)[index] for f in fields(self)))

    def batches(self, batch_size: int):
        """Consecutive slices of ``batch_size`` triplets (views, no copies)."""
        for i in range(0, len(self), batch_size):
            yield self[i:i + batch_size]

    def to(self, device) -> "Triplets":
        """The tiles on ``device``; host tensors stay on the host."""
        return Triplets(self.anchor.to(device), self.positive.to(device), self.negative.to(device),
                        self.centres_m, self.area_index, self.view_centres_m, self.angles_deg, self.scales)


class _Area:
    """One area seen by one split: where centres may go, how they are weighted, and its tile sampler."""

    def __init__(self, index, area, split, blocks: BlockSplit, p, cell_px, built_up_channels):
        ps = area.pixel_size
        self.index, self.area, self.pixel_size, self.cell_px = index, area, ps, cell_px
        self.margin_m = guard_margin_m(p["tile_size_m"], 1.0 + p["scale_jitter"], p["max_shift_px"] * ps)
        self.blocks = blocks
        allowed = blocks.allowed(split, self.margin_m, cell_px)
        # landuse / similar negatives and semantic positives all compare tile compositions
        landuse = p["neg_mode"] in ("landuse", "similar") or p["semantic_share"] > 0
        stats = cell_stats(area, cell_px, built_up_channels if p["built_up_weight"] > 0 else (), means=landuse)
        k = int(round(p["tile_size_m"] / ps / cell_px))  # tile side in cells
        whole_tile_valid = window_mean(stats.valid, k) >= p["min_valid"]
        self.cand = allowed & whole_tile_valid & (stats.valid > 0)
        self._explain_empty(split, allowed, whole_tile_valid, stats, p)
        w = np.where(self.cand, stats.valid, 0.0).astype(np.float64)  # uniform over valid ground
        prob = w / w.sum()
        if p["built_up_weight"] > 0:
            wb = np.where(self.cand, stats.built_up, 0.0).astype(np.float64)
            if wb.sum() > 0:
                prob = (1 - p["built_up_weight"]) * prob + p["built_up_weight"] * wb / wb.sum()
        self.cells = np.flatnonzero(prob.ravel() > 0)
        cum = np.cumsum(prob.ravel()[self.cells])
        self.cum = cum / cum[-1]
        self.ground_m2 = float(w.sum()) * (cell_px * ps) ** 2
        rows, cols = np.divmod(self.cells, self.cand.shape[1])
        self.extent_m = math.hypot(np.ptp(rows) + 1, np.ptp(cols) + 1) * cell_px * ps  # >= any centre distance
        # per-location channel composition of a tile (landuse negatives): float16 halves the memory
        self.comp = np.stack([window_mean(m, k).astype(np.float16) for m in stats.means]) if landuse else None
        self._cell_xy = self._cell_p = None  # cell centres / probabilities, made on first exact far draw
        self.sampler = TileSampler(area, backend=p["backend"], device=p["device"] if p["backend"] == "torch" else None,
                                   tile_size_m=p["tile_size_m"], max_scale=1.0 + p["scale_jitter"])

    def _explain_empty(self, split, allowed, whole_tile_valid, stats, p):
        if self.cand.any():
            return
        name = f"area {self.index + 1}" + (f" ({self.area.width} x {self.area.height} px)")
        n_blocks = self.blocks.counts()[split]
        if not (stats.valid > 0).any():
            raise Loc2VecError(f"{name} has no valid pixels", "rasterize it again; check its bbox or clip polygon")
        if n_blocks == 0:
            raise Loc2VecError(f"{name} has no {split} block: its {int((self.blocks.labels >= 0).sum())} blocks of "
                               f"{self.blocks.block_m:.0f} m all went to other splits",
                               "use smaller blocks (block_size_m), a larger area, or more areas")
        if not allowed.any():
            raise Loc2VecError(f"{name} has no room for {split} tiles: its {n_blocks} {split} block(s) of "
                               f"{self.blocks.block_m:.0f} m lie within the {self.margin_m:.0f} m guard band of "
                               "other splits' blocks",
                               f"use larger blocks (block_size_m >= {auto_block_m(self.margin_m):.0f}), "
                               "smaller tiles or less shift / scale jitter")
        raise Loc2VecError(f"{name} has no {split} ground where a whole tile is {p['min_valid']:.0%} valid",
                           "lower min_valid, use smaller tiles, or a larger area")

    # ---- locations (pixel coordinates (col, row)) ----------------------------------------------
    def draw(self, rng, m: int) -> np.ndarray:
        """``m`` location centres, by the area's cell weights, uniform within a cell."""
        cell = self.cells[np.minimum(np.searchsorted(self.cum, rng.random(m), side="right"), len(self.cells) - 1)]
        row, col = np.divmod(cell, self.cand.shape[1])
        return np.stack([col + rng.random(m), row + rng.random(m)], axis=1) * self.cell_px

    def draw_far(self, rng, anchor_px: np.ndarray, min_m: float, m: int):
        """``m`` locations drawn like ``draw`` but only from cells wholly >= ``min_m`` from the anchor; None
        if there are none. Costs one pass over the cells, so ``draw`` + rejection comes first."""
        if self._cell_xy is None:
            row, col = np.divmod(self.cells, self.cand.shape[1])
            self._cell_xy = (np.stack([col, row], axis=1) + 0.5) * self.cell_px
            self._cell_p = np.diff(np.r_[0.0, self.cum])
        d = np.hypot(*(self._cell_xy - anchor_px).T) - self.cell_px * math.sqrt(0.5)
        far = np.flatnonzero(d * self.pixel_size >= min_m)
        if len(far) == 0:
            return None
        cum = np.cumsum(self._cell_p[far])
        pick = far[np.minimum(np.searchsorted(cum / cum[-1], rng.random(m), side="right"), len(far) - 1)]
        return self._cell_xy[pick] + (rng.random((m, 2)) - 0.5) * self.cell_px

    def inside(self, px: np.ndarray) -> np.ndarray:
        """Whether centres (..., 2) lie in candidate cells."""
        c = np.floor(px / self.cell_px).astype(np.int64)
        hc, wc = self.cand.shape
        ok = (c[..., 0] >= 0) & (c[..., 0] < wc) & (c[..., 1] >= 0) & (c[..., 1] < hc)
        return ok & self.cand[np.clip(c[..., 1], 0, hc - 1), np.clip(c[..., 0], 0, wc - 1)]

    def composition(self, px: np.ndarray) -> np.ndarray:
        c = np.floor(px / self.cell_px).astype(np.int64)
        hc, wc = self.cand.shape
        return self.comp[:, np.clip(c[..., 1], 0, hc - 1), np.clip(c[..., 0], 0, wc - 1)].astype(np.float32)

    def positives(self, rng, anchors: np.ndarray, lo_m: float, hi_m: float):
        """A positive per anchor at a uniform distance in [lo, hi] m, random direction; (centres, found)."""
        m = len(anchors)
        d = rng.uniform(lo_m, hi_m, (m, POS_TRIES)) / self.pixel_size
        t = rng.uniform(0.0, 2 * math.pi, (m, POS_TRIES))
        cand = anchors[:, None, :] + np.stack([d * np.cos(t), d * np.sin(t)], axis=-1)
        ok = self.inside(cand)
        first = ok.argmax(axis=1)
        return cand[np.arange(m), first], ok.any(axis=1)


class TripletSampler:
    """Triplets of one split (train / val / test) of one or more areas (PalettedArea or area GeoTIFF paths).

    Areas are drawn with probability proportional to their usable ground (``balance_areas``: equally).
    Anchors: uniform over the split's valid ground, mixed with ``built_up_weight`` of sampling by the
    share of built-up pixels (channels named ``roads*`` / ``buildings*`` unless ``built_up_channels``).
    Positives: ``pos_range_m`` from the anchor. Negatives: >= ``neg_min_m`` away in the same area when
    possible, else from another area; ``neg_mode="landuse"`` takes, of ``neg_candidates`` such
    candidates, the one whose channel composition differs most (L1) from the anchor's, and
    ``neg_mode="similar"`` the one whose composition is *closest*: a hard negative, far away yet made of
    the same stuff, which only layout can tell apart from the anchor.
    Semantic positives (report §3.6.1, "locations with similar land use patterns"): a ``semantic_share``
    of the triplets take as positive, of ``neg_candidates`` places >= ``neg_min_m`` away (in an area drawn
    like the anchor's, so often another city), the one whose composition is closest; the rest keep their
    near positive. 0 (the default) draws exactly the batches of a sampler without the option.
    Views: rotation U(0, 360), scale U(1 +- scale_jitter), shift U(+-max_shift_px) per axis in pixels
    of the area raster (the report's 50 px = 98 m at the default 500/256 m pixels).

    Blocks: ``blocks`` (one BlockSplit per area) or ``split_blocks(area, block_m=block_size_m,
    fractions=block_fractions, seed=block_seed)``; ``block_size_m=None`` picks ``auto_block_m`` of the
    guard margin. Keep these equal across the samplers of one run so that their splits agree.

    Randomness: one numpy Generator seeded by ``seed`` (all sampling is host-side geometry; the tiles are
    then cut deterministically). ``state_dict()`` / ``load_state_dict()`` save / restore it, so a resumed
    sampler draws exactly the batches the original would have. ``fixed(n, seed)`` does not touch it.
    """

    def __init__(self, areas, split: str = "train", *, tile_size_px: int = 128, tile_size_m: float = 500.0,
                 pos_range_m=(100.0, 200.0), neg_min_m: float = 2000.0, max_shift_px: float = 50,
                 scale_jitter: float = 0.1, min_valid: float = 0.9, built_up_weight: float = 0.0,
                 built_up_channels=None, neg_mode: str = "far", neg_candidates: int = 16,
                 semantic_share: float = 0.0, balance_areas: bool = False, device="cpu", backend: str = "torch",
                 seed: int = 0,
                 block_size_m: float | None = None, block_fractions=DEFAULT_FRACTIONS, block_seed: int = 0,
                 blocks=None, cell_px: int = DEFAULT_CELL_PX):
        import torch

        split_index(split)
        areas = check_areas(areas)
        p = check_params(tile_size_px=tile_size_px, tile_size_m=tile_size_m, pos_range_m=pos_range_m,
                          neg_min_m=neg_min_m, max_shift_px=max_shift_px, scale_jitter=scale_jitter,
                          min_valid=min_valid, built_up_weight=built_up_weight, neg_mode=neg_mode,
                          neg_candidates=neg_candidates, semantic_share=semantic_share, backend=backend,
                          device=device, cell_px=cell_px)
        self.split, self.params, self.seed = split, p, int(seed)
        self.device = torch.device(device)
        self.channel_names = list(areas[0].channel_names)
        bu = check_built_up(self.channel_names, built_up_channels, built_up_weight)
        if blocks is not None and (len(blocks) != len(areas) or not all(isinstance(b, BlockSplit) for b in blocks)):
            raise Loc2VecError(f"blocks must be one BlockSplit per area ({len(areas)})",
                               "make them with split_blocks(area, ...) for each area, or leave blocks=None")
        self.areas: list[_Area] = []
        for i, a in enumerate(areas):
            margin = guard_margin_m(tile_size_m, 1.0 + scale_jitter, max_shift_px * a.pixel_size)
            b = blocks[i] if blocks is not None else split_blocks(
                a, block_m=auto_block_m(margin) if block_size_m is None else block_size_m, fractions=block_fractions,
                seed=block_seed)
            if (b.height, b.width) != (a.height, a.width):
                raise Loc2VecError(f"the blocks given for area {i + 1} were made for another area",
                                   "make them with split_blocks(area, ...) for this area")
            self.areas.append(_Area(i, a, split, b, p, cell_px, bu))
        g = np.array([a.ground_m2 for a in self.areas])
        self.area_p = np.full(len(g), 1.0 / len(g)) if balance_areas else g / g.sum()
        if len(self.areas) == 1 and self.areas[0].extent_m < p["neg_min_m"]:
            raise Loc2VecError(f"the area's {split} ground spans only {self.areas[0].extent_m:.0f} m, so no negative "
                               f"can be {p['neg_min_m']:.0f} m from its anchor",
                               "lower neg_min_m, or train on a larger area or several areas")
        self._rng = np.random.default_rng(self.seed)

    # ---- public ----------------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Triplets:
        """The next ``batch_size`` triplets (advances the sampler's random state)."""
        return self._draw(self._rng, check_count(batch_size, "batch_size"))

    def fixed(self, n: int, seed: int = 0) -> Triplets:
        """A deterministic set of ``n`` triplets: the same for the same (n, seed), whatever was drawn before."""
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xF1_7ED, split_index(self.split)])
        return self._draw(rng, check_count(n, "n"))

    def state_dict(self) -> dict:
        """Plain Python values (loadable with ``torch.load(weights_only=True)``)."""
        return {"numpy": copy.deepcopy(self._rng.bit_generator.state), "seed": self.seed, "split": self.split}

    def load_state_dict(self, state: dict) -> None:
        try:
            self._rng.bit_generator.state = copy.deepcopy(state["numpy"])
        except (KeyError, TypeError, ValueError) as e:
            raise Loc2VecError(f"not a triplet sampler state ({e})",
                               "pass what TripletSampler.state_dict() returned") from None

    @property
    def blocks(self) -> list[BlockSplit]:
        """The block split of each area (the same for every sampler made with the same block settings)."""
        return [a.blocks for a in self.areas]

    def info(self) -> list[dict]:
        """Per area: usable ground, blocks per split, guard margin (for logs)."""
        return [{"area": i, "ground_km2": a.ground_m2 / 1e6, "block_m": a.blocks.block_m,
                 "blocks": a.blocks.counts(), "margin_m": a.margin_m, "p": float(self.area_p[i])}
                for i, a in enumerate(self.areas)]

    # ---- drawing ---------------------------------------------------------------------------------
    def _draw(self, rng, n: int) -> Triplets:
        import torch

        p = self.params
        s, c = p["tile_size_px"], len(self.channel_names)
        base = np.zeros((n, 3, 2))            # location centres, pixels of their area
        area_ix = np.zeros((n, 3), np.int64)
        angles, scales, shifts = np.zeros((n, 3)), np.ones((n, 3)), np.zeros((n, 3, 2))
        bufs = [torch.empty((n, c, s, s), dtype=torch.uint8, device=self.device) for _ in range(3)]
        area_ix[:, 0] = rng.choice(len(self.areas), size=n, p=self.area_p)
        todo = np.arange(n)
        for _ in range(MAX_ROUNDS):
            found = self._locations(rng, todo, base, area_ix)
            m = len(todo)
            angles[todo] = rng.uniform(0.0, 360.0, (m, 3))
            scales[todo] = rng.uniform(1.0 - p["scale_jitter"], 1.0 + p["scale_jitter"], (m, 3))
            shifts[todo] = rng.uniform(-p["max_shift_px"], p["max_shift_px"], (m, 3, 2))
            good = found.copy()
            good[found] = self._cut(todo[found], base, area_ix, angles, scales, shifts, bufs)
            todo = todo[~good]
            if len(todo) == 0:
                break
        else:
            raise Loc2VecError(f"could not find {len(todo)} of {n} {self.split} triplets whose tiles are "
                               f"{p['min_valid']:.0%} valid after {MAX_ROUNDS} tries",
                               "lower min_valid or neg_min_m, or use larger areas")
        view_px = base + shifts
        centres, views = np.zeros_like(base), np.zeros_like(base)
        for i, a in enumerate(self.areas):
            sel = area_ix == i
            centres[sel] = np.stack(a.area.pixel_to_xy(base[sel][:, 0], base[sel][:, 1]), axis=-1)
            views[sel] = np.stack(a.area.pixel_to_xy(view_px[sel][:, 0], view_px[sel][:, 1]), axis=-1)
        anchor, positive, negative = (b.float().div_(255.0) for b in bufs)
        return Triplets(anchor, positive, negative, torch.from_numpy(centres), torch.from_numpy(area_ix),
                        torch.from_numpy(views), torch.from_numpy(angles), torch.from_numpy(scales))

    def _locations(self, rng, todo, base, area_ix) -> np.ndarray:
        """Anchor, positive and negative locations of the triplets ``todo``; returns which were found."""
        p = self.params
        found = np.zeros(len(todo), bool)
        own = area_ix[todo, 0]
        area_ix[todo, 1] = own
        for i, a in enumerate(self.areas):
            sel = np.flatnonzero(own == i)
            if len(sel) == 0:
                continue
            t = todo[sel]
            base[t, 0] = a.draw(rng, len(sel))
            base[t, 1], found[sel] = a.positives(rng, base[t, 0], *p["pos_range_m"])
        if p["semantic_share"] > 0:
            self._semantic_positives(rng, todo, base, area_ix)
        neg_done = np.zeros(len(todo), bool)
        for i, a in enumerate(self.areas):  # negatives >= neg_min_m away in the same area
            sel = np.flatnonzero(own == i)
            if len(sel) == 0 or a.extent_m < p["neg_min_m"]:
                continue
            t = todo[sel]
            k = p["neg_candidates"]
            cand = a.draw(rng, len(sel) * k).reshape(len(sel), k, 2)
            far = np.hypot(*(cand - base[t, 0][:, None, :]).transpose(2, 0, 1)) * a.pixel_size >= p["neg_min_m"]
            for j in np.flatnonzero(~far.any(axis=1)):  # rare: draw exactly among far cells instead
                exact = a.draw_far(rng, base[t[j], 0], p["neg_min_m"], k)
                if exact is not None:
                    cand[j], far[j] = exact, True
            pick = self._pick(a, base[t, 0], a, cand, far)
            ok = far.any(axis=1)
            base[t[ok], 2] = cand[ok, pick[ok]]
            area_ix[t[ok], 2] = i
            neg_done[sel[ok]] = True
        rest = np.flatnonzero(~neg_done)
        if len(rest) and len(self.areas) > 1:  # else from another area, at any distance
            q = np.tile(self.area_p, (len(rest), 1))
            q[np.arange(len(rest)), own[rest]] = 0.0
            other = (q.cumsum(1) / q.sum(1, keepdims=True) < rng.random((len(rest), 1))).sum(1)
            for j, b in enumerate(self.areas):
                sel = rest[other == j]
                if len(sel) == 0:
                    continue
                t = todo[sel]
                k = p["neg_candidates"] if p["neg_mode"] != "far" else 1
                cand = b.draw(rng, len(sel) * k).reshape(len(sel), k, 2)
                pick = np.zeros(len(sel), np.int64)
                if k > 1:
                    for i in np.unique(own[sel]):  # landuse: compare with each anchor's own area
                        ss = np.flatnonzero(own[sel] == i)
                        pick[ss] = self._pick(self.areas[i], base[t[ss], 0], b, cand[ss], np.ones((len(ss), k), bool))
                base[t, 2] = cand[np.arange(len(sel)), pick]
                area_ix[t, 2] = j
                neg_done[sel] = True
        return found & neg_done

    def _semantic_positives(self, rng, todo, base, area_ix) -> None:
        """Replace the near positive of a ``semantic_share`` of the triplets ``todo`` by the far place of
        closest composition among ``neg_candidates``, in an area drawn by ``area_p`` (>= ``neg_min_m`` from
        the anchor when it is the anchor's own). Where no candidate qualifies the near positive stays."""
        p = self.params
        k = p["neg_candidates"]
        chosen = np.flatnonzero(rng.random(len(todo)) < p["semantic_share"])
        if len(chosen) == 0:
            return
        src = rng.choice(len(self.areas), size=len(chosen), p=self.area_p)
        own = area_ix[todo[chosen], 0]
        for j, b in enumerate(self.areas):
            for i in np.unique(own[src == j]):
                sel = chosen[(src == j) & (own == i)]
                t = todo[sel]
                cand = b.draw(rng, len(sel) * k).reshape(len(sel), k, 2)
                ok = np.ones((len(sel), k), bool)
                if i == j:
                    ok = np.hypot(*(cand - base[t, 0][:, None, :]).transpose(2, 0, 1)) * b.pixel_size >= p["neg_min_m"]
                ca = self.areas[i].composition(base[t, 0])          # (C, m)
                score = np.abs(b.composition(cand) - ca[:, :, None]).sum(axis=0)
                pick = np.where(ok, score, np.inf).argmin(axis=1)
                has = ok.any(axis=1)
                base[t[has], 1] = cand[has, pick[has]]
                area_ix[t[has], 1] = j

    def _pick(self, anchor_area, anchors, cand_area, cand, ok) -> np.ndarray:
        """Index of the chosen candidate per anchor among those ``ok``: the first ("far"), or the one whose
        tile composition is farthest in L1 from the anchor's ("landuse"), or nearest ("similar")."""
        if self.params["neg_mode"] == "far":
            return ok.argmax(axis=1)
        ca = anchor_area.composition(anchors)                       # (C, m)
        cc = cand_area.composition(cand)                            # (C, m, k)
        score = np.abs(cc - ca[:, :, None]).sum(axis=0)
        if self.params["neg_mode"] == "similar":
            return np.where(ok, score, np.inf).argmin(axis=1)
        return np.where(ok, score, -np.inf).argmax(axis=1)

    def _cut(self, todo, base, area_ix, angles, scales, shifts, bufs) -> np.ndarray:
        """Cut the views of triplets ``todo`` into ``bufs``; returns, per triplet, whether all are valid enough."""
        import torch

        p = self.params
        ok = np.ones(len(todo), bool)
        for i, a in enumerate(self.areas):
            r, v = np.nonzero(area_ix[todo] == i)  # (triplet row in todo, view)
            if len(r) == 0:
                continue
            t = todo[r]
            tiles, valid = a.sampler.sample_pixels(base[t, v] + shifts[t, v], angles[t, v], scales[t, v],
                                                   p["tile_size_px"])
            if isinstance(tiles, np.ndarray):
                frac = valid.mean(axis=(1, 2))
                tiles = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device)
            else:
                frac = valid.float().mean(dim=(1, 2)).cpu().numpy()
            np.logical_and.at(ok, r, frac >= p["min_valid"])
            for view in range(3):
                rows = np.flatnonzero(v == view)
                if len(rows):
                    dst = torch.from_numpy(t[rows]).to(self.device)
                    bufs[view].index_copy_(0, dst, tiles[torch.from_numpy(rows).to(tiles.device)])
        return ok


__all__ = ["SPLITS", "Triplets", "TripletSampler"]
