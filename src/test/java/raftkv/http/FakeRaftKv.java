package raftkv.http;

import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.KvStore;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;

/**
 * A one-node "cluster" in memory: writes and reads go straight to a {@link KvStore}, at once. It
 * remembers the last command and consistency it saw, and can be told to fail every call, either
 * through the stage or by throwing.
 */
final class FakeRaftKv implements RaftKv {

  private KvStore store = new KvStore();
  private Throwable failure;
  private boolean throwFailure;
  private boolean hang;
  private KvCommand lastWrite;
  private Consistency lastConsistency;
  private ClusterStatus status;
  private Health health;

  synchronized void reset() {
    store = new KvStore();
    failure = null;
    throwFailure = false;
    hang = false;
    lastWrite = null;
    lastConsistency = null;
    status = new ClusterStatus("n1", "leader", 1, "n1", 0, 0, 0, 0, 0, List.of());
    health = new Health(true, null, "n1", 0, 0);
  }

  /** Every later call fails with {@code failure}: thrown at once when {@code thrown}, else through its stage. */
  synchronized void failWith(Throwable failure, boolean thrown) {
    this.failure = failure;
    this.throwFailure = thrown;
  }

  /** Every later call returns a stage that never completes. */
  synchronized void hang() {
    this.hang = true;
  }

  synchronized void answer(ClusterStatus status, Health health) {
    this.status = status;
    this.health = health;
  }

  synchronized KvCommand lastWrite() {
    return lastWrite;
  }

  synchronized Consistency lastConsistency() {
    return lastConsistency;
  }

  @Override
  public synchronized CompletionStage<KvResult> write(KvCommand command) {
    lastWrite = command;
    return answer(() -> store.apply(command));
  }

  @Override
  public synchronized CompletionStage<KvResult> read(KvQuery query, Consistency consistency) {
    lastConsistency = consistency;
    return answer(() -> store.query(query));
  }

  @Override
  public CompletionStage<raftkv.client.SnapshotInfo> snapshot() {
    return CompletableFuture.completedFuture(new raftkv.client.SnapshotInfo(7, 2, 1234));
  }

  @Override
  public synchronized CompletionStage<ClusterStatus> status() {
    return answer(() -> status);
  }

  @Override
  public synchronized CompletionStage<Health> health() {
    return answer(() -> health);
  }

  private <T> CompletionStage<T> answer(Supplier<T> result) {
    if (hang) {
      return new CompletableFuture<>();
    }
    if (failure == null) {
      return CompletableFuture.completedFuture(result.get());
    }
    if (throwFailure) {
      if (failure instanceof RuntimeException e) {
        throw e;
      }
      throw new IllegalStateException(failure);
    }
    return CompletableFuture.failedFuture(failure);
  }
}
