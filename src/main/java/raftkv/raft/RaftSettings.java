package raftkv.raft;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * Timing, batching and size bounds of the Raft core, read once from {@code raftkv.raft} (defaults
 * and comments in reference.conf), with the transport's frame size
 * ({@code akka.remote.artery.advanced.maximum-frame-size}) that the size bounds must fit in.
 *
 * @param maxBytesPerAppend the largest AppendEntries, as encoded ({@link RaftSerializer}), header included
 * @param maxCommandBytes   the largest command, as encoded in the log
 * @param maximumFrameSize  the largest message Artery carries, envelope included
 * @param maxLearners       the most learners a configuration may hold
 * @param electionTimeoutSpread a follower campaigns after a random time in [T, T * (1 + spread)), T the election timeout
 * @param promoteMaxLag     a learner is promoted only when its match index is within this many entries of the leader's last
 * @param requestTimeout    how long a client waits for a request (raftkv.client.request-timeout): how long a
 *                          follower remembers the requests it forwarded, to fail them at once when the leader changes
 */
public record RaftSettings(
    Duration heartbeatInterval,
    Duration electionTimeout,
    int maxEntriesPerAppend,
    int maxBytesPerAppend,
    int maxInflightEntries,
    int maxForwardHops,
    int maxCommandBytes,
    long maximumFrameSize,
    long snapshotEntries,
    double snapshotLogRatio,
    long snapshotMinLogBytes,
    long trailingEntries,
    int snapshotChunkBytes,
    int maxSnapshotTransfers,
    int journalSnapshotEvery,
    int maxLearners,
    long promoteMaxLag,
    Duration requestTimeout,
    double electionTimeoutSpread) {

  /**
   * Room in one AppendEntries beside its largest command: the message's header (term, indices,
   * the leader's id and HTTP address) and the entry's own (index, term, kind). With a node id of
   * at most 64 characters and a host of at most 253 this is under 1 KiB; {@link
   * #checkIdentity} holds every node to it. A forwarded proposal is a command, a reply path and
   * a hop count: it fits in the same room.
   */
  public static final int APPEND_OVERHEAD_BYTES = 4 * 1024;

  /**
   * Room in one Artery frame beside the message: the envelope's fixed header (28 bytes), the
   * recipient and sender paths and the manifest, each a length and its ASCII characters (a path
   * holds the system name, host, port and actor path: a few hundred bytes with a host of at most
   * 253 characters).
   */
  public static final int ENVELOPE_BYTES = 64 * 1024;

  private static final String FRAME_SIZE = "akka.remote.artery.advanced.maximum-frame-size";

  public static RaftSettings fromConfig(Config root) {
    Config c = root.getConfig("raftkv.raft");
    RaftSettings s = new RaftSettings(
        c.getDuration("heartbeat-interval"),
        c.getDuration("election-timeout"),
        c.getInt("max-entries-per-append"),
        bytes(c, "max-bytes-per-append"),
        c.getInt("max-inflight-entries"),
        c.getInt("max-forward-hops"),
        bytes(c, "max-command-bytes"),
        root.hasPath(FRAME_SIZE) ? root.getMemorySize(FRAME_SIZE).toBytes() : Long.MAX_VALUE,
        c.getLong("snapshot-entries"),
        c.getDouble("snapshot-log-ratio"),
        c.getMemorySize("snapshot-min-log-bytes").toBytes(),
        c.getLong("trailing-entries"),
        bytes(c, "snapshot-chunk-bytes"),
        c.getInt("max-snapshot-transfers"),
        c.getInt("journal-snapshot-every"),
        c.getInt("max-learners"),
        c.getLong("promote-max-lag"),
        root.hasPath("raftkv.client.request-timeout") ? root.getDuration("raftkv.client.request-timeout")
            : Duration.ofSeconds(5),
        c.getDouble("election-timeout-spread"));
    s.validate();
    return s;
  }

  private static int bytes(Config c, String key) {
    long n = c.getMemorySize(key).toBytes();
    if (n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("raftkv.raft." + key + " must be below 2 GiB, not " + n + " bytes");
    }
    return (int) n;
  }

  /** Throws IllegalArgumentException naming the bad key, in one line. */
  public void validate() {
    if (!(electionTimeoutSpread > 0 && electionTimeoutSpread <= 1)) {
      throw new IllegalArgumentException("raftkv.raft.election-timeout-spread must be in (0, 1], not " + electionTimeoutSpread);
    }
    if (heartbeatInterval.isNegative() || heartbeatInterval.isZero()) {
      throw new IllegalArgumentException("raftkv.raft.heartbeat-interval must be positive");
    }
    if (electionTimeout.compareTo(heartbeatInterval.multipliedBy(3)) < 0) {
      throw new IllegalArgumentException("raftkv.raft.election-timeout must be at least 3 heartbeat intervals");
    }
    if (snapshotEntries < 1 || trailingEntries < 0 || snapshotLogRatio <= 0 || maxSnapshotTransfers < 1
        || journalSnapshotEvery < 1) {
      throw new IllegalArgumentException("raftkv.raft.snapshot-entries, snapshot-log-ratio, max-snapshot-transfers and"
          + " journal-snapshot-every must be positive, trailing-entries not negative");
    }
    if (snapshotChunkBytes < 1024 || (long) snapshotChunkBytes + APPEND_OVERHEAD_BYTES > maxBytesPerAppend) {
      throw new IllegalArgumentException("raftkv.raft.snapshot-chunk-bytes (" + snapshotChunkBytes + ") must be at least"
          + " 1 KiB and, with " + APPEND_OVERHEAD_BYTES + " bytes of header, fit in max-bytes-per-append ("
          + maxBytesPerAppend + ")");
    }
    if (maxEntriesPerAppend < 1) {
      throw new IllegalArgumentException("raftkv.raft.max-entries-per-append must be at least 1");
    }
    if (maxInflightEntries < maxEntriesPerAppend) {
      throw new IllegalArgumentException("raftkv.raft.max-inflight-entries must be at least max-entries-per-append");
    }
    if (maxCommandBytes < 1024) {
      throw new IllegalArgumentException("raftkv.raft.max-command-bytes must be at least 1 KiB, not " + maxCommandBytes);
    }
    if ((long) maxCommandBytes + APPEND_OVERHEAD_BYTES > maxBytesPerAppend) {
      throw new IllegalArgumentException("raftkv.raft.max-bytes-per-append (" + maxBytesPerAppend
          + " bytes) must be at least raftkv.raft.max-command-bytes (" + maxCommandBytes + ") + "
          + APPEND_OVERHEAD_BYTES + ", so that the largest command fits in one AppendEntries");
    }
    if ((long) maxBytesPerAppend + ENVELOPE_BYTES > maximumFrameSize) {
      throw new IllegalArgumentException(FRAME_SIZE + " (" + maximumFrameSize
          + " bytes) must be at least raftkv.raft.max-bytes-per-append (" + maxBytesPerAppend + ") + "
          + ENVELOPE_BYTES + ", so that every AppendEntries fits in one frame");
    }
  }

  /**
   * Throws IllegalArgumentException when a node of this id and HTTP address would send
   * AppendEntries whose header does not fit in {@link #APPEND_OVERHEAD_BYTES}.
   */
  public static void checkIdentity(String nodeId, String httpAddress) {
    long overhead = RaftSerializer.appendEntriesHeaderBytes(nodeId, httpAddress) + RaftSerializer.ENTRY_HEADER_BYTES;
    if (overhead > APPEND_OVERHEAD_BYTES) {
      throw new IllegalArgumentException("the node id and HTTP address are too long: they take " + overhead
          + " bytes of every AppendEntries, the limit is " + APPEND_OVERHEAD_BYTES);
    }
  }

  /** The most entry bytes that one AppendEntries of this leader may carry. */
  long appendBudget(String leaderId, String leaderHttp) {
    return maxBytesPerAppend - RaftSerializer.appendEntriesHeaderBytes(leaderId, leaderHttp);
  }
}
