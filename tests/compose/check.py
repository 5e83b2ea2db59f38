"""What `make test-compose` checks on the running compose demo, from the host (127.0.0.1 only).

    check.py cache      MISS → HIT on the cached routes, private never shared, Vary per value,
                        app ↔ proxy sharing both ways
    check.py failover   after one Hazelcast member is killed: every request still answered
                        without an error, and the earlier entries are still HITs
Exits non-zero with the reason on the first failed check.
"""

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

ENVOY = "http://127.0.0.1:10000"
APP = "http://127.0.0.1:8081"
STATE = "/tmp/hzcache-compose-check.json"


def get(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def expect(cond, what):
    if not cond:
        print(f"check: FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"check: ok: {what}")


def cache_of(url, headers=None):
    status, h, body = get(url, headers)
    expect(status == 200, f"GET {url} answers 200 (got {status})")
    return h.get("x-cache", ""), body, h


def cache():
    run = uuid.uuid4().hex[:8]
    # The app's /data through Envoy: MISS (the app computed it, 300 ms), then HIT.
    k1 = f"compose-{run}-1"
    x, body1, _ = cache_of(f"{ENVOY}/data?key={k1}")
    expect(x == "MISS", f"/data?key={k1}: first answer is a MISS (got {x!r})")
    x, body, _ = cache_of(f"{ENVOY}/data?key={k1}")
    expect(x == "HIT" and body == body1, f"/data?key={k1}: second answer is a HIT with the same body (got {x!r})")

    for path, hdrs in (("/", {}), ("/slow", {}), ("/vary", {"Accept-Language": "de"})):
        x1, b1, _ = cache_of(ENVOY + path, hdrs)
        x2, b2, _ = cache_of(ENVOY + path, hdrs)
        expect(x2 == "HIT" and b1 == b2, f"{path}: cached after the first answer ({x1!r} then {x2!r})")
    x, body, _ = cache_of(f"{ENVOY}/vary", {"Accept-Language": "fr"})
    expect(body.startswith("Bonjour"), f"/vary: French is its own variant ({x!r}: {body.strip()!r})")
    for _ in range(2):
        x, _, _ = cache_of(f"{ENVOY}/private")
        expect(x != "HIT", f"/private: never a HIT (got {x!r})")

    # App → proxy: the app computes and map.put()s k2 itself; Envoy then serves it as a HIT
    # and the app's backend ran once.
    k2 = f"compose-{run}-2"
    status, h, app_body = get(f"{APP}/data?key={k2}")
    expect(status == 200 and h.get("x-app-cache") == "MISS", f"app /data?key={k2}: the app computed and stored it")
    x, body, _ = cache_of(f"{ENVOY}/data?key={k2}")
    expect(x == "HIT" and body == app_body, f"/data?key={k2}: what the app put is a HIT through Envoy (got {x!r})")

    # Proxy → app: hzcache stores k3 on a MISS; the app's map.get finds that entry and its
    # backend is not asked again.
    k3 = f"compose-{run}-3"
    x, proxy_body, _ = cache_of(f"{ENVOY}/data?key={k3}")
    expect(x == "MISS", f"/data?key={k3}: a MISS through Envoy")
    status, _, peek = get(f"{APP}/cache?key={k3}")
    peek = json.loads(peek)
    expect(peek.get("found") and peek.get("value") == proxy_body, f"app map.get({k3!r}) reads what hzcache stored: {peek}")
    status, h, body = get(f"{APP}/data?key={k3}")
    expect(h.get("x-app-cache") == "HIT" and body == proxy_body, f"app /data?key={k3}: an app-level HIT")
    _, _, stats = get(f"{APP}/stats")
    calls = json.loads(stats)["backend_calls"]
    expect(calls.get(k1) == 1 and calls.get(k2) == 1 and calls.get(k3) == 1,
           f"the app's backend ran once per key: {[calls.get(k) for k in (k1, k2, k3)]}")
    with open(STATE, "w") as f:
        json.dump({"keys": [k1, k2, k3]}, f)


def failover():
    keys = json.load(open(STATE))["keys"]
    run = uuid.uuid4().hex[:8]
    errors, answers = [], 0
    deadline = time.time() + 20
    i = 0
    # For 20 s after the kill: every answer is a 200 (a miss may pass to the app, which is fine).
    while time.time() < deadline:
        for url in [f"{ENVOY}/data?key={k}" for k in keys] + [f"{ENVOY}/data?key=compose-{run}-{i}", f"{ENVOY}/"]:
            try:
                status, _, _ = get(url, timeout=15)
            except Exception as e:  # connection errors count too
                status = repr(e)
            answers += 1
            if status != 200:
                errors.append((url, status))
        i += 1
    expect(not errors, f"{answers} requests after the member was killed, none failed ({errors[:5]})")
    # The entries survived in their backups on the remaining member.
    for k in keys:
        ok = False
        for _ in range(50):
            x, _, _ = cache_of(f"{ENVOY}/data?key={k}")
            if x == "HIT":
                ok = True
                break
            time.sleep(0.2)
        expect(ok, f"/data?key={k}: still a HIT with one member left")
    status, _, body = get(f"{APP}/healthz")
    expect(status == 200, f"the app's Hazelcast client is still connected ({body.strip()})")


if __name__ == "__main__":
    {"cache": cache, "failover": failover}[sys.argv[1]]()
