package raftkv.client;

import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

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

  enum Consistency { LINEARIZABLE, SERIALIZABLE }
}
