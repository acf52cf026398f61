"""A loopback docs server that misbehaves on purpose (500, timeout, truncation, huge page, HTML, redirect off
the host): what the sync's fault tests and the fault campaign run `sync_docs.py --online` against."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODES = ("500", "500-once", "sleep", "truncate", "huge", "huge-unsized", "html", "redirect-off")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``docs/<path>.md`` from ``root``; ``behaviour`` maps a served path to its misbehaviour."""

    root: Path
    behaviour: dict[str, str]
    hits: dict[str, int]

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.lstrip("/")
        self.hits[path] = self.hits.get(path, 0) + 1
        mode = self.behaviour.get(path, "ok")
        if mode == "500" or (mode == "500-once" and self.hits[path] == 1):
            self.send_error(500)
            return
        if mode == "sleep":
            time.sleep(1.0)
        if mode == "redirect-off":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/{path}")
            self.end_headers()
            return
        target = self.root / path.removeprefix("docs/")
        if not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        if mode.startswith("huge"):
            body = body * 40
        if mode == "html":
            body = b"<!DOCTYPE html><html><body>Sign in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/markdown; charset=utf-8")
        if mode != "huge-unsized":  # HTTP/1.0: the body then ends when the server closes the connection
            self.send_header("Content-Length", str(len(body) * 2 if mode == "truncate" else len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # the client hanging up on "sleep" is the point
        pass


@contextmanager
def faulty_docs_server(root: Path) -> Iterator[type[_Handler]]:
    """Serve the mirror at ``root`` on 127.0.0.1; yields the handler class: set ``.behaviour``, read ``.hits``
    and ``.base_url``."""
    handler = type("DocsHandler", (_Handler,), {"root": Path(root), "behaviour": {}, "hits": {}})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    handler.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/docs/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield handler
    finally:
        httpd.shutdown()
        httpd.server_close()
