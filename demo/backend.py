"""The demo's origin: a tiny web application with a few cacheable and uncacheable pages.

    python3 demo/backend.py PORT

GET /                 an HTML page, Cache-Control: max-age=30
GET /data?key=K       a slow "database lookup" for K (300 ms), returned as plain text
GET /private          a per-user page, Cache-Control: private (never shared)
GET /stats            how many requests each path has seen (JSON), never cached
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SEEN = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "hzcache-demo-backend"

    def _send(self, status, body, content_type, cache_control):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", cache_control)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        # The same answer as GET, without the body (RFC 9110 §9.3.2).
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        with LOCK:
            SEEN[url.path] = SEEN.get(url.path, 0) + 1
        now = time.strftime("%H:%M:%S")
        if url.path == "/":
            self._send(200, f"<h1>hzcache demo</h1><p>rendered by the backend at {now}</p>\n",
                       "text/html; charset=utf-8", "max-age=30")
        elif url.path == "/data":
            key = parse_qs(url.query).get("key", [""])[0]
            time.sleep(0.3)  # the expensive lookup that the cache saves
            self._send(200, f"value of {key} (computed at {now})", "text/plain; charset=utf-8",
                       "max-age=300")
        elif url.path == "/private":
            self._send(200, f"your private page at {now}\n", "text/plain; charset=utf-8",
                       "private, max-age=60")
        elif url.path == "/stats":
            with LOCK:
                body = json.dumps(SEEN, sort_keys=True) + "\n"
            self._send(200, body, "application/json", "no-store")
        else:
            self._send(404, "not found\n", "text/plain; charset=utf-8", "no-store")

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + (fmt % args) + "\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"backend listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
