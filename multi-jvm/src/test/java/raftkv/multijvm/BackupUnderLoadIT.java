package raftkv.multijvm;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import raftkv.history.Op.Outcome;
import raftkv.multijvm.KvHttpClient.Reply;
import raftkv.raft.Peer;
import raftkv.raft.SnapshotFile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A backup taken under load restores into a new 3-node cluster holding exactly the keys
 * acknowledged before the backup's point (the issue's requirement), end to end with real node
 * processes: {@code GET /v1/cluster/backup} over HTTP while four writers put fresh keys
 * {@code w<t>/<i>} as fast as the cluster takes them, {@code bin/raftkv restore} once per node of a
 * new cluster (new ports, new data dirs) from that one file, then {@code bin/raftkv node} on them.
 *
 * <p>The backup is asked of a <em>follower</em>, so that the 307 to the leader (API.md §5) is
 * followed as {@code curl -L} would: the redirect must name a node of this cluster on 127.0.0.1,
 * and the backup itself is then served by the leader at a ReadIndex point.
 *
 * <p>What it proves, with {@code R} the store revision the backup holds (read from the new
 * cluster before any write; the backup exposes only its raft index, in its header and file name):
 * <ul>
 *   <li>every write acknowledged with a revision {@code <= R} is in the new cluster, with its
 *       value and with that revision as its modRevision; no write acknowledged with a revision
 *       {@code > R} is; no write refused (503, 4xx, connection refused) is; a write whose outcome
 *       is unknown (504, timeout) may be there or not, but only at a revision {@code <= R}; and
 *       nothing else is there;</li>
 *   <li>the backup's point is linearizable: every write acknowledged before the backup was asked
 *       for has a revision {@code <= R}, every write sent after the backup's answer began has one
 *       {@code > R}, and writes were in flight when it was asked for (it really was under load);</li>
 *   <li>every node of the new cluster holds the same keys, values and revision (read locally,
 *       {@code consistency=serializable}), applied past the backup's index; and the new cluster
 *       takes writes whose revisions go on from the backup's: the first one is {@code R + 1}.</li>
 * </ul>
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class BackupUnderLoadIT {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final int WRITERS = 4;
  /** Acknowledged writes before the backup: past one snapshot (every 300 entries by default here). */
  private static final int ACKED_BEFORE_BACKUP = 400;
  /** Acknowledged writes after the backup's answer, before the writers stop. */
  private static final int ACKED_AFTER_BACKUP = 200;
  /** Bounds of the writers, whatever happens: writes per writer and seconds in all. */
  private static final int MAX_WRITES_PER_WRITER = 20_000;
  private static final Duration MAX_WRITING = Duration.ofSeconds(90);
  private static final long BACKOFF_MILLIS = 100;
  /** Makes a value about 200 bytes, so that the backup is more than a few pages. */
  private static final String FILLER = "x".repeat(160);
  /** JVM options of {@code bin/raftkv restore}: a short-lived tool, no need for 512 MiB or C2. */
  private static final String RESTORE_JAVA_OPTS = "-Xms64m -Xmx256m -XX:TieredStopAtLevel=1";
  private static final Pattern RESTORED_LINE = Pattern.compile("restored (\\d+) keys at revision (\\d+)");
  private static final Pattern BACKUP_FILE_NAME = Pattern.compile("raftkv-backup-(\\d+)\\.snap");
  private static final String KEY_AFTER_RESTORE = "after-restore";

  /** One write as its writer saw it; {@code revision} only for an OK one (from its PUT's answer). */
  record Write(String key, String value, Outcome outcome, Long revision, long invokedNanos,
      long completedNanos, String detail) {}

  /**
   * The backup as taken: the file, what its header says, which follower redirected to which node,
   * and when it was asked of the leader and when the leader's answer began.
   */
  record Backup(Path file, SnapshotFile.Header header, String askedOf, String servedBy,
      long requestedNanos, long answeredNanos, long bytes) {}

  /** One key as a node holds it. */
  record Stored(String value, long modRevision) {}

  /** Everything a node holds, and the store revision it read it at. */
  record Contents(long revision, Map<String, Stored> kvs) {}

  @Test
  void aBackupTakenUnderLoadRestoresExactlyTheWritesAcknowledgedBeforeIt(TestInfo info) throws Exception {
    String name = Scenario.testName(info);
    Path backupFile = Cluster.home().resolve("target/multi-jvm-data").resolve(name).resolve("backup.snap");
    KvHttpClient reads = new KvHttpClient(Duration.ofSeconds(10));
    long started = System.nanoTime();

    // 1-3. the old cluster: load, a backup in the middle of it, more load, then it goes away
    Backup backup;
    List<Write> writes;
    List<Peer> oldVoters = new ArrayList<>();
    try (Cluster old = Cluster.start(name, 3)) {
      old.nodes().forEach(n -> oldVoters.add(new Peer(n.id(), "127.0.0.1", n.raftPort())));
      Writers writers = new Writers(old);
      try {
        writers.start();
        writers.awaitAcked(ACKED_BEFORE_BACKUP);
        backup = takeBackupThroughAFollower(old, backupFile);
        int ackedAtBackup = writers.acked();
        writers.awaitAcked(ackedAtBackup + ACKED_AFTER_BACKUP);
      } finally {
        writers.stop();
      }
      writers.assertNoCrash();
      writes = writers.writes();
    }
    long oldClusterDone = System.nanoTime();
    System.out.printf("[%s] backup of index %d (term %d, %d bytes) asked of %s, served by %s; %s%n", name,
        backup.header().index(), backup.header().term(), backup.bytes(), backup.askedOf(), backup.servedBy(),
        summary(writes));
    assertEquals(oldVoters, backup.header().voters(), "the backup's header names the old cluster's voters");

    // 4. a new cluster, every node restored from the same file by bin/raftkv restore
    List<String> restoreLines = new ArrayList<>();
    try (Cluster restored = Cluster.start(name + "/restored", 3, "",
        (node, peers) -> restoreLines.add(restore(backupFile, node, peers)))) {
      NodeProcess leader = restored.awaitLeader(WAIT);

      // the backup's revision: what the new cluster holds before anything is written to it
      Contents atBackup = Poll.until("a linearizable read of every key from the new leader " + leader.id(), WAIT,
          () -> readAll(reads, leader, false), restored::describe);
      long backupRevision = atBackup.revision();
      for (String line : restoreLines) {
        // cross-check with what bin/raftkv restore says it restored, when it says it in this form
        Matcher m = RESTORED_LINE.matcher(line);
        if (m.find()) {
          assertEquals(backupRevision, Long.parseLong(m.group(2)), "the revision bin/raftkv restore reported: " + line);
          assertEquals(atBackup.kvs().size(), Long.parseLong(m.group(1)), "the keys bin/raftkv restore reported: " + line);
        } else {
          System.out.printf("[%s] bin/raftkv restore said: %s (no \"restored N keys at revision R\")%n", name, line);
        }
      }

      // 6. every node holds the same: the backup's keys at its revision, applied past its index
      for (NodeProcess node : restored.nodes()) {
        Poll.until(node.id() + " holds what the new leader holds, read locally", WAIT,
            () -> readAll(reads, node, true).filter(atBackup::equals),
            () -> node.id() + " holds " + readAll(reads, node, true).map(BackupUnderLoadIT::describe)
                .orElse("nothing it would say") + "; the leader " + describe(atBackup));
        long applied = reads.status(node).orElseThrow(() -> new AssertionError(node.id() + " gives no status"))
            .appliedIndex();
        assertTrue(applied >= backup.header().index(), node.id() + " applied index " + applied
            + " is past the backup's index " + backup.header().index() + ": its log goes on after it");
      }

      // 5. exactly the writes acknowledged at or before the backup's revision
      assertHoldsExactlyTheWritesUpTo(backupRevision, atBackup.kvs(), writes);
      assertTheBackupPointIsLinearizable(backupRevision, backup, writes);

      // 5. the new cluster takes writes, and its revisions go on from the backup's
      // retried only when refused (not applied): one that may have been applied would bump the revision twice
      Reply put = Poll.until("a write to the new cluster", WAIT, () -> restored.leader()
          .map(l -> reads.send(l, "PUT", "/v1/kv/" + KEY_AFTER_RESTORE, "fresh".getBytes(StandardCharsets.UTF_8)))
          .filter(reply -> {
            if (reply.outcome() == Outcome.UNKNOWN) {
              throw new AssertionError("the first write to the new cluster has an unknown outcome: " + reply.describe());
            }
            return reply.success();
          }), restored::describe);
      long revisionAfter = revisionOf(put);
      assertEquals(backupRevision + 1, revisionAfter,
          "the first write to the new cluster has the revision after the backup's " + backupRevision);
      Map<String, Stored> after = new TreeMap<>(atBackup.kvs());
      after.put(KEY_AFTER_RESTORE, new Stored("fresh", revisionAfter));
      Contents expectedAfter = new Contents(revisionAfter, after);
      for (NodeProcess node : restored.nodes()) {
        Poll.until(node.id() + " applies the write after the restore", WAIT,
            () -> readAll(reads, node, true).filter(expectedAfter::equals),
            () -> node.id() + " holds " + readAll(reads, node, true).map(BackupUnderLoadIT::describe)
                .orElse("nothing it would say"));
      }
    }
    System.out.printf("[%s] passed: old cluster and load %.1f s, restore and checks %.1f s%n", name,
        (oldClusterDone - started) / 1e9, (System.nanoTime() - oldClusterDone) / 1e9);
  }

  // ---- the checks

  /**
   * The new cluster holds an acknowledged write iff its revision is at most {@code backupRevision}
   * (with its value, at that revision); a refused write never; a write of unknown outcome maybe,
   * at a revision up to the backup's; and no key that no writer wrote.
   */
  private static void assertHoldsExactlyTheWritesUpTo(long backupRevision, Map<String, Stored> held,
      List<Write> writes) {
    List<String> missing = new ArrayList<>();
    List<String> wrong = new ArrayList<>();
    List<String> tooNew = new ArrayList<>();
    List<String> refusedButThere = new ArrayList<>();
    List<String> unknownTooNew = new ArrayList<>();
    int expected = 0;
    int unknown = 0;
    int unknownThere = 0;
    Map<String, Write> byKey = new LinkedHashMap<>();
    for (Write w : writes) {
      byKey.put(w.key(), w);
      Stored s = held.get(w.key());
      switch (w.outcome()) {
        case OK -> {
          if (w.revision() <= backupRevision) {
            expected++;
            if (s == null) {
              missing.add(w.key() + "@" + w.revision());
            } else if (!s.equals(new Stored(w.value(), w.revision()))) {
              wrong.add(w.key() + "@" + w.revision() + " holds " + s);
            }
          } else if (s != null) {
            tooNew.add(w.key() + "@" + w.revision() + " held at " + s.modRevision());
          }
        }
        case FAIL -> {
          if (s != null) {
            refusedButThere.add(w.key() + " (" + w.detail() + ") held at " + s.modRevision());
          }
        }
        case UNKNOWN -> {
          unknown++;
          if (s != null) {
            unknownThere++;
            if (s.modRevision() > backupRevision || !s.value().equals(w.value())) {
              unknownTooNew.add(w.key() + " (" + w.detail() + ") holds " + s);
            }
          }
        }
      }
    }
    List<String> strangers = held.keySet().stream().filter(k -> !byKey.containsKey(k)).toList();
    System.out.printf("backup revision %d: %d acknowledged writes at or before it, %d of unknown outcome"
        + " (%d of them restored), %d keys restored%n", backupRevision, expected, unknown, unknownThere, held.size());
    StringBuilder problems = new StringBuilder();
    report(problems, "acknowledged at or before the backup's revision, missing", missing);
    report(problems, "acknowledged at or before the backup's revision, with another value or modRevision", wrong);
    report(problems, "acknowledged after the backup's revision, yet restored", tooNew);
    report(problems, "refused (not applied), yet restored", refusedButThere);
    report(problems, "of unknown outcome, restored with another value or after the backup's revision", unknownTooNew);
    report(problems, "restored, never written", strangers);
    if (!problems.isEmpty()) {
      fail("the new cluster does not hold exactly the writes acknowledged up to the backup's revision "
          + backupRevision + " (" + expected + " expected, " + held.size() + " keys restored):" + problems);
    }
    assertTrue(expected > 0, "some acknowledged writes precede the backup");
    assertTrue(writes.stream().anyMatch(w -> w.outcome() == Outcome.OK && w.revision() > backupRevision),
        "some acknowledged writes follow the backup");
  }

  /**
   * The backup's point lies between its request and its answer: writes acknowledged before the
   * request are in it, writes sent after the answer began are not; and it was taken under load.
   */
  private static void assertTheBackupPointIsLinearizable(long backupRevision, Backup backup, List<Write> writes) {
    List<String> ackedBeforeButAfter = writes.stream()
        .filter(w -> w.outcome() == Outcome.OK && w.completedNanos() < backup.requestedNanos()
            && w.revision() > backupRevision)
        .map(w -> w.key() + "@" + w.revision()).toList();
    List<String> sentAfterButBefore = writes.stream()
        .filter(w -> w.outcome() == Outcome.OK && w.invokedNanos() > backup.answeredNanos()
            && w.revision() <= backupRevision)
        .map(w -> w.key() + "@" + w.revision()).toList();
    StringBuilder problems = new StringBuilder();
    report(problems, "acknowledged before the backup was asked for, yet after its revision", ackedBeforeButAfter);
    report(problems, "sent after the backup's answer began, yet at or before its revision", sentAfterButBefore);
    if (!problems.isEmpty()) {
      fail("the backup's revision " + backupRevision + " is not a point between its request and its answer:" + problems);
    }
    long inFlight = writes.stream()
        .filter(w -> w.invokedNanos() < backup.requestedNanos() && w.completedNanos() > backup.requestedNanos())
        .count();
    System.out.printf("%d writes were in flight when the backup was asked of the leader%n", inFlight);
    assertTrue(inFlight > 0, "writes were in flight when the backup was asked for: it was taken under load");
  }

  private static void report(StringBuilder problems, String what, List<String> keys) {
    if (!keys.isEmpty()) {
      problems.append("\n  ").append(keys.size()).append(' ').append(what).append(": ")
          .append(keys.stream().limit(10).collect(Collectors.joining(", ")))
          .append(keys.size() > 10 ? ", ..." : "");
    }
  }

  private static String summary(Collection<Write> writes) {
    Map<Outcome, Long> counts = writes.stream().collect(Collectors.groupingBy(Write::outcome, TreeMap::new,
        Collectors.counting()));
    return writes.size() + " writes: " + counts;
  }

  private static String describe(Contents c) {
    return c.kvs().size() + " keys at revision " + c.revision();
  }

  // ---- the backup

  /**
   * {@code GET /v1/cluster/backup} of a follower, and of the leader it redirects to, into {@code file};
   * retried (within {@link #WAIT}) while no leader is known or the node asked turned out to lead.
   */
  private static Backup takeBackupThroughAFollower(Cluster cluster, Path file) {
    HttpClient http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(1))
        .followRedirects(HttpClient.Redirect.NEVER) // followed below, after checking where it points
        .build();
    return Poll.until("a backup through a follower", WAIT, () -> tryBackup(cluster, http, file), cluster::describe);
  }

  private static Optional<Backup> tryBackup(Cluster cluster, HttpClient http, Path file) {
    Optional<NodeProcess> leader = cluster.leader();
    if (leader.isEmpty()) {
      return Optional.empty();
    }
    NodeProcess follower = cluster.others(leader.get()).get(0);
    HttpResponse<Void> first = get(http, follower.uri("/v1/cluster/backup"), HttpResponse.BodyHandlers.discarding());
    if (first == null || first.statusCode() == 503 || first.statusCode() == 200) {
      return Optional.empty(); // no answer, no leader known, or it leads now: ask a follower again
    }
    if (first.statusCode() != 307) {
      throw new AssertionError("a follower's backup answered " + first.statusCode() + ", not 307 to the leader");
    }
    URI location = URI.create(first.headers().firstValue("Location")
        .orElseThrow(() -> new AssertionError("a 307 without a Location")));
    NodeProcess target = cluster.nodes().stream()
        .filter(n -> "127.0.0.1".equals(location.getHost()) && n.httpPort() == location.getPort())
        .findFirst()
        .orElseThrow(() -> new AssertionError("the redirect " + location + " names no node of the cluster"));
    assertEquals("/v1/cluster/backup", location.getPath(), "the redirect keeps the path");
    assertTrue(target != follower, "the redirect names another node than " + follower.id());

    AtomicLong answered = new AtomicLong();
    long requested = System.nanoTime();
    HttpResponse<Path> response = get(http, location, responseInfo -> {
      answered.set(System.nanoTime());
      return responseInfo.statusCode() == 200
          ? HttpResponse.BodySubscribers.ofFile(file)
          : HttpResponse.BodySubscribers.replacing(null);
    });
    if (response == null || response.statusCode() == 503) {
      return Optional.empty(); // it stepped down meanwhile
    }
    assertEquals(200, response.statusCode(), "the leader " + target.id() + " serves the backup");
    SnapshotFile.Header header;
    long bytes;
    try {
      header = SnapshotFile.verify(file);
      bytes = Files.size(file);
    } catch (IOException | IllegalArgumentException e) {
      throw new AssertionError("the backup " + file + " is not a whole snapshot file: " + e, e);
    }
    String disposition = response.headers().firstValue("Content-Disposition").orElse("");
    Matcher name = BACKUP_FILE_NAME.matcher(disposition);
    assertTrue(name.find(), "the backup is named after its index: Content-Disposition: " + disposition);
    assertEquals(header.index(), Long.parseLong(name.group(1)), "the file name's index is the header's");
    return Optional.of(new Backup(file, header, follower.id(), target.id(), requested, answered.get(), bytes));
  }

  /** One GET, within a minute; null when it fails in the network (to retry). */
  private static <T> HttpResponse<T> get(HttpClient http, URI uri, HttpResponse.BodyHandler<T> body) {
    HttpRequest request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(30)).GET().build();
    try {
      return http.sendAsync(request, body).get(60, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      System.out.println("GET " + uri + " failed: " + e);
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  // ---- the restore

  /**
   * {@code bin/raftkv restore --from backup} into {@code node}'s data dir, its output in
   * {@code <node>-restore.log} next to the node's log; returns its last line.
   */
  private static String restore(Path backup, NodeProcess node, String peers) throws IOException, InterruptedException {
    Path home = Cluster.home();
    Path output = node.logFile().resolveSibling(node.id() + "-restore.log");
    List<String> command = List.of(home.resolve("bin/raftkv").toString(), "restore",
        "--from", backup.toString(), "--data-dir", node.dataDir().toString(),
        "--id", node.id(), "--peers", peers);
    Files.writeString(output, "==== harness: " + Instant.now() + ": " + String.join(" ", command) + "\n",
        StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    ProcessBuilder builder = new ProcessBuilder(command)
        .directory(home.toFile())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()))
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    builder.environment().put("RAFTKV_JAVA_OPTS", RESTORE_JAVA_OPTS);
    Process process = builder.start();
    try {
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        throw new AssertionError("bin/raftkv restore for " + node.id() + " did not finish within 60 s");
      }
    } finally {
      if (process.isAlive()) {
        process.destroyForcibly();
        process.waitFor(20, TimeUnit.SECONDS);
      }
    }
    List<String> lines = Files.readAllLines(output, StandardCharsets.UTF_8);
    String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    if (process.exitValue() != 0) {
      throw new AssertionError("bin/raftkv restore for " + node.id() + " exited with " + process.exitValue()
          + ":\n" + String.join("\n", lines));
    }
    return last;
  }

  // ---- reads

  /** Every key of {@code node} with its value and modRevision, and the revision of the read; empty if it fails. */
  private static Optional<Contents> readAll(KvHttpClient client, NodeProcess node, boolean serializable) {
    Map<String, Stored> kvs = new TreeMap<>();
    Long revision = null;
    String after = null;
    for (int page = 0; page < 1_000; page++) {
      String query = "/v1/kv?prefix="
          + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8))
          + (serializable ? "&consistency=serializable" : "");
      Reply reply = client.send(node, "GET", query, null);
      if (reply.status() != 200 || reply.json().isEmpty()) {
        return Optional.empty();
      }
      JsonNode body = reply.json().get();
      long pageRevision = body.path("revision").asLong(-1);
      if (revision != null && revision != pageRevision) {
        return Optional.empty(); // written to between two pages: read again
      }
      revision = pageRevision;
      String last = null;
      for (JsonNode kv : body.path("kvs")) {
        last = kv.path("key").asText();
        String value = kv.path("value").isTextual() ? kv.path("value").asText()
            : "base64:" + kv.path("valueBase64").asText();
        kvs.put(last, new Stored(value, kv.path("modRevision").asLong(-1)));
      }
      if (!body.path("more").asBoolean(false) || last == null) {
        return Optional.of(new Contents(revision, kvs));
      }
      after = last;
    }
    throw new AssertionError("more than 1,000 pages of keys from " + node.id());
  }

  private static long revisionOf(Reply put) {
    return put.json().map(j -> j.path("revision")).filter(JsonNode::isIntegralNumber).map(JsonNode::asLong)
        .orElseThrow(() -> new AssertionError("a PUT answered " + put.status() + " without a revision: " + put.text()));
  }

  // ---- the load

  /**
   * {@link #WRITERS} threads, each putting fresh keys {@code w<t>/<i>} (a new key after every
   * failure too, never a retry of the same one) to one node, moving to the next after an error.
   */
  private static final class Writers {
    private final Cluster cluster;
    private final List<Thread> threads = new ArrayList<>();
    private final ConcurrentLinkedQueue<Write> writes = new ConcurrentLinkedQueue<>();
    private final AtomicInteger acked = new AtomicInteger();
    private final AtomicReference<Throwable> crash = new AtomicReference<>();
    private volatile boolean stopping;

    Writers(Cluster cluster) {
      this.cluster = cluster;
    }

    void start() {
      long deadline = System.nanoTime() + MAX_WRITING.toNanos();
      for (int t = 0; t < WRITERS; t++) {
        int writer = t;
        Thread thread = new Thread(() -> {
          try {
            run(writer, deadline);
          } catch (Throwable e) {
            crash.compareAndSet(null, e);
          }
        }, cluster.testName() + "-writer-" + t);
        thread.setDaemon(true);
        threads.add(thread);
      }
      threads.forEach(Thread::start);
    }

    private void run(int writer, long deadline) {
      KvHttpClient http = new KvHttpClient();
      List<NodeProcess> nodes = cluster.nodes();
      int node = writer % nodes.size();
      for (int i = 0; i < MAX_WRITES_PER_WRITER && !stopping && System.nanoTime() - deadline < 0; i++) {
        String key = String.format("w%d/%05d", writer, i);
        String value = key + "=" + FILLER;
        long invoked = System.nanoTime();
        Reply reply = http.send(nodes.get(node), "PUT", "/v1/kv/" + key, value.getBytes(StandardCharsets.UTF_8));
        long completed = System.nanoTime();
        Outcome outcome = reply.outcome();
        Long revision = outcome == Outcome.OK ? revisionOf(reply) : null;
        writes.add(new Write(key, value, outcome, revision, invoked, completed, reply.describe()));
        if (outcome == Outcome.OK) {
          acked.incrementAndGet();
        } else {
          node = (node + 1) % nodes.size();
          Poll.pause(BACKOFF_MILLIS);
        }
      }
    }

    int acked() {
      return acked.get();
    }

    /** Waits until {@code n} writes in all are acknowledged. */
    void awaitAcked(int n) {
      Poll.until(n + " acknowledged writes", WAIT, () -> {
        assertNoCrash();
        if (threads.stream().noneMatch(Thread::isAlive)) {
          throw new AssertionError("the writers stopped (at their bounds) with " + acked.get() + " acknowledged");
        }
        return acked.get() >= n ? Optional.of(Boolean.TRUE) : Optional.empty();
      }, () -> summary(writes) + "\n" + cluster.describe());
    }

    /** Stops the writers after their current write, and waits for them. */
    void stop() throws InterruptedException {
      stopping = true;
      long deadline = System.nanoTime() + 2 * KvHttpClient.REQUEST_TIMEOUT.toNanos() + TimeUnit.SECONDS.toNanos(10);
      for (Thread thread : threads) {
        thread.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
        if (thread.isAlive()) {
          throw new AssertionError(thread.getName() + " did not stop");
        }
      }
    }

    void assertNoCrash() {
      Throwable t = crash.get();
      if (t != null) {
        throw new AssertionError("a writer crashed: " + t, t);
      }
    }

    /** Every write, in the order they completed. */
    List<Write> writes() {
      return List.copyOf(writes);
    }
  }
}
