package raftkv.multijvm;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import raftkv.history.History;
import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LockChecker.Acquisition;
import raftkv.multijvm.LockChecker.Increment;
import raftkv.multijvm.LockChecker.Outcome;
import raftkv.multijvm.LockChecker.StaleAttempt;

/**
 * Contenders for one lock (API.md §4, README.md "Locks" and "Fenced writes") through the faults,
 * recording what the {@link LockChecker} needs, on the test JVM's {@link System#nanoTime()}.
 *
 * <p>Each contender has a lease of {@value #TTL_SECONDS} s that a keeper thread of its own renews
 * every TTL/4 through any node, and loops: acquire {@code POST /v1/locks/counter-lock?lease=L&waitSeconds=5}
 * (after 503, 504, 409 or no answer again with the same lease, which keeps its place, on another
 * node, for at most {@link #REQUEST_BOUND}); once it holds with token {@code T}, one to three
 * increments of the key {@code counter}: a linearizable {@code GET} (value {@code v}, mod revision
 * {@code m}), then {@code PUT v+1} with {@code If-Fence: counter-lock=T}, {@code If-Match: "m"} and
 * an {@code Idempotency-Key} of its own, sent again with that key after every answer that does not
 * say what happened until one does (for at most {@link #WRITE_BOUND}); a 412 for the If-Match
 * reads again and tries under a new key, a 412 from the fence ends the hold (the lock was lost).
 * Between the read and the write the holder "works" 50 to 250 ms, so that faults fall into increments.
 * Then the release, {@code DELETE /v1/locks/counter-lock?key=K&fencingToken=T} (with an
 * Idempotency-Key, so that a retry is answered as the first try). A hold that does not end in a
 * release answered 200 leaves its lease behind and grants a new one.
 *
 * <p>The first {@code pausers} contenders sometimes play a <b>paused client</b> (in their second
 * hold, then in {@value #PAUSE_CHANCE} of them): while holding,
 * they stop renewing their lease for its TTL plus 2 s, then read the lock ({@code GET}, linearizable)
 * until another token or nobody holds it, and only then try an increment with their old token,
 * which must be refused (412 naming another holder); then they grant a new lease and go on.
 *
 * <p>Every read of the counter and every increment (one operation from its first send to its
 * answer, a compare-and-set of {@code v} to {@code v+1}) also goes into the register
 * {@link History}, so that the linearizability checker sees the counter too.
 */
final class LockClients implements AutoCloseable {

  static final String LOCK = "counter-lock";
  static final String COUNTER = "counter";
  static final int TTL_SECONDS = 4;
  static final int WAIT_SECONDS = 5;
  /** The longest a grant, an acquisition, a read or a release is retried. */
  static final Duration REQUEST_BOUND = Duration.ofSeconds(30);
  /** The longest one increment is retried under its Idempotency-Key. */
  static final Duration WRITE_BOUND = Duration.ofSeconds(60);
  /** How long a paused client waits, past its TTL + 2 s, to see the lock held by another token. */
  static final Duration MOVED_ON_BOUND = Duration.ofSeconds(45);
  /** A pauser pauses in its second hold, and then in this share of its holds. */
  static final double PAUSE_CHANCE = 0.2;
  private static final long RETRY_MILLIS = 150;
  /** A holder works up to this long (at least a quarter of it) between the read and the write of an increment. */
  private static final int WORK_MILLIS = 200;
  private static final long KEEPALIVE_TIMEOUT_MILLIS = 1_500;
  private static final Duration REQUEST_TIMEOUT = Duration.ofMillis(2_000);
  private static final Duration LOCK_TIMEOUT = Duration.ofSeconds(WAIT_SECONDS + 4);
  private static final int FIRST_PROCESS = 40_000;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Cluster cluster;
  private final History history;
  private final String tag;
  private final SplittableRandom root;
  private final ConcurrentLinkedQueue<Acquisition> acquisitions = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<Increment> increments = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<StaleAttempt> stale = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<String> unexpected = new ConcurrentLinkedQueue<>();
  private final AtomicInteger nextProcess = new AtomicInteger(FIRST_PROCESS + 1_000);
  private final AtomicInteger grants = new AtomicInteger();
  private final AtomicInteger lockTimeouts = new AtomicInteger();
  private final AtomicInteger acquireRetries = new AtomicInteger();
  private final AtomicInteger acquireGaveUp = new AtomicInteger();
  private final AtomicInteger leasesLost = new AtomicInteger();
  private final AtomicInteger keepalivesOk = new AtomicInteger();
  private final AtomicInteger keepalivesFailed = new AtomicInteger();
  private final AtomicInteger pausesSkipped = new AtomicInteger();
  private final AtomicReference<Throwable> crash = new AtomicReference<>();
  private final List<Thread> threads = new ArrayList<>();
  private volatile boolean stopping;
  /** Set by {@link #close()}: no request is retried after it. */
  private volatile boolean closed;

  LockClients(Cluster cluster, History history, long seed, String tag) {
    this.cluster = cluster;
    this.history = history;
    this.tag = tag;
    this.root = new SplittableRandom(seed);
  }

  /** Creates the counter with value 0 ({@code If-None-Match: *}, retried under one Idempotency-Key). */
  LockClients init() {
    Client client = new Client(root.split(), FIRST_PROCESS + 999);
    History.Invocation call = history.invokeWrite(client.process, COUNTER, "0");
    List<Answer> answers = client.untilAnswered("PUT", "/v1/kv/" + COUNTER, "0".getBytes(StandardCharsets.UTF_8),
        tag + "/init", REQUEST_BOUND, "If-None-Match", "*");
    Answer last = answers.get(answers.size() - 1);
    if (last.status() != 200) {
      history.complete(call, raftkv.history.Op.Outcome.UNKNOWN);
      throw new AssertionError("the counter was not created: " + last.describe() + " " + last.body());
    }
    history.complete(call, raftkv.history.Op.Outcome.OK);
    return this;
  }

  /** Starts {@code contenders} contenders, the first {@code pausers} of which sometimes play paused clients. */
  synchronized LockClients start(int contenders, int pausers) {
    for (int c = 0; c < contenders; c++) {
      Contender contender = new Contender(c, c < pausers, root.split());
      threads.add(thread("lock-contender-" + c, contender::run));
      threads.add(thread("lock-keeper-" + c, contender::keep));
    }
    threads.forEach(Thread::start);
    return this;
  }

  private Thread thread(String name, Runnable body) {
    Thread thread = new Thread(() -> {
      try {
        body.run();
      } catch (Throwable t) {
        crash.compareAndSet(null, t);
      }
    }, cluster.testName() + "-" + name);
    thread.setDaemon(true);
    return thread;
  }

  /** Asks the contenders to stop and waits: each finishes its hold (increments and release). */
  void stop() {
    stopping = true;
    long limit = WRITE_BOUND.toMillis() + 3 * REQUEST_BOUND.toMillis() + MOVED_ON_BOUND.toMillis();
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(limit);
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while stopping the lock clients", e);
      }
      if (t.isAlive()) {
        throw new AssertionError(t.getName() + " did not finish within " + limit + " ms");
      }
    }
    if (crash.get() != null) {
      throw new AssertionError("a lock client crashed: " + crash.get(), crash.get());
    }
  }

  /** Stops every client at once if {@link #stop()} did not (the test failed midway). */
  @Override
  public void close() {
    stopping = true;
    closed = true;
    for (Thread t : threads) {
      try {
        t.join(LOCK_TIMEOUT.toMillis() + 2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  List<Acquisition> acquisitions() {
    return List.copyOf(acquisitions);
  }

  List<Increment> increments() {
    return List.copyOf(increments);
  }

  List<StaleAttempt> staleAttempts() {
    return List.copyOf(stale);
  }

  /** Answers no request of theirs should get (a 400, a 422, a 500, ...). */
  List<String> unexpected() {
    return List.copyOf(unexpected);
  }

  /** "lock clients: 57 acquisitions, 12 lock timeouts (408), ...". */
  String summary() {
    long acked = increments.stream().filter(i -> i.outcome() == Outcome.ACKED).count();
    long refused = stale.stream().filter(s -> s.outcome() == Outcome.FENCED).count();
    return "lock clients: " + acquisitions.size() + " acquisitions, " + lockTimeouts + " lock timeouts (408), "
        + acquireRetries + " acquire retries (same lease), " + acquireGaveUp + " acquisitions given up, " + grants
        + " leases granted, " + leasesLost + " found gone, " + keepalivesOk + " keepalives answered 200 and "
        + keepalivesFailed + " not; " + increments.size() + " increments (" + acked + " acknowledged); "
        + stale.size() + " stale-token writes (" + refused + " refused by the fence), " + pausesSkipped
        + " paused clients that never saw the lock move on";
  }

  // ---- requests

  /** Something that sends requests to one node at a time and moves on after a failure. */
  private class Client {
    final SplittableRandom random;
    final TimedHttp http = new TimedHttp(REQUEST_TIMEOUT);
    int process;
    NodeProcess node;

    Client(SplittableRandom random, int process) {
      this.random = random;
      this.process = process;
      List<NodeProcess> nodes = cluster.nodes();
      this.node = nodes.get(random.nextInt(nodes.size()));
    }

    /** Another node than the current one, at random; one that runs if there is one. */
    void moveOn() {
      List<NodeProcess> nodes = cluster.nodes().stream().filter(n -> n != node).toList();
      List<NodeProcess> running = nodes.stream().filter(NodeProcess::running).toList();
      List<NodeProcess> choice = running.isEmpty() ? nodes : running;
      if (!choice.isEmpty()) {
        node = choice.get(random.nextInt(choice.size()));
      }
    }

    /**
     * Sends one write under {@code idempotencyKey} again and again (to another node after each
     * answer that does not say what happened: 5xx, 409 or none) until one does, {@code bound} has
     * passed, or the clients are closed; every answer, in order.
     */
    List<Answer> untilAnswered(String method, String path, byte[] body, String idempotencyKey, Duration bound,
        String... headers) {
      List<Answer> answers = new ArrayList<>();
      long deadline = System.nanoTime() + bound.toNanos();
      String[] all = new String[headers.length + 2];
      System.arraycopy(headers, 0, all, 0, headers.length);
      all[headers.length] = "Idempotency-Key";
      all[headers.length + 1] = idempotencyKey;
      while (true) {
        Answer a = http.send(node, method, path, body, all).answer();
        answers.add(a);
        if (!retryable(a.status()) || System.nanoTime() - deadline >= 0 || closed) {
          return answers;
        }
        moveOn();
        Poll.pause(RETRY_MILLIS + random.nextInt((int) RETRY_MILLIS));
      }
    }
  }

  private static boolean retryable(int status) {
    return status == -1 || status == 409 || status >= 500;
  }

  /** A linearizable read of the counter: its value and mod revision. */
  private record CounterRead(long value, long modRevision) {}

  /** What an acquisition came to. */
  private record Acquired(long firstSendNanos, Answer answer, String key, long token) {}

  /** A lease of a contender, renewed by its keeper unless suspended. */
  private static final class Lease {
    final long id;
    final long ttlSeconds;
    volatile boolean suspended;
    volatile boolean gone;
    volatile long dueNanos;

    Lease(long id, long ttlSeconds, long grantedNanos) {
      this.id = id;
      this.ttlSeconds = ttlSeconds;
      this.dueNanos = grantedNanos + TimeUnit.SECONDS.toNanos(ttlSeconds) / 4;
    }
  }

  private final class Contender extends Client {
    final int number;
    final String name;
    final boolean pauser;
    final TimedHttp lockHttp = new TimedHttp(LOCK_TIMEOUT);
    /** The keeper thread's own random source (the contender's is not shared). */
    final SplittableRandom keeperRandom;
    volatile Lease lease;
    volatile boolean done;
    int holds;
    int leases;

    Contender(int number, boolean pauser, SplittableRandom random) {
      super(random, FIRST_PROCESS + number);
      this.number = number;
      this.name = "c" + number;
      this.pauser = pauser;
      this.keeperRandom = this.random.split();
    }

    void run() {
      try {
        while (!stopping && !closed) {
          Lease l = lease;
          if (l == null || l.gone) {
            lease = grant();
            if (lease == null) {
              Poll.pause(500);
            }
            continue;
          }
          Acquired acquired = acquire(l);
          if (acquired != null) {
            hold(l, acquired);
          }
          Poll.pause(30 + random.nextInt(120));
        }
      } finally {
        done = true;
      }
    }

    /** Grants a lease under an id from the seed; null if no 201 came within the bound. */
    Lease grant() {
      long id = 1 + (random.nextLong() >>> 1) % (Long.MAX_VALUE - 1);
      byte[] body = ("{\"ttlSeconds\":" + TTL_SECONDS + ",\"id\":" + id + "}").getBytes(StandardCharsets.UTF_8);
      List<Answer> answers = untilAnswered("POST", "/v1/leases", body, tag + "/" + name + "/lease-" + leases++,
          REQUEST_BOUND, "Content-Type", "application/json");
      Answer last = answers.get(answers.size() - 1);
      if (last.status() != 201) {
        if (!retryable(last.status())) {
          unexpected.add(name + " lease grant: " + last.describe() + " " + last.body());
        }
        return null;
      }
      grants.incrementAndGet();
      long ttl = json(last).map(j -> j.path("ttlSeconds").asLong(-1)).orElse(-1L);
      if (ttl != TTL_SECONDS) {
        unexpected.add(name + " lease grant of " + TTL_SECONDS + " s answered " + last.body());
      }
      return new Lease(id, ttl > 0 ? ttl : TTL_SECONDS, last.endNanos());
    }

    /** The keeper: renews the current lease every TTL/4 through any node, unless it is suspended. */
    void keep() {
      Client keeper = new Client(keeperRandom, -1);
      TimedHttp fast = new TimedHttp(Duration.ofMillis(KEEPALIVE_TIMEOUT_MILLIS));
      while (!done && !closed) {
        Lease l = lease;
        if (l != null && !l.suspended && !l.gone && System.nanoTime() - l.dueNanos >= 0) {
          TimedHttp.Reply reply = fast.send(keeper.node, "POST", "/v1/leases/" + l.id + "/keepalive", null);
          if (reply.status() == 200) {
            keepalivesOk.incrementAndGet();
            l.dueNanos = reply.answer().endNanos() + TimeUnit.SECONDS.toNanos(l.ttlSeconds) / 4;
          } else {
            keepalivesFailed.incrementAndGet();
            if (reply.status() == 404) {
              l.gone = true;
              leasesLost.incrementAndGet();
            } else {
              keeper.moveOn();
              l.dueNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RETRY_MILLIS);
            }
          }
        } else {
          Poll.pause(50);
        }
      }
    }

    /**
     * Acquires the lock with {@code l}, retrying with the same lease on another node after an
     * answer that does not say what happened; null if not held (408, the lease gone, or no
     * answer in time: then the lease is left and a new one granted).
     */
    Acquired acquire(Lease l) {
      String path = "/v1/locks/" + LOCK + "?lease=" + l.id + "&waitSeconds=" + WAIT_SECONDS;
      long firstSend = -1;
      long deadline = System.nanoTime() + REQUEST_BOUND.toNanos();
      while (true) {
        TimedHttp.Reply reply = lockHttp.send(node, "POST", path, null);
        Answer a = reply.answer();
        if (firstSend < 0) {
          firstSend = a.sendNanos();
        }
        if (a.status() == 200) {
          String key = json(a).map(j -> j.path("key").asText("")).orElse("");
          long token = json(a).map(j -> j.path("fencingToken").asLong(-1)).orElse(-1L);
          if (key.isEmpty() || token < 1) {
            unexpected.add(name + " acquire answered " + a.body());
            abandon(l);
            return null;
          }
          return new Acquired(firstSend, a, key, token);
        } else if (a.status() == 408) {
          lockTimeouts.incrementAndGet();
          return null;
        } else if (a.status() == 404) {
          l.gone = true;
          leasesLost.incrementAndGet();
          return null;
        } else if (!retryable(a.status())) {
          unexpected.add(name + " acquire: " + a.describe() + " " + a.body());
          abandon(l);
          return null;
        } else if (System.nanoTime() - deadline >= 0 || closed) {
          acquireGaveUp.incrementAndGet();
          abandon(l);
          return null;
        }
        acquireRetries.incrementAndGet();
        moveOn();
        Poll.pause(RETRY_MILLIS + random.nextInt((int) RETRY_MILLIS));
      }
    }

    /** Leaves {@code l} (its waiter key may exist): revoked once if a node answers, else it expires. */
    void abandon(Lease l) {
      l.gone = true;
      http.send(node, "DELETE", "/v1/leases/" + l.id, null);
    }

    /** Holds the lock: increments, perhaps a paused client's stale write, the release. */
    void hold(Lease l, Acquired acquired) {
      int seq = holds++;
      long token = acquired.token();
      int count = 1 + random.nextInt(3);
      Outcome last = Outcome.ACKED;
      for (int i = 0; i < count && last == Outcome.ACKED; i++) {
        last = increment(seq, i, token);
      }
      if (last == Outcome.ACKED && pauser && !stopping && (seq == 1 || random.nextDouble() < PAUSE_CHANCE)) {
        pausedClient(l, seq, acquired);
        return;
      }
      String releasePath = "/v1/locks/" + LOCK + "?key=" + URLEncoder.encode(acquired.key(), StandardCharsets.UTF_8)
          + "&fencingToken=" + token;
      List<Answer> answers = untilAnswered("DELETE", releasePath, null, tag + "/" + name + "/h" + seq + "/release",
          REQUEST_BOUND);
      Answer a = answers.get(answers.size() - 1);
      String end = switch (a.status()) {
        case 200 -> "released";
        case 404 -> "gone";
        case 412 -> "lost";
        default -> "unknown";
      };
      if (a.status() != 200 && !retryable(a.status()) && a.status() != 404 && a.status() != 412) {
        unexpected.add(name + " release: " + a.describe() + " " + a.body());
      }
      if (a.status() != 200 || last != Outcome.ACKED) {
        abandon(l); // the hold ended otherwise than planned: start again with a new lease
      }
      acquisitions.add(new Acquisition(name, seq, l.id, acquired.key(), token, acquired.firstSendNanos(),
          acquired.answer().endNanos(), a.status() == 200 ? a.endNanos() : -1,
          last == Outcome.FENCED ? "lost" : end));
    }

    /**
     * One increment under {@code token}: read, then a fenced compare-and-set under an
     * Idempotency-Key, sent again until answered; a 412 for the If-Match reads again (a few
     * times). The outcome, or UNRESOLVED if the counter could not even be read.
     */
    Outcome increment(int seq, int n, long token) {
      Outcome outcome = Outcome.UNRESOLVED;
      for (int attempt = 0; attempt < 3; attempt++) {
        CounterRead read = readCounter();
        if (read == null) {
          return Outcome.UNRESOLVED; // nothing sent: the hold ends here
        }
        // some work under the lock between the read and the write, for faults to fall into
        Poll.pause(WORK_MILLIS / 4 + random.nextInt(WORK_MILLIS));
        String idempotencyKey = tag + "/" + name + "/h" + seq + "/i" + n + "/t" + attempt;
        Write write = fencedIncrement(read, token, idempotencyKey);
        increments.add(new Increment(name, seq, token, idempotencyKey, read.value() + 1, read.modRevision(),
            write.answers(), write.outcome(), write.holderToken()));
        outcome = write.outcome();
        if (outcome != Outcome.MATCH_FAILED) {
          return outcome;
        }
      }
      return outcome;
    }

    /** What a fenced increment came to. */
    private record Write(List<Answer> answers, Outcome outcome, long holderToken) {}

    /** {@code PUT counter} = read + 1 with If-Fence and If-Match, under {@code idempotencyKey}; recorded in the history. */
    Write fencedIncrement(CounterRead read, long token, String idempotencyKey) {
      String from = Long.toString(read.value());
      String to = Long.toString(read.value() + 1);
      History.Invocation call = history.invokeCas(process, COUNTER, from, to);
      List<Answer> answers = untilAnswered("PUT", "/v1/kv/" + COUNTER, to.getBytes(StandardCharsets.UTF_8),
          idempotencyKey, WRITE_BOUND, "If-Fence", LOCK + "=" + token, "If-Match", "\"" + read.modRevision() + "\"",
          "Content-Type", "application/octet-stream");
      Answer a = answers.get(answers.size() - 1);
      if (a.status() == 200) {
        history.complete(call, raftkv.history.Op.Outcome.OK);
        return new Write(answers, Outcome.ACKED, 0);
      }
      if (a.status() == 412) {
        history.complete(call, raftkv.history.Op.Outcome.FAIL);
        Long holder = json(a).filter(j -> j.has("fencingToken")).map(j -> j.path("fencingToken").asLong()).orElse(null);
        return holder != null ? new Write(answers, Outcome.FENCED, holder) : new Write(answers, Outcome.MATCH_FAILED, 0);
      }
      if (answers.stream().allMatch(Answer::definitelyNotApplied)) {
        if (!retryable(a.status())) {
          unexpected.add(name + " increment: " + a.describe() + " " + a.body());
        }
        history.complete(call, raftkv.history.Op.Outcome.FAIL);
        return new Write(answers, Outcome.REFUSED, 0);
      }
      history.complete(call, raftkv.history.Op.Outcome.UNKNOWN);
      process = nextProcess.getAndIncrement(); // it may still take effect later
      return new Write(answers, Outcome.UNRESOLVED, 0);
    }

    /** A linearizable read of the counter, retried on another node until answered; null if not in time. */
    CounterRead readCounter() {
      long deadline = System.nanoTime() + REQUEST_BOUND.toNanos();
      while (!closed) {
        History.Invocation call = history.invokeRead(process, COUNTER);
        TimedHttp.Reply reply = http.send(node, "GET", "/v1/kv/" + COUNTER, null);
        Answer a = reply.answer();
        if (a.status() == 200) {
          history.complete(call, raftkv.history.Op.Outcome.OK, a.body());
          long mod = reply.header("X-Mod-Revision").map(Long::parseLong).orElse(-1L);
          try {
            return new CounterRead(Long.parseLong(a.body().trim()), mod);
          } catch (NumberFormatException e) {
            unexpected.add(name + " read the counter as '" + a.body() + "'");
            return null;
          }
        }
        boolean definite = a.definitelyNotApplied();
        history.complete(call, definite ? raftkv.history.Op.Outcome.FAIL : raftkv.history.Op.Outcome.UNKNOWN);
        if (!definite) {
          process = nextProcess.getAndIncrement();
        }
        if (!retryable(a.status())) {
          unexpected.add(name + " read: " + a.describe() + " " + a.body());
          return null;
        }
        if (System.nanoTime() - deadline >= 0) {
          return null;
        }
        moveOn();
        Poll.pause(RETRY_MILLIS + random.nextInt((int) RETRY_MILLIS));
      }
      return null;
    }

    /**
     * A holder that stops: no keepalive for its TTL plus 2 s, then (once a linearizable read of
     * the lock names another token, or nobody) an increment with its old token. The lease is left.
     */
    void pausedClient(Lease l, int seq, Acquired acquired) {
      long token = acquired.token();
      l.suspended = true;
      long pausedAt = System.nanoTime();
      Poll.pause(TimeUnit.SECONDS.toMillis(l.ttlSeconds) + 2_000);
      long[] movedOn = awaitMovedOn(token);
      acquisitions.add(new Acquisition(name, seq, l.id, acquired.key(), token, acquired.firstSendNanos(),
          acquired.answer().endNanos(), -1, "paused"));
      l.gone = true;
      if (movedOn == null) {
        pausesSkipped.incrementAndGet();
        return;
      }
      CounterRead read = readCounter();
      if (read == null) {
        pausesSkipped.incrementAndGet();
        return;
      }
      String idempotencyKey = tag + "/" + name + "/h" + seq + "/stale";
      Write write = fencedIncrement(read, token, idempotencyKey);
      stale.add(new StaleAttempt(name, seq, token, movedOn[0], movedOn[1], idempotencyKey, read.value() + 1,
          write.answers(), write.outcome(), write.holderToken()));
      if (write.outcome() == Outcome.FENCED && write.holderToken() == token) {
        unexpected.add(name + " stale write refused naming its own token " + token + " as the holder's, "
            + (System.nanoTime() - pausedAt) / 1_000_000 + " ms after the pause began");
      }
    }

    /**
     * Reads the lock linearizably through the running nodes in turn until another token than
     * {@code token} holds it or nobody does; {when, holder's token or 0}, or null if not within
     * {@link #MOVED_ON_BOUND}.
     */
    long[] awaitMovedOn(long token) {
      long deadline = System.nanoTime() + MOVED_ON_BOUND.toNanos();
      while (!closed && System.nanoTime() - deadline < 0) {
        TimedHttp.Reply reply = http.send(node, "GET", "/v1/locks/" + LOCK, null);
        if (reply.status() == 200) {
          long holder = reply.json().map(j -> j.path("fencingToken").asLong(-1)).orElse(-1L);
          if (holder > 0 && holder != token) {
            return new long[] {reply.answer().endNanos(), holder};
          }
        } else if (reply.status() == 404 && "not_found".equals(reply.errorCode())) {
          return new long[] {reply.answer().endNanos(), 0};
        } else {
          moveOn();
        }
        Poll.pause(200);
      }
      return null;
    }
  }

  private static Optional<JsonNode> json(Answer a) {
    if (a.body() == null || a.body().isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.ofNullable(JSON.readTree(a.body()));
    } catch (java.io.IOException e) {
      return Optional.empty();
    }
  }
}
