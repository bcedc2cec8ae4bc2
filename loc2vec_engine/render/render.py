"""Render embeddings files as GeoTIFFs: their first three principal components as colours, or every dimension.

Every check (the inputs, the outputs, the grids) comes before anything is written, and all outputs are
written to temporary files renamed only once the last one is complete: an error leaves no output at all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import Loc2VecError
from ..progress import Progress

BANDS = ("rgb", "all")
SUFFIX = {"rgb": "_rgb.tif", "all": "_bands.tif"}


@dataclass
class RenderResult:
    path: Path  # the GeoTIFF written
    source: Path  # the embeddings file it shows
    cells: int
    width: int
    height: int
    stride_m: float
    bands: str
    pca: object = None  # the ColourPCA (rgb; the same object for every file of one call)


def check_bands(bands) -> str:
    if bands not in BANDS:
        raise Loc2VecError(f"--bands must be rgb or all, not {bands!r}",
                           "use --bands rgb (three principal components as colours, the default) or --bands all "
                           "(one float32 band per embedding dimension)")
    return bands


def output_paths(inputs, bands: str = "rgb", out=None, out_dir=None) -> list[Path]:
    """``out`` for a single input; else ``STEM_rgb.tif`` / ``STEM_bands.tif`` in ``out_dir`` or beside each input."""
    inputs = [Path(p) for p in inputs]
    if out is not None:
        if out_dir is not None:
            raise Loc2VecError("both --out and --out-dir are given", "give --out FILE.tif for one input, "
                               "or --out-dir DIR for any number")
        if len(inputs) != 1:
            raise Loc2VecError(f"--out names one file, but {len(inputs)} embeddings files are given",
                               "use --out-dir DIR: each input is written there as NAME" + SUFFIX[bands])
        return [Path(out)]
    return [(Path(out_dir) if out_dir is not None else p.parent) / (p.stem + SUFFIX[bands]) for p in inputs]


def render_files(inputs, outs=None, bands: str = "rgb", fit_on=None, out_dir=None,
                 progress=None) -> list[RenderResult]:
    """Render each embeddings GeoPackage of ``inputs`` to a GeoTIFF (``outs``, default ``output_paths``).

    bands: "rgb" (PCA colours, uint8, 0 = no cell) or "all" (float32, NaN = no cell). With "rgb" one
    colour transform is fitted on the cells of ``fit_on`` (default: all ``inputs`` together) and applied
    to every input, so identical vectors get identical colours in every output. ``progress``: the
    engine's callback (fraction, message) -> True to cancel.
    """
    from ..atomic import atomic_output, check_output_folder, check_writable
    from ..embeddings.store import read_embeddings
    from .grid_raster import cell_raster, write_bands, write_rgb
    from .pca_rgb import fit_colour_pca

    check_bands(bands)
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise Loc2VecError("no embeddings file to render", "give one or more GeoPackages written by loc2vec embed")
    if fit_on and bands != "rgb":
        raise Loc2VecError("--fit-on is for the colours of --bands rgb; --bands all writes the vectors as they are",
                           "leave out --fit-on, or use --bands rgb")
    if out_dir is not None and outs is None:
        check_output_folder(out_dir, create=False)
    outs = [Path(p) for p in outs] if outs is not None else output_paths(inputs, bands, out_dir=out_dir)
    _check_outputs(inputs, outs, fit_on)
    for path in outs:
        check_writable(path)  # before any reading: a bad output fails at once

    fit_paths = [Path(p) for p in (fit_on or inputs)]
    bar = Progress(len(inputs) + len(fit_paths) + 2, "rendering", progress, enabled=False)
    sets = {}
    for path in [*inputs, *fit_paths]:
        key = path.resolve()
        if key not in sets:
            sets[key] = read_embeddings(path)
        bar.update(1, f"read {path.name}")
    rendered = [sets[p.resolve()] for p in inputs]
    pca = None
    if bands == "rgb":
        fitted = list({p.resolve(): sets[p.resolve()] for p in fit_paths}.values())
        _check_comparable(list({id(es): es for es in [*fitted, *rendered]}.values()))
        pca = fit_colour_pca([es.vectors for es in fitted], names=[es.path.name for es in fitted])
    bar.update(1, "fitted the colours" if pca is not None else "")
    rasters = [cell_raster(es) for es in rendered]  # every grid checked before the first write

    results = []
    with contextlib.ExitStack() as stack:
        for es, raster, out in zip(rendered, rasters, outs):
            tmp = stack.enter_context(atomic_output(out, suffix=".part.tif"))
            try:
                if pca is not None:
                    write_rgb(tmp, es, raster, pca.colours(es.vectors), pca)
                else:
                    write_bands(tmp, es, raster)
            except RuntimeError as e:  # GDAL's write errors (disk full): named with the output by atomic_output
                raise OSError(str(e)) from None
            results.append(RenderResult(out, es.path, len(es), raster.width, raster.height, raster.stride_m,
                                        bands, pca))
        bar.update(1, "wrote the rasters")  # the last moment to cancel: the renames follow
    bar.finish()
    return results


def _check_outputs(inputs, outs, fit_on) -> None:
    if len(outs) != len(inputs):
        raise Loc2VecError(f"{len(outs)} output(s) for {len(inputs)} embeddings file(s)", "give one output per input")
    seen = {}
    for path in outs:
        key = path.resolve()
        if key in seen:
            raise Loc2VecError(f"two inputs would both be written to {path}",
                               "give the inputs different file names, or render them one at a time with --out")
        seen[key] = path
    for path in [*inputs, *(Path(p) for p in fit_on or ())]:
        if path.resolve() in seen:
            raise Loc2VecError(f"the output {path} is an input file", "write the raster to a new .tif file")
        if path.suffix.lower() in (".tif", ".tiff"):
            raise Loc2VecError(f"{path} is a GeoTIFF, not an embeddings GeoPackage",
                               "give the .gpkg written by loc2vec embed (the raster comes out with --out)")


def _check_comparable(sets) -> None:
    """One colour transform needs vectors of one model: same size, same model file (meta model_sha256)."""
    if len(sets) < 2:
        return
    first = sets[0]
    for es in sets[1:]:
        a, b = first.vectors.shape[1], es.vectors.shape[1]
        if a != b:
            raise Loc2VecError(f"{first.path.name} has {a}-dimensional embeddings and {es.path.name} "
                               f"{b}-dimensional ones: they cannot share one colour transform",
                               "render together (or --fit-on) only files embedded with the same model")
    for es in sets:
        if not es.model_sha256:
            raise Loc2VecError(f"{es.path.name} does not say which model made it (no model_sha256 in its "
                               "metadata), so its colours cannot be matched with another file's",
                               f"render it alone (loc2vec render {es.path.name}), or re-embed it with loc2vec embed")
    for es in sets[1:]:
        if es.model_sha256 != first.model_sha256:
            raise Loc2VecError(f"{first.path.name} and {es.path.name} were embedded with different models "
                               f"(model_sha256 {first.model_sha256[:12]}… vs {es.model_sha256[:12]}…): their "
                               "vectors, and so their colours, are not comparable",
                               "embed both areas with the same model (loc2vec embed MODEL.onnx AREA.tif), "
                               "or render each file alone")
