package raftkv.recipes;

import akka.NotUsed;
import akka.stream.javadsl.Source;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.client.SnapshotInfo;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Function;

/**
 * A node as it is, except for its next watches: each one queued with {@link #nextWatch} decides
 * what that watch does (fail it, break its stream, write meanwhile); once the queue is empty,
 * watches go to the node unchanged. Counts the watches asked for.
 */
final class ScriptedKv implements RaftKv {
  private final RaftKv node;
  private final ConcurrentLinkedQueue<Function<WatchRequest, CompletionStage<Source<WatchMessage, NotUsed>>>> script =
      new ConcurrentLinkedQueue<>();
  private final java.util.concurrent.atomic.AtomicInteger watches = new java.util.concurrent.atomic.AtomicInteger();

  ScriptedKv(RaftKv node) {
    this.node = node;
  }

  RaftKv node() {
    return node;
  }

  ScriptedKv nextWatch(Function<WatchRequest, CompletionStage<Source<WatchMessage, NotUsed>>> how) {
    script.add(how);
    return this;
  }

  int watches() {
    return watches.get();
  }

  @Override
  public CompletionStage<Source<WatchMessage, NotUsed>> watch(WatchRequest request) {
    watches.incrementAndGet();
    var how = script.poll();
    return how == null ? node.watch(request) : how.apply(request);
  }

  @Override
  public CompletionStage<KvResult> write(KvCommand command) {
    return node.write(command);
  }

  @Override
  public CompletionStage<KvResult> read(KvQuery query, Consistency consistency) {
    return node.read(query, consistency);
  }

  @Override
  public CompletionStage<SnapshotInfo> snapshot() {
    return node.snapshot();
  }

  @Override
  public CompletionStage<ClusterStatus> status() {
    return node.status();
  }

  @Override
  public CompletionStage<Health> health() {
    return node.health();
  }
}
