/*
 * Lock benchmark (issue #14 §6): N contenders take one lock in turn, as fast as they can, through
 * raftkv's lock API (POST /v1/locks/{name}, DELETE /v1/locks/{name}?key=) or etcd's v3 lock API
 * over its JSON gateway (POST /v3/lock/lock, /v3/lock/unlock), each under its own lease. Reports
 * acquisitions per second and the handoff latency: from the moment the holder sends its release
 * to the moment the next holder is told it holds the lock, which is what a waiting process feels.
 *
 * A standalone JDK-only program, run in Java 17 single-file source mode:
 *   java bench/LockBench.java --target raftkv --url http://127.0.0.1:8081 --contenders 16 --duration 20s
 *   java bench/LockBench.java --target etcd --url http://127.0.0.1:12379 --contenders 16 --duration 20s
 * (bench/compare-locks.sh starts both clusters and runs both.) Loopback URLs only. Each contender is
 * a thread with its own HttpClient; it counts holders itself (incremented when told it holds,
 * decremented before it sends its release), so two holders at once would show as a violation.
 */

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class LockBench {

    static String target = "raftkv";
    static URI url = URI.create("http://127.0.0.1:8081");
    static int contenders = 16;
    static long durationMs = 20_000;
    static String name = "bench-lock";

    /** When the last holder sent its release (System.nanoTime), 0 before the first release. */
    static final AtomicLong lastReleaseSent = new AtomicLong();
    static final AtomicInteger holders = new AtomicInteger();
    static final AtomicInteger violations = new AtomicInteger();
    static final AtomicInteger errors = new AtomicInteger();
    static final List<Long> handoffs = Collections.synchronizedList(new ArrayList<>());
    static final AtomicLong acquisitions = new AtomicLong();
    static volatile String lastError;

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--target" -> { target = v; i++; }
                case "--url" -> { url = URI.create(v); i++; }
                case "--contenders" -> { contenders = Integer.parseInt(v); i++; }
                case "--duration" -> { durationMs = duration(v); i++; }
                case "--name" -> { name = v; i++; }
                case "--help", "-h" -> {
                    System.out.println("usage: java bench/LockBench.java --target raftkv|etcd --url U [--contenders 16] [--duration 20s] [--name N]");
                    return;
                }
                default -> {
                    System.err.println("unknown argument " + a + " (see --help)");
                    System.exit(2);
                }
            }
        }
        String host = url.getHost();
        if (!(host.equals("localhost") || host.startsWith("127."))) {
            System.err.println("only loopback URLs: " + url);
            System.exit(2);
        }
        if (!target.equals("raftkv") && !target.equals("etcd")) {
            System.err.println("--target is raftkv or etcd");
            System.exit(2);
        }
        long ttl = durationMs / 1000 + 60; // outlives the run: no keepalives needed
        long deadline = System.nanoTime() + durationMs * 1_000_000L;
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < contenders; c++) {
            Thread t = new Thread(() -> contend(ttl, deadline), "contender-" + c);
            threads.add(t);
        }
        long start = System.nanoTime();
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join(durationMs + 120_000);
        }
        double secs = (System.nanoTime() - start) / 1e9;
        List<Long> h = new ArrayList<>(handoffs);
        Collections.sort(h);
        System.out.printf(Locale.ROOT, "%s: %d contenders, %.1fs: %d acquisitions (%.1f/s), handoff p50 %s p99 %s max %s (%d handoffs), "
                + "errors %d, mutual-exclusion violations %d%s%n",
            target, contenders, secs, acquisitions.get(), acquisitions.get() / secs, ms(pct(h, 50)), ms(pct(h, 99)),
            ms(h.isEmpty() ? -1 : h.get(h.size() - 1)), h.size(), errors.get(), violations.get(),
            lastError == null ? "" : " (last error: " + lastError + ")");
        System.exit(violations.get() == 0 ? 0 : 1);
    }

    static void contend(long ttl, long deadline) {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        try {
            String lease = grant(http, ttl);
            while (System.nanoTime() < deadline) {
                String[] key = acquire(http, lease);
                if (key == null) {
                    continue;
                }
                long acquired = System.nanoTime();
                if (holders.incrementAndGet() > 1) {
                    violations.incrementAndGet();
                }
                acquisitions.incrementAndGet();
                long released = lastReleaseSent.get();
                if (released != 0) {
                    handoffs.add(acquired - released);
                }
                holders.decrementAndGet();
                lastReleaseSent.set(System.nanoTime());
                release(http, key);
            }
        } catch (Exception e) {
            errors.incrementAndGet();
            lastError = e.toString();
        }
    }

    static String grant(HttpClient http, long ttl) throws Exception {
        if (target.equals("raftkv")) {
            String body = post(http, "/v1/leases", "{\"ttlSeconds\":" + ttl + "}", 201);
            return field(body, "id");
        }
        String body = post(http, "/v3/lease/grant", "{\"TTL\":" + ttl + "}", 200);
        return field(body, "ID");
    }

    /** The lock's key and (raftkv) fencing token once held, or null after an error (counted; the caller tries again). */
    static String[] acquire(HttpClient http, String lease) throws Exception {
        try {
            if (target.equals("raftkv")) {
                String body = post(http, "/v1/locks/" + name + "?lease=" + lease + "&waitSeconds=60", "", 200);
                return new String[] {field(body, "key"), field(body, "fencingToken")};
            }
            String b64 = Base64.getEncoder().encodeToString(name.getBytes(StandardCharsets.UTF_8));
            String body = post(http, "/v3/lock/lock", "{\"name\":\"" + b64 + "\",\"lease\":" + lease + "}", 200);
            return new String[] {field(body, "key"), null};
        } catch (IllegalStateException e) {
            errors.incrementAndGet();
            lastError = e.getMessage();
            return null;
        }
    }

    static void release(HttpClient http, String[] key) throws Exception {
        try {
            if (target.equals("raftkv")) { // with the token: the release needs no read first
                send(http, HttpRequest.newBuilder(url.resolve("/v1/locks/" + name + "?key="
                    + java.net.URLEncoder.encode(key[0], StandardCharsets.UTF_8) + "&fencingToken=" + key[1])).DELETE(), 200);
            } else {
                post(http, "/v3/lock/unlock", "{\"key\":\"" + key[0] + "\"}", 200);
            }
        } catch (IllegalStateException e) {
            errors.incrementAndGet();
            lastError = e.getMessage();
        }
    }

    static String post(HttpClient http, String path, String body, int expect) throws Exception {
        return send(http, HttpRequest.newBuilder(url.resolve(path)).header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body)), expect);
    }

    static String send(HttpClient http, HttpRequest.Builder request, int expect) throws Exception {
        HttpResponse<String> r = http.send(request.timeout(Duration.ofSeconds(90)).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != expect) {
            throw new IllegalStateException(r.statusCode() + " " + r.body().substring(0, Math.min(200, r.body().length())));
        }
        return r.body();
    }

    /** A top-level string or number field of a small JSON object (etcd writes int64 as strings). */
    static String field(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\"\\s*:\\s*(\"([^\"]*)\"|(-?[0-9]+))").matcher(json);
        if (!m.find()) {
            throw new IllegalStateException("no " + field + " in " + json);
        }
        return m.group(2) != null ? m.group(2) : m.group(3);
    }

    static long pct(List<Long> sorted, int p) {
        if (sorted.isEmpty()) {
            return -1;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    static String ms(long nanos) {
        return nanos < 0 ? "-" : String.format(Locale.ROOT, "%.2fms", nanos / 1e6);
    }

    static long duration(String v) {
        if (v.endsWith("ms")) {
            return Long.parseLong(v.substring(0, v.length() - 2));
        } else if (v.endsWith("s")) {
            return Long.parseLong(v.substring(0, v.length() - 1)) * 1000;
        } else if (v.endsWith("m")) {
            return Long.parseLong(v.substring(0, v.length() - 1)) * 60_000;
        }
        return Long.parseLong(v) * 1000;
    }
}
