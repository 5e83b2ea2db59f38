"""The Python side of one hzcache-bench cell.

The official Hazelcast Python client keeps --inflight operations outstanding through its
non-blocking API (map.get / map.set return Futures; a semaphore of N permits, released in the
done-callback), warms up, measures, and prints one JSON line.

Counting rule, the same in all three runners: an operation counts when it started after the
warm-up and finished before the end of the measurement window. Latency buckets are those of
benchmarks/client/src/histogram.rs: exact below 64 us, then 32 per power of two.
"""

import argparse
import json
import logging
import math
import random
import threading
import time

import hazelcast

LINEAR = 64
SUB_BITS = 5
MAX_EXPONENT = 39
BUCKETS = LINEAR + (MAX_EXPONENT - 5) * (1 << SUB_BITS)


def index(micros):
    v = min(max(micros, 0), (1 << (MAX_EXPONENT + 1)) - 1)
    if v < LINEAR:
        return v
    exponent = v.bit_length() - 1
    sub = (v >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1)
    return LINEAR + (exponent - 6) * (1 << SUB_BITS) + sub


def value_of(i):
    if i < LINEAR:
        return i
    j = i - LINEAR
    exponent = (j >> SUB_BITS) + 6
    sub = j & ((1 << SUB_BITS) - 1)
    shift = exponent - SUB_BITS
    low = ((1 << SUB_BITS) + sub) << shift
    return low + ((1 << shift) - 1) // 2


def percentile(counts, q):
    total = sum(counts)
    if total == 0:
        return 0
    target = max(1, math.ceil(q * total))
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= target:
            return value_of(i)
    return value_of(BUCKETS - 1)


def status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line[len(field):].split()[0])
    except OSError:
        pass
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--member", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--map", default="bench")
    p.add_argument("--op", choices=["get", "set"], required=True)
    p.add_argument("--inflight", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--value-bytes", type=int, default=1024)
    p.add_argument("--keys", type=int, default=10000)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    client = hazelcast.HazelcastClient(
        cluster_name=a.cluster, cluster_members=[a.member], client_name="hzcache-bench-python"
    )
    m = client.get_map(a.map)  # the non-blocking proxy: operations return Futures
    keys = ["k-%d" % i for i in range(a.keys)]
    value = bytearray(i % 251 for i in range(a.value_bytes))  # bytearray = Hazelcast byte[]

    counts = [0] * BUCKETS
    errors = [0]
    permits = threading.Semaphore(a.inflight)
    began = time.monotonic_ns()
    measure_from = began + int(a.warmup * 1e9)
    end = measure_from + int(a.seconds * 1e9)

    def done(future, start):
        finished = time.monotonic_ns()
        if future.exception() is not None:
            errors[0] += 1
        elif start >= measure_from and finished <= end:
            counts[index((finished - start) // 1000)] += 1
        permits.release()

    cpu_from = None
    cpu_end = 0.0
    while True:
        permits.acquire()
        start = time.monotonic_ns()
        if cpu_from is None and start >= measure_from:
            cpu_from = time.process_time()
        if start >= end:
            cpu_end = time.process_time()
            permits.release()
            break
        key = keys[random.randrange(a.keys)]
        f = m.get(key) if a.op == "get" else m.set(key, value)
        f.add_done_callback(lambda fut, s=start: done(fut, s))
    for _ in range(a.inflight):
        permits.acquire()

    print(
        json.dumps(
            {
                "client": "python",
                "op": a.op,
                "inflight": a.inflight,
                "ops": sum(counts),
                "seconds": a.seconds,
                "p50_us": percentile(counts, 0.50),
                "p99_us": percentile(counts, 0.99),
                "errors": errors[0],
                "cpu_s": round(cpu_end - (cpu_from or 0.0), 3),
                "rss_kb": status_kb("VmRSS:"),
                "peak_rss_kb": status_kb("VmHWM:"),
            }
        ),
        flush=True,
    )
    client.shutdown()


if __name__ == "__main__":
    main()
