package raftkv.raft;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

/**
 * What Raft replicates into: the seam between consensus and the application (DESIGN.md §2, like
 * hashicorp/raft's FSM or Ratis' StateMachine). Raft knows commands, queries and replies only as
 * bytes; the implementation gives them meaning.
 *
 * <p>Threading: one thread at a time calls every method except the ones of a {@link Snapshot}
 * (the node's applier actor, never the Raft actor), so an implementation needs no locks. A
 * {@link Snapshot} is read from another thread while apply goes on.
 *
 * <p>Durability: {@link #apply} makes its changes visible; {@link #sync} makes everything applied
 * so far survive a crash of the machine. Raft compacts its log only up to what {@link #sync}
 * made durable, and a restart replays the log from {@link #appliedIndex()} on.
 */
public interface StateMachine extends AutoCloseable {

  /**
   * One committed log entry: {@code command} is null for an entry that is not a client's (a leader's
   * no-op). {@code time} is the leader's clock stamped into the entry (ms since the epoch, 0 for
   * none): the only clock a state machine may read (DESIGN.md §5), the same on every node.
   */
  record Entry(long index, long term, long time, byte[] command) {
    /** An entry with no time. */
    public Entry(long index, long term, byte[] command) {
      this(index, term, 0, command);
    }
  }

  /**
   * The outcome of one entry: the reply for its proposer, or the reason it was refused. A
   * refusal is deterministic (every node refuses the same entry the same way) and changes nothing.
   */
  record Result(byte[] reply, String error) {
    public static Result ok(byte[] reply) {
      return new Result(reply, null);
    }

    public static Result refused(String error) {
      return new Result(null, error);
    }
  }

  /** The index of the last entry applied: 0 for an empty state machine. */
  long appliedIndex();

  /** The term of the entry at {@link #appliedIndex()}: 0 for an empty state machine. */
  long appliedTerm();

  /**
   * Applies committed entries, in log order, each exactly once: the first follows {@link
   * #appliedIndex()}. Deterministic: its only inputs are the entries. Returns one result per entry
   * (for a no-op, {@code Result.ok(null)}).
   */
  List<Result> apply(List<Entry> entries);

  /** Answers a read from the applied state; it changes nothing. Throws IllegalArgumentException for a malformed query. */
  byte[] query(byte[] query);

  /** Makes everything applied so far durable (an fsync); returns the index it made durable. */
  long sync();

  /**
   * A point-in-time view at {@link #appliedIndex()}, cheap to take: {@link Snapshot#writeTo} may
   * run on another thread while apply goes on. The caller closes it.
   */
  Snapshot snapshot();

  /**
   * Replaces the whole state with what {@link Snapshot#writeTo} wrote (a received snapshot, or a
   * backup), durably; afterwards {@link #appliedIndex()} is the snapshot's. Throws
   * IllegalArgumentException with a one-line reason, keeping the old state, when the bytes are not
   * such a snapshot.
   */
  void restore(InputStream in) throws IOException;

  /** The state's size on disk (or in memory), in bytes, for status and the snapshot triggers. */
  long sizeBytes();

  /**
   * Leadership notifications: this node became leader of {@code term} (its no-op is committed and
   * applied), or stopped being leader. Leader-only work (lease expiry, say) hangs off these.
   */
  default void leadershipChanged(long term, boolean leader) {}

  @Override
  void close();

  /** A consistent view of the state at one index. */
  interface Snapshot extends AutoCloseable {
    long index();

    long term();

    /** Writes the whole view; the bytes are what {@link StateMachine#restore} reads. */
    void writeTo(OutputStream out) throws IOException;

    @Override
    void close();
  }
}
