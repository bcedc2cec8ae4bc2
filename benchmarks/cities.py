"""The shared real OSM extracts (../shared/data, ODbL, © OpenStreetMap contributors) as area rasters.

    .venv/bin/python benchmarks/cities.py [--work out/cities] [--only porto,helsinki]

Each city is rasterized once with the default channel spec (1.953 m/px) into ``WORK/NAME.tif`` and
reused. The box is the one the data README gives: the PBF header's box for the routing-engine extracts,
the core box (2–98 % of the nodes) for the raw Overpass dumps, whose complete relations and cut edge
ways reach far beyond the part that is really mapped. Moscow's header box is 0.85 x 0.66 km, too small
for the distance bands of ``loc2vec evaluate``; it trains but is not scored.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

# name: (file in ../shared/data, (W, S, E, N) lon/lat box or None for the whole file)
CITIES = {
    "andorra": ("andorra_2020-05-01.osm.pbf", None),
    "liechtenstein": ("liechtenstein_2015-07-27.osm.pbf", None),
    "porto": ("porto_center_2020-07-20.osm.pbf", (-8.62124, 41.12473, -8.59368, 41.15608)),
    "moscow": ("moscow_center_2020-07-20.osm.pbf", (37.63190, 55.75834, 37.64541, 55.76429)),
    "helsinki": ("helsinki_center_2019.osm.pbf", (24.93518, 60.16416, 24.95341, 60.17911)),
    "vancouver": ("vancouver_2015.osm.pbf", (-123.2525, 49.2052, -123.0251, 49.3182)),
    "rio": ("rio_ilha_governador_2023.osm.gz", (-43.2378, -22.8240, -43.1629, -22.7842)),
    "bogota": ("bogota_2023.osm.gz", (-74.1626, 4.6595, -74.1054, 4.6899)),
    "monaco": ("monaco_riviera_2016.osm.pbf", (7.3509, 43.7205, 7.4844, 43.7688)),
    "copenhagen": ("copenhagen_2012.osm.pbf", (12.5256, 55.6408, 12.6190, 55.6959)),
    "novosibirsk": ("novosibirsk_akademgorodok_2023.osm.gz", (83.0621, 54.8291, 83.1217, 54.8775)),
    "volgograd": ("volgograd_sovetsky_2024.osm.gz", (44.4315, 48.6458, 44.4651, 48.6835)),
    "fukuoka": ("fukuoka_wajiro.osm.gz", (130.4226, 33.6903, 130.4470, 33.7032)),
    "makati": ("manila_makati_2024.osm.gz", (121.0135, 14.5475, 121.0325, 14.5591)),
    "chiang_mai": ("chiang_mai_2023.osm.gz", (98.9516, 18.7880, 98.9745, 18.8089)),
    "queens": ("queens_village_nyc_2016.osm.pbf", (-73.7684, 40.6951, -73.7188, 40.7382)),
    "goma": ("goma_drc_2024.osm.gz", (29.2112, -1.6860, 29.2373, -1.6737)),
    "nanjing": ("nanjing_xinjiekou_2021.osm", (118.7368, 31.9753, 118.8250, 32.0927)),
    "bucharest": ("bucharest_centrul_civic_2022.osm", (26.1177, 44.4132, 26.1360, 44.4291)),
    "bayreuth": ("north_bayreuth_2014.osm.gz", (11.4784, 49.9689, 11.6115, 50.0468)),
    "istanbul": ("istanbul_kadikoy_2026.osm.gz", (29.0208, 40.9736, 29.0388, 40.9882)),
}
NOT_SCORED = {"moscow": "0.85 x 0.66 km: too small for the distance bands"}


def source(name: str) -> Path:
    return SHARED / CITIES[name][0]


def area(name: str, work: Path) -> Path:
    """``WORK/NAME.tif``, rasterized from the shared extract on first use."""
    from loc2vec_engine.raster.rasterize import rasterize

    out = Path(work) / f"{name}.tif"
    if not out.exists():
        Path(work).mkdir(parents=True, exist_ok=True)
        rasterize(source(name), out, bbox=CITIES[name][1], progress=lambda f, m: None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(REPO / "out" / "cities"))
    ap.add_argument("--only", default="", help="comma-separated names (default: all)")
    args = ap.parse_args()
    names = [n for n in (args.only.split(",") if args.only else CITIES) if n]
    for name in names:
        t = time.perf_counter()
        path = area(name, Path(args.work))
        print(f"{name:14s} {path.stat().st_size / 2**20:7.1f} MiB  {time.perf_counter() - t:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
