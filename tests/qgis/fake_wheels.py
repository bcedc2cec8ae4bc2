"""Tiny hand-built wheels and a local package source for tests that run the real pip with no network."""

from __future__ import annotations

import http.server
import os
import threading
import time
import zipfile
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str = "1.0", requires=(), code: str = "ANSWER = 42\n") -> Path:
    """A pure-Python wheel ``name-version`` whose package ``name`` holds ``code``; ``requires``: Requires-Dist."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n"
                                                                                 for r in requires)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", code)
        zf.writestr(f"{info}/METADATA", meta)
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", f"{name}/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


def offline_env(find_links: Path | str) -> dict[str, str]:
    """pip reads only ``find_links`` (a folder or a local URL): no index, no user config, no cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(find_links), PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
    return env


class SlowServer:
    """Serves the wheels of ``folder`` on 127.0.0.1 as a find-links page; files named in ``stall`` send their
    first bytes and then hang until ``close()``, so pip is caught in the middle of an install."""

    def __init__(self, folder: Path, stall=()):
        self.folder, self.stall, self.stop = Path(folder), set(stall), threading.Event()
        self.requested = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                name = self.path.strip("/")
                if not name:
                    links = "".join(f'<a href="/{p.name}">{p.name}</a>\n' for p in sorted(server.folder.glob("*.whl")))
                    body = f"<html><body>{links}</body></html>".encode()
                    self._send(body, "text/html")
                    return
                server.requested.append(name)
                data = (server.folder / name).read_bytes()
                if name in server.stall:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:64])
                    self.wfile.flush()
                    while not server.stop.wait(0.1):
                        pass
                    return
                self._send(data, "application/octet-stream")

            def _send(self, body, kind):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate, timeout: float = 60, app=None) -> bool:
    """Poll ``predicate`` (processing Qt events when ``app`` is given) until true or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app is not None:
            app.processEvents()
        if predicate():
            return True
        time.sleep(0.02)
    return False
