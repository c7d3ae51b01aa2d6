/*
 * raftkv watch benchmark: N watchers (default 1,000) on ONE node while a put64 load runs. A
 * standalone tool, JDK classes only, run in Java 17 single-file source mode (java
 * bench/WatchLoad.java ...; normally through bin/raftkv-watch-bench). It needs no raftkv classes:
 * it talks to the nodes over HTTP (API.md §3, §4 and §5), drives the write load with wrk and looks
 * at the nodes' processes from the outside (jcmd, /proc).
 *
 * Design
 *  - Write load: wrk with the put script of compare-etcd.sh (../shared/bench/raftkv-put.lua: PUT a
 *    256-byte value under key1..key10000), -t2 -c64 --timeout 5s --latency, every request to the
 *    leader: compare-etcd.sh's put64, run by the same command. Phases, on one cluster: a warm-up
 *    (not counted), the baseline (no watchers), then the same load with the watchers open. Each
 *    phase's rps and p50/p99 come from wrk's own report; the % drop compares the two.
 *  - Watchers: raw HTTP/1.1 over NIO, one connection per watcher, all multiplexed on --io-threads
 *    selector threads (default 1), so a thousand streams cost a thousand sockets and no thread
 *    each. Each watcher's bytes go through a small state machine (HTTP head, chunked framing, SSE
 *    lines) that scans each message for its id, its event type and the "key" of every event, with
 *    no String per message. Every watcher opens with fromRevision = R0+1, R0 the leader's revision
 *    (a linearizable read) just before, so all of them must deliver every revision after R0 that
 *    touches their prefix.
 *  - The check: one more watcher, the reference, watches every key (the empty prefix) on ANOTHER
 *    node and records each revision's keys. After the load, once the reference reached the
 *    leader's final revision Rend (and is itself contiguous R0+1..Rend), the expected stream of a
 *    prefix is the reference filtered by it: which revisions, in which order, with which keys. A
 *    watcher is OK when its revisions strictly increase (no duplicate, nothing out of order), every
 *    key it got is under its prefix, and its count, first and last revision and an
 *    order-independent 64-bit hash of its (revision, keys) pairs equal the expected ones.
 *  - Schemes: "all" puts every watcher on the load's prefix ("key"), so each must get every
 *    revision; "split" puts watcher i on key1..key9 (i mod 9), each ~1/9 of the puts (key1 matches
 *    key1, key10-19, key100-199, key1000-1999 and key10000); "mixed" alternates the two.
 *  - Resources: per phase, the CPU time of each node (/proc/<pid>/stat), of wrk (this process's
 *    reaped children) and of this client, and of the whole machine (/proc/stat), in cores; at fixed
 *    points each node's heap after a forced full GC (jcmd GC.run + GC.heap_info, as Soak.java) and
 *    RSS. --jfr records the watch node during the watched phase (JFR.start).
 *  - Only loopback URLs are accepted. Every loop is bounded: by the phase deadline, the drain
 *    timeout, the connect deadline, and timeouts on every HTTP call and jcmd run.
 */

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class WatchLoad {

    static final long JCMD_TIMEOUT_MS = 60_000;
    static final long CONNECT_DEADLINE_MS = 120_000;
    static final int CLK_TCK = 100;
    static final String EMBEDDED_PUT_LUA = """
            -- raftkv: PUT a raw 256-byte value under one of 10,000 keys
            local val = string.rep('v', 256)
            wrk.method = 'PUT'
            wrk.headers['Content-Type'] = 'application/octet-stream'
            request = function()
              return wrk.format(nil, '/v1/kv/key' .. math.random(1, 10000), nil, val)
            end
            """;

    // ------------------------------------------------------------------------------------------
    // Flags

    static final class BadFlag extends Exception {
        private static final long serialVersionUID = 1L;
        BadFlag(String m) { super(m); }
    }

    static final class Config {
        URI url = URI.create("http://127.0.0.1:8081");
        URI writeUrl;                 // null: the leader
        String refUrl;                // null: auto; "none": no reference
        int watchers = 1000;
        String scheme = "all";
        String prefix = "key";
        long durationMs = 30_000;
        long warmupMs = 10_000;
        long intervalMs = 5_000;
        long drainTimeoutMs = 60_000;
        long wrkTimeoutMs = 5_000;
        int connections = 64;
        int threads = 2;
        int ioThreads = 1;
        int connectBatch = 100;
        String wrk = "wrk";
        Path script;
        List<Path> pidFiles = new ArrayList<>();
        boolean pidsGiven;
        Path jfr;
        boolean noHeap;

        static final String USAGE = """
            usage: bin/raftkv-watch-bench [flags]
              Opens --watchers SSE watches on ONE node (--url), runs put64 (wrk, 64 connections, at the leader)
              without then with them, checks every watcher got every revision of its prefix in order, and
              reports rps/p50/p99 of both phases, the % drop, events delivered, CPU, heap after GC and RSS.
            flags:
              --url U             the node the watchers connect to (default http://127.0.0.1:8081)
              --write-url U       where wrk sends the puts (default: the leader, from /v1/cluster/status)
              --ref-url U|none    node of the reference watcher (default: another node than --url, a follower if possible)
              --watchers N        watchers (default 1000; 0 = baseline only)
              --scheme S          all (every watcher on --prefix: each gets every put) | keys (watcher i on the one
                                  key key<i+1>, as config watchers: ~1/10,000 of the puts each) | split (key1..key9,
                                  ~1/9 each) | mixed (alternating); default all
              --prefix P          the load's key prefix (default key, as raftkv-put.lua)
              --duration D        length of the baseline and of the watched phase (default 30s)
              --warmup D          wrk warm-up before the baseline, not counted (default 10s; 0s = none)
              --interval D        progress line during the phases (default 5s)
              --drain-timeout D   after the load, how long to wait for every watcher to catch up (default 60s)
              --connections N     wrk connections (default 64)     --threads N  wrk threads (default 2)
              --timeout D         wrk request timeout (default 5s)
              --wrk PATH          wrk binary (default wrk)
              --script PATH       wrk script (default ../shared/bench/raftkv-put.lua, else a built-in copy of it)
              --pids F,F,...      the nodes' pid files (default data/n1.pid,data/n2.pid,data/n3.pid when present);
                                  a file's name without .pid must be the node's id
              --no-heap           skip the forced-GC heap samples
              --io-threads N      selector threads for the watchers (default 1)
              --connect-batch N   watchers connecting at once (default 100)
              --jfr FILE          record the watch node with JFR during the watched phase (profile settings)
            D = 500ms|30s|2m. exit: 0 every watcher OK and drop <= 20%, 1 otherwise, 2 bad flag or setup failure""";

        static Config parse(String[] a) throws BadFlag {
            Config c = new Config();
            for (int i = 0; i < a.length; i++) {
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
                if (flag.equals("--no-heap")) {
                    c.noHeap = true;
                    continue;
                }
                if (!List.of("--url", "--write-url", "--ref-url", "--watchers", "--scheme", "--prefix", "--duration",
                        "--warmup", "--interval", "--drain-timeout", "--connections", "--threads", "--timeout", "--wrk",
                        "--script", "--pids", "--io-threads", "--connect-batch", "--jfr").contains(flag)) {
                    throw new BadFlag("unknown " + (flag.startsWith("-") ? "flag " : "argument ") + flag + " (see --help)");
                }
                if (v == null) {
                    if (i + 1 >= a.length) throw new BadFlag(flag + " needs a value");
                    v = a[++i];
                }
                switch (flag) {
                    case "--url" -> c.url = loopbackUrl(v);
                    case "--write-url" -> c.writeUrl = loopbackUrl(v);
                    case "--ref-url" -> c.refUrl = v.equals("none") ? "none" : loopbackUrl(v).toString();
                    case "--watchers" -> c.watchers = (int) number(flag, v, 0, 20_000);
                    case "--scheme" -> {
                        if (!List.of("all", "keys", "split", "mixed").contains(v)) throw new BadFlag("--scheme is all, keys, split or mixed");
                        c.scheme = v;
                    }
                    case "--prefix" -> {
                        if (v.isEmpty() || !v.matches("[A-Za-z0-9_.-]+")) throw new BadFlag("--prefix: letters, digits, _ . - only");
                        c.prefix = v;
                    }
                    case "--duration" -> c.durationMs = duration(flag, v);
                    case "--warmup" -> c.warmupMs = duration(flag, v);
                    case "--interval" -> c.intervalMs = duration(flag, v);
                    case "--drain-timeout" -> c.drainTimeoutMs = duration(flag, v);
                    case "--timeout" -> c.wrkTimeoutMs = duration(flag, v);
                    case "--connections" -> c.connections = (int) number(flag, v, 1, 4096);
                    case "--threads" -> c.threads = (int) number(flag, v, 1, 64);
                    case "--io-threads" -> c.ioThreads = (int) number(flag, v, 1, 16);
                    case "--connect-batch" -> c.connectBatch = (int) number(flag, v, 1, 10_000);
                    case "--wrk" -> c.wrk = v;
                    case "--script" -> c.script = Path.of(v);
                    case "--jfr" -> c.jfr = Path.of(v).toAbsolutePath();
                    case "--pids" -> {
                        c.pidFiles.clear();
                        for (String p : v.split(",")) {
                            if (p.isBlank()) throw new BadFlag("--pids has an empty entry");
                            c.pidFiles.add(Path.of(p.trim()));
                        }
                        c.pidsGiven = true;
                    }
                    default -> throw new BadFlag("unknown flag " + flag);
                }
            }
            if (c.durationMs < 1000 || c.durationMs > 3600_000) throw new BadFlag("--duration must be 1s..1h");
            if (c.warmupMs != 0 && (c.warmupMs < 1000 || c.warmupMs > 3600_000)) throw new BadFlag("--warmup must be 0s or 1s..1h");
            if (c.intervalMs < 500 || c.intervalMs > 600_000) throw new BadFlag("--interval must be 500ms..10m");
            if (c.drainTimeoutMs < 1000 || c.drainTimeoutMs > 3600_000) throw new BadFlag("--drain-timeout must be 1s..1h");
            if (c.wrkTimeoutMs < 1000 || c.wrkTimeoutMs > 600_000) throw new BadFlag("--timeout must be 1s..10m");
            if (c.durationMs % 1000 != 0 || c.warmupMs % 1000 != 0 || c.wrkTimeoutMs % 1000 != 0) {
                throw new BadFlag("--duration, --warmup and --timeout are whole seconds (wrk's resolution)");
            }
            if (!c.pidsGiven) {
                for (int n = 1; n <= 3; n++) {
                    Path p = Path.of("data/n" + n + ".pid");
                    if (Files.exists(p)) c.pidFiles.add(p);
                }
            }
            return c;
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
            Matcher m = Pattern.compile("(\\d{1,9})(ms|s|m|h)").matcher(v.trim());
            if (!m.matches()) throw new BadFlag(flag + " wants a duration like 500ms, 30s, 2m; got '" + v + "'");
            long n = Long.parseLong(m.group(1));
            return switch (m.group(2)) {
                case "ms" -> n;
                case "s" -> n * 1000;
                case "m" -> n * 60_000;
                default -> n * 3600_000;
            };
        }

        /** Refuses anything but http://127.x.x.x or localhost; returns the URL without a trailing slash. */
        static URI loopbackUrl(String s) throws BadFlag {
            URI u;
            try {
                u = new URI(s);
            } catch (Exception e) {
                throw new BadFlag("not a URL: '" + s + "'");
            }
            if (!"http".equals(u.getScheme())) throw new BadFlag("URL must be http://: '" + s + "'");
            String host = u.getHost();
            if (host == null || !(host.equalsIgnoreCase("localhost") || isLoopbackV4(host))) {
                throw new BadFlag("refusing non-loopback URL '" + s + "' (only 127.x.x.x or localhost)");
            }
            if (u.getPort() < 1) throw new BadFlag("URL needs a port: '" + s + "'");
            if ((u.getRawPath() != null && !u.getRawPath().isEmpty() && !u.getRawPath().equals("/"))
                    || u.getRawQuery() != null || u.getRawFragment() != null || u.getRawUserInfo() != null) {
                throw new BadFlag("URL must be a plain base URL: '" + s + "'");
            }
            return URI.create("http://" + host + ":" + u.getPort());
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
    // One SSE watch over one HTTP/1.1 connection. All fields are owned by its IoLoop's thread.

    static final byte[] KEY_PATTERN = "\"key\":\"".getBytes(StandardCharsets.US_ASCII);
    static final long FNV_OFFSET = 0xcbf29ce484222325L, FNV_PRIME = 0x100000001b3L;

    static long mix(long z) {  // SplitMix64's finalizer
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** A message's contribution to a watcher's set hash: its revision and its keys, in order. */
    static long entryHash(long rev, long keysHash) {
        return mix(rev * 0x9e3779b97f4a7c15L ^ keysHash);
    }

    static final class Conn {
        static final int H_HEAD = 0, H_SIZE = 1, H_EXT = 2, H_DATA = 3, H_DATA_END = 4, H_RAW = 5, H_DONE = 6;
        static final int L_FIELD = 0, L_VALUE_FIRST = 1, L_VALUE = 2;
        static final int F_ID = 1, F_EVENT = 2, F_DATA = 3, F_OTHER = 4;
        static final int E_NONE = 0, E_CHANGE = 1, E_PROGRESS = 2, E_COMPACTED = 3, E_OTHER = 4;

        final int index;               // -1: the reference
        final String prefix;
        final byte[] prefixBytes;
        final boolean reference;
        final InetSocketAddress addr;
        final byte[] request;
        SocketChannel ch;
        SelectionKey key;
        ByteBuffer pendingWrite;

        // lifecycle
        int status;                     // HTTP status, 0 before the head
        boolean open;                   // head 200 received, stream running
        boolean closedByUs;
        boolean streamEnded;            // the server ended the stream (last chunk or close)
        String error;                   // first problem on the connection

        // HTTP framing
        int h = H_HEAD;
        final ByteArrayOutputStream head = new ByteArrayOutputStream(512);
        long chunkLeft;
        long chunkSize;

        // SSE line state
        int l = L_FIELD;
        final byte[] field = new byte[16];
        int fieldLen;
        int fieldKind;
        final byte[] ev = new byte[16];
        int evLen;
        long id = -1;
        boolean idBad;
        int eventType = E_NONE;
        int dm;                         // bytes of KEY_PATTERN matched
        boolean inKey, keyEsc;
        long keyHash;
        int keyLen;
        boolean keyPrefixOk;
        final ByteArrayOutputStream keyBytes;   // reference only
        int keysInMsg;
        long msgKeysHash;
        boolean foreignInMsg;
        List<String> msgKeys;                   // reference only

        // results
        long lastAtNanos;              // when the newest revision arrived
        long changes, first = -1, last = -1, setHash, dups, outOfOrder, jumps, firstJumpAt = -1, foreign, malformed;
        long progressRev = -1, compactRev = -1, unknownEvents, bytes;
        long firstJumpFrom = -1;
        // the reference's record: revision -> keys
        final LinkedHashMap<Long, List<String>> refEvents;

        /** Watches the one key {@code prefix}, not the keys under it (scheme keys). */
        boolean exact;

        Conn(int index, String prefix, InetSocketAddress addr, String path, boolean reference) {
            this.index = index;
            this.prefix = prefix;
            this.prefixBytes = prefix.getBytes(StandardCharsets.UTF_8);
            this.reference = reference;
            this.addr = addr;
            this.request = ("GET " + path + " HTTP/1.1\r\nHost: " + addr.getHostString() + ":" + addr.getPort()
                    + "\r\nAccept: text/event-stream\r\nUser-Agent: raftkv-watch-bench\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII);
            this.keyBytes = reference ? new ByteArrayOutputStream(64) : null;
            this.refEvents = reference ? new LinkedHashMap<>() : null;
        }

        boolean live() {
            return open && !streamEnded && error == null;
        }

        void fail(String why) {
            if (error == null) error = why;
        }

        /** Bytes read from the socket. Returns false when the connection should be closed. */
        boolean onBytes(byte[] a, int off, int len) {
            bytes += len;
            int i = off, end = off + len;
            while (i < end) {
                switch (h) {
                    case H_HEAD -> {
                        byte b = a[i++];
                        head.write(b);
                        int n = head.size();
                        if (n > 16384) {
                            fail("HTTP head over 16 KiB");
                            return false;
                        }
                        if (b == '\n' && n >= 4) {
                            byte[] hb = head.toByteArray();
                            if (hb[n - 2] == '\r' && hb[n - 3] == '\n' && hb[n - 4] == '\r') {
                                if (!onHead(new String(hb, StandardCharsets.ISO_8859_1))) {
                                    // the rest of what arrived is the error's body: keep a little of it
                                    String body = new String(a, i, Math.min(end - i, 300), StandardCharsets.UTF_8);
                                    fail("HTTP " + status + (body.isBlank() ? "" : ": " + body.strip()));
                                    return false;
                                }
                            }
                        }
                    }
                    case H_SIZE -> {
                        byte b = a[i++];
                        int d = Character.digit(b, 16);
                        if (d >= 0) {
                            chunkSize = chunkSize * 16 + d;
                            if (chunkSize > (1L << 40)) {
                                fail("absurd chunk size");
                                return false;
                            }
                        } else if (b == ';') {
                            h = H_EXT;
                        } else if (b == '\n') {
                            if (chunkSize == 0) {
                                streamEnded = true;
                                h = H_DONE;
                                return false;
                            }
                            chunkLeft = chunkSize;
                            h = H_DATA;
                        } else if (b != '\r' && b != ' ') {
                            fail("bad chunk size byte " + (b & 0xff));
                            return false;
                        }
                    }
                    case H_EXT -> {
                        if (a[i++] == '\n') {
                            if (chunkSize == 0) {
                                streamEnded = true;
                                h = H_DONE;
                                return false;
                            }
                            chunkLeft = chunkSize;
                            h = H_DATA;
                        }
                    }
                    case H_DATA -> {
                        int n = (int) Math.min(chunkLeft, end - i);
                        sse(a, i, n);
                        i += n;
                        chunkLeft -= n;
                        if (chunkLeft == 0) h = H_DATA_END;
                    }
                    case H_DATA_END -> {
                        if (a[i++] == '\n') {
                            chunkSize = 0;
                            h = H_SIZE;
                        }
                    }
                    case H_RAW -> {
                        sse(a, i, end - i);
                        i = end;
                    }
                    default -> {
                        return false;
                    }
                }
            }
            return true;
        }

        /** The response head; false when it is not a 200 event stream. */
        boolean onHead(String head) {
            String[] lines = head.split("\r\n");
            String[] sl = lines[0].split(" ", 3);
            try {
                status = sl.length >= 2 ? Integer.parseInt(sl[1]) : -1;
            } catch (NumberFormatException e) {
                status = -1;
            }
            if (status != 200) return false;
            boolean chunked = false;
            for (String line : lines) {
                String lc = line.toLowerCase(Locale.ROOT);
                if (lc.startsWith("transfer-encoding:") && lc.contains("chunked")) chunked = true;
            }
            open = true;
            h = chunked ? H_SIZE : H_RAW;
            return true;
        }

        /** SSE bytes (de-chunked). */
        void sse(byte[] a, int off, int len) {
            int end = off + len;
            for (int i = off; i < end; i++) {
                byte b = a[i];
                if (b == '\r') continue;
                switch (l) {
                    case L_FIELD -> {
                        if (b == '\n') {
                            if (fieldLen == 0) {
                                endOfMessage();
                            } // else a line with no colon: ignored
                            fieldLen = 0;
                        } else if (b == ':') {
                            fieldKind = fieldKind();
                            l = L_VALUE_FIRST;
                        } else if (fieldLen < field.length) {
                            field[fieldLen++] = b;
                        } else {
                            fieldLen = field.length; // too long: an unknown field
                        }
                    }
                    case L_VALUE_FIRST, L_VALUE -> {
                        if (b == '\n') {
                            endOfLine();
                            l = L_FIELD;
                            fieldLen = 0;
                            continue;
                        }
                        if (l == L_VALUE_FIRST) {
                            l = L_VALUE;
                            if (b == ' ') continue;
                        }
                        switch (fieldKind) {
                            case F_ID -> {
                                if (b >= '0' && b <= '9' && id < 100_000_000_000_000L) {
                                    id = (id < 0 ? 0 : id * 10) + (b - '0');
                                } else {
                                    idBad = true;
                                }
                            }
                            case F_EVENT -> {
                                if (evLen < ev.length) ev[evLen++] = b;
                            }
                            case F_DATA -> data(b);
                            default -> { }
                        }
                    }
                    default -> { }
                }
            }
        }

        int fieldKind() {
            if (fieldLen == 2 && field[0] == 'i' && field[1] == 'd') return F_ID;
            if (fieldLen == 5 && field[0] == 'e' && field[1] == 'v' && field[2] == 'e' && field[3] == 'n' && field[4] == 't') {
                evLen = 0;
                return F_EVENT;
            }
            if (fieldLen == 4 && field[0] == 'd' && field[1] == 'a' && field[2] == 't' && field[3] == 'a') {
                dm = 0;
                inKey = false;
                return F_DATA;
            }
            if (fieldLen == 0) return F_OTHER; // a comment line
            return F_OTHER;
        }

        void endOfLine() {
            if (fieldKind == F_EVENT) {
                String e = new String(ev, 0, evLen, StandardCharsets.US_ASCII);
                eventType = switch (e) {
                    case "change" -> E_CHANGE;
                    case "progress" -> E_PROGRESS;
                    case "compacted" -> E_COMPACTED;
                    default -> E_OTHER;
                };
            } else if (fieldKind == F_DATA && inKey) {
                inKey = false;
                malformed++;   // a key that did not end on its line
            }
        }

        /** One byte of a data line: finds every "key":"..." and hashes the key's raw bytes. */
        void data(byte b) {
            if (inKey) {
                if (keyEsc) {
                    keyEsc = false;
                } else if (b == '\\') {
                    keyEsc = true;
                } else if (b == '"') {
                    inKey = false;
                    dm = 0;
                    keysInMsg++;
                    msgKeysHash = msgKeysHash * 0x9E3779B97F4A7C15L + keyHash;
                    if (!keyPrefixOk || keyLen < prefixBytes.length || (exact && keyLen != prefixBytes.length)) foreignInMsg = true;
                    if (reference) {
                        if (msgKeys == null) msgKeys = new ArrayList<>(1);
                        msgKeys.add(keyBytes.toString(StandardCharsets.UTF_8));
                    }
                    return;
                }
                keyHash = (keyHash ^ (b & 0xff)) * FNV_PRIME;
                if (keyLen < prefixBytes.length && b != prefixBytes[keyLen]) keyPrefixOk = false;
                keyLen++;
                if (reference) keyBytes.write(b);
                return;
            }
            if (b == KEY_PATTERN[dm]) {
                if (++dm == KEY_PATTERN.length) {
                    inKey = true;
                    keyEsc = false;
                    keyHash = FNV_OFFSET;
                    keyLen = 0;
                    keyPrefixOk = true;
                    if (reference) keyBytes.reset();
                }
            } else {
                dm = b == '"' ? 1 : 0;
            }
        }

        void endOfMessage() {
            int type = eventType;
            long rev = idBad ? -1 : id;
            if (type == E_CHANGE) {
                if (rev < 0 || keysInMsg == 0) {
                    malformed++;
                } else {
                    if (foreignInMsg) foreign++;
                    if (rev == last) {
                        dups++;
                    } else if (rev < last) {
                        outOfOrder++;
                    } else {
                        if (last >= 0 && rev != last + 1) {
                            if (jumps++ == 0) {
                                firstJumpFrom = last;
                                firstJumpAt = rev;
                            }
                        }
                        changes++;
                        if (first < 0) first = rev;
                        last = rev;
                        lastAtNanos = System.nanoTime();
                        setHash += entryHash(rev, msgKeysHash);
                        if (reference && msgKeys != null) refEvents.put(rev, msgKeys);
                    }
                }
            } else if (type == E_PROGRESS) {
                if (rev >= 0) progressRev = Math.max(progressRev, rev);
            } else if (type == E_COMPACTED) {
                compactRev = rev >= 0 ? rev : 0;
                fail("event: compacted (fell behind compaction)");
            } else if (type != E_NONE || id >= 0) {
                unknownEvents++;
            }
            id = -1;
            idBad = false;
            eventType = E_NONE;
            keysInMsg = 0;
            msgKeysHash = 0;
            foreignInMsg = false;
            msgKeys = null;
            inKey = false;
            dm = 0;
        }
    }

    // ------------------------------------------------------------------------------------------
    // A selector thread serving many Conns. Other threads talk to it through tasks.

    record LoopSnap(long changes, long bytes, int open, int failed, int ended, long minLast, long maxLast, long sumLast,
                    int counted, long refLast) {
    }

    static final class IoLoop implements Runnable {
        final Selector selector;
        final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
        final List<Conn> conns = new ArrayList<>();
        final ByteBuffer buf = ByteBuffer.allocate(1 << 16);
        final AtomicInteger heads = new AtomicInteger();    // connections that got their response head (200 or not)
        final AtomicInteger failures = new AtomicInteger(); // connections that failed before their head
        volatile boolean stop;
        final Thread thread;

        IoLoop(int n) throws IOException {
            selector = Selector.open();
            thread = new Thread(this, "watch-io-" + n);
            thread.setDaemon(true);
        }

        void submit(Runnable r) {
            tasks.add(r);
            selector.wakeup();
        }

        <T> T call(Callable<T> c, long timeoutMs) throws Exception {
            CompletableFuture<T> f = new CompletableFuture<>();
            submit(() -> {
                try {
                    f.complete(c.call());
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
            return f.get(timeoutMs, TimeUnit.MILLISECONDS);
        }

        @Override
        public void run() {
            while (!stop) {
                try {
                    selector.select(200);
                } catch (IOException e) {
                    System.err.println("raftkv-watch-bench: selector: " + e);
                    return;
                }
                Runnable t;
                while ((t = tasks.poll()) != null) t.run();
                Iterator<SelectionKey> it = selector.selectedKeys().iterator();
                while (it.hasNext()) {
                    SelectionKey k = it.next();
                    it.remove();
                    Conn c = (Conn) k.attachment();
                    try {
                        if (!k.isValid()) continue;
                        if (k.isConnectable()) {
                            c.ch.finishConnect();
                            k.interestOps(SelectionKey.OP_WRITE);
                        }
                        if (k.isValid() && k.isWritable()) {
                            c.ch.write(c.pendingWrite);
                            if (!c.pendingWrite.hasRemaining()) {
                                c.pendingWrite = null;
                                k.interestOps(SelectionKey.OP_READ);
                            }
                        }
                        if (k.isValid() && k.isReadable()) read(c);
                    } catch (IOException | RuntimeException e) {
                        close(c, "connection: " + e);
                    }
                }
            }
            for (Conn c : conns) quietClose(c);
        }

        void read(Conn c) throws IOException {
            // at most a few buffers per wake-up, so one busy stream cannot starve the others
            for (int round = 0; round < 4; round++) {
                buf.clear();
                int n = c.ch.read(buf);
                if (n < 0) {
                    if (!c.closedByUs) {
                        boolean hadHead = c.status != 0;
                        c.streamEnded = true;
                        if (c.error == null) c.fail(hadHead ? "the server closed the stream" : "closed before a response");
                        if (!hadHead) failures.incrementAndGet();
                    }
                    quietClose(c);
                    return;
                }
                if (n == 0) return;
                boolean hadHead = c.status != 0;
                boolean keep = c.onBytes(buf.array(), 0, n);
                if (!hadHead && c.status != 0) heads.incrementAndGet();
                if (!keep) {
                    if (c.streamEnded && c.error == null) c.fail("the server ended the stream");
                    quietClose(c);
                    return;
                }
                if (n < buf.capacity()) return;
            }
        }

        /** Runs on the loop's thread. */
        void open(Conn c) {
            conns.add(c);
            try {
                c.ch = SocketChannel.open();
                c.ch.configureBlocking(false);
                c.ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                c.pendingWrite = ByteBuffer.wrap(c.request);
                boolean done = c.ch.connect(c.addr);
                c.key = c.ch.register(selector, done ? SelectionKey.OP_WRITE : SelectionKey.OP_CONNECT, c);
            } catch (IOException e) {
                c.fail("connect: " + e);
                failures.incrementAndGet();
                quietClose(c);
            }
        }

        void close(Conn c, String why) {
            if (!c.closedByUs && c.error == null) {
                c.fail(why);
                if (c.status == 0) failures.incrementAndGet();
            }
            quietClose(c);
        }

        static void quietClose(Conn c) {
            try {
                if (c.key != null) c.key.cancel();
                if (c.ch != null) c.ch.close();
            } catch (IOException e) {
                // closing anyway
            }
        }

        LoopSnap snap() {
            long changes = 0, bytes = 0, min = Long.MAX_VALUE, max = -1, sum = 0, refLast = -1;
            int open = 0, failed = 0, ended = 0, counted = 0;
            for (Conn c : conns) {
                if (c.reference) {
                    refLast = c.last;
                    continue;
                }
                changes += c.changes;
                bytes += c.bytes;
                if (c.live()) open++;
                if (c.error != null) failed++;
                if (c.streamEnded) ended++;
                long l = Math.max(c.last, c.progressRev);
                min = Math.min(min, l);
                max = Math.max(max, l);
                sum += Math.max(l, 0);
                counted++;
            }
            return new LoopSnap(changes, bytes, open, failed, ended, counted == 0 ? -1 : min, max, sum, counted, refLast);
        }
    }

    // ------------------------------------------------------------------------------------------
    // The nodes: discovery, revisions, CPU, heap

    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(3)).executor(Executors.newFixedThreadPool(2, r -> {
                Thread t = new Thread(r, "http");
                t.setDaemon(true);
                return t;
            })).build();

    static String get(URI base, String pathAndQuery) throws IOException, InterruptedException {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(base + pathAndQuery))
                .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) throw new IOException("GET " + pathAndQuery + " on " + base + ": HTTP " + r.statusCode() + " " + r.body());
        return r.body();
    }

    static String jsonString(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    static long jsonLong(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\"\\s*:\\s*(\\d+)").matcher(json);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /** The store revision, read linearizably (a range read of the load's prefix, one key). */
    static long revision(URI base, String prefix) throws IOException, InterruptedException {
        long r = jsonLong(get(base, "/v1/kv?prefix=" + prefix + "&limit=1"), "revision");
        if (r < 0) throw new IOException("no revision in the range answer of " + base);
        return r;
    }

    record Member(String id, URI http) {
    }

    record Cluster(String leaderId, Map<String, Member> members) {
        URI leaderUrl() {
            Member m = members.get(leaderId);
            return m == null ? null : m.http();
        }

        String idOf(URI url) {
            for (Member m : members.values()) {
                if (m.http() != null && m.http().getPort() == url.getPort()) return m.id();
            }
            return "?";
        }
    }

    static Cluster cluster(URI url) throws IOException, InterruptedException {
        String s = get(url, "/v1/cluster/status");
        String leader = jsonString(s, "leaderId");
        Map<String, Member> members = new LinkedHashMap<>();
        int at = s.indexOf("\"members\":[");
        Matcher m = Pattern.compile("\\{\"id\":\"([^\"]+)\"[^}]*?\"httpAddress\":(null|\"([^\"]*)\")")
                .matcher(at < 0 ? "" : s.substring(at));
        while (m.find()) {
            members.put(m.group(1), new Member(m.group(1), m.group(3) == null ? null : URI.create("http://" + m.group(3))));
        }
        return new Cluster(leader, members);
    }

    static final class Node {
        static final Pattern G1 = Pattern.compile("garbage-first heap\\s+total\\s+\\d+K,\\s+used\\s+(\\d+)K");
        final String name;
        final Path pidFile;

        Node(Path pidFile) {
            this.pidFile = pidFile;
            String f = pidFile.getFileName().toString();
            this.name = f.endsWith(".pid") ? f.substring(0, f.length() - 4) : f;
        }

        long pid() {
            try {
                long pid = Long.parseLong(Files.readString(pidFile).trim());
                return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) ? pid : -1;
            } catch (IOException | NumberFormatException e) {
                return -1;
            }
        }

        long cpuTicks() {
            long pid = pid();
            return pid < 0 ? -1 : procCpuTicks(Path.of("/proc/" + pid + "/stat"), false);
        }

        long rss() {
            long pid = pid();
            if (pid < 0) return -1;
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                    if (line.startsWith("VmRSS:")) return Long.parseLong(line.substring(6).replace("kB", "").trim()) * 1024;
                }
            } catch (IOException | RuntimeException e) {
                // gone
            }
            return -1;
        }

        /** Heap used after a forced full GC (jcmd GC.run then GC.heap_info in one run); -1 when that fails. */
        long heapAfterGc() {
            long pid = pid();
            if (pid < 0) return -1;
            Process p = null;
            try {
                Path cmds = Files.createTempFile("raftkv-watch-", ".jcmd");
                Path out = Files.createTempFile("raftkv-watch-", ".out");
                try {
                    Files.writeString(cmds, "GC.run\nGC.heap_info\n");
                    p = new ProcessBuilder(JCMD, "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", String.valueOf(pid),
                            "-f", cmds.toString()).redirectErrorStream(true).redirectOutput(out.toFile()).start();
                    if (!p.waitFor(JCMD_TIMEOUT_MS, TimeUnit.MILLISECONDS)) return -1;
                    Matcher m = G1.matcher(Files.readString(out));
                    return m.find() ? Long.parseLong(m.group(1)) * 1024 : -1;
                } finally {
                    Files.deleteIfExists(cmds);
                    Files.deleteIfExists(out);
                }
            } catch (IOException e) {
                return -1;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return -1;
            } finally {
                if (p != null && p.isAlive()) p.destroyForcibly();
            }
        }
    }

    static final String JCMD = findJdkTool("jcmd");

    static String findJdkTool(String tool) {
        Path own = Path.of(System.getProperty("java.home"), "bin", tool);
        return Files.isExecutable(own) ? own.toString() : tool;
    }

    /** utime+stime (or, with children, cutime+cstime) of a /proc/.../stat file, in clock ticks. */
    static long procCpuTicks(Path stat, boolean children) {
        try {
            String s = Files.readString(stat);
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            // f[0] is field 3 (state): utime is field 14 -> f[11], stime f[12], cutime f[13], cstime f[14]
            return children ? Long.parseLong(f[13]) + Long.parseLong(f[14]) : Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** The whole machine: {busy, total} ticks from /proc/stat. */
    static long[] machineTicks() {
        try {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
            long total = 0;
            for (int i = 1; i < Math.min(f.length, 9); i++) total += Long.parseLong(f[i]);
            long idle = Long.parseLong(f[4]) + Long.parseLong(f[5]);
            return new long[] {total - idle, total};
        } catch (IOException | RuntimeException e) {
            return new long[] {-1, -1};
        }
    }

    // ------------------------------------------------------------------------------------------
    // GC figures from the JVM's own performance counters (hsperfdata, what jstat reads): no attach,
    // no cost to the node, so they can be sampled during the load.

    static final class PerfData {
        /** The long counters of a JVM, by name; empty when its hsperfdata file is missing or unreadable. */
        static Map<String, Long> read(long pid) {
            Map<String, Long> out = new HashMap<>();
            if (pid < 0) return out;
            try {
                byte[] b = Files.readAllBytes(Path.of(System.getProperty("java.io.tmpdir"), "hsperfdata_" + System.getProperty("user.name"),
                        String.valueOf(pid)));
                ByteBuffer bb = ByteBuffer.wrap(b);
                if (b.length < 32 || bb.getInt(0) != 0xcafec0c0) return out;
                bb.order(b[4] == 1 ? java.nio.ByteOrder.LITTLE_ENDIAN : java.nio.ByteOrder.BIG_ENDIAN);
                int pos = bb.getInt(24), n = bb.getInt(28);
                for (int i = 0; i < n && pos + 20 <= b.length; i++) {
                    int len = bb.getInt(pos), nameOff = bb.getInt(pos + 4), vec = bb.getInt(pos + 8), dataOff = bb.getInt(pos + 16);
                    byte type = b[pos + 12];
                    if (len <= 0) break;
                    if (type == 'J' && vec == 0 && pos + dataOff + 8 <= b.length) {
                        int e = pos + nameOff;
                        while (e < b.length && b[e] != 0) e++;
                        out.put(new String(b, pos + nameOff, e - pos - nameOff, StandardCharsets.US_ASCII), bb.getLong(pos + dataOff));
                    }
                    pos += len;
                }
            } catch (IOException | RuntimeException e) {
                out.clear();
            }
            return out;
        }
    }

    /** GC counters of one node at one moment (G1: collector 0 young/mixed pauses, 1 full GCs, 2 concurrent-cycle pauses). */
    record GcMark(long pauses, long pauseTicks, long fulls, long fullTicks, long remarks, long remarkTicks, long old, long oldMax, long hz) {
        static GcMark of(long pid) {
            Map<String, Long> c = PerfData.read(pid);
            if (c.isEmpty()) return null;
            return new GcMark(c.getOrDefault("sun.gc.collector.0.invocations", 0L), c.getOrDefault("sun.gc.collector.0.time", 0L),
                    c.getOrDefault("sun.gc.collector.1.invocations", 0L), c.getOrDefault("sun.gc.collector.1.time", 0L),
                    c.getOrDefault("sun.gc.collector.2.invocations", 0L), c.getOrDefault("sun.gc.collector.2.time", 0L),
                    c.getOrDefault("sun.gc.generation.1.space.0.used", -1L), c.getOrDefault("sun.gc.generation.1.maxCapacity",
                    c.getOrDefault("sun.gc.generation.1.space.0.maxCapacity", -1L)), c.getOrDefault("sun.os.hrt.frequency", 1_000_000_000L));
        }
    }

    /** Samples every node's old generation every 200 ms while a phase runs, keeping the peak. */
    final class GcWatch implements AutoCloseable {
        final GcMark[] start = new GcMark[nodes.size()];
        final long[] peakOld = new long[nodes.size()];
        final Thread t;
        volatile boolean done;

        GcWatch() {
            for (int i = 0; i < nodes.size(); i++) {
                start[i] = GcMark.of(nodes.get(i).pid());
                peakOld[i] = start[i] == null ? -1 : start[i].old();
            }
            t = new Thread(() -> {
                while (!done) {
                    for (int i = 0; i < nodes.size(); i++) {
                        GcMark m = GcMark.of(nodes.get(i).pid());
                        if (m != null) synchronized (peakOld) { peakOld[i] = Math.max(peakOld[i], m.old()); }
                    }
                    try {
                        Thread.sleep(200);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "gc-watch");
            t.setDaemon(true);
            t.start();
        }

        long peak(int i) {
            synchronized (peakOld) {
                return peakOld[i];
            }
        }

        /** "gc: n1 12 pauses 340ms (1.1%), 0 full, old peak 45.1M of 512.0M | ...". */
        String report(double secs) {
            StringBuilder s = new StringBuilder("gc:");
            for (int i = 0; i < nodes.size(); i++) {
                GcMark a = start[i], b = GcMark.of(nodes.get(i).pid());
                if (i > 0) s.append(" |");
                s.append(' ').append(nodes.get(i).name);
                if (a == null || b == null) {
                    s.append(" ?");
                    continue;
                }
                double pauseMs = ((b.pauseTicks() - a.pauseTicks()) + (b.fullTicks() - a.fullTicks()) + (b.remarkTicks() - a.remarkTicks()))
                        * 1000.0 / b.hz();
                s.append(String.format(Locale.ROOT, " %d pauses %.0fms (%.1f%% of the time), %d full, old gen peak %s of %s",
                        (b.pauses() - a.pauses()) + (b.remarks() - a.remarks()), pauseMs, pauseMs / 10.0 / secs, b.fulls() - a.fulls(),
                        bytes(Math.max(peak(i), b.old())), bytes(b.oldMax())));
            }
            return s.toString();
        }

        @Override
        public void close() {
            done = true;
            t.interrupt();
        }
    }

    // ------------------------------------------------------------------------------------------
    // CPU accounting of a phase

    final class CpuMark {
        final long nanos = System.nanoTime();
        final long[] nodes = new long[WatchLoad.this.nodes.size()];
        final long self = procCpuTicks(Path.of("/proc/self/stat"), false);
        final long children = procCpuTicks(Path.of("/proc/self/stat"), true);
        final long[] machine = machineTicks();

        CpuMark() {
            for (int i = 0; i < nodes.length; i++) nodes[i] = WatchLoad.this.nodes.get(i).cpuTicks();
        }
    }

    /** Cores used by processes other than the nodes, wrk and this client between two marks. */
    double otherCores(CpuMark a, CpuMark b) {
        double secs = (b.nanos - a.nanos) / 1e9;
        double known = 0;
        for (int i = 0; i < nodes.size(); i++) {
            if (a.nodes[i] >= 0 && b.nodes[i] >= 0) known += (b.nodes[i] - a.nodes[i]) / (double) CLK_TCK / secs;
        }
        known += (b.children - a.children + b.self - a.self) / (double) CLK_TCK / secs;
        return Math.max(0, (b.machine[0] - a.machine[0]) / (double) CLK_TCK / secs - known);
    }

    /** "cpu (cores): n1 0.52 n2 0.91 n3 0.33 | wrk 0.40 | watchers 0.20 | machine 1.95 (other 0.05)". */
    String cpu(CpuMark a, CpuMark b) {
        double secs = (b.nanos - a.nanos) / 1e9;
        StringBuilder s = new StringBuilder("cpu (cores):");
        double known = 0;
        for (int i = 0; i < nodes.size(); i++) {
            if (a.nodes[i] < 0 || b.nodes[i] < 0) {
                s.append(' ').append(nodes.get(i).name).append(" ?");
                continue;
            }
            double c = (b.nodes[i] - a.nodes[i]) / (double) CLK_TCK / secs;
            known += c;
            s.append(String.format(Locale.ROOT, " %s %.2f", nodes.get(i).name, c));
        }
        double wrkCores = (b.children - a.children) / (double) CLK_TCK / secs;
        double self = (b.self - a.self) / (double) CLK_TCK / secs;
        known += wrkCores + self;
        double machine = (b.machine[0] - a.machine[0]) / (double) CLK_TCK / secs;
        s.append(String.format(Locale.ROOT, " | wrk %.2f | this client %.2f | machine %.2f of %d (other processes %.2f)",
                wrkCores, self, machine, Runtime.getRuntime().availableProcessors(), Math.max(0, machine - known)));
        return s.toString();
    }

    // ------------------------------------------------------------------------------------------
    // wrk

    /** wrk's figures; rps counts every response, okRps only the 2xx ones (what the drop is computed on). */
    record WrkResult(double rps, double okRps, double p50Ms, double p99Ms, long requests, long non2xx, long socketErrors, String raw) {
    }

    static final Pattern WRK_RPS = Pattern.compile("Requests/sec:\\s+([0-9.]+)");
    static final Pattern WRK_PCT = Pattern.compile("^\\s+(50|99)(?:\\.000)?%\\s+([0-9.]+)(us|ms|s|m)\\s*$", Pattern.MULTILINE);
    static final Pattern WRK_REQS = Pattern.compile("(\\d+) requests in ([0-9.]+)(us|ms|s|m)");
    static final Pattern WRK_NON2XX = Pattern.compile("Non-2xx or 3xx responses:\\s+(\\d+)");
    static final Pattern WRK_SOCK = Pattern.compile("Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)");

    static WrkResult parseWrk(String out) {
        Matcher m = WRK_RPS.matcher(out);
        double rps = m.find() ? Double.parseDouble(m.group(1)) : 0;
        double p50 = Double.NaN, p99 = Double.NaN;
        m = WRK_PCT.matcher(out);
        while (m.find()) {
            double v = Double.parseDouble(m.group(2));
            double ms = switch (m.group(3)) {
                case "us" -> v / 1000;
                case "ms" -> v;
                case "s" -> v * 1000;
                default -> v * 60_000;
            };
            if (m.group(1).equals("50")) p50 = ms; else p99 = ms;
        }
        m = WRK_REQS.matcher(out);
        long reqs = 0;
        double secs = 0;
        if (m.find()) {
            reqs = Long.parseLong(m.group(1));
            double v = Double.parseDouble(m.group(2));
            secs = switch (m.group(3)) {
                case "us" -> v / 1e6;
                case "ms" -> v / 1000;
                case "s" -> v;
                default -> v * 60;
            };
        }
        m = WRK_NON2XX.matcher(out);
        long non2xx = m.find() ? Long.parseLong(m.group(1)) : 0;
        m = WRK_SOCK.matcher(out);
        long sock = 0;
        if (m.find()) for (int g = 1; g <= 4; g++) sock += Long.parseLong(m.group(g));
        double okRps = secs > 0 ? (reqs - non2xx) / secs : 0;
        return new WrkResult(rps, okRps, p50, p99, reqs, non2xx, sock, out);
    }

    Process startWrk(long ms, Path out) throws IOException {
        List<String> cmd = List.of(cfg.wrk, "-t" + cfg.threads, "-c" + cfg.connections, "-d" + ms / 1000 + "s",
                "--timeout", cfg.wrkTimeoutMs / 1000 + "s", "--latency", "-s", script.toString(), writeUrl.toString());
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
    }

    String wrkCommand(long ms) {
        return cfg.wrk + " -t" + cfg.threads + " -c" + cfg.connections + " -d" + ms / 1000 + "s --timeout "
                + cfg.wrkTimeoutMs / 1000 + "s --latency -s " + script + " " + writeUrl;
    }

    record Phase(String name, WrkResult wrk, String cpu, String gc, double otherCores, String leaders, double[] writeRateTimeline) {
    }

    /**
     * Runs wrk for ms, printing a line per interval (write rate from the leader's revision and, with
     * watchers, what they delivered). Returns the phase.
     */
    Phase runPhase(String name, long ms, boolean watched) throws Exception {
        Path out = Files.createTempFile("raftkv-watch-wrk-", ".txt");
        try {
            GcWatch gcw = new GcWatch();
            CpuMark a = new CpuMark();
            long rev0 = revisionQuiet();
            String leader0 = leaderTerm();
            StringBuilder leaders = new StringBuilder(leader0);
            String lastLeader = leader0;
            Snap s0 = watched ? snap() : null;
            Process p = startWrk(ms, out);
            long start = System.nanoTime();
            long hardEnd = start + (ms + cfg.wrkTimeoutMs + 30_000) * 1_000_000L;
            long lastT = start, lastRev = rev0;
            Snap lastS = s0;
            List<Double> timeline = new ArrayList<>();
            long next = start + cfg.intervalMs * 1_000_000L;
            while (p.isAlive() && System.nanoTime() < hardEnd) {
                long wait = Math.max(1, (next - System.nanoTime()) / 1_000_000L);
                if (p.waitFor(wait, TimeUnit.MILLISECONDS)) break;
                if (System.nanoTime() < next) continue;
                next += cfg.intervalMs * 1_000_000L;
                long now = System.nanoTime();
                long rev = revisionQuiet();
                double dt = (now - lastT) / 1e9;
                double wps = rev >= 0 && lastRev >= 0 ? (rev - lastRev) / dt : Double.NaN;
                timeline.add(wps);
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "   %-9s %5.1fs  writes %7.0f/s  rev %d",
                        name, (now - start) / 1e9, wps, rev));
                if (watchNodeIndex >= 0) {
                    line.append(String.format(Locale.ROOT, " | %s old gen peak %s", nodes.get(watchNodeIndex).name,
                            bytes(gcw.peak(watchNodeIndex))));
                }
                String lt = leaderTerm();
                if (!lt.equals(lastLeader) && !lt.equals("?")) {
                    line.append(" | LEADER CHANGE: ").append(lastLeader).append(" -> ").append(lt);
                    leaders.append(" -> ").append(lt);
                    lastLeader = lt;
                }
                if (watched) {
                    Snap sn = snap();
                    line.append(String.format(Locale.ROOT, " | delivered %8.0f msg/s %6.1f MiB/s | watchers behind the leader by %s..%s revisions, open %d%s",
                            (sn.changes - lastS.changes) / dt, (sn.bytes - lastS.bytes) / dt / 1048576.0,
                            sn.maxLast < 0 ? "?" : String.valueOf(Math.max(0, rev - sn.maxLast)),
                            sn.minLast < 0 ? "?" : String.valueOf(Math.max(0, rev - sn.minLast)), sn.open,
                            sn.failed > 0 ? ", FAILED " + sn.failed : ""));
                    lastS = sn;
                }
                System.out.println(line);
                lastT = now;
                lastRev = rev;
            }
            if (p.isAlive()) {
                p.destroyForcibly();
                System.out.println("   wrk did not end in time: killed");
            }
            p.waitFor(10, TimeUnit.SECONDS);
            CpuMark b = new CpuMark();
            String gc = gcw.report((b.nanos - a.nanos) / 1e9);
            gcw.close();
            String lt = leaderTerm();
            if (!lt.equals(lastLeader) && !lt.equals("?")) leaders.append(" -> ").append(lt);
            WrkResult r = parseWrk(Files.readString(out));
            if (r.rps == 0) System.out.println("   wrk output:\n" + r.raw.indent(6));
            double[] tl = timeline.stream().mapToDouble(Double::doubleValue).toArray();
            return new Phase(name, r, cpu(a, b), gc, otherCores(a, b), leaders.toString(), tl);
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /**
     * The leader's revision once writes stopped: wrk abandons requests in flight when it ends, and
     * the cluster may still commit them, so wait until the revision holds still for a second
     * (at most 30 s).
     */
    long quiescedRevision() throws Exception {
        long r = revision(writeUrl, cfg.prefix);
        for (int i = 0; i < 30; i++) {
            Thread.sleep(1000);
            long r2 = revision(writeUrl, cfg.prefix);
            if (r2 == r) return r;
            r = r2;
        }
        System.out.println("   note: the revision still moved 30 s after the load stopped (another writer?); checking up to " + r);
        return r;
    }

    /** "n1 term 3" from the write node's /v1/cluster/status, "?" when it does not answer. */
    String leaderTerm() {
        try {
            String st = get(writeUrl, "/v1/cluster/status");
            return jsonString(st, "leaderId") + " term " + jsonLong(st, "term");
        } catch (Exception e) {
            return "?";
        }
    }

    long revisionQuiet() {
        try {
            return revision(writeUrl, cfg.prefix);
        } catch (Exception e) {
            return -1;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Snapshots over all loops

    record Snap(long changes, long bytes, int open, int failed, int ended, long minLast, long maxLast, long refLast) {
    }

    Snap snap() throws Exception {
        long changes = 0, bytes = 0, min = Long.MAX_VALUE, max = -1, refLast = -1;
        int open = 0, failed = 0, ended = 0, counted = 0;
        for (IoLoop l : loops) {
            LoopSnap s = l.call(l::snap, 30_000);
            changes += s.changes();
            bytes += s.bytes();
            open += s.open();
            failed += s.failed();
            ended += s.ended();
            if (s.counted() > 0) {
                min = Math.min(min, s.minLast());
                max = Math.max(max, s.maxLast());
                counted += s.counted();
            }
            refLast = Math.max(refLast, s.refLast());
        }
        return new Snap(changes, bytes, open, failed, ended, counted == 0 ? -1 : min, max, refLast);
    }

    // ------------------------------------------------------------------------------------------
    // The run

    final Config cfg;
    final List<Node> nodes = new ArrayList<>();
    final List<IoLoop> loops = new ArrayList<>();
    URI writeUrl;
    Path script;
    int watchNodeIndex = -1;
    Cluster cluster;

    WatchLoad(Config cfg) {
        this.cfg = cfg;
    }

    public static void main(String[] args) throws Exception {
        Config cfg;
        try {
            cfg = Config.parse(args);
        } catch (BadFlag e) {
            System.err.println("raftkv-watch-bench: " + e.getMessage());
            System.exit(2);
            return;
        }
        int code;
        try {
            code = new WatchLoad(cfg).run();
        } catch (SetupFailure e) {
            System.err.println("raftkv-watch-bench: " + e.getMessage());
            code = 2;
        }
        System.out.flush();
        System.exit(code);
    }

    static final class SetupFailure extends Exception {
        private static final long serialVersionUID = 1L;
        SetupFailure(String m) { super(m); }
    }

    Path findScript() throws IOException, SetupFailure {
        if (cfg.script != null) {
            if (!Files.isReadable(cfg.script)) throw new SetupFailure("cannot read --script " + cfg.script);
            return cfg.script.toAbsolutePath();
        }
        for (Path p : List.of(Path.of("../shared/bench/raftkv-put.lua"), Path.of("/work/shared/bench/raftkv-put.lua"))) {
            if (Files.isReadable(p)) return p.toAbsolutePath().normalize();
        }
        Path p = Files.createTempFile("raftkv-put-", ".lua");
        Files.writeString(p, EMBEDDED_PUT_LUA);
        p.toFile().deleteOnExit();
        return p;
    }

    int run() throws Exception {
        script = findScript();
        // a node learns its peers' HTTP addresses shortly after an election: ask again for up to 15 s
        for (int attempt = 0; ; attempt++) {
            try {
                cluster = cluster(cfg.url);
            } catch (IOException e) {
                if (attempt >= 30) throw new SetupFailure("cannot read /v1/cluster/status of " + cfg.url + ": " + e.getMessage());
            }
            if (cluster != null && cluster.leaderUrl() != null && !cluster.leaderUrl().equals(cfg.url)) {
                // a follower knows only its own and the leader's HTTP address: the leader knows all
                try {
                    Cluster fromLeader = cluster(cluster.leaderUrl());
                    Map<String, Member> merged = new LinkedHashMap<>(cluster.members());
                    fromLeader.members().forEach((id, mm) -> {
                        if (mm.http() != null) merged.put(id, mm);
                    });
                    cluster = new Cluster(cluster.leaderId(), merged);
                } catch (IOException e) {
                    // ask again
                }
            }
            if (cluster != null && cluster.leaderUrl() != null
                    && cluster.members().values().stream().allMatch(m -> m.http() != null)) break;
            if (attempt >= 30) break;
            Thread.sleep(500);
        }
        if (cluster.leaderId() == null) throw new SetupFailure(cfg.url + " knows no leader");
        writeUrl = cfg.writeUrl != null ? cfg.writeUrl : cluster.leaderUrl();
        if (writeUrl == null) throw new SetupFailure("the leader's HTTP address is unknown; pass --write-url");
        String watchId = cluster.idOf(cfg.url);
        URI refUrl = null;
        if (cfg.refUrl == null) {
            for (Member m : cluster.members().values()) {   // another node, not the leader if possible
                if (m.http() == null || m.id().equals(watchId)) continue;
                if (refUrl == null || !m.id().equals(cluster.leaderId())) refUrl = m.http();
                if (!m.id().equals(cluster.leaderId())) break;
            }
            if (refUrl == null) refUrl = cfg.url;
        } else if (!cfg.refUrl.equals("none")) {
            refUrl = URI.create(cfg.refUrl);
        }
        for (Path p : cfg.pidFiles) nodes.add(new Node(p));
        Node watchNode = nodes.stream().filter(n -> n.name.equals(watchId)).findFirst().orElse(null);
        watchNodeIndex = watchNode == null ? -1 : nodes.indexOf(watchNode);

        System.out.printf(Locale.ROOT, "== raftkv watch benchmark: %d watchers (scheme %s, prefix %s) on %s (%s, %s); put load at %s (%s, the leader)%n",
                cfg.watchers, cfg.scheme, cfg.prefix, cfg.url, watchId, watchId.equals(cluster.leaderId()) ? "leader" : "follower",
                writeUrl, cluster.idOf(writeUrl));
        System.out.println("   load: " + wrkCommand(cfg.durationMs));
        System.out.printf(Locale.ROOT, "   phases: warm-up %ds, baseline %ds (no watchers), watched %ds; reference watcher on %s; nodes measured: %s%n",
                cfg.warmupMs / 1000, cfg.durationMs / 1000, cfg.durationMs / 1000,
                refUrl == null ? "none" : refUrl + " (" + cluster.idOf(refUrl) + ")",
                nodes.isEmpty() ? "none (no --pids)" : nodes.stream().map(n -> n.name + "=" + n.pid()).toList());

        if (cfg.warmupMs > 0) {
            Phase w = runPhase("warm-up", cfg.warmupMs, false);
            System.out.printf(Locale.ROOT, "   warm-up: %.1f successful writes/s, p50 %s, p99 %s%n", w.wrk.okRps, ms(w.wrk.p50Ms), ms(w.wrk.p99Ms));
        }
        Map<String, String> heap = new LinkedHashMap<>();
        heap.put("after warm-up, no watchers", heapLine());

        Phase base = runPhase("baseline", cfg.durationMs, false);
        printPhase(base);
        heap.put("after the baseline, no watchers", heapLine());
        if (cfg.watchers == 0) {
            printHeap(heap, watchNode);
            return 0;
        }

        // ---- open the watchers
        for (int i = 0; i < cfg.ioThreads; i++) {
            IoLoop l = new IoLoop(i);
            loops.add(l);
            l.thread.start();
        }
        long r0 = revision(writeUrl, cfg.prefix);
        long from = r0 + 1;
        InetSocketAddress watchAddr = new InetSocketAddress("127.0.0.1", cfg.url.getPort());
        Conn ref = null;
        if (refUrl != null) {
            ref = new Conn(-1, "", new InetSocketAddress("127.0.0.1", refUrl.getPort()),
                    "/v1/watch/?prefix=true&fromRevision=" + from, true);
            Conn r = ref;
            loops.get(0).submit(() -> loops.get(0).open(r));
        }
        List<Conn> watchers = new ArrayList<>();
        long t0 = System.nanoTime();
        long deadline = t0 + CONNECT_DEADLINE_MS * 1_000_000L;
        for (int i = 0; i < cfg.watchers; i++) {
            String p = prefixOf(i);
            boolean exact = cfg.scheme.equals("keys");
            Conn c = new Conn(i, p, watchAddr, "/v1/watch/" + p + "?prefix=" + !exact + "&fromRevision=" + from, false);
            c.exact = exact;
            watchers.add(c);
            IoLoop l = loops.get(i % loops.size());
            while (i - settled() >= cfg.connectBatch && System.nanoTime() < deadline) Thread.sleep(5);
            l.submit(() -> l.open(c));
        }
        while (settled() < cfg.watchers + (ref == null ? 0 : 1) && System.nanoTime() < deadline) Thread.sleep(20);
        double connectSecs = (System.nanoTime() - t0) / 1e9;
        Snap s = snap();
        System.out.printf(Locale.ROOT, "   watchers: %d of %d open on %s after %.1fs, all from revision %d (R0 = %d)%s%n",
                s.open, cfg.watchers, watchId, connectSecs, from, r0, s.failed > 0 ? "; FAILED: " + s.failed + " " + firstErrors(watchers) : "");
        if (s.open == 0) {
            stopLoops();
            throw new SetupFailure("no watcher could open: " + firstErrors(watchers));
        }
        Thread.sleep(1000);
        heap.put("watchers open, idle", heapLine());

        // ---- the watched phase
        Path jfrFile = null;
        if (cfg.jfr != null && watchNode != null && watchNode.pid() > 0) {
            jfrFile = cfg.jfr;
            String out = jcmd(watchNode.pid(), "JFR.start", "name=watchbench", "settings=profile",
                    "duration=" + cfg.durationMs / 1000 + "s", "filename=" + jfrFile);
            System.out.println("   JFR on " + watchNode.name + ": " + out.strip().replace('\n', ' '));
        }
        Snap before = snap();
        long loadStart = System.nanoTime();
        Phase watched = runPhase("watched", cfg.durationMs, true);
        long loadEnd = System.nanoTime();
        Snap atEnd = snap();
        long rEnd = quiescedRevision();
        printPhase(watched);

        // ---- drain: the reference reaches rEnd, then every watcher its expected last revision
        long drainDeadline = loadEnd + cfg.drainTimeoutMs * 1_000_000L;
        Map<String, Expected> expected = null;
        String refVerdict;
        if (ref != null) {
            Conn r = ref;
            while (System.nanoTime() < drainDeadline && loops.get(0).call(() -> r.last < rEnd && r.live(), 10_000)) Thread.sleep(50);
            expected = loops.get(0).call(() -> expectations(r, from, rEnd, watchers, cfg.scheme.equals("keys")), 30_000);
            refVerdict = loops.get(0).call(() -> referenceVerdict(r, from, rEnd), 10_000);
        } else {
            refVerdict = "no reference watcher (--ref-url none): watchers on the load's prefix are checked for every revision "
                    + from + ".." + rEnd + "; others only for order";
        }
        Map<String, Expected> exp = expected;
        long caughtUpAt = -1;
        while (System.nanoTime() < drainDeadline) {
            if (pending(watchers, exp, from, rEnd) == 0) {
                caughtUpAt = System.nanoTime();
                break;
            }
            Thread.sleep(20);
        }
        Snap drained = snap();
        double loadSecs = (loadEnd - loadStart) / 1e9;
        long lastArrival = 0;   // when the slowest caught-up watcher got its last revision
        for (IoLoop l : loops) {
            lastArrival = Math.max(lastArrival, l.call(() -> {
                long m = 0;
                for (Conn c : l.conns) if (!c.reference && c.live() && c.changes > 0) m = Math.max(m, c.lastAtNanos);
                return m;
            }, 30_000));
        }

        // ---- verdicts
        List<String> bad = new ArrayList<>();
        int ok = 0;
        for (IoLoop l : loops) {
            List<String> part = l.call(() -> {
                List<String> b = new ArrayList<>();
                for (Conn c : l.conns) {
                    if (c.reference) continue;
                    String why = verdict(c, exp, from, rEnd);
                    if (why != null) b.add("watcher " + c.index + " (" + c.prefix + "): " + why);
                }
                return b;
            }, 60_000);
            bad.addAll(part);
        }
        ok = cfg.watchers - bad.size();
        heap.put("after the load, watchers open", heapLine());
        for (IoLoop l : loops) {
            l.call(() -> {
                for (Conn c : l.conns) {
                    c.closedByUs = true;
                    IoLoop.quietClose(c);
                }
                return null;
            }, 30_000);
        }
        Thread.sleep(10_000);  // the node tears 1,000 closed streams down within a few seconds
        heap.put("watchers closed (10 s later)", heapLine());
        stopLoops();

        // ---- report
        System.out.println();
        System.out.println("== summary");
        double drop = base.wrk.okRps > 0 ? 100.0 * (base.wrk.okRps - watched.wrk.okRps) / base.wrk.okRps : Double.NaN;
        System.out.printf(Locale.ROOT, "   %-9s %10s %10s %10s %10s %9s %8s  %s%n", "phase", "ok/s", "wrk rps", "p50", "p99", "non-2xx", "sock-err",
                "leader (term)");
        for (Phase p : List.of(base, watched)) {
            System.out.printf(Locale.ROOT, "   %-9s %10.1f %10.1f %10s %10s %9d %8d  %s%n", p.name, p.wrk.okRps, p.wrk.rps, ms(p.wrk.p50Ms),
                    ms(p.wrk.p99Ms), p.wrk.non2xx, p.wrk.socketErrors, p.leaders);
        }
        boolean dropOk = drop <= 20.0;
        if (base.otherCores > 0.25 || watched.otherCores > 0.25) {
            boolean uneven = Math.abs(base.otherCores - watched.otherCores) > 0.2;
            System.out.printf(Locale.ROOT, "   WARNING: other processes used %.2f cores during the baseline and %.2f during the watched phase:"
                    + " %s (run again on an idle machine)%n", base.otherCores, watched.otherCores, uneven
                    ? "the two phases did not get the same machine, the drop is not reliable"
                    : "both phases ran on a busy machine, the absolute figures are low");
        }
        System.out.printf(Locale.ROOT, "   write throughput drop with %d watchers: %.1f%% of successful writes/s (bar: at most 20%%) %s%n", cfg.watchers, drop,
                dropOk ? "PASS" : "FAIL");
        long expectedTotal = 0;
        if (exp != null) {
            for (Conn c : watchers) {
                Expected e = exp.get(c.prefix);
                if (e != null) expectedTotal += e.count;
            }
        }
        System.out.printf(Locale.ROOT, "   revisions in the watched phase: %d..%d (%d); %s%n", from, rEnd, rEnd - from + 1, refVerdict);
        System.out.printf(Locale.ROOT, "   events delivered: %d of %d expected, %.1f MiB of SSE; %d of them during the %.1fs load = %.0f/s%n",
                drained.changes - before.changes, expectedTotal, (drained.bytes - before.bytes) / 1048576.0,
                atEnd.changes - before.changes, loadSecs, (atEnd.changes - before.changes) / loadSecs);
        String who = drained.failed == 0 ? "every watcher" : "the " + (cfg.watchers - drained.failed) + " watchers still open";
        System.out.printf(Locale.ROOT, "   catch-up: %s%n", caughtUpAt > 0
                ? String.format(Locale.ROOT, "%s had all their revisions %.2fs after the load stopped (the last one arrived then)", who,
                        Math.max(0, lastArrival - loadEnd) / 1e9)
                : "NOT all of " + who + " caught up within --drain-timeout " + cfg.drainTimeoutMs / 1000 + "s");
        boolean allOk = bad.isEmpty();
        System.out.printf(Locale.ROOT, "   watchers OK: %d / %d%s %s%n", ok, cfg.watchers, allOk ? "" : ", NOT OK: " + bad.size(),
                allOk ? "PASS" : "FAIL");
        if (!allOk) System.out.println("      connection errors by kind: " + firstErrors(watchers));
        for (int i = 0; i < Math.min(10, bad.size()); i++) System.out.println("      " + bad.get(i));
        if (bad.size() > 10) System.out.println("      ... and " + (bad.size() - 10) + " more");
        printHeap(heap, watchNode);
        if (jfrFile != null) System.out.println("   JFR recording of " + watchNode.name + ": " + jfrFile);
        return allOk && dropOk ? 0 : 1;
    }

    int settled() {
        int n = 0;
        for (IoLoop l : loops) n += l.heads.get() + l.failures.get();
        return n;
    }

    String prefixOf(int i) {
        return switch (cfg.scheme) {
            case "split" -> cfg.prefix + (1 + i % 9);
            case "keys" -> cfg.prefix + (1 + i % 10_000);
            case "mixed" -> i % 2 == 0 ? cfg.prefix : cfg.prefix + (1 + (i / 2) % 9);
            default -> cfg.prefix;
        };
    }

    void stopLoops() {
        for (IoLoop l : loops) {
            l.stop = true;
            l.selector.wakeup();
        }
        for (IoLoop l : loops) {
            try {
                l.thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static String firstErrors(List<Conn> cs) {
        Map<String, Integer> kinds = new LinkedHashMap<>();
        for (Conn c : cs) {
            String e = c.error;
            if (e != null) kinds.merge(e.length() > 120 ? e.substring(0, 120) : e, 1, Integer::sum);
        }
        return kinds.toString();
    }

    // ---- expectations from the reference

    record Expected(long count, long first, long last, long hash) {
    }

    /** Runs on loop 0's thread (the reference's). */
    static Map<String, Expected> expectations(Conn ref, long from, long to, List<Conn> watchers, boolean exactKeys) {
        Map<String, long[]> acc = new HashMap<>();  // count, first, last, hash
        for (Conn c : watchers) acc.putIfAbsent(c.prefix, new long[] {0, -1, -1, 0});
        for (Map.Entry<Long, List<String>> e : ref.refEvents.entrySet()) {
            long rev = e.getKey();
            if (rev < from || rev > to) continue;
            Iterable<Map.Entry<String, long[]>> candidates = acc.entrySet();
            if (exactKeys) { // a watcher of one key: only the revision's own keys can match
                List<Map.Entry<String, long[]>> hit = new ArrayList<>();
                for (String k : new java.util.LinkedHashSet<>(e.getValue())) {
                    long[] a = acc.get(k);
                    if (a != null) hit.add(Map.entry(k, a));
                }
                candidates = hit;
            }
            for (Map.Entry<String, long[]> p : candidates) {
                long keysHash = 0;
                boolean any = false;
                for (String k : e.getValue()) {
                    if (exactKeys ? !k.equals(p.getKey()) : !k.startsWith(p.getKey())) continue;
                    any = true;
                    long h = FNV_OFFSET;
                    for (byte b : k.getBytes(StandardCharsets.UTF_8)) h = (h ^ (b & 0xff)) * FNV_PRIME;
                    keysHash = keysHash * 0x9E3779B97F4A7C15L + h;
                }
                if (!any) continue;
                long[] a = p.getValue();
                a[0]++;
                if (a[1] < 0) a[1] = rev;
                a[2] = rev;
                a[3] += entryHash(rev, keysHash);
            }
        }
        Map<String, Expected> out = new HashMap<>();
        acc.forEach((k, a) -> out.put(k, new Expected(a[0], a[1], a[2], a[3])));
        return out;
    }

    static String referenceVerdict(Conn r, long from, long to) {
        long have = r.refEvents.keySet().stream().filter(x -> x >= from && x <= to).count();
        boolean contiguous = have == to - from + 1 && r.first == from && r.jumps == 0 && r.dups == 0 && r.outOfOrder == 0;
        return contiguous
                ? "reference watcher (every key, other node): every one of them, contiguous"
                : String.format(Locale.ROOT, "reference watcher INCOMPLETE: %d of %d revisions (first %d, last %d, jumps %d, error %s)",
                        have, to - from + 1, r.first, r.last, r.jumps, r.error);
    }

    /** Watchers still missing revisions (all, without a reference: last < rEnd). */
    int pending(List<Conn> watchers, Map<String, Expected> exp, long from, long rEnd) throws Exception {
        int n = 0;
        for (IoLoop l : loops) {
            n += l.call(() -> {
                int k = 0;
                for (Conn c : l.conns) {
                    if (c.reference || !c.live()) continue;
                    long target;
                    if (exp != null) {
                        Expected e = exp.get(c.prefix);
                        target = e == null || e.count == 0 ? -1 : e.last;
                    } else {
                        target = c.prefix.equals(cfg.prefix) ? rEnd : -1;
                    }
                    if (target >= 0 && c.last < target) k++;
                }
                return k;
            }, 30_000);
        }
        return n;
    }

    /** Null when the watcher is OK, else why not. Runs on the watcher's loop thread. */
    String verdict(Conn c, Map<String, Expected> exp, long from, long rEnd) {
        List<String> why = new ArrayList<>();
        if (c.status != 200) why.add(c.status == 0 ? "never opened" : "HTTP " + c.status);
        if (c.error != null && !(c.closedByUs)) why.add(c.error);
        if (c.dups > 0) why.add(c.dups + " duplicates");
        if (c.outOfOrder > 0) why.add(c.outOfOrder + " out of order");
        if (c.foreign > 0) why.add(c.foreign + " messages with a key outside " + c.prefix);
        if (c.malformed > 0) why.add(c.malformed + " malformed messages");
        if (c.unknownEvents > 0) why.add(c.unknownEvents + " unknown events");
        if (exp != null) {
            Expected e = exp.get(c.prefix);
            if (e == null) {
                why.add("no expectation");
            } else if (c.changes != e.count || c.first != e.first || c.last != e.last || c.setHash != e.hash) {
                why.add(String.format(Locale.ROOT, "got %d revisions %d..%d, expected %d revisions %d..%d%s%s", c.changes,
                        c.first, c.last, e.count, e.first, e.last, c.changes == e.count && c.setHash != e.hash ? " (other revisions or keys)" : "",
                        c.jumps > 0 && c.prefix.equals(cfg.prefix) ? "; first gap after " + c.firstJumpFrom + " to " + c.firstJumpAt : ""));
            }
        } else if (c.prefix.equals(cfg.prefix)) {
            if (c.changes != rEnd - from + 1 || c.first != from || c.last != rEnd || c.jumps > 0) {
                why.add(String.format(Locale.ROOT, "got %d revisions %d..%d (%d gaps), expected every one of %d..%d", c.changes,
                        c.first, c.last, c.jumps, from, rEnd));
            }
        }
        return why.isEmpty() ? null : String.join("; ", why);
    }

    // ---- heap

    String heapLine() {
        if (nodes.isEmpty()) return "(no --pids)";
        ExecutorService ex = Executors.newFixedThreadPool(nodes.size());
        try {
            List<Future<String>> fs = new ArrayList<>();
            for (Node n : nodes) {
                fs.add(ex.submit(() -> {
                    long h = cfg.noHeap ? -2 : n.heapAfterGc();
                    long r = n.rss();
                    return String.format(Locale.ROOT, "%s heap %s rss %s", n.name, h == -2 ? "-" : bytes(h), bytes(r));
                }));
            }
            List<String> parts = new ArrayList<>();
            for (Future<String> f : fs) {
                try {
                    parts.add(f.get(JCMD_TIMEOUT_MS + 5000, TimeUnit.MILLISECONDS));
                } catch (Exception e) {
                    parts.add("?");
                }
            }
            return String.join(" | ", parts);
        } finally {
            ex.shutdownNow();
        }
    }

    void printHeap(Map<String, String> heap, Node watchNode) {
        System.out.println("== heap used after a forced full GC (jcmd GC.run; GC.heap_info) and RSS, per node"
                + (watchNode == null ? "" : "; the watchers are on " + watchNode.name));
        heap.forEach((k, v) -> System.out.printf(Locale.ROOT, "   %-34s %s%n", k, v));
    }

    void printPhase(Phase p) {
        System.out.printf(Locale.ROOT, "   %s: %.1f successful writes/s (wrk: %.1f rps), p50 %s, p99 %s, %d requests, non-2xx %d, socket errors %d; leader %s%n",
                p.name, p.wrk.okRps, p.wrk.rps, ms(p.wrk.p50Ms), ms(p.wrk.p99Ms), p.wrk.requests, p.wrk.non2xx, p.wrk.socketErrors, p.leaders);
        System.out.println("      " + p.cpu);
        System.out.println("      " + p.gc);
    }

    static String jcmd(long pid, String... args) {
        try {
            List<String> cmd = new ArrayList<>(List.of(JCMD, String.valueOf(pid)));
            cmd.addAll(Arrays.asList(args));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(JCMD_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            return out;
        } catch (IOException e) {
            return "jcmd failed: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    static String ms(double v) {
        if (Double.isNaN(v)) return "-";
        return String.format(Locale.ROOT, v < 100 ? "%.2fms" : "%.0fms", v);
    }

    static String bytes(long b) {
        if (b < 0) return "?";
        if (b < 1024 * 1024) return String.format(Locale.ROOT, "%.1fK", b / 1024.0);
        if (b < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.1fM", b / 1048576.0);
        return String.format(Locale.ROOT, "%.2fG", b / 1073741824.0);
    }
}
