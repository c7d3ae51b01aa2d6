package raftkv.multijvm;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;

import raftkv.history.History;
import raftkv.history.Op.Outcome;
import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LeaseIdempotencyChecker.CounterRead;
import raftkv.multijvm.LeaseIdempotencyChecker.LogicalWrite;

/**
 * Clients that each write their own key ({@code counter-<n>}) again and again with
 * {@code PUT /v1/kv/counter-<n>}, every logical write under an {@code Idempotency-Key} of its own
 * (API.md §3), and retry a write, with the same key and request, to another node after every
 * answer that does not say it was applied (503, 504, 409, no answer) until it is answered 200,
 * for at most {@link #WRITE_BOUND} and {@link #MAX_ATTEMPTS} attempts. Every third write is sent
 * once more after its 200 (a client that lost the answer: it must be answered from the record,
 * {@code Idempotent-Replayed: true}, with the same body), every tenth is followed by another body
 * under the same Idempotency-Key (it must be a 422), and every fourth is preceded by a
 * linearizable read of the key whose {@code X-Version} must be the number of writes acknowledged
 * so far. Each logical write is one operation of the register {@link History} (from its first send
 * to its 200), so that the linearizability checker sees them too. {@link LeaseIdempotencyChecker}
 * checks what they recorded.
 */
final class IdempotentWriters implements AutoCloseable {

  /** The longest one logical write (or its duplicate, or its conflicting request) is retried. */
  static final Duration WRITE_BOUND = Duration.ofSeconds(60);
  static final int MAX_ATTEMPTS = 400;
  /** How long the client waits for the answer to one attempt. */
  static final Duration WRITE_TIMEOUT = Duration.ofMillis(1_500);
  static final String KEY_PREFIX = "counter-";
  private static final int FIRST_PROCESS = 60_000;
  private static final long THINK_MILLIS = 40;

  private final Cluster cluster;
  private final History history;
  private final long seed;
  private final int clients;
  private final int maxWrites;
  private final String tag;
  private final ConcurrentLinkedQueue<LogicalWrite> writes = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<CounterRead> reads = new ConcurrentLinkedQueue<>();
  private final AtomicInteger nextProcess;
  private final AtomicReference<Throwable> crash = new AtomicReference<>();
  private final List<Thread> threads = new ArrayList<>();
  private volatile boolean stopping;
  /** Set by {@link #close()}: retries end at once. */
  private volatile boolean closed;

  /**
   * {@code clients} writers of at most {@code maxWrites} logical writes each, recording into
   * {@code history}; {@code tag} makes their Idempotency-Keys unique to the run.
   */
  IdempotentWriters(Cluster cluster, History history, long seed, int clients, int maxWrites, String tag) {
    this.cluster = cluster;
    this.history = history;
    this.seed = seed;
    this.clients = clients;
    this.maxWrites = maxWrites;
    this.tag = tag;
    this.nextProcess = new AtomicInteger(FIRST_PROCESS + clients);
  }

  IdempotentWriters start() {
    SplittableRandom root = new SplittableRandom(seed);
    for (int c = 0; c < clients; c++) {
      Writer writer = new Writer(c, root.split());
      Thread thread = new Thread(() -> {
        try {
          writer.run();
        } catch (Throwable t) {
          crash.compareAndSet(null, t);
        }
      }, cluster.testName() + "-idempotent-writer-" + c);
      thread.setDaemon(true);
      threads.add(thread);
    }
    threads.forEach(Thread::start);
    return this;
  }

  /**
   * Asks the writers to stop and waits for them: each finishes the logical write it is in (with
   * its duplicate or conflicting request), retrying as long as its bounds allow.
   */
  void stop() {
    stopping = true;
    long limit = 3 * WRITE_BOUND.toMillis() + 20_000;
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(limit);
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while stopping the writers", e);
      }
      if (t.isAlive()) {
        throw new AssertionError(t.getName() + " did not finish within " + limit + " ms");
      }
    }
    if (crash.get() != null) {
      throw new AssertionError("an idempotent writer crashed: " + crash.get(), crash.get());
    }
  }

  /**
   * Stops the writers at once if {@link #stop()} did not (a test that failed midway): no retry is
   * sent after this, so that nothing reaches the ports of a cluster that is gone.
   */
  @Override
  public void close() {
    stopping = true;
    closed = true;
    for (Thread t : threads) {
      try {
        t.join(KvHttpClient.REQUEST_TIMEOUT.toMillis() + 2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Every logical write so far. */
  List<LogicalWrite> writes() {
    return List.copyOf(writes);
  }

  /** Every read between writes so far. */
  List<CounterRead> reads() {
    return List.copyOf(reads);
  }

  /** The keys written: {@code counter-0} .. */
  List<String> keys() {
    List<String> keys = new ArrayList<>();
    for (int c = 0; c < clients; c++) {
      keys.add(KEY_PREFIX + c);
    }
    return keys;
  }

  /** The writes that never got a 200 within their bounds. */
  long unresolved() {
    return writes.stream().filter(w -> w.acknowledged().isEmpty()).count();
  }

  private final class Writer {
    private final int number;
    private final SplittableRandom random;
    private final String key;
    /**
     * Shorter than the nodes' 2 s request timeout: a write the client gives up on may still be in
     * flight when its retry comes (API.md §3: the retry waits behind it, or is a 409).
     */
    private final TimedHttp http = new TimedHttp(WRITE_TIMEOUT);
    private int process;
    private NodeProcess node;

    Writer(int number, SplittableRandom random) {
      this.number = number;
      this.random = random;
      this.key = KEY_PREFIX + number;
      this.process = FIRST_PROCESS + number;
      List<NodeProcess> nodes = cluster.nodes();
      this.node = nodes.get(number % nodes.size());
    }

    void run() {
      String path = "/v1/kv/" + key;
      for (int seq = 0; seq < maxWrites && !stopping; seq++) {
        if (seq % 4 == 1) {
          read(seq);
        }
        String value = "c" + number + "-" + seq;
        String idempotencyKey = tag + "/c" + number + "/w" + seq;
        History.Invocation call = history.invokeWrite(process, key, value);
        List<Answer> attempts = untilAnswered(path, value, idempotencyKey, Answer::ok);
        boolean ok = attempts.get(attempts.size() - 1).ok();
        history.complete(call, ok ? Outcome.OK : Outcome.UNKNOWN);
        if (!ok) {
          process = nextProcess.getAndIncrement(); // the write may still take effect later
        }
        List<Answer> duplicate = List.of();
        List<Answer> conflict = List.of();
        if (ok && seq % 3 == 2) {
          node = another(node); // the client lost the answer and asks another node
          duplicate = untilAnswered(path, value, idempotencyKey, Answer::ok);
        }
        if (ok && seq % 10 == 7) {
          conflict = untilAnswered(path, value + "-other", idempotencyKey, a -> a.status() == 422);
        }
        writes.add(new LogicalWrite("c" + number, key, seq, idempotencyKey, value, attempts, duplicate, conflict));
        Poll.pause(THINK_MILLIS + random.nextInt((int) THINK_MILLIS));
      }
    }

    /**
     * Sends the PUT until {@code done} accepts an answer, or an answer that no retry would change
     * comes (anything but 503, 504, 409 and no answer), or the bounds are reached; every answer
     * in order. After an answer that is not accepted the next attempt goes to another node.
     */
    private List<Answer> untilAnswered(String path, String value, String idempotencyKey, Predicate<Answer> done) {
      List<Answer> answers = new ArrayList<>();
      long deadline = System.nanoTime() + WRITE_BOUND.toNanos();
      byte[] body = value.getBytes(StandardCharsets.UTF_8);
      while (true) {
        Answer a = http.send(node, "PUT", path, body, "Idempotency-Key", idempotencyKey,
            "Content-Type", "application/octet-stream").answer();
        answers.add(a);
        boolean retryable = a.status() == 503 || a.status() == 504 || a.status() == 409 || a.status() == -1;
        if (done.test(a) || !retryable || answers.size() >= MAX_ATTEMPTS || System.nanoTime() - deadline >= 0
            || closed) {
          return answers;
        }
        node = another(node);
        Poll.pause(100 + random.nextInt(100));
      }
    }

    /** A linearizable read of the key before write {@code seq}: its version and value. */
    private void read(int seq) {
      NodeProcess via = another(node);
      History.Invocation call = history.invokeRead(process, key);
      TimedHttp.Reply reply = http.send(via, "GET", "/v1/kv/" + key, null);
      Answer a = reply.answer();
      if (a.status() == 200) {
        long version = reply.header("X-Version").map(Long::parseLong).orElse(-1L);
        history.complete(call, Outcome.OK, a.body());
        reads.add(new CounterRead(key, seq, a, version, a.body()));
      } else if (a.status() == 404 && "not_found".equals(reply.errorCode())) {
        history.complete(call, Outcome.OK, null);
        reads.add(new CounterRead(key, seq, a, 0, null));
      } else {
        boolean definite = a.definitelyNotApplied();
        history.complete(call, definite ? Outcome.FAIL : Outcome.UNKNOWN);
        if (!definite) {
          process = nextProcess.getAndIncrement();
        }
      }
    }

    /** Another node of the cluster than {@code from}, at random; one that runs if there is one. */
    private NodeProcess another(NodeProcess from) {
      List<NodeProcess> nodes = cluster.nodes().stream().filter(n -> n != from).toList();
      List<NodeProcess> running = nodes.stream().filter(NodeProcess::running).toList();
      List<NodeProcess> choice = running.isEmpty() ? nodes : running;
      return choice.isEmpty() ? from : choice.get(random.nextInt(choice.size()));
    }
  }

  /** "... 1234 logical writes, 3 never resolved". */
  String summary() {
    return "idempotent writers: " + writes.size() + " logical writes, " + unresolved() + " never resolved, "
        + reads.size() + " reads in between";
  }
}
