package raftkv.client;

import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.io.OutputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * The handle of a running raftkv node, for code in the same JVM (the HTTP endpoint is one user).
 * Any node accepts any call: a follower forwards it to the leader. Every stage completes
 * exceptionally with a {@link RaftKvException} whose {@link RaftKvException.Kind} tells the caller
 * whether the request was applied (UNAVAILABLE: it was not; TIMEOUT: unknown).
 */
public interface RaftKv {

  /** Replicates {@code command}, and completes with its result once it is committed and applied. */
  CompletionStage<KvResult> write(KvCommand command);

  /**
   * Answers {@code query}: linearizably through the leader (ReadIndex), or from this node's local
   * state when {@code consistency} is SERIALIZABLE.
   */
  CompletionStage<KvResult> read(KvQuery query, Consistency consistency);

  /**
   * Makes this node's state machine durable and compacts its log now (API.md §5); when nothing
   * was applied since the last snapshot, completes with that one.
   */
  CompletionStage<SnapshotInfo> snapshot();

  /** This node's view of the cluster (API.md §5). */
  CompletionStage<ClusterStatus> status();

  /** Healthy when this node knows a leader and has applied all it knows to be committed. */
  CompletionStage<Health> health();

  /**
   * Writes a whole backup of the state machine into {@code out} (API.md §5; the layout of {@code
   * raftkv.raft.SnapshotFile}: header, the state machine's bytes, SHA-256), off the caller's
   * thread, and completes with the backup's [index, term] once all of it is written. {@code out} is
   * not closed. When {@code linearizable}, the backup holds every write acknowledged before the
   * call (the leader takes it after a ReadIndex): elsewhere the stage fails with {@code
   * raftkv.raft.RaftNode.NotLeader}, which names the leader's HTTP address when it is known.
   * Otherwise it is this node's local state, possibly stale.
   *
   * <p>A default so that handles which cannot take backups (test doubles, clients of a remote node)
   * need not implement it: they fail with an UnsupportedOperationException.
   */
  default CompletionStage<long[]> backup(boolean linearizable, OutputStream out) {
    return CompletableFuture.failedFuture(new UnsupportedOperationException(
        getClass().getSimpleName() + " does not take backups"));
  }

  // ---- membership and leadership (API.md §5). Defaults fail, as for backup, for handles that cannot do them.

  /**
   * Adds member {@code id} at {@code address} (host:raftPort), serving clients at {@code
   * httpAddress} (may be null), as a learner when {@code learner}; completes with the members once
   * the change is committed. Fails with CONFLICT (another change pending, duplicate id or address,
   * no recent contact with a quorum), BAD_REQUEST (malformed address), UNAVAILABLE or TIMEOUT.
   */
  default CompletionStage<java.util.List<ClusterStatus.Member>> addMember(String id, String address, String httpAddress,
                                                                        boolean learner) {
    return unsupported("membership changes");
  }

  /** Makes learner {@code id} a voter: NOT_FOUND, CONFLICT when it is a voter or has not caught up. */
  default CompletionStage<java.util.List<ClusterStatus.Member>> promoteMember(String id) {
    return unsupported("membership changes");
  }

  /** Removes member {@code id}, the leader included: NOT_FOUND, CONFLICT when it would leave too few live voters. */
  default CompletionStage<java.util.List<ClusterStatus.Member>> removeMember(String id) {
    return unsupported("membership changes");
  }

  /**
   * Hands leadership to voter {@code to} (null: the most up-to-date voter); completes with the new
   * leader's id once it is known. CONFLICT for an unknown id or a learner; UNAVAILABLE when it did
   * not complete within an election timeout (the old leader goes on leading).
   */
  default CompletionStage<String> transferLeadership(String to) {
    return unsupported("leadership transfer");
  }

  private <T> CompletionStage<T> unsupported(String what) {
    return CompletableFuture.failedFuture(new UnsupportedOperationException(getClass().getSimpleName() + " does not do " + what));
  }

  /**
   * Watches a key, or the keys under a prefix (API.md §4), from this node's applied state: the
   * stage completes with a stream of one {@link WatchMessage.Change} per revision that touched the
   * watched keys, in revision order, with none missing, starting at {@code request.fromRevision()}
   * (0: after the current revision); {@link WatchMessage.Progress} when caught up and nothing
   * matched for a while; and, when the watcher fell behind the history's compaction, one {@link
   * WatchMessage.Compacted} that ends it. Ordered and gap-free, but not linearizable: a follower may
   * be behind the leader. The stage fails with COMPACTED when {@code fromRevision} is no longer in
   * the history, BAD_REQUEST for a malformed request. Cancelling the stream ends the watch.
   */
  default CompletionStage<akka.stream.javadsl.Source<WatchMessage, akka.NotUsed>> watch(WatchRequest request) {
    return unsupported("watches");
  }

  // ---- leases (API.md §4), on write and read: a grant, a revoke and a keepalive are commands and a
  // linearizable read like any other

  /**
   * Grants a lease of at least {@code ttlSeconds} (the node raises a shorter one to its minimum,
   * 1.5 election timeouts) under a random id; completes with the id and the TTL granted.
   */
  default CompletionStage<KvResult.LeaseGranted> grantLease(long ttlSeconds) {
    long id = java.util.concurrent.ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    return write(new raftkv.kv.KvCommand.LeaseGrant(id, ttlSeconds)).thenApply(r -> {
      if (r instanceof KvResult.LeaseGranted granted) {
        return granted;
      }
      throw new RaftKvException(RaftKvException.Kind.CONFLICT, "the lease was not granted: " + r);
    });
  }

  /**
   * Renews lease {@code id} for its whole TTL (the leader, once it confirmed its leadership, does
   * it): completes with the TTL; NOT_FOUND when the lease is gone, UNAVAILABLE to retry.
   */
  default CompletionStage<Long> keepAliveLease(long id) {
    return read(new raftkv.kv.KvQuery.LeaseKeepAlive(id), Consistency.LINEARIZABLE).thenApply(r -> {
      if (r instanceof KvResult.LeaseKeptAlive kept) {
        return kept.ttlSeconds();
      } else if (r instanceof KvResult.LeaseNotFound) {
        throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "lease " + id + " does not exist");
      }
      throw new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "the lease was not renewed: " + r);
    });
  }

  /** Revokes lease {@code id} and deletes its keys at one revision; NOT_FOUND when it is gone. */
  default CompletionStage<KvResult.LeaseRevoked> revokeLease(long id) {
    return write(new raftkv.kv.KvCommand.LeaseRevoke(id, 0)).thenApply(r -> {
      if (r instanceof KvResult.LeaseRevoked revoked) {
        return revoked;
      }
      throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "lease " + id + " does not exist");
    });
  }

  enum Consistency { LINEARIZABLE, SERIALIZABLE }
}
