package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import org.junit.jupiter.api.TestInfo;

import raftkv.history.CheckReport;
import raftkv.history.History;
import raftkv.history.LinearizabilityChecker;
import raftkv.history.Op;
import raftkv.history.Op.Outcome;
import raftkv.history.SetCheckResult;
import raftkv.history.SetChecker;
import raftkv.multijvm.KvHttpClient.Result;

/**
 * One run of a fault scenario: a seeded random source, a {@link Cluster}, the histories the clients
 * write (one of registers, one of set adds), and a {@link Nemesis}; then {@link #verify} heals
 * everything, lets the cluster settle, reads every key from every node, and checks the histories.
 *
 * <p>The seed is printed; the system property {@code raftkv.seed} replays it (the schedule of
 * faults and the clients' choices, not the timing of the machine).
 */
public final class Scenario implements AutoCloseable {

  /** How long the cluster may take to settle after everything was healed. */
  public static final Duration SETTLE_TIMEOUT = Duration.ofSeconds(90);

  /**
   * The bound on how long the clients of a scenario run; the schedule stops them earlier through
   * {@link #verify}.
   */
  public static final Duration MAX_LOAD = Duration.ofSeconds(150);

  private static final int FINAL_READER_PROCESS = 90_000;

  private final String name;
  private final long seed;
  private final Random random;
  private final Cluster cluster;
  private final History history = new History();
  private final History setHistory = new History();
  private final Nemesis nemesis;
  private final List<ClientPool> pools = new ArrayList<>();

  private Scenario(String name, long seed, Cluster cluster) {
    this.name = name;
    this.seed = seed;
    this.random = new Random(seed);
    this.cluster = cluster;
    // the nemesis' own choices (which member a membership call goes to) have a stream of their
    // own, from the seed, so that the schedule's stream is what it was before it had any
    this.nemesis = new Nemesis(cluster, new Random(seed ^ NEMESIS_STREAM), history, setHistory);
  }

  private static final long NEMESIS_STREAM = 0x6E656D65736973L;

  /** Prints the seed and starts a cluster of {@code nodes} nodes for the test {@code info}. */
  public static Scenario start(TestInfo info, int nodes) {
    return start(info, nodes, "");
  }

  /**
   * As {@link #start(TestInfo, int)}, with {@code extraJavaOpts} after the default JVM options of
   * every node (nodes added later get them too).
   */
  public static Scenario start(TestInfo info, int nodes, String extraJavaOpts) {
    String name = testName(info);
    long seed = seed(name);
    return new Scenario(name, seed, Cluster.start(name, nodes, extraJavaOpts));
  }

  /** "ClassName.method", the name of the test's log directory. */
  public static String testName(TestInfo info) {
    return info.getTestClass().map(Class::getSimpleName).orElse("test") + "."
        + info.getTestMethod().map(Method::getName).orElse("run");
  }

  /** The seed of {@code test}: {@code raftkv.seed} if set, else a fresh one; printed either way. */
  public static long seed(String test) {
    String given = System.getProperty("raftkv.seed");
    long seed = given == null || given.isBlank() ? new Random().nextLong() : Long.parseLong(given.trim());
    System.out.printf("[%s] seed %d (replay with -Draftkv.seed=%d)%n", test, seed, seed);
    return seed;
  }

  /** The test's name. */
  public String name() {
    return name;
  }

  /** The seed of this run. */
  public long seed() {
    return seed;
  }

  /** The random source of the schedule, from the seed. */
  public Random random() {
    return random;
  }

  /** The cluster under test. */
  public Cluster cluster() {
    return cluster;
  }

  /** The register history. */
  public History history() {
    return history;
  }

  /** The history of set adds. */
  public History setHistory() {
    return setHistory;
  }

  /** The fault injector, recording into both histories. */
  public Nemesis nemesis() {
    return nemesis;
  }

  /** A pool of register clients on the register history, seeded from the scenario's seed. */
  public ClientPool.Builder registerClients() {
    return ClientPool.builder(cluster, history, random.nextLong());
  }

  /** A pool of set clients on the set history, seeded from the scenario's seed. */
  public ClientPool.Builder setClients() {
    return ClientPool.builder(cluster, setHistory, random.nextLong())
        .workload(ClientPool.Workload.SET).firstProcess(50_000);
  }

  /**
   * A pool of large-transaction clients (multi-byte keys, up to and over the command size limit),
   * on a history of their own that no checker reads: their keys are their own, and what they
   * prove is that the cluster stays live and no message is ever dropped for its size.
   */
  public ClientPool.Builder largeClients() {
    return ClientPool.builder(cluster, new History(), random.nextLong())
        .workload(ClientPool.Workload.LARGE).firstProcess(70_000).thinkMillis(1_500);
  }

  /**
   * Starts {@code builder}'s clients; they run until {@link #verify} stops them, or until their
   * duration or op count bound is reached.
   */
  public ClientPool run(ClientPool.Builder builder) {
    ClientPool pool = builder.start();
    pools.add(pool);
    return pool;
  }

  /**
   * Runs {@code step} again and again until {@code phase} has passed (a step that has begun runs
   * to its end).
   */
  public void repeatFor(Duration phase, Runnable step) {
    long end = System.nanoTime() + phase.toNanos();
    while (System.nanoTime() - end < 0) {
      step.run();
    }
  }

  /** Holds the schedule for a random time in [{@code minMillis}, {@code maxMillis}]. */
  public void hold(long minMillis, long maxMillis) {
    Poll.pause(minMillis + (long) (random.nextDouble() * (maxMillis - minMillis)));
  }

  /** One of {@code choices}, at random from the seed. */
  public <T> T pick(List<T> choices) {
    return choices.get(random.nextInt(choices.size()));
  }

  /**
   * Prints a timestamped line of the schedule ("phase: isolate the leader") to the test output.
   */
  public void log(String line) {
    System.out.printf(Locale.ROOT, "[%s] %8.1f s  %s%n", name,
        (System.nanoTime() - history.startNanos()) / 1e9, line);
  }

  /**
   * Stops the clients (each finishes its current operation), heals every fault, waits until the
   * cluster has settled, reads every key from every node (serializably, then linearizably) into
   * the history, reads the set, prints the availability report, and fails with the checkers'
   * explanation if a history is wrong.
   */
  public void verify() {
    try {
      stopHealAndCheck();
    } finally {
      writeFile("history.txt", history.describe());
      if (!setHistory.ops().isEmpty()) {
        writeFile("set-history.txt", setHistory.describe());
      }
    }
  }

  private void stopHealAndCheck() {
    pools.forEach(ClientPool::stop);
    pools.forEach(pool -> log(pool.summary()));
    log("healing everything");
    nemesis.healAll();
    NodeProcess leader = cluster.awaitSettled(SETTLE_TIMEOUT);
    log("settled: leader " + leader.id() + ", all nodes healthy and caught up");
    finalRegisterReads();
    Optional<SetCheckResult> set = pools.stream().anyMatch(p -> p.workload() == ClientPool.Workload.SET)
        ? Optional.of(checkSet(leader)) : Optional.empty();

    Availability availability = Availability.of(
        pools.stream().filter(p -> p.workload() != ClientPool.Workload.LARGE)
            .flatMap(p -> p.samples().stream()).toList(),
        nemesis.faultWindows(), nemesis.leaderLosses());
    log(availability.describe());
    assertTrue(availability.shareDuringFaults() >= 0 && availability.shareDuringFaults() <= 1,
        "availability is a share");

    CheckReport report = new LinearizabilityChecker().check(history);
    log(report.describe().lines().findFirst().orElse(""));
    set.ifPresent(result -> log(result.toString()));
    long okWrites = history.ops().stream()
        .filter(op -> op.mutates() && op.outcome() == Outcome.OK).count();
    assertTrue(okWrites > 0, "no write succeeded during the whole run: the load did not run");
    if (!report.ok()) {
      throw new AssertionError(name + " (seed " + seed + "): the register history is not"
          + " linearizable; history in " + Cluster.logDir(name).resolve("history.txt") + "\n"
          + report.describe());
    }
    set.ifPresent(result -> assertTrue(result.ok(), name + " (seed " + seed + "): " + result));
    for (ClientPool pool : pools) {
      assertTrue(pool.unexpected().isEmpty(), name + " (seed " + seed + "): " + pool.workload()
          + " clients got answers no request should get: " + pool.unexpected());
      if (pool.workload() == ClientPool.Workload.LARGE) {
        log("large transactions: " + pool.countStatus(200) + " applied, " + pool.countStatus(413) + " too large, "
            + pool.countStatus(400) + " with too many operations");
        assertTrue(pool.countStatus(200) > 0 && pool.countStatus(413) > 0,
            "large transactions were both applied (200) and refused as too large (413)");
      }
    }
    assertNoMessageDroppedForItsSize();
  }

  /**
   * No node's log tells of a message that Artery dropped for being over its frame size (an
   * OversizedPayloadException), in any of the node's starts; nodes removed from the cluster too.
   */
  private void assertNoMessageDroppedForItsSize() {
    for (NodeProcess node : cluster.everyNode()) {
      try (var lines = Files.lines(node.logFile(), StandardCharsets.ISO_8859_1)) { // (the words sought are ASCII)
        List<String> oversized = lines
            .filter(l -> l.contains("OversizedPayloadException") || l.contains("Discarding oversized payload"))
            .limit(3).toList();
        assertTrue(oversized.isEmpty(), name + " (seed " + seed + "): " + node.id()
            + " dropped messages for their size: " + oversized);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read the log of " + node.id(), e);
      }
    }
  }

  /** Every register key from every node: serializable reads first, then linearizable ones. */
  private void finalRegisterReads() {
    Set<String> keys = new TreeSet<>(history.keys());
    KvHttpClient http = new KvHttpClient();
    List<NodeProcess> nodes = cluster.nodes();
    StringBuilder seen = new StringBuilder();
    for (boolean serializable : new boolean[] {true, false}) {
      for (int i = 0; i < nodes.size(); i++) {
        NodeProcess node = nodes.get(i);
        seen.append(String.format(Locale.ROOT, "%n  %s %s:", node.id(),
            serializable ? "serializable" : "linearizable"));
        for (String key : keys) {
          Result result = readUntilAnswered(http, node, key, serializable, FINAL_READER_PROCESS + i);
          seen.append(' ').append(key).append('=').append(Op.formatValue(result.value()));
        }
      }
    }
    log("final reads:" + seen);
  }

  private Result readUntilAnswered(KvHttpClient http, NodeProcess node, String key,
      boolean serializable, int process) {
    return Poll.until("a final read of " + key + " on " + node.id(), Duration.ofSeconds(30), () -> {
      History.Invocation call = history.invokeRead(process, key);
      Result result = http.get(node, key, serializable);
      history.complete(call, result.outcome(), result.value());
      return result.outcome() == Outcome.OK ? Optional.of(result) : Optional.empty();
    }, cluster::describe);
  }

  /**
   * Reads the set linearizably, checks that every node holds the same set when read serializably,
   * and runs the set checker.
   */
  private SetCheckResult checkSet(NodeProcess leader) {
    KvHttpClient http = new KvHttpClient(Duration.ofSeconds(10));
    Map<String, String> set = Poll.until("a linearizable read of the set", Duration.ofSeconds(30),
        () -> http.range(leader, ClientPool.SET_PREFIX, false), cluster::describe);
    for (NodeProcess node : cluster.nodes()) {
      Poll.until(node.id() + " to hold the same set as the leader", Duration.ofSeconds(30),
          () -> http.range(node, ClientPool.SET_PREFIX, true).filter(set::equals),
          () -> {
            Map<String, String> local = http.range(node, ClientPool.SET_PREFIX, true).orElse(Map.of());
            Set<String> missing = new TreeSet<>(set.keySet());
            missing.removeAll(local.keySet());
            Set<String> extra = new TreeSet<>(local.keySet());
            extra.removeAll(set.keySet());
            return node.id() + " misses " + missing + " and has extra " + extra;
          });
    }
    List<String> elements = new ArrayList<>();
    set.forEach((key, value) -> elements.add(value));
    return new SetChecker().check(setHistory.ops(), elements);
  }

  private void writeFile(String file, String text) {
    Path path = Cluster.logDir(name).resolve(file);
    try {
      Files.createDirectories(path.getParent());
      Files.writeString(path, text, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Stops every node. */
  @Override
  public void close() {
    cluster.close();
  }
}
