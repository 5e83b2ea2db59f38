"""The official Hazelcast Python client's side of the interop tests.

Usage: interop.py MEMBER CLUSTER MAP put KEY VALUE [bytes]
       interop.py MEMBER CLUSTER MAP get KEY
       interop.py MEMBER CLUSTER MAP remove KEY
       interop.py MEMBER CLUSTER MAP owners KEY1,KEY2,...
`get` prints a JSON object: {"found": bool, "type": "str"|"bytes"|..., "value": str}
(bytes values are printed as latin-1 text so they round-trip exactly); `put` and `remove`
print {"ok": true, "at": SECONDS} (wall clock when the member answered).
"""

import json
import sys
import time

import hazelcast


def main() -> int:
    member, cluster, map_name, op, key = sys.argv[1:6]
    client = hazelcast.HazelcastClient(
        cluster_members=[member],
        cluster_name=cluster,
        # Loopback only, and fail fast in tests rather than wait for the default 120 s.
        cluster_connect_timeout=20,
        statistics_enabled=False,
    )
    try:
        m = client.get_map(map_name).blocking()
        if op == "put":
            value = sys.argv[6]
            if len(sys.argv) > 7 and sys.argv[7] == "bytes":
                m.put(key, bytearray(value.encode("utf-8")))
            else:
                m.put(key, value)
            # When the write was acknowledged (wall clock), for latency measurements.
            print(json.dumps({"ok": True, "at": time.time()}))
        elif op == "get":
            v = m.get(key)
            if v is None:
                print(json.dumps({"found": False}))
            elif isinstance(v, (bytes, bytearray)):
                print(json.dumps({"found": True, "type": "bytes", "value": bytes(v).decode("latin-1")}))
            else:
                print(json.dumps({"found": True, "type": type(v).__name__, "value": v}))
        elif op == "partitions":
            # KEY is a comma-separated list; prints each key's partition id.
            ps = client.partition_service
            print(json.dumps([ps.get_partition_id(k) for k in key.split(",")]))
        elif op == "remove":
            m.remove(key)
            print(json.dumps({"ok": True, "at": time.time()}))
        elif op == "owners":
            # KEY is a comma-separated list; prints each key's partition owner as host:port,
            # from the client's partition table (member uuid) and member list (uuid -> address).
            ps = client.partition_service
            keys = key.split(",")
            deadline = time.time() + 20
            while True:
                addresses = {
                    str(mem.uuid): f"{mem.address.host}:{mem.address.port}"
                    for mem in client.cluster_service.get_members()
                }
                owners = [ps.get_partition_owner(ps.get_partition_id(k)) for k in keys]
                if all(o is not None and str(o) in addresses for o in owners) or time.time() > deadline:
                    break
                time.sleep(0.1)
            print(json.dumps([addresses.get(str(o)) for o in owners]))
        else:
            print(f"unknown op {op}", file=sys.stderr)
            return 2
    finally:
        client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
