package raftkv.multijvm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import raftkv.multijvm.KvHttpClient.NodeStatus;
import raftkv.multijvm.KvHttpClient.Reply;

/**
 * A raftkv cluster of real node JVMs on 127.0.0.1, owned by one test: free ports, a fresh data dir
 * per node under {@code target/multi-jvm-data/<test>/}, a log file per node under
 * {@code target/multi-jvm-logs/<test>/<node>.log}, and the nodes started with
 * {@code --fault-injection} so that {@link #cut} can partition them.
 *
 * <p>{@link #close()} kills every process the cluster ever started, paused ones included, and waits
 * until they are gone; a JVM shutdown hook does the same if the test JVM exits first. Use it in
 * try-with-resources so that a failing test leaves no node behind.
 *
 * <p>The nodes can change (membership, API.md §5): {@link #addNode} makes a node that joins with
 * {@code --join} (a new id, fresh ports and data dir, the same JVM options), and {@link #retire}
 * takes a node that was removed from the cluster out of {@link #nodes()}; {@link #close()} still
 * kills it. Every node list here is a snapshot, safe to read from the clients' threads.
 *
 * <p>The project root comes from the system property {@code raftkv.home} (failsafe sets it), else
 * the current directory; {@code bin/raftkv} there needs {@code mvn package} first.
 */
public final class Cluster implements AutoCloseable {

  /**
   * JVM options of every node (through {@code RAFTKV_JAVA_OPTS}): small heaps and C1 only, as the
   * nodes share two cores with the test; fast elections so that a failover takes about a second;
   * a server-side request timeout below the client's, so that the server answers 503/504 first.
   * The system property {@code raftkv.multijvm.java-opts} replaces them.
   */
  public static final String DEFAULT_JAVA_OPTS = "-Xms64m -Xmx256m -XX:TieredStopAtLevel=1"
      + " -Draftkv.raft.election-timeout=500ms -Draftkv.raft.heartbeat-interval=50ms"
      + " -Draftkv.client.request-timeout=2s"
      // snapshots every few hundred entries, so that every fault scenario also snapshots, compacts
      // and sends snapshots (InstallSnapshot) to the nodes it killed, paused or cut off
      + " -Draftkv.raft.snapshot-entries=300 -Draftkv.raft.trailing-entries=100"
      + " -Draftkv.raft.journal-snapshot-every=50 -Draftkv.raft.snapshot-chunk-bytes=64k";

  /** How long a node may take from its start to answering HTTP. */
  public static final Duration START_TIMEOUT = Duration.ofSeconds(90);

  private static final int FIRST_PORT = 20_000;
  private static final int PORT_SPAN = 12_000; // stays below Linux's ephemeral range (32768-)

  private final String testName;
  /** The nodes of the cluster now: the first ones, then those added, without those retired. */
  private final List<NodeProcess> nodes;
  /** Every node this cluster ever made, retired ones included: {@link #close()} kills them all. */
  private final List<NodeProcess> everyNode;
  private final Path home;
  private final Path dataRoot;
  private final Map<String, String> environment;
  private final KvHttpClient control = new KvHttpClient(Duration.ofSeconds(2));
  private final Thread shutdownHook;
  private volatile boolean closed;

  private Cluster(String testName, List<NodeProcess> nodes, Path home, Path dataRoot,
      Map<String, String> environment) {
    this.testName = testName;
    this.nodes = new java.util.concurrent.CopyOnWriteArrayList<>(nodes);
    this.everyNode = new java.util.concurrent.CopyOnWriteArrayList<>(nodes);
    this.home = home;
    this.dataRoot = dataRoot;
    this.environment = Map.copyOf(environment);
    this.shutdownHook = new Thread(this::destroyAll, "cluster-" + testName + "-shutdown");
    Runtime.getRuntime().addShutdownHook(shutdownHook);
  }

  /**
   * Starts a cluster of {@code size} nodes (n1..nN) for the test {@code testName} and waits until
   * every node answers HTTP and a leader is known. On failure, nothing is left running.
   */
  public static Cluster start(String testName, int size) {
    return start(testName, size, "");
  }

  /** As {@link #start(String, int)}, with {@code extraJavaOpts} after the default JVM options (they win). */
  public static Cluster start(String testName, int size, String extraJavaOpts) {
    return start(testName, size, extraJavaOpts, null);
  }

  /**
   * Prepares the data dir of a node before the cluster starts it for the first time, e.g. by
   * restoring a backup into it with {@code bin/raftkv restore}: the dir does not exist yet (the
   * cluster's data dirs were just cleaned), and the node's log dir does.
   */
  @FunctionalInterface
  public interface DataDirSeed {
    /** Seeds {@code node}'s data dir; {@code peers} is the {@code --peers} value its start will use. */
    void seed(NodeProcess node, String peers) throws Exception;
  }

  /**
   * As {@link #start(String, int, String)}, but {@code seed} (when not null) prepares every node's
   * data dir, one node after the other, before any node starts.
   */
  public static Cluster start(String testName, int size, String extraJavaOpts, DataDirSeed seed) {
    Path home = home();
    Path launcher = home.resolve("bin/raftkv");
    if (!Files.isExecutable(launcher) || !Files.isDirectory(home.resolve("target/lib"))) {
      throw new IllegalStateException(launcher + " is missing or not built: run mvn package first"
          + " (raftkv.home=" + home + ")");
    }
    Path logDir = logDir(testName);
    Path dataRoot = home.resolve("target/multi-jvm-data").resolve(testName);
    deleteRecursively(logDir);
    deleteRecursively(dataRoot);
    int[] ports = freePorts(2 * size, Set.of());
    List<String> peers = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      peers.add("n" + (i + 1) + "@127.0.0.1:" + ports[2 * i]);
    }
    String javaOpts = System.getProperty("raftkv.multijvm.java-opts", DEFAULT_JAVA_OPTS) + " " + extraJavaOpts;
    Map<String, String> environment = Map.of("RAFTKV_JAVA_OPTS", javaOpts);
    List<NodeProcess> nodes = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      String id = "n" + (i + 1);
      Path dataDir = dataRoot.resolve(id);
      List<String> command = List.of(launcher.toString(), "node",
          "--id", id, "--host", "127.0.0.1",
          "--raft-port", Integer.toString(ports[2 * i]),
          "--http-port", Integer.toString(ports[2 * i + 1]),
          "--data-dir", dataDir.toString(),
          "--peers", String.join(",", peers),
          "--fault-injection");
      nodes.add(new NodeProcess(id, ports[2 * i], ports[2 * i + 1], dataDir,
          logDir.resolve(id + ".log"), command, environment, home));
    }
    Cluster cluster = new Cluster(testName, nodes, home, dataRoot, environment);
    try {
      System.out.printf("[%s] starting %d nodes: %s%n", testName, size, nodes.stream()
          .map(n -> n.id() + " raft " + n.raftPort() + " http " + n.httpPort())
          .collect(Collectors.joining(", ")));
      if (seed != null) {
        Files.createDirectories(logDir);
        for (NodeProcess node : nodes) {
          try {
            seed.seed(node, String.join(",", peers));
          } catch (Exception e) {
            throw new IllegalStateException("cannot seed the data dir of " + node.id() + ": " + e.getMessage(), e);
          }
        }
      }
      nodes.forEach(NodeProcess::start);
      for (NodeProcess node : nodes) {
        cluster.awaitReady(node, START_TIMEOUT);
      }
      cluster.awaitLeader(Duration.ofSeconds(60));
      return cluster;
    } catch (IOException e) {
      cluster.close();
      throw new UncheckedIOException("cannot create " + logDir, e);
    } catch (RuntimeException | Error e) {
      cluster.close();
      throw e;
    }
  }

  /** The project root: {@code raftkv.home}, else the current directory. */
  public static Path home() {
    return Path.of(System.getProperty("raftkv.home", ".")).toAbsolutePath().normalize();
  }

  /** {@code target/multi-jvm-logs/<testName>} under the project root. */
  public static Path logDir(String testName) {
    return home().resolve("target/multi-jvm-logs").resolve(testName);
  }

  /** The test this cluster belongs to. */
  public String testName() {
    return testName;
  }

  /** The nodes of the cluster now (n1 first, added ones after, retired ones left out): a snapshot. */
  public List<NodeProcess> nodes() {
    return List.copyOf(nodes);
  }

  /** Every node this cluster ever made, retired ones included: a snapshot. */
  public List<NodeProcess> everyNode() {
    return List.copyOf(everyNode);
  }

  /** The node named {@code id}, retired or not. */
  public NodeProcess node(String id) {
    return find(id).orElseThrow(() -> new IllegalArgumentException("no node " + id));
  }

  /** The node named {@code id}, retired or not, if this cluster ever made one. */
  public Optional<NodeProcess> find(String id) {
    return everyNode.stream().filter(n -> n.id().equals(id)).findFirst();
  }

  // ---- membership (API.md §1, §5)

  /**
   * A new node that joins the running cluster: the next free id (n4 after n1..n3, never one used
   * before), fresh ports, a fresh data dir, the same JVM options as the others, and
   * {@code --join} naming {@code contacts} (the members it may hear from: the leader must be among
   * them) instead of {@code --peers}. It is one of {@link #nodes()} from now on; it is not started
   * (see {@link NodeProcess#start()}), and it is no member until a leader adds it
   * ({@code POST /v1/cluster/members}).
   */
  public synchronized NodeProcess addNode(List<NodeProcess> contacts) {
    if (contacts.isEmpty()) {
      throw new IllegalArgumentException("a joining node needs members to contact");
    }
    int next = everyNode.stream().mapToInt(n -> numberOf(n.id())).max().orElse(0) + 1;
    String id = "n" + next;
    Set<Integer> taken = new java.util.HashSet<>();
    everyNode.forEach(n -> {
      taken.add(n.raftPort());
      taken.add(n.httpPort());
    });
    int[] ports = freePorts(2, taken);
    Path dataDir = dataRoot.resolve(id);
    deleteRecursively(dataDir);
    List<String> command = List.of(home.resolve("bin/raftkv").toString(), "node",
        "--id", id, "--host", "127.0.0.1",
        "--raft-port", Integer.toString(ports[0]),
        "--http-port", Integer.toString(ports[1]),
        "--data-dir", dataDir.toString(),
        "--join", joinSpec(contacts),
        "--fault-injection");
    NodeProcess node = new NodeProcess(id, ports[0], ports[1], dataDir,
        logDir(testName).resolve(id + ".log"), command, environment, home);
    everyNode.add(node);
    nodes.add(node);
    System.out.printf("[%s] new node %s raft %d http %d, --join %s%n", testName, id, ports[0], ports[1],
        joinSpec(contacts));
    return node;
  }

  /**
   * Brings back a {@linkplain #retire retired} node under its old id, ports and data dir path,
   * as a new node would come: its data dir wiped (a lost disk; a removed node must not rejoin with
   * its old log) and {@code --join} naming {@code contacts} instead of its old {@code --peers}.
   * It is one of {@link #nodes()} again; it is not started.
   */
  public synchronized NodeProcess rejoin(NodeProcess node, List<NodeProcess> contacts) {
    if (nodes.contains(node) || node.alive()) {
      throw new IllegalStateException(node.id() + " is still in the cluster or running: retire it first");
    }
    node.wipeDataDir();
    node.joinInsteadOfPeers(joinSpec(contacts));
    nodes.add(node);
    System.out.printf("[%s] %s comes back with a wiped data dir, --join %s%n", testName, node.id(), joinSpec(contacts));
    return node;
  }

  /** {@code id@127.0.0.1:raftPort,...}, the form of {@code --peers} and {@code --join}. */
  public static String joinSpec(List<NodeProcess> members) {
    return members.stream().map(n -> n.id() + "@" + n.raftAddress()).collect(Collectors.joining(","));
  }

  /**
   * Takes {@code node}, removed from the cluster (or never added), out of {@link #nodes()}: the
   * waits, the faults and the final checks no longer count it. It must not run any more.
   */
  public synchronized void retire(NodeProcess node) {
    if (node.alive()) {
      throw new IllegalStateException(node.id() + " still runs: stop it before retiring it");
    }
    nodes.remove(node);
  }

  /**
   * {@code members} of API.md §5 as {@code node} reports them in {@code GET /v1/cluster/status}:
   * id to voter flag, in the node's order; empty if it does not answer.
   */
  public Optional<Map<String, Boolean>> members(NodeProcess node) {
    return control.statusJson(node).map(json -> {
      Map<String, Boolean> members = new java.util.LinkedHashMap<>();
      json.path("members").forEach(m -> members.put(m.path("id").asText(), m.path("voter").asBoolean(false)));
      return members;
    });
  }

  private static int numberOf(String id) {
    try {
      return id.startsWith("n") ? Integer.parseInt(id.substring(1)) : 0;
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** A client with short timeouts for status, health and fault calls. */
  public KvHttpClient control() {
    return control;
  }

  /** Every node but {@code node}. */
  public List<NodeProcess> others(NodeProcess node) {
    return nodes.stream().filter(n -> n != node).toList();
  }

  // ---- waiting for states

  /**
   * Waits until {@code node} answers {@code GET /v1/cluster/status}; fails at once, with the tail
   * of its log, if the process exits meanwhile.
   */
  public void awaitReady(NodeProcess node, Duration timeout) {
    Poll.until(node.id() + " to answer HTTP", timeout, () -> {
      if (!node.alive()) {
        throw new AssertionError(node.id() + " exited with code " + node.exitCode()
            + " before it was ready; its log ends with:\n" + logTail(node, 30));
      }
      return control.status(node);
    }, () -> logTail(node, 30));
  }

  /** The leader as the reachable nodes report it: the self-declared leader with the highest term. */
  public Optional<NodeProcess> leader() {
    return statuses().entrySet().stream()
        .filter(e -> e.getValue().leader())
        .max(Comparator.comparingLong(e -> e.getValue().term()))
        .map(Map.Entry::getKey);
  }

  /** Waits until some node says it leads, and returns it. */
  public NodeProcess awaitLeader(Duration timeout) {
    return Poll.until("a leader", timeout, this::leader, this::describe);
  }

  /**
   * Waits until the cluster is whole again: every node running, all naming the same leader, that
   * leader saying it leads, {@code GET /health} 200 everywhere, and every node having applied what
   * the leader had committed when the wait began its last round. Returns the leader.
   */
  public NodeProcess awaitSettled(Duration timeout) {
    return Poll.until("every node to know the leader, be healthy and catch up", timeout, () -> {
      if (!nodes.stream().allMatch(NodeProcess::running)) {
        return Optional.empty();
      }
      Map<NodeProcess, NodeStatus> statuses = statuses();
      if (statuses.size() != nodes.size()) {
        return Optional.empty();
      }
      String leaderId = statuses.values().iterator().next().leaderId();
      if (leaderId == null || !statuses.values().stream().allMatch(s -> leaderId.equals(s.leaderId()))) {
        return Optional.empty();
      }
      NodeProcess leader = node(leaderId);
      NodeStatus leaderStatus = statuses.get(leader);
      if (!leaderStatus.leader()) {
        return Optional.empty();
      }
      if (!nodes.stream().allMatch(n -> control.health(n) == 200)) {
        return Optional.empty();
      }
      Map<NodeProcess, NodeStatus> after = statuses();
      boolean caughtUp = after.size() == nodes.size() && after.values().stream()
          .allMatch(s -> s.appliedIndex() >= leaderStatus.commitIndex()
              && leaderId.equals(s.leaderId()));
      return caughtUp ? Optional.of(leader) : Optional.empty();
    }, this::describe);
  }

  /** The status of every running node that answers. */
  public Map<NodeProcess, NodeStatus> statuses() {
    Map<NodeProcess, NodeStatus> statuses = new HashMap<>();
    for (NodeProcess node : nodes) {
      if (node.running()) {
        control.status(node).ifPresent(s -> statuses.put(node, s));
      }
    }
    return statuses;
  }

  // ---- partitions (the nodes' test-only fault endpoints)

  /**
   * Cuts {@code a} and {@code b} apart: a blackhole on each for the other, both directions.
   *
   * @throws IllegalStateException if a node refuses (e.g. 404: no fault injection)
   */
  public void cut(NodeProcess a, NodeProcess b) {
    blackhole(a, b);
    blackhole(b, a);
  }

  /**
   * A blackhole on {@code node} for {@code peer}: this alone stops traffic both ways, from one side
   * (for a peer that cannot be told, e.g. one still starting).
   */
  public void blackhole(NodeProcess node, NodeProcess peer) {
    expectSuccess(node, "blackhole " + peer.id(), control.blackhole(node, peer));
  }

  /** Heals every cut of {@code node} ({@code POST /v1/faults/heal}); it must answer HTTP. */
  public void heal(NodeProcess node) {
    expectSuccess(node, "heal", control.heal(node));
  }

  private static void expectSuccess(NodeProcess node, String what, Reply reply) {
    if (!reply.success()) {
      throw new IllegalStateException(what + " on " + node.id() + " failed: " + reply.describe()
          + (reply.status() == 404 ? " (is the node started with --fault-injection support?)" : ""));
    }
  }

  // ---- diagnostics

  /** One line per node: process state and what it reports about itself. */
  public String describe() {
    StringBuilder text = new StringBuilder("cluster state:");
    List<NodeProcess> retired = everyNode.stream().filter(n -> !nodes.contains(n)).toList();
    if (!retired.isEmpty()) {
      text.append("\n  retired: ").append(retired);
    }
    for (NodeProcess node : nodes) {
      text.append("\n  ").append(node);
      if (node.running()) {
        text.append(": ").append(control.status(node).map(Object::toString).orElse("no status"))
            .append(", health ").append(control.health(node));
      }
    }
    return text.toString();
  }

  /** The last {@code lines} lines of a node's log. */
  public static String logTail(NodeProcess node, int lines) {
    return tail(node.logFile(), lines);
  }

  /** The last {@code lines} lines of {@code file}, or why it cannot be read. */
  public static String tail(Path file, int lines) {
    try {
      List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
      return all.subList(Math.max(0, all.size() - lines), all.size()).stream()
          .map(line -> "    | " + line).collect(Collectors.joining("\n"));
    } catch (IOException | UncheckedIOException e) {
      return "    (cannot read " + file + ": " + e + ")";
    }
  }

  // ---- closing

  /** Kills every node process, waits until they are gone, and checks that none survived. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    destroyAll();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException alreadyShuttingDown) {
      // the hook runs anyway
    }
    List<ProcessHandle> survivors = processesStarted().stream().filter(ProcessHandle::isAlive).toList();
    if (!survivors.isEmpty()) {
      throw new IllegalStateException("node processes survived close(): " + survivors);
    }
  }

  /** Every process any node of this cluster ever started, retired nodes' included. */
  public List<ProcessHandle> processesStarted() {
    return everyNode.stream().flatMap(n -> n.processesStarted().stream()).toList();
  }

  private void destroyAll() {
    everyNode.forEach(NodeProcess::destroy);
  }

  // ---- setup

  /**
   * {@code count} distinct ports that are free now and not {@code taken} (by a node that is down
   * for a restart), from a random spot of a range below the ephemeral ports, so that a port stays
   * free while its node is down for a restart.
   */
  private static int[] freePorts(int count, Set<Integer> taken) {
    int[] ports = new int[count];
    List<ServerSocket> held = new ArrayList<>();
    try {
      int candidate = FIRST_PORT + ThreadLocalRandom.current().nextInt(PORT_SPAN);
      int found = 0;
      for (int tries = 0; found < count && tries < PORT_SPAN; tries++) {
        candidate = FIRST_PORT + (candidate - FIRST_PORT + 1) % PORT_SPAN;
        if (taken.contains(candidate)) {
          continue;
        }
        try {
          ServerSocket socket = new ServerSocket();
          socket.setReuseAddress(true);
          socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), candidate));
          held.add(socket);
          ports[found++] = candidate;
        } catch (IOException inUse) {
          // try the next one
        }
      }
      if (found < count) {
        throw new IllegalStateException("found only " + found + " free ports of " + count);
      }
      return ports;
    } finally {
      for (ServerSocket socket : held) {
        try {
          socket.close();
        } catch (IOException ignored) {
          // nothing to do
        }
      }
    }
  }

  private static void deleteRecursively(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot clean " + dir, e);
    }
  }
}
