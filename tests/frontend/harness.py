"""Serve the repository over HTTP and open tests/frontend/harness.html in Chromium.

The harness page loads static/js/markdown.js and exposes it as window.markdown, so
tests drive the renderer through page.evaluate.
"""

import functools
import http.server
import threading
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
HARNESS = "/tests/frontend/harness.html"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".css": "text/css",
        ".woff2": "font/woff2",
    }

    def log_message(self, format, *args):
        pass


def serve_repository():
    """Start a static server for the repository on 127.0.0.1; return (server, thread, url)."""
    handler = functools.partial(QuietHandler, directory=str(ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}"


def open_harness(browser, base_url, **context_options):
    """Open the harness in a new context; return (context, page, list of page errors)."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base_url + HARNESS)
    page.wait_for_function("document.documentElement.dataset.ready === 'true'")
    return context, page, errors
