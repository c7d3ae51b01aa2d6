package raftkv.client.remote;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import raftkv.client.ClusterStatus;
import raftkv.http.HttpApi;
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
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;

/**
 * Three raftkv nodes in this JVM, each in its own ActorSystem with its HTTP endpoint bound on
 * 127.0.0.1 (as {@code bin/raftkv node} serves it), for the remote client to talk to; a node can
 * be stopped like a crash.
 */
final class RemoteTestCluster implements AutoCloseable {
  /** A client's actor system: local only (no remoting port to take), HTTP client settings from reference.conf. */
  static final Config CLIENT_CONFIG = ConfigFactory.parseString("""
      akka.actor.provider = local
      akka.coordinated-shutdown.run-by-jvm-shutdown-hook = off
      """).withFallback(ConfigFactory.load());

  private final List<NodeSettings> settings = new ArrayList<>();
  private final ActorSystem<?>[] systems;
  private final RaftKvNode[] nodes;
  private final Path root;

  RemoteTestCluster(int size) throws Exception {
    root = Files.createTempDirectory("raftkv-remote");
    systems = new ActorSystem<?>[size];
    nodes = new RaftKvNode[size];
    List<Peer> peers = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      peers.add(new Peer("n" + (i + 1), "127.0.0.1", freePort()));
    }
    for (int i = 0; i < size; i++) {
      Peer p = peers.get(i);
      settings.add(new NodeSettings(p.id(), p.host(), p.port(), freePort(), root.resolve(p.id()), peers));
    }
    for (int i = 0; i < size; i++) {
      start(i);
    }
  }

  void start(int i) throws Exception {
    NodeSettings s = settings.get(i);
    Config config = s.akkaConfig()
        .withFallback(ConfigFactory.parseString("""
            raftkv.raft.election-timeout = 1s
            raftkv.raft.heartbeat-interval = 100ms
            raftkv.watch.progress-interval = 1s
            akka.loglevel = INFO
            akka.cluster.log-info = off
            akka.coordinated-shutdown.run-by-jvm-shutdown-hook = off
            akka.coordinated-shutdown.terminate-actor-system = on
            """))
        .withFallback(ConfigFactory.load()).resolve();
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), NodeSettings.SYSTEM_NAME, config);
    systems[i] = system;
    nodes[i] = RaftKvNode.start(system, s, null);
    HttpApi.create(system, nodes[i], nodes[i].limits()).bind("127.0.0.1", s.httpPort())
        .toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** Stops node i's ActorSystem (its HTTP endpoint with it); what was fsynced stays. */
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

  RaftKvNode node(int i) {
    return nodes[i];
  }

  int size() {
    return nodes.length;
  }

  /** {@code 127.0.0.1:<http port>} of node i. */
  String endpoint(int i) {
    return "127.0.0.1:" + settings.get(i).httpPort();
  }

  /** The endpoints of the nodes in {@code order}. */
  List<String> endpoints(int... order) {
    List<String> out = new ArrayList<>();
    for (int i : order) {
      out.add(endpoint(i));
    }
    return out;
  }

  /** Waits until the running nodes agree on one leader, and returns its index. */
  int awaitLeader(Duration within) {
    int[] leader = {-1};
    await().atMost(within).pollInterval(Duration.ofMillis(50)).until(() -> {
      String leaderId = null;
      for (int i = 0; i < nodes.length; i++) {
        ClusterStatus st = status(i);
        if (st == null) {
          continue;
        }
        if (st.leaderId() == null || (leaderId != null && !leaderId.equals(st.leaderId()))) {
          return false;
        }
        leaderId = st.leaderId();
        if ("leader".equals(st.role())) {
          leader[0] = i;
        }
      }
      return leaderId != null && leader[0] >= 0 && leaderId.equals(settings.get(leader[0]).id());
    });
    return leader[0];
  }

  private ClusterStatus status(int i) {
    if (nodes[i] == null) {
      return null;
    }
    try {
      return nodes[i].status().toCompletableFuture().get(2, TimeUnit.SECONDS);
    } catch (Exception e) {
      return null;
    }
  }

  @Override
  public void close() {
    for (int i = 0; i < nodes.length; i++) {
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

  /** A loopback port that was free a moment ago, and that nothing listens on now. */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
