package raftkv.multijvm;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodySubscribers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.JsonNode;

import raftkv.multijvm.WatchChecker.KeyState;
import raftkv.multijvm.WatchChecker.Message;

/**
 * Watchers of every key from revision 1 ({@code GET /v1/watch/?prefix=true&fromRevision=1}, API.md
 * §4), one per node of a {@link Cluster}, over the JDK's {@link HttpClient} to the nodes'
 * 127.0.0.1 HTTP ports only, recording every message of their Server-Sent Events streams in
 * order; {@link #verify} checks them with the {@link WatchChecker} once the faults are healed.
 *
 * <p>A watcher follows its stream through the faults as a careful client would: when its
 * connection fails or its stream ends, it connects again with {@code Last-Event-ID} set to the
 * last revision it received, to the same node if that node runs, else to another one (and after
 * {@value #FAILURES_BEFORE_MOVING} failures on a node in a row, to another one anyway); after
 * {@code event: compacted} or a {@code 410} (the node no longer holds the revisions it needs,
 * e.g. it installed a snapshot) to another node, which may still have them. A watcher away from
 * its own node goes back to it once that node answers and the watcher has streamed elsewhere for
 * {@value #AWAY_MILLIS} ms, so that every node keeps serving resumed watches through the faults.
 * After a connection that brought no message it backs off (100 ms more each time in a row, up to
 * 1 s); it gives up after {@value #MAX_ATTEMPTS_IN_A_ROW} attempts in a row without a stream or
 * {@value #MAX_ATTEMPTS} in all, and {@link #verify} then fails with its connection log. A stream
 * silent for longer than {@link #IDLE_TIMEOUT} (a caught-up watch gets a progress message every
 * 10 s) is given up as stalled, counted, and resumed like a broken one.
 *
 * <p>The data of a revision is kept once for all watchers that received the same text, so that
 * large transactions do not fill the test's heap once per watcher.
 */
public final class WatchClient implements AutoCloseable {

  /** How long the answer's headers may take. */
  static final Duration HEADERS_TIMEOUT = Duration.ofSeconds(10);
  /** A stream that sends nothing, not even a progress message, for this long is given up. */
  static final Duration IDLE_TIMEOUT = Duration.ofSeconds(35);
  /** A watcher streaming away from its node for this long goes back to it, if it answers. */
  static final long AWAY_MILLIS = 3_000;
  /** After a compacted, a 410 or failures on its own node, a watcher does not go back to it before this. */
  static final long HOME_HOLD_MILLIS = 5_000;
  static final int MAX_ATTEMPTS_IN_A_ROW = 150;
  static final int MAX_ATTEMPTS = 3_000;
  /** Failures in a row on one node after which a watcher tries another even if that one runs. */
  static final int FAILURES_BEFORE_MOVING = 3;
  private static final long BACKOFF_STEP_MILLIS = 100;
  private static final long BACKOFF_MAX_MILLIS = 1_000;
  /**
   * How long {@link #verify} waits for a progress message on every caught-up watcher (sent after
   * raftkv.watch.progress-interval, 10 s, of nothing; a watcher that just went back to its node
   * waits for it again).
   */
  static final Duration PROGRESS_TIMEOUT = Duration.ofSeconds(40);
  /** How long {@link #verify} waits for the watchers to reach the final revision. */
  public static final Duration CATCH_UP_TIMEOUT = Duration.ofSeconds(90);
  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss.SSS", Locale.ROOT);
  private static final String LOG_FILE = "watchers.txt";

  private final Cluster cluster;
  private final Consumer<String> log;
  private final HttpClient http;
  private final List<Watcher> watchers = new CopyOnWriteArrayList<>();
  /** The data of each revision as first received: a watcher that got the same text keeps this one. */
  private final ConcurrentHashMap<Long, String> dataByRevision = new ConcurrentHashMap<>();
  /** When some watcher first received each revision ({@link System#nanoTime()}): when it was seen to be committed. */
  private final ConcurrentHashMap<Long, Long> firstReceivedNanos = new ConcurrentHashMap<>();

  private WatchClient(Cluster cluster, Consumer<String> log) {
    this.cluster = cluster;
    this.log = log;
    this.http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(1))
        .followRedirects(HttpClient.Redirect.NEVER)
        .build();
  }

  /**
   * Starts one watcher per node of {@code cluster} ("w-n1" on n1, ...), each watching every key
   * from revision 1; {@code log} gets a line for what a watcher does besides receiving.
   */
  public static WatchClient start(Cluster cluster, Consumer<String> log) {
    WatchClient client = new WatchClient(cluster, log);
    client.startWatchers("w-", false);
    return client;
  }

  private List<Watcher> startWatchers(String prefix, boolean pinned) {
    List<Watcher> started = new ArrayList<>();
    for (NodeProcess node : cluster.nodes()) {
      started.add(new Watcher(prefix + node.id(), node, pinned));
    }
    watchers.addAll(started);
    started.forEach(w -> w.thread.start());
    return started;
  }

  /** The messages each watcher received so far, by watcher name: a snapshot. */
  public Map<String, List<Message>> received() {
    Map<String, List<Message>> all = new LinkedHashMap<>();
    watchers.forEach(w -> all.put(w.name, w.messages()));
    return all;
  }

  /**
   * For every revision some watcher received in a change message, when the first of them received
   * it ({@link System#nanoTime()} of the test JVM): an upper bound of the time it was committed,
   * for checks of when something happened (a lease's expiry). A snapshot.
   */
  public Map<Long, Long> firstReceivedNanos() {
    return Map.copyOf(firstReceivedNanos);
  }

  /** How many times a watcher was told a node lacks the revisions it needs (compacted or 410). */
  public int compactions() {
    return watchers.stream().filter(w -> !w.pinned).mapToInt(w -> w.compactedEvents + w.gone).sum();
  }

  /**
   * The check after the faults, once the cluster has settled (after {@link Scenario#verify()}).
   * Reads every key linearizably; waits until every watcher has received up to the revision R of
   * that read and then, idle, a progress message at R, and stops them. Then watches once more
   * from revision 1 on every node, staying on that node (a node whose history starts later,
   * after a snapshot it installed, answers 410 with its compact revision C, and that watcher
   * takes C+1..R there), until R. Fails unless the {@link WatchChecker} finds the first watchers'
   * revisions to be 1..R once each and in order, the second ones' C+1..R (C = 0 unless the node
   * answered 410), the same events for a revision on every watcher, and the replay of the first
   * watchers' events the state read. Writes every watcher's connection log to
   * {@value #LOG_FILE} in the test's log dir.
   */
  public void verify() {
    try {
      FinalState state = Poll.until("a linearizable read of every key", Duration.ofSeconds(60),
          this::readEveryKey, cluster::describe);
      long target = state.revision();
      log.accept("watchers: the store is at revision " + target + " with " + state.kvs().size()
          + " keys; waiting for every watcher to receive up to it");
      List<Watcher> live = List.copyOf(watchers);
      awaitRevision(live, target);
      Poll.until("every watcher to get a progress message at revision " + target + " (they are caught up and idle)",
          PROGRESS_TIMEOUT, () -> live.stream().allMatch(w -> w.lastIsProgressAt(target)) ? Optional.of(true)
              : Optional.empty(), () -> describe(live));
      live.forEach(Watcher::stop);
      log.accept(describe(live));
      List<Watcher> histories = startWatchers("h-", true);
      awaitRevision(histories, target);
      histories.forEach(Watcher::stop);
      log.accept("a watch from revision 1 on each node, staying there: " + histories.stream()
          .map(w -> w.home.id() + (w.historyStart > 0 ? " 410, history after " + w.historyStart : " from 1"))
          .collect(Collectors.joining(", ")));
      close();
      WatchChecker.Report report = new WatchChecker().check(received(), target, state.kvs());
      log.accept(report.ok() ? report.summary() : report.describe());
      if (!report.ok()) {
        throw new AssertionError(cluster.testName() + ": the watchers saw a wrong history (connection logs in "
            + Cluster.logDir(cluster.testName()).resolve(LOG_FILE) + ")\n" + report.describe());
      }
    } finally {
      close();
      writeConnectionLogs();
    }
  }

  private void awaitRevision(List<Watcher> group, long target) {
    Poll.until("every watcher to receive up to revision " + target, CATCH_UP_TIMEOUT, () -> {
      for (Watcher w : group) {
        if (w.gaveUp != null && w.lastRevision < target) {
          throw new AssertionError(w.name + " gave up at revision " + w.lastRevision + ": " + w.gaveUp
              + "\n" + w.connectionLog());
        }
      }
      return group.stream().allMatch(w -> w.lastRevision >= target) ? Optional.of(true) : Optional.empty();
    }, () -> describe(group) + "\n" + cluster.describe());
  }

  /** One line per watcher: where it is, what it received, how often it connected and why. */
  public String describe() {
    return describe(watchers);
  }

  private static String describe(List<Watcher> group) {
    return "watchers:" + group.stream().map(w -> "\n  " + w.describe()).collect(Collectors.joining());
  }

  /** Stops every watcher and waits (briefly) for their threads to end. */
  @Override
  public void close() {
    watchers.forEach(Watcher::stop);
    for (Watcher w : watchers) {
      try {
        w.thread.join(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static String now() {
    return LocalTime.now().format(CLOCK);
  }

  // ---- the final state

  /** Every key with its value and revisions, and the revision of the read. */
  record FinalState(long revision, Map<String, KeyState> kvs) {}

  /**
   * {@code GET /v1/kv?prefix=&limit=0} (linearizable), page after page while {@code more}, from the
   * leader; empty if a page failed or the pages were read at different revisions.
   */
  private Optional<FinalState> readEveryKey() {
    Optional<NodeProcess> leader = cluster.leader();
    if (leader.isEmpty()) {
      return Optional.empty();
    }
    KvHttpClient client = new KvHttpClient(Duration.ofSeconds(30));
    Map<String, KeyState> kvs = new LinkedHashMap<>();
    long revision = -1;
    String after = null;
    while (true) {
      KvHttpClient.Reply reply = client.send(leader.get(), "GET", "/v1/kv?prefix=&limit=0"
          + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8)), null);
      Optional<JsonNode> body = reply.status() == 200 ? reply.json() : Optional.empty();
      if (body.isEmpty() || !body.get().path("revision").canConvertToLong()) {
        return Optional.empty();
      }
      long pageRevision = body.get().path("revision").asLong();
      if (revision >= 0 && pageRevision != revision) {
        return Optional.empty(); // something changed between the pages: read again
      }
      revision = pageRevision;
      String lastKey = null;
      for (JsonNode kv : body.get().path("kvs")) {
        lastKey = kv.path("key").asText();
        kvs.put(lastKey, new KeyState(WatchChecker.valueOf(kv), kv.path("createRevision").asLong(-1),
            kv.path("modRevision").asLong(-1), kv.path("version").asLong(-1)));
      }
      if (!body.get().path("more").asBoolean(false) || lastKey == null) {
        return Optional.of(new FinalState(revision, kvs));
      }
      after = lastKey;
    }
  }

  private void writeConnectionLogs() {
    Path file = Cluster.logDir(cluster.testName()).resolve(LOG_FILE);
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, describe() + "\n\n" + watchers.stream().map(w -> w.name + ":\n" + w.connectionLog())
          .collect(Collectors.joining("\n\n")) + "\n", StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      log.accept("cannot write " + file + ": " + e);
    }
  }

  // ---- one watcher

  /** How one connection ended. */
  private enum End {
    /** {@code event: compacted}, or a 410 before the stream: the node lacks the revisions needed. */
    COMPACTED,
    /** No connection, no answer, an error status, or the stream broke or ended. */
    FAILED,
    /** Nothing came for {@link #IDLE_TIMEOUT}. */
    STALLED,
    /** Cut by the watcher to go back to its own node. */
    GOING_HOME,
    /** Cut because the watcher stops. */
    STOPPED
  }

  private final class Watcher {
    final String name;
    final NodeProcess home;
    /** Stays on its node; a 410 before the first change sets where its history starts. */
    final boolean pinned;
    final Thread thread;
    private final CountDownLatch stopping = new CountDownLatch(1);
    private final List<Message> messages = new ArrayList<>(); // guarded by this
    private final List<String> connections = new ArrayList<>(); // guarded by this
    /** The last revision received in a change message: Last-Event-ID of the next connection. */
    volatile long lastRevision;
    volatile String gaveUp;
    /** A pinned watcher's 410: the compact revision its node's history starts after (0: none). */
    volatile long historyStart;
    private volatile NodeProcess node;
    private volatile Connection current;
    private volatile int connection;
    private volatile int compactedEvents;
    private volatile int gone;
    private volatile int stalls;
    private volatile int failures;
    private volatile int homecomings;
    private long homeNotBefore;
    private long nextHomeProbe;

    Watcher(String name, NodeProcess home, boolean pinned) {
      this.name = name;
      this.home = home;
      this.node = home;
      this.pinned = pinned;
      this.homeNotBefore = System.nanoTime();
      this.nextHomeProbe = homeNotBefore;
      this.thread = new Thread(this::run, cluster.testName() + "-watch-" + name);
      thread.setDaemon(true);
    }

    boolean stopped() {
      return stopping.getCount() == 0;
    }

    void stop() {
      stopping.countDown();
      Connection c = current;
      if (c != null) {
        c.cancel();
      }
    }

    /** True if the last message received is a progress at {@code revision}. */
    synchronized boolean lastIsProgressAt(long revision) {
      if (messages.isEmpty()) {
        return false;
      }
      Message last = messages.get(messages.size() - 1);
      return last.kind() == WatchChecker.Kind.PROGRESS && last.revision() == revision;
    }

    synchronized List<Message> messages() {
      return List.copyOf(messages);
    }

    synchronized String connectionLog() {
      return connections.stream().map(c -> "  " + c).collect(Collectors.joining("\n"));
    }

    String describe() {
      return String.format(Locale.ROOT, "%s: at revision %d on %s, %d connections (%d compacted, %d 410,"
          + " %d failed, %d stalled, %d back home)%s", name, lastRevision, node.id(), connection, compactedEvents,
          gone, failures, stalls, homecomings, gaveUp == null ? "" : ", GAVE UP: " + gaveUp);
    }

    private synchronized void note(String line) {
      connections.add(now() + " #" + connection + " " + line);
    }

    /** Records a message, keeping one copy of the text of a revision for all watchers. */
    synchronized void received(Connection from, Message message) {
      if (from.cancelled) {
        return; // a connection given up: what it still delivers must not mix with the next one's
      }
      if (message.kind() == WatchChecker.Kind.CHANGE) {
        firstReceivedNanos.putIfAbsent(message.revision(), System.nanoTime());
        String kept = dataByRevision.putIfAbsent(message.revision(), message.data());
        if (kept != null && kept.equals(message.data())) {
          message = new Message(message.kind(), message.revision(), kept, message.node(), message.connection());
        }
        lastRevision = message.revision();
      }
      messages.add(message);
    }

    private void run() {
      int attempts = 0;
      int inARow = 0; // attempts without a stream
      int emptyInARow = 0; // connections that brought no message
      int failuresHere = 0;
      while (!stopped()) {
        if (inARow >= MAX_ATTEMPTS_IN_A_ROW || attempts >= MAX_ATTEMPTS) {
          gaveUp = attempts + " attempts, " + inARow + " in a row without a stream";
          note("gives up: " + gaveUp);
          log.accept(name + " gives up: " + gaveUp);
          return;
        }
        attempts++;
        inARow++;
        NodeProcess at = node;
        Connection c = connect(at);
        End end = c.await();
        if (c.streaming) {
          inARow = 0;
        }
        emptyInARow = c.count == 0 ? emptyInARow + 1 : 0;
        switch (end) {
          case STOPPED -> {
            return;
          }
          case COMPACTED -> {
            failuresHere = 0;
            if (pinned) {
              if (!startHistoryAt(c)) {
                gaveUp = "its node lacks revisions after the first it received";
                note("gives up: " + gaveUp);
                log.accept(name + " gives up: " + gaveUp);
                return;
              }
            } else {
              if (at == home) {
                homeNotBefore = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(HOME_HOLD_MILLIS);
              }
              node = another(at);
            }
          }
          case GOING_HOME -> {
            homecomings++;
            failuresHere = 0;
            node = home;
          }
          case FAILED, STALLED -> {
            failuresHere = c.streaming ? 1 : failuresHere + 1;
            if (!pinned && (!at.running() || failuresHere >= FAILURES_BEFORE_MOVING)) {
              if (at == home) {
                homeNotBefore = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(HOME_HOLD_MILLIS);
              }
              node = another(at);
              failuresHere = 0;
            }
          }
          default -> throw new IllegalStateException("unknown end " + end);
        }
        if (emptyInARow > 0) {
          try {
            if (stopping.await(Math.min(BACKOFF_MAX_MILLIS, BACKOFF_STEP_MILLIS * emptyInARow), TimeUnit.MILLISECONDS)) {
              return;
            }
          } catch (InterruptedException e) {
            return;
          }
        }
      }
    }

    /**
     * A pinned watcher's 410 before any change: its node's history starts after the compact
     * revision, which the watcher records and resumes after. False if it had received changes
     * already (the node lost revisions the watcher still needed: a settled cluster must not).
     */
    private boolean startHistoryAt(Connection c) {
      synchronized (this) {
        if (!messages.isEmpty() || c.compactRevision < 0) {
          return false;
        }
        historyStart = c.compactRevision;
        lastRevision = c.compactRevision;
        messages.add(Message.historyStarts(c.compactRevision, c.at.id(), c.number));
      }
      return true;
    }

    /** The next running node after {@code from} in the cluster's order; {@code from} if none. */
    private NodeProcess another(NodeProcess from) {
      List<NodeProcess> nodes = cluster.nodes();
      int at = nodes.indexOf(from);
      for (int i = 1; i <= nodes.size(); i++) {
        NodeProcess candidate = nodes.get(Math.floorMod(at + i, nodes.size()));
        if (candidate != from && candidate.running()) {
          return candidate;
        }
      }
      return from;
    }

    /**
     * True if the watcher, streaming from {@code c} away from its own node long enough, should go
     * back to it: it runs and answers (asked at most once per {@link #AWAY_MILLIS}).
     */
    private boolean timeToGoHome(Connection c, long now) {
      if (pinned || c.at == home || !home.running() || now - homeNotBefore < 0 || now - nextHomeProbe < 0
          || now - c.opened < TimeUnit.MILLISECONDS.toNanos(AWAY_MILLIS)) {
        return false;
      }
      nextHomeProbe = now + TimeUnit.MILLISECONDS.toNanos(AWAY_MILLIS);
      return cluster.control().status(home).isPresent();
    }

    /** Opens a watch on {@code at}: from revision 1 the first time, else after the last revision received. */
    private Connection connect(NodeProcess at) {
      long after;
      synchronized (this) {
        connection++;
        after = lastRevision;
      }
      // fromRevision=1 always: a resumed watch also checks that Last-Event-ID wins over it
      URI uri = at.uri("/v1/watch/?prefix=true&fromRevision=1");
      HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(HEADERS_TIMEOUT).GET()
          .header("Accept", "text/event-stream");
      if (after > 0) {
        request.header("Last-Event-ID", Long.toString(after));
      }
      Connection c = new Connection(at, connection);
      current = c;
      note("to " + at.id() + (after == 0 ? " from revision 1" : " with Last-Event-ID " + after));
      c.call = http.sendAsync(request.build(), info -> {
        c.status = info.statusCode();
        return info.statusCode() == 200
            ? BodySubscribers.fromLineSubscriber(c, s -> "", StandardCharsets.UTF_8, null)
            : BodySubscribers.ofString(StandardCharsets.UTF_8);
      });
      if (stopped()) {
        c.cancel();
      }
      return c;
    }

    /**
     * One connection: its Server-Sent Events, line by line on the HTTP client's threads, become
     * messages; {@link #await} follows it from the watcher's thread until it ends.
     */
    private final class Connection implements Flow.Subscriber<String> {
      final NodeProcess at;
      final int number;
      final long opened = System.nanoTime();
      volatile CompletableFuture<HttpResponse<String>> call;
      volatile int status = -1;
      volatile boolean streaming;
      volatile boolean cancelled;
      volatile long lastActivity = System.nanoTime();
      /** From {@code event: compacted} or a 410; -1 if neither came. */
      volatile long compactRevision = -1;
      private volatile String compactedEvent;
      private Flow.Subscription subscription; // guarded by this
      // the message being read (its SSE fields), on the client's threads one line at a time
      private String id;
      private String event;
      private StringBuilder data;
      /** Change and progress messages received. */
      private volatile long count;

      Connection(NodeProcess at, int number) {
        this.at = at;
        this.number = number;
      }

      @Override
      public void onSubscribe(Flow.Subscription s) {
        synchronized (this) {
          subscription = s;
        }
        streaming = true;
        lastActivity = System.nanoTime();
        if (cancelled) {
          s.cancel();
        } else {
          s.request(1);
        }
      }

      @Override
      public void onNext(String line) {
        lastActivity = System.nanoTime();
        line(line);
        Flow.Subscription s;
        synchronized (this) {
          s = subscription;
        }
        if (!cancelled && s != null) {
          s.request(1);
        }
      }

      @Override
      public void onError(Throwable t) {
        // the call's future fails with it
      }

      @Override
      public void onComplete() {
        // the call's future completes
      }

      void cancel() {
        synchronized (Watcher.this) {
          cancelled = true; // from here on received() drops what this connection still delivers
        }
        Flow.Subscription s;
        synchronized (this) {
          s = subscription;
        }
        if (s != null) {
          s.cancel();
        }
        CompletableFuture<HttpResponse<String>> c = call;
        if (c != null) {
          c.cancel(true);
        }
      }

      /** One line of the event stream: a field, or a blank line that ends a message. */
      private void line(String line) {
        if (line.isEmpty()) {
          if (id != null || event != null || data != null) {
            dispatch();
          }
          id = null;
          event = null;
          data = null;
          return;
        }
        if (line.startsWith(":")) {
          return; // a comment
        }
        int colon = line.indexOf(':');
        String field = colon < 0 ? line : line.substring(0, colon);
        String value = colon < 0 ? "" : line.substring(colon + 1);
        if (value.startsWith(" ")) {
          value = value.substring(1);
        }
        switch (field) {
          case "id" -> id = value;
          case "event" -> event = value;
          case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
          default -> {
            // other fields (retry) mean nothing here
          }
        }
      }

      private void dispatch() {
        String type = event == null ? "message" : event;
        String text = data == null ? "" : data.toString();
        switch (type) {
          case "change", "progress" -> {
            long revision;
            try {
              revision = Long.parseLong(id == null ? "" : id.trim());
            } catch (NumberFormatException e) {
              received(this, Message.malformed("a " + type + " message with id " + id + ": "
                  + WatchChecker.abbreviate(text, 200), at.id(), number));
              return;
            }
            count++;
            received(this, type.equals("change") ? Message.change(revision, text, at.id(), number)
                : Message.progress(revision, at.id(), number));
          }
          case "compacted" -> {
            compactRevision = compactRevisionOf(text);
            compactedEvent = text;
          }
          default -> received(this, Message.malformed("an event " + type + " (id " + id + "): "
              + WatchChecker.abbreviate(text, 200), at.id(), number));
        }
      }

      private long compactRevisionOf(String json) {
        try {
          JsonNode body = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json);
          return body != null && body.path("compactRevision").canConvertToLong()
              ? body.path("compactRevision").asLong() : -1;
        } catch (java.io.IOException e) {
          return -1;
        }
      }

      /** Follows the connection from the watcher's thread until it ends, and says how. */
      End await() {
        while (true) {
          if (stopped()) {
            cancel();
            note(at.id() + ": stopped after " + count + " messages, at revision " + lastRevision);
            return End.STOPPED;
          }
          try {
            HttpResponse<String> response = call.get(250, TimeUnit.MILLISECONDS);
            if (stopped()) {
              continue;
            }
            if (response.statusCode() == 200) {
              if (compactedEvent != null) {
                compactedEvents++;
                note(at.id() + ": event compacted " + compactedEvent + " after " + count + " messages, at revision "
                    + lastRevision);
                return End.COMPACTED;
              }
              failures++;
              note(at.id() + ": the stream ended after " + count + " messages");
              return End.FAILED;
            }
            if (response.statusCode() == 410) {
              gone++;
              compactRevision = compactRevisionOf(response.body());
              note(at.id() + ": 410 " + WatchChecker.abbreviate(response.body(), 300));
              return End.COMPACTED;
            }
            failures++;
            note(at.id() + ": " + response.statusCode() + " " + WatchChecker.abbreviate(response.body(), 300));
            return End.FAILED;
          } catch (TimeoutException e) {
            long now = System.nanoTime();
            if (streaming && now - lastActivity > IDLE_TIMEOUT.toNanos()) {
              cancel();
              stalls++;
              note(at.id() + ": nothing for " + IDLE_TIMEOUT.toSeconds() + " s after " + count
                  + " messages (the node is " + at.state() + "): given up as stalled");
              log.accept(name + ": the stream from " + at.id() + " stalled at revision " + lastRevision);
              return End.STALLED;
            }
            if (streaming && timeToGoHome(this, now)) {
              cancel();
              note(at.id() + ": cut after " + count + " messages, at revision " + lastRevision + ", to go back to "
                  + home.id());
              return End.GOING_HOME;
            }
          } catch (ExecutionException | CancellationException e) {
            if (stopped()) {
              continue; // cut by stop(): said so above, on the next round
            }
            Throwable cause = e.getCause() == null ? e : e.getCause();
            if (compactedEvent != null) { // the end of the stream after it may come as an error
              compactedEvents++;
              note(at.id() + ": event compacted " + compactedEvent + " after " + count + " messages, then "
                  + cause.getClass().getSimpleName());
              return End.COMPACTED;
            }
            failures++;
            note(at.id() + ": " + (streaming ? "the stream broke after " + count + " messages: " : "")
                + cause.getClass().getSimpleName() + (cause.getMessage() == null ? "" : ": " + cause.getMessage()));
            return End.FAILED;
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            cancel();
            return End.STOPPED;
          }
        }
      }
    }
  }
}
