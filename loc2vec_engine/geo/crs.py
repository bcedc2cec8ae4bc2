"""Metric CRS choice and WGS84 transformers (pyproj)."""

from __future__ import annotations

import functools
import os

from ..errors import Loc2VecError

if not os.environ.get("PROJ_DATA") and os.path.isfile("/usr/share/proj/proj.db"):
    # Debian's pyproj finds its database only through PROJ_DATA in some environments.
    os.environ["PROJ_DATA"] = "/usr/share/proj"


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone containing (lon, lat); Kyiv -> 32636."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs(crs: str | int | None, lon: float, lat: float):
    """A projected pyproj CRS in metres: the given one, or the UTM zone at (lon, lat)."""
    from pyproj import CRS

    if crs is None or str(crs).lower() in ("", "auto", "utm"):
        return CRS.from_epsg(utm_epsg(lon, lat))
    try:
        out = CRS.from_user_input(int(crs) if str(crs).isdigit() else crs)
    except Exception as e:  # pyproj.exceptions.CRSError and friends
        raise Loc2VecError(f"unknown CRS {crs!r}: {e}", "give an EPSG code such as EPSG:32636, or 'auto'") from None
    if not out.is_projected:
        raise Loc2VecError(f"CRS {crs} is geographic (degrees); tiles need metres",
                           f"use a projected CRS such as the local UTM zone EPSG:{utm_epsg(lon, lat)}, or 'auto'")
    unit = out.axis_info[0].unit_name if out.axis_info else "metre"
    if unit not in ("metre", "meter"):
        raise Loc2VecError(f"CRS {crs} has units of {unit}, not metres",
                           f"use a metric CRS such as EPSG:{utm_epsg(lon, lat)}, or 'auto'")
    return out


@functools.lru_cache(maxsize=32)
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def transformer_from_wgs84(crs) -> "Transformer":  # noqa: F821
    """lon/lat -> ``crs`` (x, y order)."""
    return _transformer("EPSG:4326", _crs_key(crs))


def transformer_to_wgs84(crs):
    return _transformer(_crs_key(crs), "EPSG:4326")


def _crs_key(crs) -> str:
    from pyproj import CRS

    return CRS.from_user_input(crs).to_wkt() if not isinstance(crs, str) else crs


def project_geometries(geoms, transformer):
    """Reproject a shapely geometry array with a pyproj transformer, vectorised."""
    import numpy as np
    import shapely

    def _xy(coords):
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)
