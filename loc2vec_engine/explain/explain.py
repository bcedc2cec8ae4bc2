"""Why two places are alike: their map tiles' composition side by side, and what blanking a channel group costs.

For a query and a hit, both tiles are cut again from the area raster the embeddings were made from
(the same centres, upright, scale 1: the stored vectors come back exactly). Then, per channel group
of the evaluation's ablation (roads, buildings, nature + land use, transit + POIs;
``evaluation.ablation.CHANNEL_GROUPS``), the group is blanked in **both** tiles the way the ablation
blanks it (its channels set to 0), both are embedded again by the ONNX model and compared: the drop
in cosine is how much of their likeness that group carries. A group neither tile has changes
nothing (drop ~0); a negative drop means the two differ there (without it they would be closer).

The composition is the share of a tile's valid pixels on which a channel (or any channel of a group)
is drawn. ``words.describe`` turns both into a line a user reads.

Several query places (the mean embedding) are explained as their mean: vectors averaged, shares too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError

BATCH = 256  # tiles per encoder call
CLI_HINT = "give its path with --area AREA.tif"  # how the command line points at the area raster (in the fix)


@dataclass
class GroupEffect:
    """One channel group of a query/hit pair: its pixel shares and the cosine without it."""

    group: str  # the ablation's key: "roads", "buildings", "nature", "transit+poi"
    channels: list[str]
    query_share: float  # of the query tile's valid pixels where any of the group's channels is drawn
    result_share: float
    blanked_cosine: float  # cosine of the two tiles re-embedded with the group blanked in both
    drop: float  # cosine - blanked_cosine: > 0, the group makes them alike; < 0, they differ there


@dataclass
class Explanation:
    """Why one hit is like the query."""

    rank: int
    cell: int
    cosine: float  # of the re-embedded tiles (the search's score, up to float rounding)
    groups: list[GroupEffect]  # in the ablation's order
    channel_names: list[str]
    query_shares: np.ndarray  # (C,) share of valid pixels per channel
    result_shares: np.ndarray
    # channel -> (its most common drawn value (a land-use class), that value's share, the channel's share)
    query_levels: dict = field(default_factory=dict)
    result_levels: dict = field(default_factory=dict)
    text: str = ""

    @property
    def top_group(self) -> str | None:
        """The group whose blanking costs the most, when it costs at least ``words.MIN_DROP``; else None."""
        from .words import MIN_DROP

        best = max(self.groups, key=lambda g: g.drop, default=None)
        return best.group if best is not None and best.drop >= MIN_DROP else None

    def drops(self) -> dict[str, float]:
        return {g.group: g.drop for g in self.groups}


@dataclass
class TileSide:
    """The query (or one hit): embeddings with nothing and with each group blanked, and its composition."""

    vectors: np.ndarray  # (1 + G, D) unit: full, then each group blanked
    shares: np.ndarray  # (C,)
    group_shares: np.ndarray  # (G,)
    levels: dict


class Explainer:
    """An ONNX encoder and the area raster it embeds from, ready to explain pairs of places.

    ``area`` is a ``PalettedArea`` (the QGIS map tool keeps one loaded) or a path; its channels must be
    the model's.
    """

    def __init__(self, encoder, area):
        from ..embeddings.embed import load_encoder_and_area
        from ..evaluation.ablation import channel_groups
        from ..tiles import TileSampler

        self.encoder, self.area = load_encoder_and_area(encoder, area)
        self.channel_names = self.encoder.channel_names
        self.groups = channel_groups(self.channel_names)
        self.sampler = TileSampler(self.area, tile_size_m=self.encoder.tile_size_m)
        self.level_channels = [self.channel_names.index(n) for n in level_channels(self.channel_names)]

    @classmethod
    def for_embeddings(cls, es, area=None, model=None, device: str = "cpu", encoder=None,
                       hint: str = CLI_HINT) -> "Explainer":
        """The explainer of an embeddings set: its model (``model`` or found, see ``find_model``) and its
        area raster (``area`` or found, see ``find_area``, whose fix ends with ``hint``)."""
        from ..embeddings.onnx_encoder import OnnxEncoder

        if encoder is None:
            encoder = OnnxEncoder(find_model(es, model), device)
        area_path = find_area(es, area, hint)
        check_area_crs(area_path, es)
        return cls(encoder, area_path)

    # ---- tiles -> vectors and composition ----------------------------------------------------
    def tiles(self, xy) -> tuple[np.ndarray, np.ndarray]:
        """(tiles (N, C, S, S) uint8, valid (N, S, S)) at ``xy`` in the area's CRS; a centre off it is an error."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        tiles, valid = self.sampler.sample(xy, size=self.encoder.tile_size_px)
        s = valid.shape[-1] // 2
        off = np.flatnonzero(~valid[:, s, s])
        if len(off):
            x, y = xy[off[0]]
            raise Loc2VecError(f"the place at {x:.1f}, {y:.1f} (the embeddings' CRS) is not on the valid pixels of "
                               "the area raster",
                               "give the area raster these embeddings were made from (loc2vec info AREA.tif shows "
                               "its extent)")
        return np.ascontiguousarray(tiles), valid

    def variants(self, tiles) -> np.ndarray:
        """(1 + G, N, D) unit embeddings of ``tiles``: as they are, then with each group blanked."""
        from ..evaluation.ablation import zero_channels

        out = [self._embed(tiles)]
        out += [self._embed(zero_channels(tiles, channels)) for channels in self.groups.values()]
        return np.stack(out)

    def sides(self, xy) -> list[TileSide]:
        """One ``TileSide`` per place at ``xy``."""
        tiles, valid = self.tiles(xy)
        vectors = self.variants(tiles)
        shares, group_shares = self.composition(tiles, valid)
        levels = self.levels(tiles, valid)
        return [TileSide(vectors[:, i], shares[i], group_shares[i], levels[i]) for i in range(len(tiles))]

    def mean_side(self, xy) -> TileSide:
        """The places at ``xy`` as one: their mean vectors (unit again), mean shares, pooled levels."""
        tiles, valid = self.tiles(xy)
        v = self.variants(tiles).astype(np.float64).mean(axis=1)
        v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
        shares, group_shares = self.composition(tiles, valid)
        return TileSide(v, shares.mean(axis=0), group_shares.mean(axis=0), self.levels(tiles, valid, pooled=True)[0])

    def composition(self, tiles, valid) -> tuple[np.ndarray, np.ndarray]:
        """((N, C) share of each tile's valid pixels with the channel drawn, (N, G) the same for any of a group)."""
        drawn = (tiles > 0) & valid[:, None]
        n_valid = np.maximum(valid.sum(axis=(1, 2)), 1)[:, None]
        shares = drawn.sum(axis=(2, 3)) / n_valid
        groups = [drawn[:, ch].any(axis=1).sum(axis=(1, 2)) for ch in self.groups.values()]
        group_shares = np.stack(groups, axis=1) / n_valid if groups else np.zeros((len(tiles), 0))
        return shares, group_shares

    def levels(self, tiles, valid, pooled: bool = False) -> list[dict]:
        """Per tile (or all pooled): channel -> (its most common drawn value, that value's share of the valid
        pixels, the channel's share)."""
        n = 1 if pooled else len(tiles)
        out = [{} for _ in range(n)]
        for c in self.level_channels:
            name = self.channel_names[c]
            for i in range(n):
                pick = slice(None) if pooled else slice(i, i + 1)
                values = tiles[pick, c][valid[pick]]
                counts = np.bincount(values, minlength=256)
                counts[0] = 0
                if counts.any():
                    n = max(values.size, 1)
                    out[i][name] = (int(counts.argmax()), float(counts.max() / n), float(counts.sum() / n))
        return out

    def _embed(self, tiles) -> np.ndarray:
        return np.concatenate([self.encoder.embed(tiles[i:i + BATCH]) for i in range(0, len(tiles), BATCH)])


def compare(query: TileSide, hit: TileSide, groups, channel_names, rank: int = 0, cell: int = -1) -> Explanation:
    """The explanation of one pair (text included)."""
    from .words import describe

    cosines = np.einsum("gd,gd->g", query.vectors.astype(np.float64), hit.vectors.astype(np.float64))
    effects = [GroupEffect(name, [channel_names[c] for c in channels], float(query.group_shares[g]),
                           float(hit.group_shares[g]), float(cosines[1 + g]), float(cosines[0] - cosines[1 + g]))
               for g, (name, channels) in enumerate(groups.items())]
    e = Explanation(rank, int(cell), float(cosines[0]), effects, list(channel_names), query.shares, hit.shares,
                    query.levels, hit.levels)
    e.text = describe(e)
    return e


def explain_similar(source, result, query_xy=None, target=None, area=None, target_area=None, model=None,
                    ranks=None, device: str = "cpu", explainer: Explainer | None = None,
                    target_explainer: Explainer | None = None, hint: str = CLI_HINT) -> list[Explanation]:
    """Why each hit of ``result`` (a ``SimilarResult`` of ``target``, default ``source``) is like the query.

    query_xy: the query tiles' centres in ``source``'s CRS (default: the cells nearest to the result's query
    points, as ``similar_at`` takes them); ranks: 1-based ranks to explain (default all); area /
    target_area: the area rasters of ``source`` / ``target`` (default: found from their metadata); model:
    the ONNX file (default: found, see ``find_model``); explainer / target_explainer: already loaded ones
    (the QGIS map tool keeps them).
    """
    target = source if target is None else target
    if explainer is None:
        explainer = Explainer.for_embeddings(source, area, model, device, hint=hint)
    if target_explainer is None:
        same_area = target is source or (target_area is None and area is None and _same_area(source, target))
        target_explainer = explainer if same_area else Explainer.for_embeddings(
            target, target_area, encoder=explainer.encoder, hint=hint.replace("--area", "--in-area"))
    if query_xy is None:
        from ..search.similar import query_cells

        query_xy = source.xy[query_cells(source, result.query_lonlat)]
    ranks = np.arange(1, len(result) + 1) if ranks is None else np.asarray(ranks, np.int64).reshape(-1)
    if len(ranks) and (ranks.min() < 1 or ranks.max() > len(result)):
        raise Loc2VecError(f"rank {ranks.max() if ranks.max() > len(result) else ranks.min()} is not among the "
                           f"{len(result)} results", f"give ranks 1..{len(result)}")
    query = explainer.mean_side(query_xy)
    rows = result.indices[ranks - 1]
    hits = target_explainer.sides(target.xy[rows]) if len(rows) else []
    return [compare(query, hit, explainer.groups, explainer.channel_names, int(r), int(target.cell[row]))
            for r, row, hit in zip(ranks, rows, hits)]


def explain_columns(explanations: list[Explanation]) -> dict[str, list]:
    """GeoPackage columns, one value per hit: ``explain`` (the words), ``top_group`` (None when no group
    carries the likeness) and ``drop_<group>`` (cosine with nothing blanked minus with the group blanked)."""
    cols: dict[str, list] = {"explain": [e.text for e in explanations],
                             "top_group": [e.top_group for e in explanations]}
    for e in explanations:
        for g in e.groups:
            cols.setdefault(column_name(g.group), []).append(g.drop)
    return cols


def column_name(group: str) -> str:
    """``drop_roads``, ``drop_transit_poi``: a group's cosine-drop column."""
    return "drop_" + "".join(ch if ch.isalnum() else "_" for ch in group)


# ---- what an embeddings file was made from ------------------------------------------------------
def find_area(es, explicit=None, hint: str = CLI_HINT) -> Path:
    """The area raster of ``es``: ``explicit``, else the recorded ``area_path``, else its name next to the file.

    ``hint``: how the caller's user points at one ("give its path with --area AREA.tif"), the end of the fix.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise Loc2VecError(f"area raster {path} not found", f"give the area raster {_name(es)} was made from")
        return path
    recorded, name = es.meta.get("area_path"), es.meta.get("area")
    candidates = [Path(str(recorded))] if recorded else []
    if name and es.path is not None:
        candidates.append(es.path.parent / Path(str(name)).name)
    for path in candidates:
        if path.is_file():
            return path
    if not candidates:
        raise Loc2VecError(f"{_name(es)} does not record the area raster it was made from", hint)
    looked = " and ".join(str(p) for p in dict.fromkeys(candidates))
    where = f"put {Path(str(name)).name} next to {_name(es)}, or " if name else ""
    raise Loc2VecError(f"the area raster {_name(es)} was made from is not found (looked at {looked})",
                       f"{where}{hint}")


def find_model(es, explicit=None) -> Path:
    """The ONNX model that made ``es`` (same SHA-256): ``explicit``, else the recorded ``model_path``, else its
    name next to the file, else the shipped default model."""
    from ..embeddings.onnx_encoder import DEFAULT_MODEL, file_sha256, resolve_model

    want = es.model_sha256
    if explicit is not None:
        path = resolve_model(explicit)
        if not path.is_file():
            raise Loc2VecError(f"model {path} not found", "give the .onnx model the embeddings were made with")
        if want and file_sha256(path) != want:
            raise Loc2VecError(f"{path.name} is not the model {_name(es)} was made with (its SHA-256 differs)",
                               "give the model the embeddings were made with (--model MODEL.onnx)")
        return path
    candidates = [es.meta.get("model_path")]
    if es.meta.get("model_file") and es.path is not None:
        candidates.append(es.path.parent / Path(str(es.meta["model_file"])).name)
    candidates.append(DEFAULT_MODEL)
    for c in candidates:
        if c and Path(str(c)).is_file() and (not want or file_sha256(c) == want):
            return Path(str(c))
    file = es.meta.get("model_file")
    raise Loc2VecError(f"the model {_name(es)} was made with ({file or 'not recorded'}, SHA-256 {want[:12] or '?'}…) "
                       "is not found", (f"put {Path(str(file)).name} next to {_name(es)}, or " if file else "")
                       + "give it with --model MODEL.onnx")


def check_area_crs(area_path, es) -> None:
    """Refuse an area raster in another CRS than the embeddings (their cells would land elsewhere)."""
    from pyproj import CRS

    from ..raster.area import AreaRaster

    raster = AreaRaster.open(area_path)
    try:
        same = CRS.from_user_input(raster.crs_wkt).equals(CRS.from_user_input(es.crs_wkt), ignore_axis_order=True)
    except Exception:  # an unreadable CRS: cannot tell
        same = False
    if not same:
        raise Loc2VecError(f"area raster {raster.path.name} is in another CRS than {_name(es)}",
                           "give the area raster the embeddings were made from")


def level_channels(channel_names) -> list[str]:
    """Channels whose drawn values are classes (land use: one intensity per class), named by ``words``."""
    return [n for n in channel_names if n == "landuse" or n.startswith("landuse_")]


def _same_area(a, b) -> bool:
    try:
        return find_area(a).resolve() == find_area(b).resolve()
    except Loc2VecError:
        return False


def _name(es) -> str:
    return es.path.name if getattr(es, "path", None) is not None else "the embeddings"
