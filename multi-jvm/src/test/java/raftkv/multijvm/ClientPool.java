package raftkv.multijvm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import raftkv.history.History;
import raftkv.history.Op.Outcome;
import raftkv.multijvm.KvHttpClient.Result;

/**
 * Concurrent clients that load a {@link Cluster} over HTTP and record every operation in a
 * {@link History}, with its invocation and completion times and its outcome.
 *
 * <p>Each client has its own HTTP client and random stream (from the seed), is bound to one node,
 * and moves to another node of the cluster as it is then ({@link Cluster#nodes()}: nodes added
 * since the start included, retired ones not) after an error (after a short back-off, so that a
 * dead node is not hammered). After an UNKNOWN outcome the client continues as a new process, as in Jepsen: the
 * old request may still be in flight. Each client stops after a fixed duration or a maximum number
 * of operations, whichever comes first.
 *
 * <p>Two workloads: {@link Workload#REGISTER} reads (linearizable), writes (unique values such as
 * {@code c3-17}) and compare-and-sets (from the last value the client saw) on a handful of keys;
 * {@link Workload#SET} adds unique elements, each as the key {@code set/<element>} with the element
 * as its value, for the {@link raftkv.history.SetChecker}.
 */
public final class ClientPool {

  /** Prefix of the keys of the set workload. */
  public static final String SET_PREFIX = "set/";

  /** What the clients do. */
  public enum Workload {
    /** Reads, writes and CAS on a few registers. */
    REGISTER,
    /** Adds of unique elements under {@link #SET_PREFIX}. */
    SET,
    /**
     * Transactions as large as the API allows and larger, under keys of multi-byte characters
     * (CJK, emoji) in {@link #LARGE_PREFIX}: each must be applied (200) or refused (413, or 400
     * for more than 128 operations), never cost the cluster its liveness. Not checked for
     * linearizability (their keys are their own); {@link #unexpected} counts any other answer
     * that is not an unavailability (a 500, say).
     */
    LARGE
  }

  /** Prefix of the keys of the large-transaction workload. */
  public static final String LARGE_PREFIX = "large/";

  /**
   * One operation as the availability report sees it.
   *
   * @param invokeNanos   when it was sent
   * @param completeNanos when the client had its answer or gave up
   * @param write         true for a write, CAS or add
   * @param answered      the cluster answered with a 2xx (a refused CAS included)
   * @param applied       a write known to have taken effect (OK)
   */
  public record Sample(long invokeNanos, long completeNanos, boolean write, boolean answered,
      boolean applied) {}

  private final Builder settings;
  private final List<Thread> threads = new ArrayList<>();
  private final ConcurrentLinkedQueue<Sample> samples = new ConcurrentLinkedQueue<>();
  private final AtomicInteger nextProcess;
  private final AtomicReference<Throwable> crash = new AtomicReference<>();
  private final Map<Outcome, AtomicInteger> outcomes = new HashMap<>();
  private final Map<String, AtomicInteger> errors = new ConcurrentHashMap<>();
  private final List<String> unexpected = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final Map<Integer, AtomicInteger> statuses = new ConcurrentHashMap<>();
  private volatile boolean stopping;

  private ClientPool(Builder settings) {
    this.settings = settings;
    this.nextProcess = new AtomicInteger(settings.firstProcess + settings.clients);
    for (Outcome outcome : Outcome.values()) {
      outcomes.put(outcome, new AtomicInteger());
    }
  }

  /** A pool for {@code cluster} that records into {@code history}; every choice follows {@code seed}. */
  public static Builder builder(Cluster cluster, History history, long seed) {
    return new Builder(cluster, history, seed);
  }

  /** The settings of a pool; defaults suit a 3-node cluster on two cores. */
  public static final class Builder {
    private final Cluster cluster;
    private final History history;
    private final long seed;
    private Workload workload = Workload.REGISTER;
    private int clients = 5;
    private List<String> keys = List.of("r0", "r1", "r2", "r3", "r4");
    private Duration duration = Duration.ofSeconds(30);
    private int maxOpsPerClient = 20_000;
    private long thinkMillis = 10;
    private long backoffMillis = 100;
    private int firstProcess;

    private Builder(Cluster cluster, History history, long seed) {
      this.cluster = Objects.requireNonNull(cluster);
      this.history = Objects.requireNonNull(history);
      this.seed = seed;
    }

    /** What the clients do. */
    public Builder workload(Workload workload) {
      this.workload = workload;
      return this;
    }

    /** How many clients run at once. */
    public Builder clients(int clients) {
      this.clients = clients;
      return this;
    }

    /** The register keys (REGISTER workload). */
    public Builder keys(List<String> keys) {
      this.keys = List.copyOf(keys);
      return this;
    }

    /** How long each client runs. */
    public Builder duration(Duration duration) {
      this.duration = duration;
      return this;
    }

    /** The most operations one client issues. */
    public Builder maxOpsPerClient(int maxOps) {
      this.maxOpsPerClient = maxOps;
      return this;
    }

    /** Pause between two operations of a client. */
    public Builder thinkMillis(long millis) {
      this.thinkMillis = millis;
      return this;
    }

    /** The first process number (so that two pools on one history do not share numbers). */
    public Builder firstProcess(int firstProcess) {
      this.firstProcess = firstProcess;
      return this;
    }

    /** Starts the clients. */
    public ClientPool start() {
      ClientPool pool = new ClientPool(this);
      pool.startClients();
      return pool;
    }
  }

  private void startClients() {
    long deadline = System.nanoTime() + settings.duration.toNanos();
    SplittableRandom root = new SplittableRandom(settings.seed);
    for (int i = 0; i < settings.clients; i++) {
      Client client = new Client(i, root.split(), deadline);
      Thread thread = new Thread(() -> {
        try {
          client.run();
        } catch (Throwable t) {
          crash.compareAndSet(null, t);
        }
      }, settings.cluster.testName() + "-" + settings.workload.name().toLowerCase() + "-client-" + i);
      thread.setDaemon(true);
      threads.add(thread);
    }
    threads.forEach(Thread::start);
  }

  /** Waits until every client has finished (they are bounded by duration and op count). */
  public void awaitDone() {
    long limit = settings.duration.toMillis() + 4 * KvHttpClient.REQUEST_TIMEOUT.toMillis() + 10_000;
    long deadline = System.nanoTime() + limit * 1_000_000;
    for (Thread thread : threads) {
      long left = (deadline - System.nanoTime()) / 1_000_000;
      try {
        thread.join(Math.max(1, left));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for the clients", e);
      }
      if (thread.isAlive()) {
        stopping = true;
        throw new AssertionError(thread.getName() + " did not finish within " + limit + " ms");
      }
    }
    Throwable t = crash.get();
    if (t != null) {
      throw new AssertionError("a client crashed: " + t, t);
    }
  }

  /** Asks the clients to stop after their current operation, and waits for them. */
  public void stop() {
    stopping = true;
    awaitDone();
  }

  /** Every operation so far, for the availability report. */
  public List<Sample> samples() {
    return List.copyOf(samples);
  }

  /** The workload of this pool. */
  public Workload workload() {
    return settings.workload;
  }

  /**
   * "register clients: 1234 ops: 1000 OK, 34 FAIL, 200 UNKNOWN; errors: 503 unavailable x20, ...":
   * the outcomes, and how often each kind of error answer (not a refused CAS) came back.
   */
  public String summary() {
    int total = outcomes.values().stream().mapToInt(AtomicInteger::get).sum();
    String errorKinds = errors.entrySet().stream()
        .sorted((a, b) -> b.getValue().get() - a.getValue().get())
        .map(e -> e.getKey() + " x" + e.getValue())
        .collect(Collectors.joining(", "));
    return settings.workload.name().toLowerCase() + " clients: " + total + " ops: "
        + outcomes.get(Outcome.OK) + " OK, " + outcomes.get(Outcome.FAIL) + " FAIL, "
        + outcomes.get(Outcome.UNKNOWN) + " UNKNOWN"
        + (errorKinds.isEmpty() ? "" : "; errors: " + errorKinds);
  }

  /** Answers that the workload never expects (LARGE: anything but 200, 400, 413, 503, 504 or no answer). */
  public List<String> unexpected() {
    return List.copyOf(unexpected);
  }

  /** How many requests of the LARGE workload were answered with {@code status} (-1: no answer). */
  public int countStatus(int status) {
    AtomicInteger n = statuses.get(status);
    return n == null ? 0 : n.get();
  }

  /** Number of operations with {@code outcome} so far. */
  public int count(Outcome outcome) {
    return outcomes.get(outcome).get();
  }

  /** One client: a loop of operations against its current node. */
  private final class Client {
    private final int number;
    private final SplittableRandom random;
    private final long deadline;
    private final KvHttpClient http = new KvHttpClient();
    private final Map<String, String> lastSeen = new HashMap<>();
    private int process;
    private NodeProcess node;
    private int seq;

    Client(int number, SplittableRandom random, long deadline) {
      this.number = number;
      this.random = random;
      this.deadline = deadline;
      List<NodeProcess> nodes = settings.cluster.nodes();
      this.process = settings.firstProcess + number;
      this.node = nodes.get(number % nodes.size());
    }

    void run() {
      for (int ops = 0; ops < settings.maxOpsPerClient && !stopping
          && System.nanoTime() - deadline < 0; ops++) {
        Result result = switch (settings.workload) {
          case SET -> add();
          case LARGE -> large();
          case REGISTER -> registerOp();
        };
        outcomes.get(result.outcome()).incrementAndGet();
        if (!result.answered()) {
          String kind = result.detail();
          int colon = kind.indexOf(':');
          errors.computeIfAbsent(colon < 0 ? kind : kind.substring(0, colon),
              k -> new AtomicInteger()).incrementAndGet();
          if (result.outcome() == Outcome.UNKNOWN) {
            process = nextProcess.getAndIncrement();
          }
          moveToAnotherNode();
          Poll.pause(settings.backoffMillis);
        } else if (settings.thinkMillis > 0) {
          Poll.pause(settings.thinkMillis);
        }
      }
    }

    private Result registerOp() {
      String key = settings.keys.get(random.nextInt(settings.keys.size()));
      double dice = random.nextDouble();
      NodeProcess target = node;
      if (dice < 0.5) {
        History.Invocation call = settings.history.invokeRead(process, key);
        long start = System.nanoTime();
        Result result = http.get(target, key, false);
        settings.history.complete(call, result.outcome(), result.value());
        sample(start, false, result);
        if (result.outcome() == Outcome.OK) {
          lastSeen.put(key, result.value());
        }
        return result;
      }
      String value = "c" + number + "-" + seq++;
      if (dice < 0.75) {
        History.Invocation call = settings.history.invokeWrite(process, key, value);
        long start = System.nanoTime();
        Result result = http.put(target, key, value);
        settings.history.complete(call, result.outcome());
        sample(start, true, result);
        if (result.outcome() == Outcome.OK) {
          lastSeen.put(key, value);
        }
        return result;
      }
      String expected = lastSeen.get(key);
      History.Invocation call = settings.history.invokeCas(process, key, expected, value);
      long start = System.nanoTime();
      Result result = http.cas(target, key, expected, value);
      settings.history.complete(call, result.outcome());
      sample(start, true, result);
      if (result.outcome() == Outcome.OK) {
        lastSeen.put(key, value);
      }
      return result;
    }

    private Result add() {
      String element = "s" + number + "-" + seq++;
      String key = SET_PREFIX + element;
      History.Invocation call = settings.history.invokeWrite(process, key, element);
      long start = System.nanoTime();
      Result result = http.put(node, key, element);
      settings.history.complete(call, result.outcome());
      sample(start, true, result);
      return result;
    }

    /**
     * One large transaction: usually puts of 50 KB to 1.5 MB in all under keys of up to 1,024
     * bytes of CJK or emoji (over raftkv.raft.max-command-bytes about a third of the time, since the
     * log spends 3 bytes on a CJK character and 6 on an emoji), now and then the 1,900
     * gets on a 256-emoji key.
     */
    private Result large() {
      com.fasterxml.jackson.databind.node.ObjectNode txn =
          com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
      txn.putArray("compare");
      com.fasterxml.jackson.databind.node.ArrayNode success = txn.putArray("success");
      txn.putArray("failure");
      if (random.nextInt(8) == 0) {
        String emoji = "\uD83D\uDE00".repeat(256);
        for (int i = 0; i < 1900; i++) {
          success.addObject().putObject("get").put("key", emoji);
        }
      } else {
        int ops = 1 + random.nextInt(100);
        int total = 50_000 + random.nextInt(1_450_000);
        String value = "v".repeat(total / ops);
        for (int i = 0; i < ops; i++) {
          success.addObject().putObject("put").put("key", multiByteKey(i)).put("value", value);
        }
      }
      byte[] body = txn.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
      long start = System.nanoTime();
      KvHttpClient.Reply reply = http.send(node, "POST", "/v1/txn", body, "Content-Type", "application/json");
      int status = reply.status();
      statuses.computeIfAbsent(status, k -> new AtomicInteger()).incrementAndGet();
      if (status != 200 && status != 400 && status != 413 && status != 503 && status != 504 && status != -1) {
        unexpected.add(reply.describe());
      }
      boolean answered = status == 200 || status == 400 || status == 413;
      samples.add(new Sample(start, System.nanoTime(), true, answered, status == 200));
      return new Result(reply.outcome(), answered, null, reply.describe());
    }

    /**
     * Key {@code i} of this client under {@link #LARGE_PREFIX}: CJK characters (3 bytes each) or
     * emoji (4), up to 1,024 bytes, the same for every transaction, so that the store keeps at
     * most 100 values per client (every node holds its whole log in memory until snapshots exist,
     * and the nodes here have small heaps).
     */
    private String multiByteKey(int i) {
      java.util.Random chars = new java.util.Random(number * 1000L + i);
      StringBuilder key = new StringBuilder(LARGE_PREFIX).append(number).append('/').append(i).append('/');
      boolean emoji = i % 2 == 0;
      int room = 1024 - key.length();
      int n = 1 + chars.nextInt(room / (emoji ? 4 : 3));
      for (int c = 0; c < n; c++) {
        if (emoji) {
          key.appendCodePoint(0x1F600 + chars.nextInt(64));
        } else {
          key.append((char) (0x4E00 + chars.nextInt(0x5000)));
        }
      }
      return key.toString();
    }

    private void sample(long start, boolean write, Result result) {
      samples.add(new Sample(start, System.nanoTime(), write, result.answered(),
          write && result.outcome() == Outcome.OK));
    }

    /**
     * To another node of the cluster as it is now (the same choice as before nodes could change,
     * when they do not); from a node retired meanwhile, to any of them.
     */
    private void moveToAnotherNode() {
      List<NodeProcess> nodes = settings.cluster.nodes();
      int at = nodes.indexOf(node);
      if (at < 0) {
        node = nodes.get(random.nextInt(nodes.size()));
      } else if (nodes.size() > 1) {
        node = nodes.get((at + 1 + random.nextInt(nodes.size() - 1)) % nodes.size());
      }
    }
  }
}
