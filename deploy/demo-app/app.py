"""The demo's origin: the Falcon application hzcache grew from.

It caches in Hazelcast itself, the way the original example did, with the official Hazelcast
Python client: `GET /data?key=K` looks K up in the map `cache` (`map.get`), asks the slow
backend on a miss, and stores the answer (`map.put`). hzcache in front of it caches `/data` in
the same map under the same key, so entries are shared both ways: what the app put is a HIT
through Envoy, and what hzcache stored the app finds with `map.get` (`X-App-Cache: HIT`).

    gunicorn --bind 127.0.0.1:8081 --workers 1 --threads 8 --chdir deploy/demo-app app:app

GET /                 an HTML page, Cache-Control: public, max-age=30
GET /data?key=K       the app-level cache: map.get → slow backend (300 ms) → map.put
GET /cache?key=K      what the map `cache` holds for K (map.get only), never cached
GET /private          a per-user page, Cache-Control: private (never shared)
GET /vary             a greeting per Accept-Language, Vary: Accept-Language
GET /slow             a page that takes a second to render, Cache-Control: public, max-age=30
GET /stats            how many requests each route has seen, and backend calls (JSON), never cached
GET /healthz          200 once the Hazelcast client is connected (compose health check)

One worker process with threads: the counters of /stats live in it.

Environment: HAZELCAST_MEMBERS (comma-separated host:port; the client's default, 127.0.0.1:5701,
when unset), HAZELCAST_CLUSTER_NAME (default "dev", the client's default).
"""

import json
import os
import threading
import time

import falcon
import hazelcast

SEEN = {}
BACKEND_CALLS = {}
LOCK = threading.Lock()

_client = None
_client_lock = threading.Lock()


def hazelcast_client():
    """The app's one Hazelcast client, made on first use (so the server starts at once)."""
    global _client
    with _client_lock:
        if _client is None:
            options = {"cluster_name": os.environ.get("HAZELCAST_CLUSTER_NAME", "dev"),
                       "statistics_enabled": False,
                       # Fail a first call after 30 s instead of waiting for ever; the next
                       # call tries again.
                       "cluster_connect_timeout": 30}
            members = os.environ.get("HAZELCAST_MEMBERS")
            if members:
                options["cluster_members"] = [m.strip() for m in members.split(",") if m.strip()]
            _client = hazelcast.HazelcastClient(**options)
        return _client


def cache_map():
    return hazelcast_client().get_map("cache").blocking()


def backend_lookup(key):
    """The expensive lookup the caches save: a slow "database" query."""
    with LOCK:
        BACKEND_CALLS[key] = BACKEND_CALLS.get(key, 0) + 1
    time.sleep(0.3)
    return f"value of {key} (computed at {time.strftime('%H:%M:%S')})"


def count(req):
    with LOCK:
        SEEN[req.path] = SEEN.get(req.path, 0) + 1


class Index:
    def on_get(self, req, resp):
        count(req)
        resp.content_type = falcon.MEDIA_HTML
        resp.cache_control = ["public", "max-age=30"]
        resp.text = (f"<h1>hzcache demo</h1><p>rendered by the Falcon app at "
                     f"{time.strftime('%H:%M:%S')}</p>\n")


class Data:
    """The original example: map.get, then the backend, then map.put."""

    def on_get(self, req, resp):
        count(req)
        key = req.get_param("key", required=True)
        m = cache_map()
        value = m.get(key)
        if value is None:
            value = backend_lookup(key)
            m.put(key, value)
            resp.set_header("X-App-Cache", "MISS")
        else:
            resp.set_header("X-App-Cache", "HIT")
        resp.content_type = "text/plain; charset=utf-8"
        resp.cache_control = ["public", "max-age=300"]
        resp.text = str(value)


class Peek:
    def on_get(self, req, resp):
        count(req)
        key = req.get_param("key", required=True)
        value = cache_map().get(key)
        resp.cache_control = ["no-store"]
        resp.media = {"key": key, "found": value is not None,
                      "value": None if value is None else str(value)}


class Private:
    def on_get(self, req, resp):
        count(req)
        resp.content_type = "text/plain; charset=utf-8"
        resp.cache_control = ["private", "max-age=60"]
        resp.text = f"your private page at {time.strftime('%H:%M:%S')}\n"


GREETINGS = {"de": "Hallo", "fr": "Bonjour", "es": "Hola"}


class Vary:
    def on_get(self, req, resp):
        count(req)
        lang = (req.get_header("Accept-Language") or "en").split(",")[0].split("-")[0].strip().lower()
        resp.content_type = "text/plain; charset=utf-8"
        resp.cache_control = ["public", "max-age=60"]
        resp.vary = ["Accept-Language"]
        resp.text = f"{GREETINGS.get(lang, 'Hello')} (for {lang}, at {time.strftime('%H:%M:%S')})\n"


class Slow:
    def on_get(self, req, resp):
        count(req)
        time.sleep(1.0)
        resp.content_type = "text/plain; charset=utf-8"
        resp.cache_control = ["public", "max-age=30"]
        resp.text = f"a slow page, rendered in 1 s at {time.strftime('%H:%M:%S')}\n"


class Stats:
    def on_get(self, req, resp):
        with LOCK:
            body = {"requests": dict(SEEN), "backend_calls": dict(BACKEND_CALLS)}
        resp.cache_control = ["no-store"]
        resp.media = body


class Health:
    def on_get(self, req, resp):
        resp.cache_control = ["no-store"]
        try:
            client = hazelcast_client()
            ok = client.lifecycle_service.is_running() and bool(client.cluster_service.get_members())
        except Exception as e:  # not connected (yet): unhealthy, not an error page
            ok, why = False, str(e)
        else:
            why = "" if ok else "no cluster members"
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
        resp.media = {"hazelcast": "connected" if ok else f"not connected: {why}"}


def create_app():
    app = falcon.App()
    app.add_route("/", Index())
    app.add_route("/data", Data())
    app.add_route("/cache", Peek())
    app.add_route("/private", Private())
    app.add_route("/vary", Vary())
    app.add_route("/slow", Slow())
    app.add_route("/stats", Stats())
    app.add_route("/healthz", Health())
    return app


app = create_app()
