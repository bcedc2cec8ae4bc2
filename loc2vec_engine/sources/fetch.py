"""fetch-osm: download an OSM extract and cut it to a bbox, keeping ways complete.

Nothing partial is left behind: the download goes to a temporary file next to the output, the
cut is written through ``atomic_output``, and both temporaries are removed on any error or Ctrl-C.
"""

from __future__ import annotations

import http.client
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..atomic import atomic_output, check_writable
from ..errors import Loc2VecError
from ..progress import Progress

_CHUNK = 1 << 20
# Relations whose members are completed even outside the bbox: without all their member ways an
# area (the Dnipro, a forest, a district boundary) cannot be assembled and would vanish.
_AREA_RELATIONS = ("multipolygon", "boundary")


def fetch_osm(place=None, out=None, bbox=None, url=None, progress=None, timeout=60) -> Path:
    """Download ``url`` (default: the preset's) to ``out``, cut to ``bbox`` (default: the preset's).

    place: preset name or None; bbox: (lon_min, lat_min, lon_max, lat_max) or None for the whole
    extract; progress: callable(fraction, message) -> True to cancel (raises progress.Cancelled).
    Raises Loc2VecError when offline or the download is not OSM data; ``out`` is then untouched.
    """
    preset = None
    if place is not None:
        from ..geo.presets import get_preset

        preset = get_preset(place)
    url = url or (preset.download_url if preset else None)
    if not url:
        if preset is not None and preset.local_pbf is not None:
            raise Loc2VecError(f"preset {preset.name!r} has no download URL",
                               f"its data ships as {preset.local_pbf}: pass that to loc2vec rasterize")
        raise Loc2VecError("nothing to download: no place and no URL given",
                           "give a preset (e.g. kyiv) or --url of an .osm.pbf extract")
    if bbox is None and preset is not None:
        bbox = preset.bbox
    if bbox is not None:
        bbox = _check_bbox(bbox)
    out = check_writable(out or f"{preset.name if preset else 'extract'}.osm.pbf")

    fd, raw = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".download.part", dir=out.parent)
    os.close(fd)
    raw = Path(raw)
    try:
        _download(url, raw, progress, timeout, place=place)
        in_fmt = _check_osm_data(raw, url)
        with atomic_output(out) as tmp:
            if bbox is None:
                os.replace(raw, tmp)  # whole extract wanted: the download is the result
            else:
                cut_to_bbox(raw, tmp, bbox, in_fmt=in_fmt, out_fmt=_format_of(out.name), progress=progress)
    finally:
        raw.unlink(missing_ok=True)
    return out


def _check_bbox(bbox):
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise Loc2VecError(f"bad bbox {bbox!r}", "give four numbers: lon_min,lat_min,lon_max,lat_max") from None
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise Loc2VecError(f"bad bbox {x0},{y0},{x1},{y1}", "the order is lon_min,lat_min,lon_max,lat_max")
    return x0, y0, x1, y1


# ---- download -----------------------------------------------------------------------------

def _download(url: str, dest: Path, progress, timeout: float, place=None) -> None:
    host = urllib.parse.urlsplit(url).hostname or url
    hint = ("on a machine with internet run the same command, or download the extract yourself and pass it to "
            "loc2vec rasterize" + (f" with --preset {place}" if place else ""))
    # Everything the network can throw at us, during connect or mid-transfer; disk errors are not in it.
    network_errors = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0)
            got = 0
            with Progress(total=total or 1, desc=f"download {host}", callback=progress,
                          enabled=progress is None) as bar:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    # with an unknown size update(0) still gives a progress callback the chance to cancel
                    size = f"{got / 1e6:.0f} / {total / 1e6:.0f} MB" if total else f"{got / 1e6:.0f} MB"
                    bar.update(len(chunk) if total else 0, size)
            if total and got < total:
                raise Loc2VecError(f"download of {url} stopped after {got} of {total} bytes",
                                   "run the command again (the connection dropped)")
    except urllib.error.HTTPError as e:
        raise Loc2VecError(f"download failed: {url} answered HTTP {e.code} {e.reason}",
                           "check the URL (Geofabrik names extracts like europe/ukraine-latest.osm.pbf); "
                           "or: " + hint) from None
    except network_errors as e:
        reason = getattr(e, "reason", None) or e or type(e).__name__
        if urllib.parse.urlsplit(url).scheme == "file":  # a local file, not the network, is missing
            raise Loc2VecError(f"cannot read {url} ({reason})", "give the path of an existing file") from None
        raise Loc2VecError(f"no network: could not reach {host} for {url} ({reason})", hint) from None
    except ValueError as e:  # urllib's "unknown url type"
        raise Loc2VecError(f"bad download URL {url!r}: {e}",
                           "give a full URL such as https://download.geofabrik.de/...") from None


# ---- validation ---------------------------------------------------------------------------

def _check_osm_data(path: Path, url: str) -> str:
    """Refuse an HTML error page or other non-OSM bytes early; return the osmium format name."""
    with open(path, "rb") as f:
        head = f.read(4096)
    fmt = None
    if len(head) > 8 and b"OSMHeader" in head[:64]:
        fmt = "pbf"  # a PBF starts with a BlobHeader of type "OSMHeader"
    elif head.lstrip().startswith(b"<?xml") and b"<osm" in head:
        fmt = "osm"
    elif head.startswith(b"BZh") and url.endswith(".bz2"):
        fmt = "osm.bz2"
    if fmt is None:
        what = "an HTML page" if b"<html" in head.lower() or b"<!doctype" in head.lower() else \
            ("an empty file" if not head else "not OSM data")
        raise Loc2VecError(f"the download from {url} is {what}, not an OSM extract",
                           "check the URL: it must point to an .osm.pbf file (e.g. a Geofabrik extract)")
    try:
        import osmium

        osmium.io.Reader(osmium.io.File(str(path), fmt), osmium.osm.osm_entity_bits.NOTHING).close()
    except RuntimeError as e:
        raise Loc2VecError(f"the download from {url} is not readable OSM data: {e}",
                           "download it again; if it persists the server sent a broken file") from None
    return fmt


def _format_of(name: str) -> str:
    for suffix, fmt in ((".osm.pbf", "pbf"), (".pbf", "pbf"), (".osm.bz2", "osm.bz2"), (".osm", "osm")):
        if name.endswith(suffix):
            return fmt
    return "pbf"


# ---- bbox cut -----------------------------------------------------------------------------

def cut_to_bbox(src, dst, bbox, in_fmt="pbf", out_fmt="pbf", progress=None) -> None:
    """Write the objects of ``src`` inside ``bbox`` to ``dst``, like ``osmium extract --strategy smart``.

    Kept: nodes inside the bbox, ways with a node inside, relations with a kept member; then every
    node of a kept way (so ways are complete) and all members of kept multipolygon/boundary
    relations. Expects a sorted file (nodes, ways, relations), as Geofabrik extracts are.
    """
    import osmium

    x0, y0, x1, y1 = bbox
    src_file = osmium.io.File(str(src), in_fmt)
    inside = osmium.IdTracker()  # nodes in the bbox, then ways touching them: the "touches the bbox" test
    keep = osmium.IdTracker()  # what is written
    others = []  # relations kept without completing their members (routes can span a whole country)
    with Progress(total=4, desc="cut to bbox", callback=progress, enabled=progress is None) as bar:
        # Pass 1, nodes: the only per-node Python loop; keep it lean.
        add_in, add_keep, n = inside.add_node, keep.add_node, 0
        for node in osmium.FileProcessor(src_file, osmium.osm.NODE):
            if x0 <= node.lon <= x1 and y0 <= node.lat <= y1:
                add_in(node.id)
                add_keep(node.id)
            n += 1
            if not n & 0xFFFFF:
                bar.update(0, f"{n // 1_000_000} M nodes")  # lets a progress callback cancel
        bar.update(1, "ways")
        # Pass 2: the C++ filter passes only ways/relations referencing a tracked id; kept ways are
        # added to `inside` as we go, so relations (later in the file) see them.
        for obj in osmium.FileProcessor(src_file, osmium.osm.WAY | osmium.osm.RELATION) \
                .with_filter(inside.contains_filter()):
            if obj.is_way():
                inside.add_way(obj.id)
                keep.add_way(obj.id)
            elif obj.tags.get("type") in _AREA_RELATIONS:
                keep.add_relation(obj.id)
            else:
                others.append(obj.id)
        bar.update(1, "completing ways")
        keep.complete_backward_references(src_file, relation_depth=0)
        for rid in others:
            keep.add_relation(rid)
        bar.update(1, "writing")
        written = 0
        with osmium.SimpleWriter(osmium.io.File(str(dst), out_fmt)) as writer:
            for obj in osmium.FileProcessor(src_file).with_filter(keep.id_filter()):
                writer.add(obj)
                written += 1
        bar.update(1, f"{written} objects")
    if written == 0:
        raise Loc2VecError(f"the extract has no OSM objects inside bbox {','.join(f'{v:g}' for v in bbox)}",
                           "check the bbox order (lon_min,lat_min,lon_max,lat_max) and that the extract covers it")
