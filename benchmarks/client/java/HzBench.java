// The Java side of one hzcache-bench cell: the official Hazelcast Java client (from the member's
// own jar) keeps --inflight operations outstanding through its async API (IMap.getAsync /
// setAsync, a Semaphore of N permits), warms up, measures, and prints one JSON line.
// Compiled at bench time by hzcache-bench (javac -cp hazelcast-5.7.0.jar); never committed.
//
// Counting rule, the same in all three runners: an operation counts when it started after the
// warm-up and finished before the end of the measurement window. Latency buckets are those of
// benchmarks/client/src/histogram.rs: exact below 64 us, then 32 per power of two.

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;

import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

public final class HzBench {
    static final int LINEAR = 64;
    static final int SUB_BITS = 5;
    static final int MAX_EXPONENT = 39;
    static final int BUCKETS = LINEAR + (MAX_EXPONENT - 5) * (1 << SUB_BITS);

    static final class Histogram {
        final AtomicLongArray counts = new AtomicLongArray(BUCKETS);

        static int index(long micros) {
            long v = Math.min(Math.max(micros, 0), (1L << (MAX_EXPONENT + 1)) - 1);
            if (v < LINEAR) {
                return (int) v;
            }
            int exponent = 63 - Long.numberOfLeadingZeros(v);
            long sub = (v >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
            return LINEAR + (exponent - 6) * (1 << SUB_BITS) + (int) sub;
        }

        static long value(int index) {
            if (index < LINEAR) {
                return index;
            }
            int j = index - LINEAR;
            int exponent = (j >> SUB_BITS) + 6;
            long sub = j & ((1 << SUB_BITS) - 1);
            int shift = exponent - SUB_BITS;
            long low = ((1L << SUB_BITS) + sub) << shift;
            return low + ((1L << shift) - 1) / 2;
        }

        void record(long micros) {
            counts.incrementAndGet(index(micros));
        }

        long count() {
            long total = 0;
            for (int i = 0; i < BUCKETS; i++) {
                total += counts.get(i);
            }
            return total;
        }

        long percentile(double q) {
            long total = count();
            if (total == 0) {
                return 0;
            }
            long target = Math.max(1, (long) Math.ceil(q * total));
            long seen = 0;
            for (int i = 0; i < BUCKETS; i++) {
                seen += counts.get(i);
                if (seen >= target) {
                    return value(i);
                }
            }
            return value(BUCKETS - 1);
        }
    }

    static long statusKb(String field) {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
                if (line.startsWith(field)) {
                    return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception e) {
            // Not Linux: report 0.
        }
        return 0;
    }

    /**
     * Runs the completion callback on the thread that completed the future (the client's
     * response thread). The plain whenComplete would hand it to Hazelcast's default async
     * executor, ForkJoinPool.commonPool(), which on a 2-core machine has parallelism 1 and is
     * then replaced by a new thread per task: about 2 000 ops/s, a measure of thread start-up
     * rather than of the client.
     */
    static final java.util.concurrent.Executor DIRECT = Runnable::run;

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        String member = args.get("member");
        String cluster = args.get("cluster");
        String mapName = args.getOrDefault("map", "bench");
        boolean get = args.get("op").equals("get");
        int inflight = Integer.parseInt(args.get("inflight"));
        double seconds = Double.parseDouble(args.get("seconds"));
        double warmup = Double.parseDouble(args.getOrDefault("warmup", "2"));
        int valueBytes = Integer.parseInt(args.getOrDefault("value-bytes", "1024"));
        int keyCount = Integer.parseInt(args.getOrDefault("keys", "10000"));

        ClientConfig config = new ClientConfig();
        config.setClusterName(cluster);
        config.setInstanceName("hzcache-bench-java");
        config.getNetworkConfig().addAddress(member);
        config.setProperty("hazelcast.phone.home.enabled", "false");
        HazelcastInstance client = HazelcastClient.newHazelcastClient(config);
        IMap<String, byte[]> map = client.getMap(mapName);

        String[] keys = new String[keyCount];
        for (int i = 0; i < keyCount; i++) {
            keys[i] = "k-" + i;
        }
        byte[] value = new byte[valueBytes];
        for (int i = 0; i < valueBytes; i++) {
            value[i] = (byte) (i % 251);
        }

        Histogram histogram = new Histogram();
        AtomicLong errors = new AtomicLong();
        Semaphore permits = new Semaphore(inflight);
        long began = System.nanoTime();
        long measureFrom = began + (long) (warmup * 1e9);
        long end = measureFrom + (long) (seconds * 1e9);
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long cpuFrom = -1;
        long cpuEnd = 0;
        while (true) {
            permits.acquire();
            long start = System.nanoTime();
            if (cpuFrom < 0 && start >= measureFrom) {
                cpuFrom = os.getProcessCpuTime();
            }
            if (start >= end) {
                cpuEnd = os.getProcessCpuTime();
                permits.release();
                break;
            }
            String key = keys[ThreadLocalRandom.current().nextInt(keyCount)];
            CompletionStage<?> op = get ? map.getAsync(key) : map.setAsync(key, value);
            op.whenCompleteAsync((v, t) -> {
                long done = System.nanoTime();
                if (t != null) {
                    errors.incrementAndGet();
                } else if (start >= measureFrom && done <= end) {
                    histogram.record((done - start) / 1000);
                }
                permits.release();
            }, DIRECT);
        }
        permits.acquire(inflight);

        System.out.printf(
                java.util.Locale.ROOT,
                "{\"client\":\"java\",\"op\":\"%s\",\"inflight\":%d,\"ops\":%d,\"seconds\":%s,"
                        + "\"p50_us\":%d,\"p99_us\":%d,\"errors\":%d,\"cpu_s\":%.3f,\"rss_kb\":%d,\"peak_rss_kb\":%d}%n",
                get ? "get" : "set", inflight, histogram.count(), seconds,
                histogram.percentile(0.50), histogram.percentile(0.99), errors.get(),
                (cpuEnd - Math.max(cpuFrom, 0)) / 1e9,
                statusKb("VmRSS:"), statusKb("VmHWM:"));
        System.out.flush();
        client.shutdown();
    }
}
