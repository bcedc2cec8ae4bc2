"""``loc2vec render``: embeddings as a map (PCA colours) or as an N-band raster, one pixel per grid cell."""

from __future__ import annotations

import argparse

_DESCRIPTION = """\
Draws embeddings GeoPackages (from loc2vec embed) as GeoTIFFs on their own grid: one pixel per cell,
pixel size = the stride, nodata where there is no cell.

--bands rgb (default): the first three principal components of the embeddings as red, green and
blue (each scaled from its 2nd to its 98th percentile to 1..255; 0 = no cell). Places with alike map
tiles get alike colours across the whole city; the colours themselves have no fixed meaning.
Several inputs are rendered with ONE transform fitted on all of them together, so the same colour
means the same kind of place in every city (they must come from the same model). --fit-on fits it
on other files instead: `loc2vec render B.gpkg --fit-on A.gpkg B.gpkg` gives B the colours that
`loc2vec render A.gpkg B.gpkg` gives it.

--bands all: one float32 band per embedding dimension (NaN = no cell), for any raster tool.

Outputs: --out FILE.tif for one input; else NAME_rgb.tif (NAME_bands.tif with --bands all) in
--out-dir, or next to each input. All outputs are written at the end, or none on an error.
"""


def add_parsers(sub) -> None:
    r = sub.add_parser("render", help="embeddings as a GeoTIFF: PCA colours (alike places alike), or all bands",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("embeddings", nargs="+", metavar="EMB.gpkg",
                   help="embeddings GeoPackage(s) from loc2vec embed; several share one colour transform")
    r.add_argument("--out", metavar="FILE.tif", help="output GeoTIFF (one input only; default NAME_rgb.tif "
                                                     "next to the input)")
    r.add_argument("--out-dir", metavar="DIR", help="folder for the outputs (NAME_rgb.tif / NAME_bands.tif)")
    r.add_argument("--bands", default="rgb", metavar="rgb|all",
                   help="rgb: 3-band uint8 colours of the first three principal components (default); "
                        "all: every embedding dimension as a float32 band")
    r.add_argument("--fit-on", nargs="+", metavar="EMB.gpkg",
                   help="fit the colours on these files (same model) instead of on the inputs")
    r.set_defaults(func=cmd_render)


def cmd_render(args) -> None:
    from .. import ATTRIBUTION
    from .render import check_bands, output_paths, render_files

    bands = check_bands(args.bands)
    outs = output_paths(args.embeddings, bands, out=args.out, out_dir=args.out_dir)
    results = render_files(args.embeddings, outs, bands=bands, fit_on=args.fit_on)
    pca = results[0].pca
    if pca is not None:
        shares = ", ".join(f"{v:.0%}" for v in pca.explained)
        print(f"colours: principal components 1-3 (red, green, blue) of {pca.fitted_cells:,} cells of "
              f"{', '.join(pca.fitted_on)}; they hold {shares} of the variance")
    for r in results:
        kind = "3-band RGB" if r.bands == "rgb" else "float32, one band per dimension"
        print(f"wrote {r.path}: {r.width} x {r.height} px of {r.stride_m:g} m, {r.cells:,} cells ({kind})")
    print(ATTRIBUTION)
