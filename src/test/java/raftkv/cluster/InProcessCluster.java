package raftkv.cluster;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.eventstream.EventStream;
import akka.actor.typed.javadsl.Behaviors;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import raftkv.client.ClusterStatus;
import raftkv.node.NodeSettings;
import raftkv.node.RaftKvNode;
import raftkv.raft.Peer;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Three (or n) raftkv nodes, each in its own ActorSystem, in this JVM, on loopback ports, with
 * separate data dirs. Nodes can be stopped (like a crash: nothing is flushed that was not already
 * fsynced) and started again on the same data dir. Every status it reads feeds a check that two
 * leaders never share a term.
 */
final class InProcessCluster implements AutoCloseable {
  private final List<NodeSettings> settings = new ArrayList<>();
  private final ActorSystem<?>[] systems;
  private final RaftKvNode[] nodes;
  private final Path root;
  private final Map<Long, String> leaderOfTerm = new HashMap<>();
  private final java.util.Queue<String> dropped = new java.util.concurrent.ConcurrentLinkedQueue<>();

  InProcessCluster(int size) throws IOException {
    this(size, "", dirs -> {});
  }

  /**
   * A cluster whose nodes also read {@code extraConfig} (HOCON), and whose data dirs {@code
   * prepare} may fill before the nodes first start.
   */
  InProcessCluster(int size, String extraConfig, java.util.function.Consumer<List<Path>> prepare) throws IOException {
    this.extraConfig = extraConfig;
    root = Files.createTempDirectory("raftkv-cluster");
    systems = new ActorSystem<?>[size + SPARE];
    nodes = new RaftKvNode[size + SPARE];
    count = size;
    List<Peer> peers = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      peers.add(new Peer("n" + (i + 1), "127.0.0.1", freePort()));
    }
    for (int i = 0; i < size; i++) {
      Peer p = peers.get(i);
      settings.add(new NodeSettings(p.id(), p.host(), p.port(), freePort(), root.resolve(p.id()), peers));
    }
    prepare.accept(settings.stream().map(NodeSettings::dataDir).toList());
    for (int i = 0; i < size; i++) {
      start(i);
    }
  }

  private final String extraConfig;

  /** Room for nodes added later (membership tests). */
  private static final int SPARE = 4;
  /** Nodes created so far: the first {@code size}, then those added. */
  private int count;

  int size() {
    return count;
  }

  /**
   * Starts a new node {@code id} on fresh loopback ports and an empty data dir, with --join naming
   * the first {@code size} nodes; returns its index. It is no member until the leader adds it.
   */
  int addJoiningNode(String id) throws IOException {
    if (count == nodes.length) {
      throw new IllegalStateException("no room for another node");
    }
    int i = count++;
    List<Peer> contacts = new ArrayList<>();
    for (int k = 0; k < i; k++) {
      NodeSettings other = settings.get(k);
      contacts.add(new Peer(other.id(), other.host(), other.raftPort()));
    }
    settings.add(NodeSettings.joining(id, "127.0.0.1", freePort(), freePort(), root.resolve(id), contacts));
    start(i);
    return i;
  }

  void start(int i) {
    NodeSettings s = settings.get(i);
    Config config = s.akkaConfig()
        .withFallback(ConfigFactory.parseString(extraConfig))
        .withFallback(ConfigFactory.parseString("""
            raftkv.raft.election-timeout = 1s
            raftkv.raft.heartbeat-interval = 100ms
            akka.loglevel = INFO
            akka.cluster.log-info = off
            akka.coordinated-shutdown.run-by-jvm-shutdown-hook = off
            akka.coordinated-shutdown.terminate-actor-system = on
            akka.remote.artery.advanced.test-mode = on
            """))
        .withFallback(ConfigFactory.load()).resolve();
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), NodeSettings.SYSTEM_NAME, config);
    systems[i] = system;
    // Artery publishes a message it cannot send (over the frame size, say) as Dropped
    ActorRef<akka.actor.Dropped> listener = system.systemActorOf(Behaviors.<akka.actor.Dropped>receiveMessage(d -> {
      dropped.add(s.id() + ": " + d.reason() + " " + d.message().getClass().getName());
      return Behaviors.same();
    }), "dropped-listener", Props.empty());
    system.eventStream().tell(new EventStream.Subscribe<>(akka.actor.Dropped.class, listener));
    nodes[i] = RaftKvNode.start(system, s, null);
  }

  /** What the nodes' transports dropped so far (node id, reason, message class), since the cluster started. */
  List<String> dropped() {
    return List.copyOf(dropped);
  }

  /** Stops node i's ActorSystem; what was fsynced stays, as after kill -9. */
  void stop(int i) {
    if (systems[i] != null) {
      systems[i].terminate();
      try {
        systems[i].getWhenTerminated().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        throw new IllegalStateException("node " + (i + 1) + " did not stop", e);
      }
      systems[i] = null;
      nodes[i] = null;
    }
  }

  boolean isUp(int i) {
    return nodes[i] != null;
  }

  RaftKvNode node(int i) {
    return nodes[i];
  }

  NodeSettings settings(int i) {
    return settings.get(i);
  }

  /** Status of node i, or null when it is down or does not answer in time. */
  ClusterStatus status(int i) {
    if (nodes[i] == null) {
      return null;
    }
    try {
      ClusterStatus st = nodes[i].status().toCompletableFuture().get(2, TimeUnit.SECONDS);
      recordLeadership(st);
      return st;
    } catch (Exception e) {
      return null;
    }
  }

  private synchronized void recordLeadership(ClusterStatus st) {
    if ("leader".equals(st.role())) {
      String before = leaderOfTerm.putIfAbsent(st.term(), st.id());
      if (before != null && !before.equals(st.id())) {
        fail("two leaders in term " + st.term() + ": " + before + " and " + st.id());
      }
    }
  }

  /** Waits until the running nodes agree on one leader, and returns its index. */
  int awaitLeader(Duration within) {
    int[] leader = {-1};
    await().atMost(within).pollInterval(Duration.ofMillis(50)).until(() -> {
      int found = -1;
      long term = -1;
      for (int i = 0; i < count; i++) {
        ClusterStatus st = status(i);
        if (st != null && "leader".equals(st.role()) && st.term() > term) {
          found = i;
          term = st.term();
        }
      }
      if (found < 0) {
        return false;
      }
      String id = settings.get(found).id();
      for (int i = 0; i < count; i++) {
        ClusterStatus st = status(i);
        if (st != null && st.memberState() != null && !"learner".equals(st.memberState())) {
          continue; // removed, or not a member yet: follows no leader
        }
        if (st != null && (!id.equals(st.leaderId()) || st.term() != term)) {
          return false;
        }
      }
      leader[0] = found;
      return true;
    });
    return leader[0];
  }

  /** Cuts node a off from node b, both directions (Artery test mode's blackhole). */
  void partition(int a, int b) {
    throttle(a, b, akka.remote.transport.ThrottlerTransportAdapter.blackholeThrottleMode());
    throttle(b, a, akka.remote.transport.ThrottlerTransportAdapter.blackholeThrottleMode());
  }

  /** Heals every cut between running nodes. */
  void healAll() {
    for (int a = 0; a < count; a++) {
      for (int b = 0; b < count; b++) {
        if (a != b && systems[a] != null) {
          throttle(a, b, akka.remote.transport.ThrottlerTransportAdapter.unthrottledThrottleMode());
        }
      }
    }
  }

  private void throttle(int from, int to, akka.remote.transport.ThrottlerTransportAdapter.ThrottleMode mode) {
    if (systems[from] == null) {
      return;
    }
    akka.actor.ActorSystem classic = akka.actor.typed.javadsl.Adapter.toClassic(systems[from]);
    NodeSettings peer = settings.get(to);
    akka.actor.Address address = new akka.actor.Address("akka", NodeSettings.SYSTEM_NAME, peer.host(), peer.raftPort());
    try {
      scala.jdk.javaapi.FutureConverters.asJava(
          ((akka.remote.RARP) akka.remote.RARP.get(classic)).provider().transport().managementCommand(
              new akka.remote.transport.ThrottlerTransportAdapter.SetThrottle(address,
                  akka.remote.transport.ThrottlerTransportAdapter.bothDirection(), mode)))
          .toCompletableFuture().get(5, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("cannot throttle " + from + " -> " + to, e);
    }
  }

  /** Waits until one of {@code candidates} is leader (the others may still be cut off). */
  int awaitLeaderAmong(int a, int b, Duration within) {
    int[] found = {-1};
    await().atMost(within).pollInterval(Duration.ofMillis(50)).until(() -> {
      for (int i : new int[] {a, b}) {
        ClusterStatus st = status(i);
        if (st != null && "leader".equals(st.role())) {
          found[0] = i;
          return true;
        }
      }
      return false;
    });
    return found[0];
  }

  /** Asserts, once more, that no term ever had two leaders among the statuses read. */
  void assertOneLeaderPerTerm() {
    for (int i = 0; i < count; i++) {
      status(i);
    }
    synchronized (this) {
      assertEquals(leaderOfTerm.size(), leaderOfTerm.keySet().stream().distinct().count());
    }
  }

  @Override
  public void close() {
    for (int i = 0; i < count; i++) {
      try {
        stop(i);
      } catch (RuntimeException ignored) {
        // keep closing the others
      }
    }
    try (var walk = Files.walk(root)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // temp dir; best effort
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /**
   * Writes keys {@code key(i)} with values {@code value(i)} for i in [from, from + count) through
   * {@code via}, 32 in flight at a time; each must succeed within 30 s.
   */
  static void writeAll(raftkv.client.RaftKv via, java.util.function.IntFunction<String> key,
                       java.util.function.IntFunction<String> value, int from, int count) throws Exception {
    List<java.util.concurrent.CompletableFuture<raftkv.kv.KvResult>> inFlight = new ArrayList<>();
    for (int i = from; i < from + count; i++) {
      inFlight.add(via.write(raftkv.kv.KvCommand.Put.of(key.apply(i),
          value.apply(i).getBytes(java.nio.charset.StandardCharsets.UTF_8))).toCompletableFuture());
      if (inFlight.size() == 32 || i == from + count - 1) {
        java.util.concurrent.CompletableFuture.allOf(inFlight.toArray(java.util.concurrent.CompletableFuture[]::new))
            .get(30, TimeUnit.SECONDS);
        inFlight.clear();
      }
    }
  }

  /**
   * Node {@code i}'s whole state machine as read locally: "revision R", then one
   * "key=value@create/mod/version" per key, in key order.
   */
  List<String> contents(int i) throws Exception {
    raftkv.kv.KvResult.RangeDone range = (raftkv.kv.KvResult.RangeDone) node(i).read(
        new raftkv.kv.KvQuery.Range("", null, 0), raftkv.client.RaftKv.Consistency.SERIALIZABLE)
        .toCompletableFuture().get(30, TimeUnit.SECONDS);
    List<String> out = new ArrayList<>();
    out.add("revision " + range.revision());
    for (raftkv.kv.KeyValue kv : range.kvs()) {
      out.add(kv.key() + "=" + new String(kv.value(), java.nio.charset.StandardCharsets.UTF_8) + "@"
          + kv.createRevision() + "/" + kv.modRevision() + "/" + kv.version());
    }
    return out;
  }
}
