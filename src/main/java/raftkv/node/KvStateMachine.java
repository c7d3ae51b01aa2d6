package raftkv.node;

import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.RevisionEvents;
import raftkv.raft.StateMachine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The key-value store as Raft's {@link StateMachine}: {@link KvDb} on disk, with commands, queries
 * and replies in {@link KvCodec}'s bytes. The wiring between the two layers (DESIGN.md §1): raft
 * knows only bytes, kv knows nothing of raft.
 *
 * <p>All entries of one {@link #apply} call go into one {@link KvDb.Batch}, committed with the
 * index and term of the last: one LevelDB write per call, whatever the number of entries. An entry
 * whose command cannot be decoded, or that the store refuses with an IllegalArgumentException, is
 * refused and leaves no trace; every node refuses it the same way.
 *
 * <p>Threading as {@link StateMachine}: one thread calls everything but a snapshot's methods.
 */
public final class KvStateMachine implements StateMachine {
  private final KvDb db;
  private final Changes changes;
  private final LeaseKeeper leases;

  /**
   * Hears what the state machine's history does, on its thread: what a watch hub follows (DESIGN.md
   * §6). Each call gives the store revision and the compact revision after it.
   */
  public interface Changes {
    /** The state machine was opened (or reopened after a failure) at this revision. */
    void opened(long revision, long compactRevision);

    /** Entries were applied and made these revisions (maybe none). */
    void committed(List<RevisionEvents> events, long revision, long compactRevision);

    /** The whole state was replaced by a snapshot: the history before it is gone. */
    void restored(long revision, long compactRevision);

    Changes NONE = new Changes() {
      @Override
      public void opened(long revision, long compactRevision) {}

      @Override
      public void committed(List<RevisionEvents> events, long revision, long compactRevision) {}

      @Override
      public void restored(long revision, long compactRevision) {}
    };
  }

  private KvStateMachine(KvDb db, Changes changes, LeaseKeeper leases) {
    this.db = db;
    this.changes = changes;
    this.leases = leases;
    changes.opened(db.revision(), db.compactRevision());
  }

  /**
   * Opens (or creates) the state in {@code dir}.
   *
   * @throws IllegalStateException with a one-line reason when {@code dir} is no KV database
   */
  public static KvStateMachine open(Path dir) {
    return open(dir, KvDb.Retention.DEFAULT, Changes.NONE, null);
  }

  /**
   * As {@link #open(Path)}, keeping history as {@code retention} says, telling {@code changes} of
   * it, and with {@code leases} keeping lease expiry while this node leads (null: keepalives are
   * unavailable).
   */
  public static KvStateMachine open(Path dir, KvDb.Retention retention, Changes changes, LeaseKeeper leases) {
    KvDb db = KvDb.open(dir, retention);
    try {
      return new KvStateMachine(db, changes, leases);
    } catch (RuntimeException e) {
      db.close();
      throw e;
    }
  }

  /** The database underneath, for status (its revision, key count) and tests. */
  public KvDb db() {
    return db;
  }

  @Override
  public long appliedIndex() {
    return db.appliedIndex();
  }

  @Override
  public long appliedTerm() {
    return db.appliedTerm();
  }

  /**
   * Applies the entries in one batch. Entries must follow on from {@link #appliedIndex()} one by
   * one: anything else is a bug in the caller that would make this node's state diverge, so it
   * throws IllegalStateException and applies nothing.
   */
  @Override
  public List<Result> apply(List<Entry> entries) {
    if (entries.isEmpty()) {
      return List.of();
    }
    long expected = db.appliedIndex() + 1;
    for (Entry entry : entries) {
      if (entry.index() != expected) {
        throw new IllegalStateException("entry " + entry.index() + " does not follow on: expected index " + expected
            + " (the KV state is at " + db.appliedIndex() + ")");
      }
      expected++;
    }
    KvDb.Batch batch = db.batch();
    List<Result> results = new ArrayList<>(entries.size());
    long time = 0;
    for (Entry entry : entries) {
      time = Math.max(time, entry.time());
      if (entry.command() == null) {
        results.add(Result.ok(null));
        continue;
      }
      KvCommand command;
      try {
        command = KvCodec.decodeCommand(entry.command());
      } catch (IllegalArgumentException e) {
        results.add(Result.refused(e.getMessage()));
        continue;
      }
      try {
        results.add(Result.ok(KvCodec.encode(batch.apply(command, entry.time(), entry.term()))));
      } catch (IllegalArgumentException e) {
        results.add(Result.refused(e.getMessage()));
      }
    }
    Entry last = entries.get(entries.size() - 1);
    batch.commit(last.index(), last.term(), time);
    changes.committed(batch.events(), db.revision(), db.compactRevision());
    if (leases != null && !batch.leaseChanges().isEmpty()) {
      leases.changed(batch.leaseChanges());
    }
    return results;
  }

  /** Decodes a {@link KvCodec} query, answers it from the applied state, encodes the result. */
  @Override
  public byte[] query(byte[] query) {
    KvQuery decoded = KvCodec.decodeQuery(query);
    if (decoded instanceof KvQuery.LeaseKeepAlive keep) {
      KvDb.Lease lease = db.lease(keep.id());
      return KvCodec.encode(lease == null ? new KvResult.LeaseNotFound(keep.id())
          : leases == null ? new KvResult.Unavailable("this node keeps no leases") : leases.keepAlive(lease));
    }
    KvResult result = db.query(decoded);
    if (result instanceof KvResult.LeaseInfo info && leases != null) {
      result = new KvResult.LeaseInfo(info.id(), info.ttlSeconds(), leases.remainingMillis(info.id()), info.keys());
    }
    return KvCodec.encode(result);
  }

  @Override
  public void leadershipChanged(long term, boolean leader) {
    if (leases != null) {
      leases.leadership(term, leader, leader ? db.leases() : List.of());
    }
  }

  @Override
  public long sync() {
    return db.sync();
  }

  @Override
  public Snapshot snapshot() {
    return new ViewSnapshot(db.view());
  }

  @Override
  public void restore(InputStream in) throws IOException {
    db.restore(in);
    changes.restored(db.revision(), db.compactRevision());
  }

  @Override
  public long sizeBytes() {
    return db.diskBytes();
  }

  @Override
  public void close() {
    db.close();
  }

  @Override
  public String toString() {
    return "KvStateMachine[" + db + "]";
  }

  /** A {@link KvDb.View} as Raft's snapshot (kv does not know raft's interface). */
  private record ViewSnapshot(KvDb.View view) implements Snapshot {
    @Override
    public long index() {
      return view.index();
    }

    @Override
    public long term() {
      return view.term();
    }

    @Override
    public void writeTo(OutputStream out) throws IOException {
      view.writeTo(out);
    }

    @Override
    public void close() {
      view.close();
    }
  }
}
