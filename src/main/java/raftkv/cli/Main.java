package raftkv.cli;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import raftkv.http.HttpApi;
import raftkv.node.DataDir;
import raftkv.node.NodeSettings;
import raftkv.node.RaftKvNode;
import raftkv.raft.Peer;
import raftkv.raft.RaftNode;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code raftkv node --id n1 --host 127.0.0.1 --raft-port 2552 --http-port 8080 --data-dir data/n1
 * --peers n1@127.0.0.1:2552,...} (API.md §1). Flags win over -D system properties, which win over
 * application.conf. A bad flag, a port in use or an unusable data dir ends the process with a
 * one-line reason and a non-zero status.
 *
 * <p>{@code --join n1@127.0.0.1:2552,...} instead of {@code --peers} starts a new node that
 * bootstraps nothing: it contacts those running members and waits until a leader adds it ({@code
 * POST /v1/cluster/members}). Both on a first start (an empty data dir) is a bad flag; on a restart
 * the membership in the node's log rules, whatever either says ({@link DataDir#start}).
 *
 * <p>{@code raftkv restore --from FILE --data-dir D --id ID --peers ...} seeds a node of a new
 * cluster from a backup ({@link Restore}): flags only (it starts no node and reads no config), exit
 * 2 on a bad flag, 1 when the file or the data dir is refused, 0 with one line once restored.
 */
public final class Main {
  /** Settings for a standalone node only, between application.conf and reference.conf (a resource). */
  static final String NODE_CONF = "raftkv-node.conf";
  private static final Map<String, String> FLAGS = Map.of(
      "--id", "raftkv.node.id",
      "--host", "raftkv.node.host",
      "--raft-port", "raftkv.node.raft-port",
      "--http-port", "raftkv.node.http-port",
      "--data-dir", "raftkv.node.data-dir",
      "--peers", "raftkv.node.peers",
      "--cluster-token", "raftkv.node.cluster-token",
      "--join", "raftkv.node.join");

  private Main() {}

  public static void main(String[] args) {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
      System.out.println(usage());
      System.exit(args.length == 0 ? 2 : 0);
    }
    if (args[0].equals("restore")) {
      restore(args);
      return;
    }
    if (!args[0].equals("node")) {
      fail(2, "unknown command '" + args[0] + "'; " + usage());
    }
    Map<String, Object> overrides = new HashMap<>();
    flags(args, FLAGS.keySet(), Set.of("--fault-injection"), "; " + usage()).forEach((flag, value) -> {
      if (flag.equals("--fault-injection")) {
        overrides.put("raftkv.test.fault-injection", "on");
        overrides.put("akka.remote.artery.advanced.test-mode", "on");
      } else {
        overrides.put(FLAGS.get(flag), value);
      }
    });
    Config config;
    NodeSettings settings;
    try {
      // flags, then application.conf, then the standalone-node settings, then reference.conf
      Config application = ConfigFactory.defaultApplication().withFallback(ConfigFactory.parseResources(NODE_CONF));
      config = ConfigFactory.parseMap(overrides).withFallback(ConfigFactory.load(application));
      settings = NodeSettings.fromConfig(config);
      config = settings.akkaConfig().withFallback(config).resolve();
    } catch (RuntimeException e) {
      fail(2, e.getMessage());
      return;
    }
    checkPortFree(settings.host(), settings.raftPort(), "--raft-port");
    if (settings.httpPort() > 0) {
      checkPortFree(settings.host(), settings.httpPort(), "--http-port");
    }
    try {
      DataDir.checkFirstStart(settings); // --join with --peers on an empty data dir
    } catch (IllegalArgumentException e) {
      fail(2, e.getMessage());
      return;
    }
    try {
      DataDir.claim(settings.dataDir(), settings.id()); // before any actor starts: a clean one-line exit
    } catch (IllegalStateException e) {
      fail(1, e.getMessage());
      return;
    }
    try {
      ActorSystem.create(launcher(settings), NodeSettings.SYSTEM_NAME, config);
    } catch (RuntimeException e) {
      fail(1, "cannot start: " + e.getMessage());
    }
  }

  private static final Set<String> RESTORE_FLAGS = Set.of("--from", "--data-dir", "--id", "--peers", "--cluster-token");

  /** {@code raftkv restore ...}: one line on stdout once restored, else one on stderr and a non-zero exit. */
  private static void restore(String[] args) {
    Map<String, String> flags = flags(args, RESTORE_FLAGS, Set.of(), " for restore; " + restoreUsage());
    for (String flag : List.of("--from", "--data-dir", "--id", "--peers")) {
      if (flags.get(flag) == null || flags.get(flag).isBlank()) {
        fail(2, "restore needs " + flag + "; " + restoreUsage());
        return;
      }
    }
    String id = flags.get("--id");
    Path dataDir = Path.of(flags.get("--data-dir"));
    Restore.Restored restored;
    List<Peer> peers;
    try {
      peers = Peer.parseList(flags.get("--peers"));
    } catch (IllegalArgumentException e) {
      fail(2, e.getMessage());
      return;
    }
    try {
      restored = Restore.restore(Path.of(flags.get("--from")), dataDir, id, peers,
          flags.getOrDefault("--cluster-token", Restore.DEFAULT_CLUSTER_TOKEN));
    } catch (IllegalArgumentException | IllegalStateException e) {
      fail(1, e.getMessage());
      return;
    }
    Peer me = peers.stream().filter(p -> p.id().equals(id)).findFirst().orElseThrow();
    System.out.println("restored " + restored.keys() + " keys at revision " + restored.revision() + " into " + dataDir
        + " (new cluster id " + RaftNode.clusterIdText(restored.clusterId()) + "); start it with bin/raftkv node --id " + id + " --host " + me.host() + " --raft-port " + me.port()
        + " --data-dir " + dataDir + " --peers " + flags.get("--peers"));
    System.out.flush();
  }

  /**
   * The flags after the verb ({@code args[0]}), as {@code --flag value} or {@code --flag=value};
   * a switch takes no value and maps to "on". An unknown flag ({@code unknown} follows its name in
   * the message) or a flag without its value exits with status 2 and one line.
   */
  private static Map<String, String> flags(String[] args, Set<String> valued, Set<String> switches, String unknown) {
    Map<String, String> flags = new HashMap<>();
    for (int i = 1; i < args.length; i++) {
      String flag = args[i];
      String value = null;
      int eq = flag.indexOf('=');
      if (eq > 0) {
        value = flag.substring(eq + 1);
        flag = flag.substring(0, eq);
      }
      if (switches.contains(flag)) {
        flags.put(flag, "on");
        continue;
      }
      if (!valued.contains(flag)) {
        fail(2, "unknown flag '" + flag + "'" + unknown);
        return flags;
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          fail(2, "flag " + flag + " needs a value");
          return flags;
        }
        value = args[++i];
      }
      flags.put(flag, value);
    }
    return flags;
  }

  private static String restoreUsage() {
    return "usage: raftkv restore --from FILE --data-dir DIR --id ID --peers ID@HOST:PORT,... [--cluster-token T]";
  }

  private static Behavior<RaftNode.Lifecycle> launcher(NodeSettings settings) {
    return Behaviors.setup(ctx -> {
      RaftKvNode node;
      try {
        node = RaftKvNode.start(ctx.getSystem(), settings, ctx.getSelf());
      } catch (IllegalStateException | IllegalArgumentException e) {
        fail(1, e.getMessage());
        return Behaviors.stopped();
      }
      return Behaviors.receive(RaftNode.Lifecycle.class)
          .onMessage(RaftNode.Started.class, started -> {
            if (settings.httpPort() < 0) {
              ctx.getLog().info("raftkv node {} ready (no HTTP), raft on {}:{}", settings.id(), settings.host(), settings.raftPort());
              return Behaviors.same();
            }
            HttpApi.create(ctx.getSystem(), node, node.limits()).bind(settings.host(), settings.httpPort())
                .whenComplete((binding, error) -> {
                  if (error != null) {
                    fail(1, "cannot serve HTTP on " + settings.httpAddress() + ": " + error.getMessage());
                  } else {
                    ctx.getSystem().log().info("raftkv node {} ready: HTTP on http://{} (raft {}:{}, data {})",
                        settings.id(), settings.httpAddress(), settings.host(), settings.raftPort(), settings.dataDir());
                  }
                });
            return Behaviors.same();
          })
          .onMessage(RaftNode.StartFailed.class, failed -> {
            fail(1, failed.reason());
            return Behaviors.stopped();
          })
          .build();
    });
  }

  private static void checkPortFree(String host, int port, String flag) {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getByName(host), port));
    } catch (IOException e) {
      fail(1, flag + " " + port + " on " + host + " is not available: " + e.getMessage());
    }
  }

  private static String usage() {
    return "usage: raftkv node --id ID --host HOST --raft-port PORT --http-port PORT --data-dir DIR"
        + " (--peers ID@HOST:PORT,... | --join ID@HOST:PORT,...) [--cluster-token T] [--fault-injection (test only)]\n       "
        + restoreUsage();
  }

  /** One line on stderr and a non-zero exit; never a stack trace for an operator's mistake. */
  static void fail(int status, String reason) {
    System.err.println("raftkv: " + reason);
    System.err.flush();
    // exit from another thread: System.exit blocks until shutdown hooks (Akka's) have run
    Thread t = new Thread(() -> System.exit(status), "raftkv-exit");
    t.start();
    if (Thread.currentThread().getName().equals("main")) {
      try {
        t.join();
      } catch (InterruptedException ignored) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
