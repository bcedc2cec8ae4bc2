"""fetch-osm against a real HTTP server on 127.0.0.1 (never the internet)."""

import functools
import http.server
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.progress import Cancelled
from loc2vec_engine.sources.fetch import fetch_osm

REPO = Path(__file__).resolve().parents[2]
PORTO = REPO / "resources" / "data" / "porto_center_2020-07-20.osm.pbf"
BBOX = (-8.6160, 41.1400, -8.6017, 41.1490)  # a 1.2 x 1.0 km piece of the Porto extract


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _Truncated(http.server.BaseHTTPRequestHandler):
    """Promises 10 MB, sends a few bytes of a real PBF and hangs up."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        self.wfile.write(PORTO.read_bytes()[:5000])

    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    shutil.copy(PORTO, root / "porto.osm.pbf")
    (root / "error.osm.pbf").write_text("<!DOCTYPE html><html><body>Service unavailable</body></html>")
    srv = _serve(functools.partial(_Quiet, directory=str(root)))
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy from the environment would send 127.0.0.1 requests elsewhere.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _closed_port_url():
    with socket.socket() as s:  # bind, note the port, close: nothing listens there any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ukraine-latest.osm.pbf"


def _only(folder: Path, names):
    """The folder holds exactly ``names``: no partial output, no leftover temporaries."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


@pytest.fixture(scope="module")
def cut(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("cut") / "porto_cut.osm.pbf"
    fetch_osm(out=out, url=f"{server}/porto.osm.pbf", bbox=BBOX, progress=lambda f, m: None)
    return out


def test_full_download_equals_source(server, tmp_path):
    out = fetch_osm(out=tmp_path / "porto.osm.pbf", url=f"{server}/porto.osm.pbf", progress=lambda f, m: None)
    assert out.read_bytes() == PORTO.read_bytes()
    _only(tmp_path, ["porto.osm.pbf"])


def test_bbox_cut_is_smaller_and_reference_complete(cut):
    import osmium

    assert 0 < cut.stat().st_size < PORTO.stat().st_size
    x0, y0, x1, y1 = BBOX
    nodes, way_refs, rel_nodes, n_ways = {}, set(), set(), 0
    for o in osmium.FileProcessor(str(cut)):
        if o.is_node():
            nodes[o.id] = (o.lon, o.lat)
        elif o.is_way():
            n_ways += 1
            way_refs.update(n.ref for n in o.nodes)
        elif o.is_relation():
            rel_nodes.update(m.ref for m in o.members if m.type == "n")
    assert n_ways > 100
    assert way_refs <= set(nodes), "every way keeps all its nodes"
    inside = {i for i, (x, y) in nodes.items() if x0 <= x <= x1 and y0 <= y <= y1}
    outside = set(nodes) - inside
    assert outside, "ways crossing the bbox edge bring nodes from outside"
    assert outside <= way_refs | rel_nodes, "no stray node from outside the bbox"
    src_inside = {n.id for n in osmium.FileProcessor(str(PORTO), osmium.osm.NODE)
                  if x0 <= n.lon <= x1 and y0 <= n.lat <= y1}
    assert src_inside == inside, "every node inside the bbox is kept"


def test_offline_gives_one_clear_error_and_no_output(tmp_path):
    url = _closed_port_url()
    with pytest.raises(Loc2VecError) as e:
        fetch_osm("kyiv", out=tmp_path / "kyiv.osm.pbf", url=url, timeout=5)
    assert "no network" in e.value.problem and url in e.value.problem
    assert "--preset kyiv" in e.value.fix
    _only(tmp_path, [])


def test_http_404_and_html_page(server, tmp_path):
    with pytest.raises(Loc2VecError, match="HTTP 404"):
        fetch_osm(out=tmp_path / "x.osm.pbf", url=f"{server}/missing.osm.pbf")
    with pytest.raises(Loc2VecError, match="HTML page"):
        fetch_osm(out=tmp_path / "x.osm.pbf", url=f"{server}/error.osm.pbf", bbox=BBOX)
    _only(tmp_path, [])


def test_timeout_is_an_offline_error(tmp_path):
    with socket.socket() as s:  # listens but never answers: the request hangs until the timeout
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/x.osm.pbf"
        with pytest.raises(Loc2VecError, match="no network"):
            fetch_osm(out=tmp_path / "x.osm.pbf", url=url, timeout=0.5)
    _only(tmp_path, [])


def test_truncated_download_leaves_nothing(tmp_path):
    srv = _serve(_Truncated)
    try:
        with pytest.raises(Loc2VecError):
            fetch_osm(out=tmp_path / "x.osm.pbf", url=f"http://127.0.0.1:{srv.server_address[1]}/x.osm.pbf", timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()
    _only(tmp_path, [])


def test_failure_and_cancel_do_not_clobber_existing_output(server, tmp_path):
    out = tmp_path / "area.osm.pbf"
    out.write_bytes(b"old")
    with pytest.raises(Loc2VecError):
        fetch_osm(out=out, url=_closed_port_url())
    with pytest.raises(Cancelled):
        fetch_osm(out=out, url=f"{server}/porto.osm.pbf", bbox=BBOX, progress=lambda f, m: True)
    assert out.read_bytes() == b"old"
    _only(tmp_path, ["area.osm.pbf"])


def test_bad_arguments(tmp_path):
    with pytest.raises(Loc2VecError, match="nothing to download"):
        fetch_osm(out=tmp_path / "x.osm.pbf")
    with pytest.raises(Loc2VecError, match="bad bbox"):
        fetch_osm(out=tmp_path / "x.osm.pbf", url="http://127.0.0.1:9/x", bbox=(30.8, 50.2, 30.2, 50.6))
    with pytest.raises(Loc2VecError, match="unknown preset"):
        fetch_osm("atlantis", out=tmp_path / "x.osm.pbf")


@pytest.mark.skipif(importlib.util.find_spec("loc2vec_engine.cli") is None, reason="CLI not written yet")
def test_cli_offline_exit_code(tmp_path):
    out = tmp_path / "kyiv.osm.pbf"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "fetch-osm", "kyiv", "--url", _closed_port_url(),
                        "--out", str(out)], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "error: no network" in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
