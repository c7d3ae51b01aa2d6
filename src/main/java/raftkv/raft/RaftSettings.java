package raftkv.raft;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * Timing and batching of the Raft core, read once from {@code raftkv.raft} (defaults and comments
 * in reference.conf).
 */
public record RaftSettings(
    Duration heartbeatInterval,
    Duration electionTimeout,
    int maxEntriesPerAppend,
    int maxBytesPerAppend,
    int maxInflightEntries,
    int maxForwardHops) {

  public static RaftSettings fromConfig(Config root) {
    Config c = root.getConfig("raftkv.raft");
    RaftSettings s = new RaftSettings(
        c.getDuration("heartbeat-interval"),
        c.getDuration("election-timeout"),
        c.getInt("max-entries-per-append"),
        (int) c.getMemorySize("max-bytes-per-append").toBytes(),
        c.getInt("max-inflight-entries"),
        c.getInt("max-forward-hops"));
    s.validate();
    return s;
  }

  /** Throws IllegalArgumentException naming the bad key. */
  public void validate() {
    if (heartbeatInterval.isNegative() || heartbeatInterval.isZero()) {
      throw new IllegalArgumentException("raftkv.raft.heartbeat-interval must be positive");
    }
    if (electionTimeout.compareTo(heartbeatInterval.multipliedBy(3)) < 0) {
      throw new IllegalArgumentException("raftkv.raft.election-timeout must be at least 3 heartbeat intervals");
    }
    if (maxEntriesPerAppend < 1) {
      throw new IllegalArgumentException("raftkv.raft.max-entries-per-append must be at least 1");
    }
    if (maxBytesPerAppend < 1024) {
      throw new IllegalArgumentException("raftkv.raft.max-bytes-per-append must be at least 1 KiB");
    }
    if (maxInflightEntries < maxEntriesPerAppend) {
      throw new IllegalArgumentException("raftkv.raft.max-inflight-entries must be at least max-entries-per-append");
    }
  }
}
