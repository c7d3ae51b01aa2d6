/*
 * raftkv soak benchmark: a standalone tool, JDK classes only, run in Java 17 single-file source
 * mode (java bench/Soak.java ...; normally through bin/raftkv-soak). It needs no raftkv classes: it
 * talks to the nodes over HTTP (API.md §3, PUT /v1/kv/{key}) and looks at their processes from
 * the outside.
 *
 * Design
 *  - Load: N closed-loop writers, one thread each in a fixed pool, each doing a synchronous
 *    HttpClient.send() (HTTP/1.1) in a loop; one HttpClient per CLIENT_SHARE writers. Writer i
 *    talks to URL i mod #urls (or always the first with --leader-only). After an error a writer
 *    sleeps ERROR_BACKOFF_MS, so a node that is down costs errors, not a busy loop.
 *  - Counting: cumulative counters (successes, errors, a log-bucket latency histogram, successes
 *    per second of the run). The reporter diffs two snapshots to get an interval, so writers never
 *    wait on the reporter and nothing is reset under their feet.
 *  - Every interval the reporter prints one line: throughput, errors, p50/p99/max latency, then per
 *    node (pid re-read from its pid file each time, as nodes may be restarted) the heap used after
 *    a forced GC (one `jcmd <pid> -f <file>` running GC.run then GC.heap_info), VmRSS from
 *    /proc/<pid>/status, and the data dir's size (sum of regular file sizes). Nodes are sampled in
 *    parallel, each under a timeout; a node that is down, or a jcmd that fails, prints "down"/"?"
 *    and never stops the run.
 *  - Soak mode ends at --duration (or on Ctrl-C, through a shutdown hook) with a summary and a
 *    verdict: heap and disk flat, throughput steady, every node alive (see verdict()).
 *  - Load mode (`load`, or --keys-load N) writes keys 0..N-1 once each as fast as it can, prints
 *    progress per interval, the total time, then the per-node figures once.
 *  - Only loopback URLs (127.x.x.x, localhost) are accepted. Every loop is bounded: writers by the
 *    deadline and stop flag, the reporter by a tick count, requests and jcmd by timeouts.
 */

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Soak {

    static final int CLIENT_SHARE = 8;            // writers per HttpClient
    static final long ERROR_BACKOFF_MS = 100;     // a writer's pause after a failed request
    static final int LOAD_ATTEMPTS = 5;           // load mode: tries per key before giving up on it
    static final long JCMD_TIMEOUT_MS = 30_000;
    static final long MAX_DURATION_MS = 7L * 24 * 3600 * 1000;

    // ------------------------------------------------------------------------------------------
    // Flags

    static final class BadFlag extends Exception {
        private static final long serialVersionUID = 1L;
        BadFlag(String m) { super(m); }
    }

    static final class Config {
        String mode = "soak";                     // soak | load
        long durationMs = 15 * 60_000L;           // soak: run length; load: a cap (default: none)
        boolean durationGiven;
        long intervalMs = 20_000;
        List<URI> urls = new ArrayList<>();
        List<Path> pidFiles = new ArrayList<>();
        List<Path> dataDirs = new ArrayList<>();
        int connections = 64;
        long keys = 10_000;
        int valueBytes = 256;
        boolean leaderOnly;
        long timeoutMs = 10_000;

        static final String USAGE = """
            usage: bin/raftkv-soak [soak|load] [flags]
              soak (default)      random PUTs over --keys keys for --duration, a line per --interval, then a verdict
              load                PUT keys 0..--keys-1 once each as fast as possible (same as --keys-load N)
            flags:
              --duration D        soak run length (default 15m); in load mode an optional cap. D = 500ms|90s|15m|2h
              --interval D        report interval (default 20s)
              --urls U,U,...      node HTTP URLs, loopback only (default http://127.0.0.1:8081,...:8082,...:8083)
              --leader-only       send every write to the first URL instead of spreading over all
              --pids F,F,...      pid files of the nodes (re-read at every sample)
              --data-dirs D,D,... data dirs of the nodes, same order as --pids
              --connections N     concurrent closed-loop writers (default 64)
              --keys N            key space soak/000000.. (default 10000)
              --keys-load N       load mode with N keys
              --value-bytes N     value size (default 256)
              --timeout D         per-request timeout (default 10s)
            exit: 0 pass / load complete, 1 verdict fail / keys failed, 2 bad flag, 3 too short to judge""";

        static Config parse(String[] a) throws BadFlag {
            Config c = new Config();
            int i = 0;
            boolean modeGiven = false;
            if (a.length > 0 && !a[0].startsWith("-")) {
                if (!a[0].equals("soak") && !a[0].equals("load")) {
                    throw new BadFlag("unknown command '" + a[0] + "' (expected soak or load)");
                }
                c.mode = a[0];
                modeGiven = true;
                i = 1;
            }
            boolean urlsGiven = false;
            for (; i < a.length; i++) {
                String flag = a[i];
                String v = null;
                int eq = flag.indexOf('=');
                if (flag.startsWith("--") && eq > 0) {
                    v = flag.substring(eq + 1);
                    flag = flag.substring(0, eq);
                }
                if (flag.equals("--help") || flag.equals("-h")) {
                    System.out.println(USAGE);
                    System.exit(0);
                }
                if (flag.equals("--leader-only")) {
                    if (v != null) throw new BadFlag("--leader-only takes no value");
                    c.leaderOnly = true;
                    continue;
                }
                if (!List.of("--duration", "--interval", "--urls", "--pids", "--data-dirs", "--connections",
                        "--keys", "--keys-load", "--value-bytes", "--timeout").contains(flag)) {
                    throw new BadFlag("unknown " + (flag.startsWith("-") ? "flag " : "argument ") + flag
                            + " (see --help)");
                }
                if (v == null) {
                    if (i + 1 >= a.length) throw new BadFlag(flag + " needs a value");
                    v = a[++i];
                }
                switch (flag) {
                    case "--duration" -> { c.durationMs = duration(flag, v); c.durationGiven = true; }
                    case "--interval" -> c.intervalMs = duration(flag, v);
                    case "--timeout" -> c.timeoutMs = duration(flag, v);
                    case "--urls" -> {
                        c.urls.clear();
                        for (String u : list(flag, v)) c.urls.add(loopbackUrl(u));
                        urlsGiven = true;
                    }
                    case "--pids" -> { c.pidFiles.clear(); for (String p : list(flag, v)) c.pidFiles.add(Path.of(p)); }
                    case "--data-dirs" -> { c.dataDirs.clear(); for (String d : list(flag, v)) c.dataDirs.add(Path.of(d)); }
                    case "--connections" -> c.connections = (int) number(flag, v, 1, 4096);
                    case "--keys" -> c.keys = number(flag, v, 1, 1_000_000_000L);
                    case "--keys-load" -> {
                        if (modeGiven && c.mode.equals("soak")) throw new BadFlag("--keys-load is load mode, not soak");
                        c.mode = "load";
                        c.keys = number(flag, v, 1, 1_000_000_000L);
                    }
                    case "--value-bytes" -> c.valueBytes = (int) number(flag, v, 0, 1 << 20);
                    default -> throw new BadFlag("unknown flag " + flag);
                }
            }
            if (!urlsGiven) {
                for (int p = 8081; p <= 8083; p++) c.urls.add(URI.create("http://127.0.0.1:" + p));
            }
            if (c.intervalMs < 1000 || c.intervalMs > 3600_000) throw new BadFlag("--interval must be 1s..1h");
            if (c.timeoutMs < 100 || c.timeoutMs > 300_000) throw new BadFlag("--timeout must be 100ms..5m");
            if (c.durationGiven && (c.durationMs < 1000 || c.durationMs > MAX_DURATION_MS)) {
                throw new BadFlag("--duration must be 1s..7d");
            }
            if (c.mode.equals("load") && !c.durationGiven) c.durationMs = MAX_DURATION_MS;
            if (!c.pidFiles.isEmpty() && !c.dataDirs.isEmpty() && c.pidFiles.size() != c.dataDirs.size()) {
                throw new BadFlag("--pids has " + c.pidFiles.size() + " entries but --data-dirs has " + c.dataDirs.size());
            }
            return c;
        }

        static List<String> list(String flag, String v) throws BadFlag {
            List<String> out = new ArrayList<>();
            for (String s : v.split(",")) {
                if (s.isBlank()) throw new BadFlag(flag + " has an empty entry: '" + v + "'");
                out.add(s.trim());
            }
            return out;
        }

        static long number(String flag, String v, long min, long max) throws BadFlag {
            long n;
            try {
                n = Long.parseLong(v.replace("_", ""));
            } catch (NumberFormatException e) {
                throw new BadFlag(flag + " wants a whole number, got '" + v + "'");
            }
            if (n < min || n > max) throw new BadFlag(flag + " must be " + min + ".." + max + ", got " + n);
            return n;
        }

        static long duration(String flag, String v) throws BadFlag {
            Matcher m = Pattern.compile("(\\d{1,9})(ms|s|m|h|d)").matcher(v.trim());
            if (!m.matches()) throw new BadFlag(flag + " wants a duration like 500ms, 20s, 15m, 2h; got '" + v + "'");
            long n = Long.parseLong(m.group(1));
            return switch (m.group(2)) {
                case "ms" -> n;
                case "s" -> n * 1000;
                case "m" -> n * 60_000;
                case "h" -> n * 3600_000;
                default -> n * 86_400_000;
            };
        }

        /** Refuses anything but http(s)://127.x.x.x or localhost; returns the URL without a trailing slash. */
        static URI loopbackUrl(String s) throws BadFlag {
            URI u;
            try {
                u = new URI(s);
            } catch (Exception e) {
                throw new BadFlag("not a URL: '" + s + "'");
            }
            String scheme = u.getScheme();
            if (scheme == null || !(scheme.equals("http") || scheme.equals("https"))) {
                throw new BadFlag("URL must be http:// or https://: '" + s + "'");
            }
            String host = u.getHost();
            if (host == null || !(host.equalsIgnoreCase("localhost") || isLoopbackV4(host))) {
                throw new BadFlag("refusing non-loopback URL '" + s + "' (only 127.x.x.x or localhost)");
            }
            if (u.getRawQuery() != null || u.getRawFragment() != null || u.getRawUserInfo() != null) {
                throw new BadFlag("URL must be a plain base URL: '" + s + "'");
            }
            String str = u.toString();
            while (str.endsWith("/")) str = str.substring(0, str.length() - 1);
            return URI.create(str);
        }

        static boolean isLoopbackV4(String host) {
            String[] p = host.split("\\.", -1);
            if (p.length != 4 || !p[0].equals("127")) return false;
            for (String o : p) {
                if (!o.matches("\\d{1,3}") || Integer.parseInt(o) > 255) return false;
            }
            return true;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Latency histogram: buckets of microseconds, exact below 8 µs, then 8 buckets per power of two
    // (each at most 12.5% wide). Cumulative and lock-free; intervals come from diffing snapshots.

    static final class Hist {
        static final int SUB_BITS = 3, SUB = 1 << SUB_BITS, MAX_EXP = 40;
        static final int BUCKETS = (MAX_EXP - SUB_BITS + 1) * SUB + SUB;

        static int bucket(long us) {
            if (us < SUB) return (int) Math.max(us, 0);
            int e = 63 - Long.numberOfLeadingZeros(us);
            int idx = (e - SUB_BITS + 1) * SUB + (int) ((us >>> (e - SUB_BITS)) - SUB);
            return Math.min(idx, BUCKETS - 1);
        }

        static long lowerBound(int idx) {
            if (idx < SUB) return idx;
            int e = idx / SUB - 1 + SUB_BITS;
            return ((long) SUB + idx % SUB) << (e - SUB_BITS);
        }

        /** The p-quantile (0..1) in milliseconds, as the middle of its bucket; NaN when empty. */
        static double quantileMs(long[] counts, double p) {
            long total = 0;
            for (long c : counts) total += c;
            if (total == 0) return Double.NaN;
            long rank = Math.max(1, (long) Math.ceil(p * total));
            long seen = 0;
            for (int i = 0; i < counts.length; i++) {
                seen += counts[i];
                if (seen >= rank) return (lowerBound(i) + lowerBound(i + 1)) / 2.0 / 1000.0;
            }
            return Double.NaN;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Counters shared by the writers

    static final class Stats {
        final LongAdder ok = new LongAdder();
        final LongAdder err = new LongAdder();
        final AtomicLongArray hist = new AtomicLongArray(Hist.BUCKETS);
        final AtomicLong maxMicros = new AtomicLong();       // since the last snapshot
        final AtomicReference<String> lastError = new AtomicReference<>();
        final AtomicLongArray perSecond;                     // successes in second s of the run
        final long startNanos;

        Stats(long startNanos, int seconds) {
            this.startNanos = startNanos;
            this.perSecond = new AtomicLongArray(seconds);
        }

        void success(long micros, long nowNanos) {
            ok.increment();
            hist.incrementAndGet(Hist.bucket(micros));
            maxMicros.accumulateAndGet(micros, Math::max);
            long s = (nowNanos - startNanos) / 1_000_000_000L;
            if (s >= 0 && s < perSecond.length()) perSecond.incrementAndGet((int) s);
        }

        void error(String what) {
            err.increment();
            lastError.set(what);
        }

        Snapshot snapshot() {
            long[] h = new long[Hist.BUCKETS];
            for (int i = 0; i < h.length; i++) h[i] = hist.get(i);
            return new Snapshot(System.nanoTime(), ok.sum(), err.sum(), h,
                    maxMicros.getAndSet(0), lastError.getAndSet(null));
        }

        /** Successes in seconds [from, to) of the run. */
        long successesBetween(int from, int to) {
            long n = 0;
            for (int s = Math.max(0, from); s < Math.min(to, perSecond.length()); s++) n += perSecond.get(s);
            return n;
        }
    }

    record Snapshot(long nanos, long ok, long err, long[] hist, long maxMicros, String lastError) {
        /** This snapshot minus an earlier one, as a printable interval. */
        String describe(Snapshot before) {
            double secs = Math.max(1e-9, (nanos - before.nanos) / 1e9);
            long[] h = new long[hist.length];
            for (int i = 0; i < h.length; i++) h[i] = hist[i] - before.hist[i];
            return String.format(Locale.ROOT, "w/s %8.1f  err %5d  p50 %s  p99 %s  max %s",
                    (ok - before.ok) / secs, err - before.err,
                    ms(Hist.quantileMs(h, 0.50)), ms(Hist.quantileMs(h, 0.99)),
                    ok == before.ok ? ms(Double.NaN) : ms(maxMicros / 1000.0));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Nodes seen from the outside: pid file, process, data dir

    static final long NOT_SAMPLED = -2;  // heap figure skipped on purpose (summary after Ctrl-C)

    /** One node's figures; heap, rss, disk are bytes, -1 when unknown. */
    record NodeSample(String name, boolean hasPid, boolean alive, long pid, long heap, long rss, long disk) {
        String describe() {
            StringBuilder b = new StringBuilder(name);
            if (hasPid) {
                if (alive) {
                    b.append(" heap ").append(heap == NOT_SAMPLED ? "(not sampled)" : bytes(heap));
                    b.append(" rss ").append(bytes(rss));
                }
                else b.append(" down");
            }
            if (disk >= 0) b.append(" disk ").append(bytes(disk));
            return b.toString();
        }
    }

    static final class Node {
        static final Pattern G1 = Pattern.compile("garbage-first heap\\s+total\\s+\\d+K,\\s+used\\s+(\\d+)K");
        static final Pattern GENERATION = Pattern.compile("total\\s+\\d+[KMG]?,\\s+used\\s+(\\d+)([KMG]?)");
        static final Pattern ZGC = Pattern.compile("ZHeap\\s+used\\s+(\\d+)([KMG])");
        static final Pattern SHENANDOAH = Pattern.compile("(\\d+)([KMG]) used");

        final String name;
        final Path pidFile;   // null: not given
        final Path dataDir;   // null: not given
        final Map<String, Boolean> notes = new ConcurrentHashMap<>();  // problems already reported
        Path jcmdOut;

        Node(String name, Path pidFile, Path dataDir) {
            this.name = name;
            this.pidFile = pidFile;
            this.dataDir = dataDir;
        }

        /** The pid from the pid file if that process is alive, else -1. */
        long livePid() {
            if (pidFile == null) return -1;
            try {
                long pid = Long.parseLong(Files.readString(pidFile).trim());
                return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) ? pid : -1;
            } catch (IOException | NumberFormatException e) {
                return -1;
            }
        }

        NodeSample sample(boolean withHeap) {
            long pid = livePid();
            long heap = -1, rss = -1;
            if (pid > 0) {
                rss = rss(pid);
                heap = withHeap ? heapAfterGc(pid) : NOT_SAMPLED;
            }
            return new NodeSample(name, pidFile != null, pid > 0, pid, heap, rss, diskUsage());
        }

        static long rss(long pid) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                    if (line.startsWith("VmRSS:")) {
                        return Long.parseLong(line.substring(6).replace("kB", "").trim()) * 1024;
                    }
                }
            } catch (IOException | RuntimeException e) {
                // process gone between the check and the read, or no /proc
            }
            return -1;
        }

        long diskUsage() {
            if (dataDir == null) return -1;
            if (!Files.isDirectory(dataDir)) return 0;
            long[] sum = {0};
            try {
                Files.walkFileTree(dataDir, new SimpleFileVisitor<>() {
                    @Override public FileVisitResult visitFile(Path f, BasicFileAttributes a) {
                        if (a.isRegularFile()) sum[0] += a.size();
                        return FileVisitResult.CONTINUE;
                    }
                    @Override public FileVisitResult visitFileFailed(Path f, IOException e) {
                        return FileVisitResult.CONTINUE;  // a file deleted while we walk (compaction)
                    }
                });
            } catch (IOException e) {
                note("cannot walk " + dataDir + ": " + e.getMessage());
            }
            return sum[0];
        }

        /**
         * Creates the jcmd command file and this node's output file. Called at start-up, as files
         * created while the JVM shuts down (Ctrl-C) could not be registered for deletion.
         */
        void prepareJcmd() throws IOException {
            jcmdCommands();
            Path out = Files.createTempFile("raftkv-soak-" + name, ".out");
            out.toFile().deleteOnExit();
            jcmdOut = out;
        }

        /** Forces a full GC then reads the heap occupancy, in one jcmd run; -1 when that fails. */
        long heapAfterGc(long pid) {
            Process p = null;
            try {
                if (jcmdOut == null) prepareJcmd();
                p = new ProcessBuilder(JCMD, "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1",
                        String.valueOf(pid), "-f", jcmdCommands().toString())
                        .redirectErrorStream(true).redirectOutput(jcmdOut.toFile()).start();
                if (!p.waitFor(JCMD_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
                    note("jcmd timed out on pid " + pid);
                    return -1;
                }
                String out = Files.readString(jcmdOut);
                if (p.exitValue() != 0) {
                    note("jcmd on pid " + pid + " failed: " + firstLines(out));
                    return -1;
                }
                long used = parseHeapUsed(out);
                if (used < 0) note("cannot parse GC.heap_info of pid " + pid + ": " + firstLines(out));
                return used;
            } catch (IOException e) {
                note("cannot run jcmd (is a JDK on the PATH?): " + e.getMessage());
                return -1;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return -1;
            } finally {
                if (p != null && p.isAlive()) p.destroyForcibly();
            }
        }

        /** Heap used from GC.heap_info: G1, then Serial/Parallel (generations summed), ZGC, Shenandoah. */
        static long parseHeapUsed(String out) {
            Matcher m = G1.matcher(out);
            if (m.find()) return Long.parseLong(m.group(1)) * 1024;
            String heapPart = out.contains("Metaspace") ? out.substring(0, out.indexOf("Metaspace")) : out;
            long sum = 0;
            boolean any = false;
            for (String line : heapPart.split("\n")) {
                Matcher g = GENERATION.matcher(line);
                if (g.find()) { sum += scaled(g.group(1), g.group(2)); any = true; }
            }
            if (any) return sum;
            m = ZGC.matcher(heapPart);
            if (m.find()) return scaled(m.group(1), m.group(2));
            m = SHENANDOAH.matcher(heapPart);
            if (m.find()) return scaled(m.group(1), m.group(2));
            return -1;
        }

        static long scaled(String n, String unit) {
            long v = Long.parseLong(n);
            return switch (unit) {
                case "K" -> v << 10;
                case "M" -> v << 20;
                case "G" -> v << 30;
                default -> v;
            };
        }

        /** Prints a problem once per node and kind, so a broken jcmd does not flood the output. */
        void note(String problem) {
            String kind = problem.length() > 24 ? problem.substring(0, 24) : problem;
            if (notes.putIfAbsent(kind, Boolean.TRUE) == null) {
                System.err.println("raftkv-soak: note: " + name + ": " + problem);
            }
        }

        static String firstLines(String s) {
            String one = s.strip().replace('\n', ' ');
            return one.length() > 160 ? one.substring(0, 160) + "..." : one;
        }
    }

    static final String JCMD = findJcmd();
    static volatile Path jcmdCommandFile;

    static String findJcmd() {
        Path own = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        return Files.isExecutable(own) ? own.toString() : "jcmd";
    }

    static synchronized Path jcmdCommands() throws IOException {
        if (jcmdCommandFile == null) {
            Path f = Files.createTempFile("raftkv-soak-", ".jcmd");
            Files.writeString(f, "GC.run\nGC.heap_info\n");
            f.toFile().deleteOnExit();
            jcmdCommandFile = f;
        }
        return jcmdCommandFile;
    }

    // ------------------------------------------------------------------------------------------
    // The run

    final Config cfg;
    final List<Node> nodes = new ArrayList<>();
    final HttpClient[] clients;
    final long startNanos = System.nanoTime();
    final long deadlineNanos;
    final Stats stats;
    final int keyWidth;
    final AtomicLong nextKey = new AtomicLong();     // load mode
    final LongAdder failedKeys = new LongAdder();    // load mode
    final List<Record> samples = new ArrayList<>();  // soak mode: per-interval node figures
    final Object finishLock = new Object();
    volatile boolean stop;
    volatile boolean finished;
    ExecutorService writers;
    final ExecutorService samplers;

    /** Node figures of the interval that ended tSec seconds into the run. */
    record Record(double tSec, List<NodeSample> nodes) {}

    Soak(Config cfg) {
        this.cfg = cfg;
        int n = Math.max(cfg.pidFiles.size(), cfg.dataDirs.size());
        for (int i = 0; i < n; i++) {
            Path pid = i < cfg.pidFiles.size() ? cfg.pidFiles.get(i) : null;
            Path dir = i < cfg.dataDirs.size() ? cfg.dataDirs.get(i) : null;
            String name = pid != null ? pid.getFileName().toString().replaceFirst("\\.pid$", "")
                    : dir.getFileName().toString();
            Node node = new Node(name, pid, dir);
            if (pid != null) {
                try {
                    node.prepareJcmd();
                } catch (IOException e) {
                    node.note("cannot create a temp file for jcmd: " + e.getMessage());
                }
            }
            nodes.add(node);
        }
        clients = new HttpClient[(cfg.connections + CLIENT_SHARE - 1) / CLIENT_SHARE];
        for (int i = 0; i < clients.length; i++) {
            clients[i] = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofMillis(cfg.timeoutMs)).build();
        }
        deadlineNanos = startNanos + cfg.durationMs * 1_000_000L;
        int seconds = cfg.mode.equals("soak") ? (int) (cfg.durationMs / 1000) + 2 : 1;
        stats = new Stats(startNanos, seconds);
        keyWidth = Math.max(6, String.valueOf(cfg.keys - 1).length());
        samplers = Executors.newFixedThreadPool(Math.max(1, nodes.size()), daemon("soak-sampler"));
    }

    static java.util.concurrent.ThreadFactory daemon(String prefix) {
        AtomicLong n = new AtomicLong();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    public static void main(String[] args) {
        Config cfg;
        try {
            cfg = Config.parse(args);
        } catch (BadFlag e) {
            System.err.println("raftkv-soak: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(new Soak(cfg).run());
    }

    int run() {
        boolean soak = cfg.mode.equals("soak");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> finish(true), "soak-summary"));
        System.out.printf(Locale.ROOT, "raftkv-soak: %s, %s, %d connections over %s, %d keys, %d-byte values, report every %s%n",
                cfg.mode, soak ? "duration " + dur(cfg.durationMs)
                        : (cfg.durationGiven ? "cap " + dur(cfg.durationMs) : "no time cap"),
                cfg.connections, cfg.leaderOnly ? cfg.urls.get(0) + " only" : cfg.urls, cfg.keys,
                cfg.valueBytes, dur(cfg.intervalMs));
        if (!nodes.isEmpty()) {
            System.out.println("raftkv-soak: per node: heap used after a forced GC (jcmd GC.run), RSS, data-dir size; "
                    + "down = pid file missing or process dead");
        }
        System.out.flush();

        CountDownLatch done = new CountDownLatch(cfg.connections);
        writers = Executors.newFixedThreadPool(cfg.connections, daemon("soak-writer"));
        for (int i = 0; i < cfg.connections; i++) {
            int id = i;
            writers.execute(() -> {
                try {
                    if (soak) soakWriter(id); else loadWriter(id);
                } finally {
                    done.countDown();
                }
            });
        }

        Snapshot prev = stats.snapshot();
        long ticks = (cfg.durationMs + cfg.intervalMs - 1) / cfg.intervalMs;
        for (long k = 1; k <= ticks && !stop; k++) {
            long tickNanos = startNanos + Math.min(k * cfg.intervalMs, cfg.durationMs) * 1_000_000L;
            try {
                long wait = tickNanos - System.nanoTime();
                if (soak) {
                    if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
                } else if (wait > 0 && done.await(wait, TimeUnit.NANOSECONDS)) {
                    break;  // every key written: the summary reports the last stretch
                }
            } catch (InterruptedException e) {
                break;
            }
            Snapshot now = stats.snapshot();
            String line = elapsed(now.nanos) + "  " + now.describe(prev);
            if (!soak) {
                line += String.format(Locale.ROOT, "  keys %d/%d (%.1f%%)", now.ok(), cfg.keys, 100.0 * now.ok() / cfg.keys);
            } else if (!nodes.isEmpty()) {
                List<NodeSample> ns = sampleNodes(true);
                synchronized (samples) {
                    samples.add(new Record((tickNanos - startNanos) / 1e9, ns));
                }
                for (NodeSample s : ns) line += " | " + s.describe();
            }
            if (now.lastError() != null) line += "  (last error: " + now.lastError() + ")";
            if (!finished) {
                System.out.println(line);
                System.out.flush();
            }
            prev = now;
        }
        stop = true;
        writers.shutdownNow();
        try {
            writers.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return finish(false);
    }

    // ------------------------------------------------------------------------------------------
    // Writers

    String key(long i) {
        String digits = Long.toString(i);
        return "soak/" + "0".repeat(Math.max(0, keyWidth - digits.length())) + digits;
    }

    URI target(int writer) {
        return cfg.leaderOnly ? cfg.urls.get(0) : cfg.urls.get(writer % cfg.urls.size());
    }

    void soakWriter(int id) {
        HttpClient client = clients[id / CLIENT_SHARE];
        URI base = target(id);
        byte[] value = new byte[cfg.valueBytes];
        while (!stop && System.nanoTime() < deadlineNanos) {
            if (!put(client, base, key(ThreadLocalRandom.current().nextLong(cfg.keys)), value)) backoff();
        }
    }

    void loadWriter(int id) {
        HttpClient client = clients[id / CLIENT_SHARE];
        URI base = target(id);
        byte[] value = new byte[cfg.valueBytes];
        while (!stop && System.nanoTime() < deadlineNanos) {
            long k = nextKey.getAndIncrement();
            if (k >= cfg.keys) return;
            boolean ok = false;
            for (int attempt = 1; attempt <= LOAD_ATTEMPTS && !ok && !stop; attempt++) {
                ok = put(client, base, key(k), value);
                if (!ok) backoff();
            }
            if (!ok && !stop) failedKeys.increment();
        }
    }

    /** One PUT with a fresh random printable value; true on 2xx. Errors are counted here. */
    boolean put(HttpClient client, URI base, String key, byte[] value) {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        for (int i = 0; i < value.length; i++) value[i] = (byte) ('a' + r.nextInt(26));
        HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/v1/kv/" + key))
                .timeout(Duration.ofMillis(cfg.timeoutMs))
                .header("Content-Type", "application/octet-stream")
                .PUT(HttpRequest.BodyPublishers.ofByteArray(value))
                .build();
        long t0 = System.nanoTime();
        try {
            HttpResponse<byte[]> resp = client.send(req, HttpResponse.BodyHandlers.ofByteArray());
            long t1 = System.nanoTime();
            if (resp.statusCode() / 100 == 2) {
                stats.success((t1 - t0) / 1000, t1);
                return true;
            }
            String body = new String(resp.body(), StandardCharsets.UTF_8).strip();
            stats.error("HTTP " + resp.statusCode() + " from " + base + (body.isEmpty() ? "" : " " + clip(body, 100)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop = stop || writers.isShutdown();
        } catch (IOException | RuntimeException e) {
            if (!stop) stats.error(e.getClass().getSimpleName() + " from " + base
                    + (e.getMessage() == null ? "" : ": " + clip(e.getMessage(), 100)));
        }
        return false;
    }

    void backoff() {
        try {
            Thread.sleep(ERROR_BACKOFF_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop = true;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Sampling, summary, verdict

    /** Samples all nodes in parallel; a node whose sampling hangs past the timeout shows as unknown. */
    List<NodeSample> sampleNodes(boolean withHeap) {
        List<Future<NodeSample>> fs = new ArrayList<>();
        for (Node n : nodes) fs.add(samplers.submit(() -> n.sample(withHeap)));
        List<NodeSample> out = new ArrayList<>();
        long until = System.nanoTime() + (JCMD_TIMEOUT_MS + 5000) * 1_000_000L;
        for (int i = 0; i < fs.size(); i++) {
            Node n = nodes.get(i);
            try {
                out.add(fs.get(i).get(Math.max(0, until - System.nanoTime()), TimeUnit.NANOSECONDS));
            } catch (Exception e) {
                fs.get(i).cancel(true);
                out.add(new NodeSample(n.name, n.pidFile != null, n.livePid() > 0, -1, -1, -1, -1));
            }
        }
        return out;
    }

    /** Prints the summary once (normal end or Ctrl-C) and returns the exit code. */
    int finish(boolean fromHook) {
        synchronized (finishLock) {
            if (finished) return 0;
            finished = true;
            stop = true;
            long endNanos = Math.min(System.nanoTime(), deadlineNanos);
            double secs = Math.max(1e-9, (endNanos - startNanos) / 1e9);
            Snapshot all = stats.snapshot();
            long[] zero = new long[Hist.BUCKETS];
            System.out.println();
            System.out.printf(Locale.ROOT, "== %s %s after %s: %d writes ok, %d errors, %.1f writes/s, p50 %s p99 %s%n",
                    cfg.mode, fromHook ? "interrupted" : "finished", dur((long) (secs * 1000)), all.ok(), all.err(),
                    all.ok() / secs, ms(Hist.quantileMs(all.hist(), 0.50)).strip(),
                    ms(Hist.quantileMs(all.hist(), 0.99)).strip());
            int code;
            if (cfg.mode.equals("load")) {
                long written = all.ok();
                long failed = failedKeys.sum();
                long notTried = Math.max(0, cfg.keys - Math.min(nextKey.get(), cfg.keys));
                System.out.printf(Locale.ROOT, "== load: %d of %d keys written in %s (%.1f keys/s), %d failed after %d attempts, %d not attempted%n",
                        written, cfg.keys, dur((long) (secs * 1000)), written / secs, failed, LOAD_ATTEMPTS, notTried);
                if (!nodes.isEmpty()) {
                    // From the hook (Ctrl-C) skip jcmd: it would delay the exit and may itself be interrupted.
                    for (NodeSample s : sampleNodes(!fromHook)) System.out.println("   " + s.describe());
                }
                code = written == cfg.keys ? 0 : 1;
            } else {
                code = verdict(secs);
            }
            System.out.flush();
            return code;
        }
    }

    /**
     * The bar: heap and disk flat (each node's max in the last 5 minutes at most 10% above its max
     * in minutes 5-10; judged only for runs of at least 15 minutes), throughput in the last minute
     * at least 85% of the second minute's (needs 3 minutes, so the two do not overlap), and every
     * node alive at the end. Returns 0 pass, 1 fail, 3 something too short to judge.
     */
    int verdict(double secs) {
        List<Record> recs;
        synchronized (samples) {
            recs = new ArrayList<>(samples);
        }
        List<String> results = new ArrayList<>();
        System.out.println("== verdict");

        boolean longEnough = secs >= 15 * 60 - 1;  // 1 s of slack for timer rounding
        for (String what : List.of("heap", "disk")) {
            boolean measured = what.equals("heap") ? nodes.stream().anyMatch(n -> n.pidFile != null)
                    : nodes.stream().anyMatch(n -> n.dataDir != null);
            if (!measured) {
                System.out.printf("   %s flat:   not measured (no --%s)%n", what, what.equals("heap") ? "pids" : "data-dirs");
                continue;
            }
            if (!longEnough) {
                System.out.printf("   %s flat:   too short to judge (needs a run of at least 15m)%n", what);
                results.add("short");
                continue;
            }
            boolean pass = true;
            StringBuilder fig = new StringBuilder();
            for (int i = 0; i < nodes.size(); i++) {
                Node n = nodes.get(i);
                if (what.equals("heap") ? n.pidFile == null : n.dataDir == null) continue;
                long mid = maxOf(recs, i, what, 300, 600);
                long last = maxOf(recs, i, what, secs - 300, secs);
                boolean ok = mid > 0 && last >= 0 && last <= mid * 1.10;
                pass &= ok;
                fig.append(String.format(Locale.ROOT, "%n      %s: max min 5-10 %s, max last 5 min %s%s %s",
                        n.name, mid < 0 ? "no data" : bytes(mid), last < 0 ? "no data" : bytes(last),
                        mid > 0 && last >= 0 ? String.format(Locale.ROOT, " (%+.1f%%)", 100.0 * (last - mid) / mid) : "",
                        ok ? "ok" : "FAIL"));
            }
            System.out.printf("   %s flat:   %s (last-5-min max <= 110%% of minutes-5-10 max)%s%n", what, pass ? "PASS" : "FAIL", fig);
            results.add(pass ? "pass" : "fail");
        }

        if (secs < 180 - 1) {
            System.out.println("   throughput: too short to judge (needs a run of at least 3m)");
            results.add("short");
        } else {
            int end = (int) Math.floor(secs + 0.5);
            double second = stats.successesBetween(60, 120) / 60.0;
            double lastMin = stats.successesBetween(end - 60, end) / 60.0;
            boolean ok = second > 0 && lastMin >= second * 0.85;
            System.out.printf(Locale.ROOT, "   throughput: %s (last minute >= 85%% of second minute): second minute %.1f w/s, last minute %.1f w/s%s%n",
                    ok ? "PASS" : "FAIL", second, lastMin,
                    second > 0 ? String.format(Locale.ROOT, " (%+.1f%%)", 100.0 * (lastMin - second) / second) : "");
            results.add(ok ? "pass" : "fail");
        }

        if (nodes.stream().noneMatch(n -> n.pidFile != null)) {
            System.out.println("   alive:      not measured (no --pids)");
        } else {
            boolean all = true;
            StringBuilder fig = new StringBuilder();
            for (Node n : nodes) {
                if (n.pidFile == null) continue;
                long pid = n.livePid();
                all &= pid > 0;
                fig.append(" ").append(n.name).append(pid > 0 ? " up (pid " + pid + ")" : " DOWN");
            }
            System.out.printf("   alive:      %s:%s%n", all ? "PASS" : "FAIL", fig);
            results.add(all ? "pass" : "fail");
        }

        if (results.contains("fail")) {
            System.out.println("VERDICT: FAIL");
            return 1;
        }
        if (results.contains("short")) {
            System.out.println("VERDICT: TOO SHORT TO JUDGE (no check failed)");
            return 3;
        }
        System.out.println("VERDICT: PASS");
        return 0;
    }

    /** Max of node i's heap or disk over the intervals ending in (from, to] seconds; -1 if none. */
    static long maxOf(List<Record> recs, int i, String what, double from, double to) {
        long max = -1;
        for (Record r : recs) {
            if (r.tSec() <= from || r.tSec() > to + 0.001) continue;
            NodeSample s = r.nodes().get(i);
            long v = what.equals("heap") ? s.heap() : s.disk();
            max = Math.max(max, v);
        }
        return max;
    }

    // ------------------------------------------------------------------------------------------
    // Formatting

    String elapsed(long nanos) {
        long s = (nanos - startNanos) / 1_000_000_000L;
        return String.format(Locale.ROOT, "%3d:%02d", s / 60, s % 60);
    }

    static String ms(double v) {
        if (Double.isNaN(v)) return "     -  ";
        return String.format(Locale.ROOT, v < 100 ? "%6.2fms" : "%6.0fms", v);
    }

    static String bytes(long b) {
        if (b < 0) return "?";
        if (b < 1024) return b + "B";
        if (b < 1024 * 1024) return String.format(Locale.ROOT, "%.1fK", b / 1024.0);
        if (b < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.1fM", b / 1048576.0);
        return String.format(Locale.ROOT, "%.2fG", b / 1073741824.0);
    }

    static String dur(long ms) {
        long s = ms / 1000;
        if (ms < 1000) return ms + "ms";
        if (s < 60) return s + "s";
        if (s < 3600) return s / 60 + "m" + String.format(Locale.ROOT, "%02ds", s % 60);
        return s / 3600 + "h" + String.format(Locale.ROOT, "%02dm%02ds", s / 60 % 60, s % 60);
    }

    static String clip(String s, int n) {
        String one = s.replace('\n', ' ');
        return one.length() > n ? one.substring(0, n) + "..." : one;
    }
}
