package raftkv.http;

import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.KvStore;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;

/**
 * A one-node "cluster" in memory: writes and reads go straight to a {@link KvStore}, at once. It
 * remembers the last command and consistency it saw, and can be told to fail every call, either
 * through the stage or by throwing. A backup writes {@link #BACKUP} on another thread, as a node does.
 */
final class FakeRaftKv implements RaftKv {

  /** The index and term of {@link #BACKUP}. */
  static final long BACKUP_INDEX = 42;
  static final long BACKUP_TERM = 3;
  /**
   * What a backup writes: a snapshot file's first fields (magic "RKSN", format 1, index, term, no
   * voters), then 300 KiB of patterned bytes (more than HttpApi's buffer, so the body is streamed in
   * several pieces) and 32 bytes standing for the SHA-256.
   */
  static final byte[] BACKUP = backupBytes();

  private KvStore store = new KvStore();
  private Throwable failure;
  private boolean throwFailure;
  private boolean hang;
  private KvCommand lastWrite;
  private Consistency lastConsistency;
  private ClusterStatus status;
  private Health health;
  private Boolean lastBackupLinearizable;
  private IOException backupFailsAfterWriting;
  /** The configuration, changed by the membership calls with the rules the leader applies. */
  private List<ClusterStatus.Member> members;
  private String leader;
  /** What the next watch answers: its messages (the stream then stays open), or a failure. */
  private List<raftkv.client.WatchMessage> watchMessages = List.of();
  private RaftKvException watchFailure;
  private raftkv.client.WatchRequest lastWatch;

  synchronized void watchAnswers(List<raftkv.client.WatchMessage> messages, RaftKvException failure) {
    watchMessages = messages;
    watchFailure = failure;
  }

  synchronized raftkv.client.WatchRequest lastWatch() {
    return lastWatch;
  }

  @Override
  public synchronized CompletionStage<akka.stream.javadsl.Source<raftkv.client.WatchMessage, akka.NotUsed>> watch(
      raftkv.client.WatchRequest request) {
    lastWatch = request;
    if (watchFailure != null) {
      return java.util.concurrent.CompletableFuture.failedFuture(watchFailure);
    }
    boolean ends = !watchMessages.isEmpty() && watchMessages.get(watchMessages.size() - 1)
        instanceof raftkv.client.WatchMessage.Compacted;
    akka.stream.javadsl.Source<raftkv.client.WatchMessage, akka.NotUsed> messages = akka.stream.javadsl.Source.from(watchMessages);
    return java.util.concurrent.CompletableFuture.completedFuture(ends ? messages
        : messages.concat(akka.stream.javadsl.Source.<raftkv.client.WatchMessage>maybe().mapMaterializedValue(m -> akka.NotUsed.getInstance())));
  }

  synchronized void reset() {
    watchMessages = List.of();
    watchFailure = null;
    lastWatch = null;
    store = new KvStore();
    failure = null;
    throwFailure = false;
    hang = false;
    lastWrite = null;
    lastConsistency = null;
    lastBackupLinearizable = null;
    backupFailsAfterWriting = null;
    status = new ClusterStatus("n1", "leader", 1, "n1", 0, 0, 0, 0, 0, List.of());
    health = new Health(true, null, "n1", 0, 0);
    members = List.of(
        new ClusterStatus.Member("n1", "127.0.0.1:2552", "127.0.0.1:8080", true, null, null),
        new ClusterStatus.Member("n2", "127.0.0.1:2553", "127.0.0.1:8081", true, null, null),
        new ClusterStatus.Member("n3", "127.0.0.1:2554", "127.0.0.1:8082", true, null, null));
    leader = "n1";
  }

  synchronized List<ClusterStatus.Member> members() {
    return members;
  }

  synchronized String leader() {
    return leader;
  }

  private ClusterStatus.Member member(String id) {
    return members.stream().filter(m -> m.id().equals(id)).findFirst().orElse(null);
  }

  private static <T> CompletionStage<T> refuse(raftkv.client.RaftKvException.Kind kind, String why) {
    return CompletableFuture.failedFuture(new raftkv.client.RaftKvException(kind, why));
  }

  @Override
  public synchronized CompletionStage<List<ClusterStatus.Member>> addMember(String id, String address, String httpAddress,
                                                                          boolean learner) {
    if (failure != null || hang) {
      return answer(() -> members);
    }
    if (member(id) != null || members.stream().anyMatch(m -> m.address().equals(address))) {
      return refuse(raftkv.client.RaftKvException.Kind.CONFLICT, "duplicate id or address");
    }
    List<ClusterStatus.Member> next = new java.util.ArrayList<>(members);
    next.add(new ClusterStatus.Member(id, address, httpAddress, !learner, null, null));
    members = List.copyOf(next);
    return CompletableFuture.completedFuture(members);
  }

  @Override
  public synchronized CompletionStage<List<ClusterStatus.Member>> promoteMember(String id) {
    ClusterStatus.Member m = member(id);
    if (m == null) {
      return refuse(raftkv.client.RaftKvException.Kind.NOT_FOUND, "'" + id + "' is not a member");
    }
    if (m.voter()) {
      return refuse(raftkv.client.RaftKvException.Kind.CONFLICT, "'" + id + "' is a voter already");
    }
    members = members.stream().map(x -> x.id().equals(id)
        ? new ClusterStatus.Member(x.id(), x.address(), x.httpAddress(), true, null, null) : x).toList();
    return CompletableFuture.completedFuture(members);
  }

  @Override
  public synchronized CompletionStage<List<ClusterStatus.Member>> removeMember(String id) {
    if (member(id) == null) {
      return refuse(raftkv.client.RaftKvException.Kind.NOT_FOUND, "'" + id + "' is not a member");
    }
    members = members.stream().filter(x -> !x.id().equals(id)).toList();
    return CompletableFuture.completedFuture(members);
  }

  @Override
  public synchronized CompletionStage<String> transferLeadership(String to) {
    if (failure != null || hang) {
      return answer(() -> leader);
    }
    String target = to != null ? to
        : members.stream().filter(m -> m.voter() && !m.id().equals(leader)).map(ClusterStatus.Member::id).findFirst()
            .orElse(null);
    ClusterStatus.Member m = target == null ? null : member(target);
    if (m == null || !m.voter()) {
      return refuse(raftkv.client.RaftKvException.Kind.CONFLICT, "'" + target + "' is not a voter");
    }
    leader = target;
    return CompletableFuture.completedFuture(leader);
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

  /** Later backups write all of {@link #BACKUP} except its last 32 bytes, then fail with {@code failure}. */
  synchronized void failBackupsMidway(IOException failure) {
    this.backupFailsAfterWriting = failure;
  }

  /** Whether the last backup was asked to be linearizable; null before any. */
  synchronized Boolean lastBackupLinearizable() {
    return lastBackupLinearizable;
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

  @Override
  public CompletionStage<long[]> backup(boolean linearizable, OutputStream out) {
    IOException midway;
    CompletionStage<Object> ready;
    synchronized (this) {
      lastBackupLinearizable = linearizable;
      midway = backupFailsAfterWriting;
      ready = answer(() -> "go");
    }
    return ready.thenApplyAsync(go -> {
      try {
        if (midway != null) {
          out.write(BACKUP, 0, BACKUP.length - 32);
          out.flush();
          throw new UncheckedIOException(midway);
        }
        out.write(BACKUP, 0, 100); // a small write, then the rest
        out.write(BACKUP, 100, BACKUP.length - 100);
        out.flush();
        return new long[] {BACKUP_INDEX, BACKUP_TERM};
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  private static byte[] backupBytes() {
    ByteBuffer b = ByteBuffer.allocate(4 + 4 + 8 + 8 + 4 + 300 * 1024 + 32);
    b.putInt(0x524B534E).putInt(1).putLong(BACKUP_INDEX).putLong(BACKUP_TERM).putInt(0);
    int i = 0;
    while (b.hasRemaining()) {
      b.put((byte) (i++ * 31 + (i >> 8)));
    }
    return b.array();
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
