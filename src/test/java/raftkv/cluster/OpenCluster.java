package raftkv.cluster;

import raftkv.client.RaftKv;

import java.io.IOException;
import java.time.Duration;

/**
 * {@link InProcessCluster} for tests in other packages (the recipes' tests): a real cluster of
 * {@code size} nodes in this JVM, each node a {@link RaftKv}.
 */
public final class OpenCluster implements AutoCloseable {
  private final InProcessCluster cluster;

  private OpenCluster(InProcessCluster cluster) {
    this.cluster = cluster;
  }

  /** Starts {@code size} nodes that also read {@code extraConfig} (HOCON), and waits for a leader. */
  public static OpenCluster start(int size, String extraConfig) throws IOException {
    OpenCluster open = new OpenCluster(new InProcessCluster(size, extraConfig, dirs -> {}));
    open.awaitLeader(Duration.ofSeconds(30));
    return open;
  }

  public RaftKv node(int i) {
    return cluster.node(i);
  }

  public int awaitLeader(Duration within) {
    return cluster.awaitLeader(within);
  }

  @Override
  public void close() {
    cluster.close();
  }
}
