package raftkv.raft;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.javadsl.Behaviors;
import com.typesafe.config.ConfigFactory;
import raftkv.node.NodeSettings;

import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * ActorSystems named as a node's, with Artery on loopback, for tests that run a real node against
 * probe peers over real remoting: short Raft timeouts, a free port unless the extra config names
 * one. {@link #close} terminates them all.
 */
final class RemoteSystems implements AutoCloseable {
  private final List<ActorSystem<?>> systems = new ArrayList<>();

  /** A new system; {@code extra} (HOCON) wins over the defaults here. */
  ActorSystem<Void> start(String extra) {
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), NodeSettings.SYSTEM_NAME,
        ConfigFactory.parseString("""
            akka.remote.artery.canonical.hostname = "127.0.0.1"
            akka.remote.artery.canonical.port = 0
            akka.loglevel = WARNING
            akka.coordinated-shutdown.run-by-jvm-shutdown-hook = off
            raftkv.raft.heartbeat-interval = 50ms
            raftkv.raft.election-timeout = 300ms
            """ + extra).withFallback(ConfigFactory.load()).resolve());
    systems.add(system);
    return system;
  }

  /** A loopback port that was free a moment ago. */
  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() throws Exception {
    for (ActorSystem<?> system : systems) {
      system.terminate();
    }
    for (ActorSystem<?> system : systems) {
      system.getWhenTerminated().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }
  }
}
