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
import raftkv.raft.RaftNode;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.HashMap;
import java.util.Map;

/**
 * {@code raftkv node --id n1 --host 127.0.0.1 --raft-port 2552 --http-port 8080 --data-dir data/n1
 * --peers n1@127.0.0.1:2552,...} (API.md §1). Flags win over -D system properties, which win over
 * application.conf. A bad flag, a port in use or an unusable data dir ends the process with a
 * one-line reason and a non-zero status.
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
      "--peers", "raftkv.node.peers");

  private Main() {}

  public static void main(String[] args) {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
      System.out.println(usage());
      System.exit(args.length == 0 ? 2 : 0);
    }
    if (!args[0].equals("node")) {
      fail(2, "unknown command '" + args[0] + "'; " + usage());
    }
    Map<String, Object> overrides = new HashMap<>();
    for (int i = 1; i < args.length; i++) {
      String flag = args[i];
      String value = null;
      int eq = flag.indexOf('=');
      if (eq > 0) {
        value = flag.substring(eq + 1);
        flag = flag.substring(0, eq);
      }
      if (flag.equals("--fault-injection")) {
        overrides.put("raftkv.test.fault-injection", "on");
        overrides.put("akka.remote.artery.advanced.test-mode", "on");
        continue;
      }
      String key = FLAGS.get(flag);
      if (key == null) {
        fail(2, "unknown flag '" + flag + "'; " + usage());
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          fail(2, "flag " + flag + " needs a value");
        }
        value = args[++i];
      }
      overrides.put(key, value);
    }
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
    return "usage: raftkv node --id ID --host HOST --raft-port PORT --http-port PORT --data-dir DIR --peers ID@HOST:PORT,..."
        + " [--fault-injection (test only)]";
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
