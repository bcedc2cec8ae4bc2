"""``embeddings/store.py``: the embeddings GeoPackage read back exactly, whatever order its rows are in and
however its point geometries are encoded (the fast decoder for uniform blobs and the one-by-one fallback)."""

import sqlite3
import struct

import numpy as np
import pytest
from pyproj import CRS

from loc2vec_engine.embeddings.store import LAYER, _decode_points_one_by_one, read_embeddings, write_embeddings
from loc2vec_engine.errors import Loc2VecError

N, DIM = 60, 8


@pytest.fixture()
def written(tmp_path):
    """A file whose rows are written in a shuffled cell order; (path, cell, xy, vectors) as given."""
    rng = np.random.default_rng(3)
    cell = rng.permutation(np.arange(N) * 3 + 7)
    xy = np.stack([500_000 + 25.0 * cell, 4_500_000 - 0.5 * cell + rng.random(N)], axis=1)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "emb.gpkg"
    write_embeddings(path, xy, vectors, CRS("EPSG:32629").to_wkt(), {"stride_m": 25.0}, cell=cell,
                     cluster=cell % 4, umap=xy / 1000)
    return path, cell, xy, vectors


def _geoms(path):
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT fid, geom FROM {LAYER}").fetchall()
    finally:
        con.close()


def _set_geoms(path, blobs):
    """Rewrite geometries with plain SQLite: the spatial index's triggers (which need GDAL's SQL functions)
    are dropped first; the reader does not use the index."""
    con = sqlite3.connect(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    con.executemany(f"UPDATE {LAYER} SET geom = ? WHERE fid = ?", [(b, fid) for fid, b in blobs])
    con.commit()
    con.close()


def test_rows_in_any_order_come_back_in_cell_order_with_everything_aligned(written):
    path, cell, xy, vectors = written
    es = read_embeddings(path)
    order = np.argsort(cell)
    assert es.cell.tolist() == sorted(cell.tolist())
    np.testing.assert_array_equal(es.xy, xy[order])
    np.testing.assert_array_equal(es.vectors, vectors[order])
    assert es.cluster.tolist() == (cell[order] % 4).tolist()
    np.testing.assert_allclose(es.umap, xy[order] / 1000)
    assert es.fid.tolist() == (order + 1).tolist()  # fid: the row written i-th is feature i + 1
    assert es.vectors.flags.writeable and es.vectors.dtype == np.float32


def test_points_with_an_envelope_or_big_endian_decode_the_same(written):
    path, cell, xy, _ = written
    expected = read_embeddings(path).xy
    rows = _geoms(path)
    # One geometry with an xy envelope (flags: envelope type 1): the blobs differ in length, the fallback runs.
    fid, blob = rows[5]
    x, y = struct.unpack_from("<dd", blob, 8 + 5)
    with_env = blob[:3] + bytes([blob[3] | 0b10]) + blob[4:8] + struct.pack("<4d", x, x, y, y) + blob[8:]
    _set_geoms(path, [(fid, with_env)])
    np.testing.assert_array_equal(read_embeddings(path).xy, expected)
    # Every geometry as big-endian WKB: uniform again, decoded at once with the other byte order.
    big = [(f, b[:8] + struct.pack(">BIdd", 0, 1, *struct.unpack_from("<dd", b, 8 + 5))) for f, b in rows]
    _set_geoms(path, big)
    np.testing.assert_array_equal(read_embeddings(path).xy, expected)
    assert _decode_points_one_by_one([b for _, b in big], path).tolist() == [
        list(struct.unpack_from(">dd", b, 8 + 5)) for _, b in big]


@pytest.mark.parametrize("bad, words", [(b"XX" + bytes(27), "not a GeoPackage point"),
                                        (None, "not a GeoPackage point"),
                                        ("line", "not a point")])
def test_a_geometry_that_is_not_a_point_is_one_clear_error(written, bad, words):
    path = written[0]
    rows = _geoms(path)
    fid, blob = rows[2]
    if bad == "line":  # a LineString of the same byte length as a point: the type is what tells
        bad = blob[:8] + struct.pack("<BIdd", 1, 2, 0.0, 0.0)
    _set_geoms(path, [(fid, bad)])
    with pytest.raises(Loc2VecError, match=words) as e:
        read_embeddings(path)
    assert "cell geometry" in e.value.problem
