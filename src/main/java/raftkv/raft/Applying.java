package raftkv.raft;

import akka.actor.typed.ActorRef;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The apply side of a node: which committed entries went to the state machine's applier, which of
 * them this node proposed (and so must answer), what the applier confirmed, and when the state
 * machine is due for a snapshot. Plain class, owned by the node's actor.
 */
final class Applying {
  /** The most entries in one message to the applier. */
  static final int MAX_BATCH = 2048;

  private final ActorRef<Applier.Command> applier;
  /** Entries up to here were handed to the applier (they are applied, or will be, in order). */
  long sentIndex;
  /** Entries up to here are applied (the applier said so). */
  long appliedIndex;

  /** Writes proposed by this node as leader, by log index: answered when that index is applied. */
  private final Map<Long, PendingWrite> pendingWrites = new HashMap<>();

  record PendingWrite(long term, ActorRef<RaftNode.ClientReply> replyTo) {}

  // snapshots: the state machine's durable point
  /** The state machine is durable up to here (its last sync: the snapshot). */
  long snapshotIndex;
  long snapshotTerm;
  /** The state machine's size at its last sync. */
  long snapshotBytes;
  /** Log bytes handed to the applier since the sync before the last one was asked for. */
  long bytesSinceSnapshot;
  private long bytesAtSyncRequest;
  boolean syncInFlight;
  /** A received snapshot is being restored: nothing goes to the applier until it is done. */
  boolean restoring;
  /** Leadership to announce once the entries up to {@link #leadershipIndex} went to the applier. */
  private Applier.Leadership pendingLeadership;
  private long leadershipIndex;

  Applying(ActorRef<Applier.Command> applier, long appliedIndex, long appliedTerm) {
    this.applier = applier;
    this.sentIndex = appliedIndex;
    this.appliedIndex = appliedIndex;
    this.snapshotIndex = appliedIndex;
    this.snapshotTerm = appliedTerm;
  }

  ActorRef<Applier.Command> applier() {
    return applier;
  }

  /**
   * Remembers that this node proposed the entry at {@code index} in {@code term}; returns the
   * write that was proposed at that index before (in an earlier term, since cut from the log), if any.
   */
  PendingWrite expect(long index, long term, ActorRef<RaftNode.ClientReply> replyTo) {
    return pendingWrites.put(index, new PendingWrite(term, replyTo));
  }

  /** Hands every entry up to {@code upTo} (committed) to the applier, in order. */
  void applyUpTo(long upTo, RaftLog log) {
    if (restoring) {
      return;
    }
    while (sentIndex < upTo) {
      long from = sentIndex + 1;
      long to = Math.min(upTo, sentIndex + MAX_BATCH);
      List<StateMachine.Entry> entries = new ArrayList<>((int) (to - from + 1));
      List<ActorRef<RaftNode.ClientReply>> replies = null;
      for (long i = from; i <= to; i++) {
        LogEntry entry = log.entry(i);
        if (entry.payload() instanceof LogEntry.Command c) {
          entries.add(new StateMachine.Entry(i, entry.term(), c.time(), c.data()));
        } else {
          entries.add(new StateMachine.Entry(i, entry.term(), 0, null));
        }
        bytesSinceSnapshot += log.entryBytes(i);
        PendingWrite w = pendingWrites.isEmpty() ? null : pendingWrites.remove(i);
        if (w != null) {
          if (replies == null) {
            replies = new ArrayList<>((int) (to - from + 1));
            for (long k = from; k < i; k++) {
              replies.add(null);
            }
          }
          if (w.term() != entry.term()) {
            w.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE,
                "leadership changed before the write was committed; it was not applied"));
            replies.add(null);
          } else {
            replies.add(w.replyTo());
          }
        } else if (replies != null) {
          replies.add(null);
        }
      }
      applier.tell(new Applier.Apply(entries, replies));
      sentIndex = to;
    }
    flushLeadership();
  }

  /**
   * Tells the applier {@code leadership} once every entry up to {@code index} (the leader's no-op)
   * went to it, so that the state machine hears of its leadership after it applied the no-op,
   * never before (which it would while a snapshot that the node received as a follower is still
   * being restored).
   */
  void announceLeadershipAfter(long index, Applier.Leadership leadership) {
    pendingLeadership = leadership;
    leadershipIndex = index;
    flushLeadership();
  }

  /** Drops an announcement that has not reached the applier yet; true when there was one. */
  boolean cancelLeadershipAnnouncement() {
    boolean pending = pendingLeadership != null;
    pendingLeadership = null;
    return pending;
  }

  private void flushLeadership() {
    if (pendingLeadership != null && !restoring && sentIndex >= leadershipIndex) {
      applier.tell(pendingLeadership);
      pendingLeadership = null;
    }
  }

  /** Answers every write still waiting: it will not be answered by this node. */
  void failPending(RaftNode.ErrorKind kind, String why) {
    for (PendingWrite w : pendingWrites.values()) {
      w.replyTo().tell(new RaftNode.Failed(kind, why));
    }
    pendingWrites.clear();
  }

  /** Whether a snapshot is due: enough entries or enough log bytes applied since the last. */
  boolean snapshotDue(RaftSettings settings) {
    if (syncInFlight || restoring) {
      return false;
    }
    if (appliedIndex - snapshotIndex >= settings.snapshotEntries()) {
      return true;
    }
    long byBytes = Math.max(settings.snapshotMinLogBytes(), (long) (settings.snapshotLogRatio() * snapshotBytes));
    return appliedIndex > snapshotIndex && bytesSinceSnapshot > byBytes;
  }

  /** Asks the applier to make the state durable; {@link #onSynced} follows. */
  void requestSync(ActorRef<RaftNode.Command> node) {
    syncInFlight = true;
    bytesAtSyncRequest = bytesSinceSnapshot;
    applier.tell(new Applier.Sync(node));
  }

  void onSynced(long index, long term, long bytes) {
    syncInFlight = false;
    if (index >= snapshotIndex) {
      snapshotIndex = index;
      snapshotTerm = term;
      snapshotBytes = bytes;
      bytesSinceSnapshot = Math.max(0, bytesSinceSnapshot - bytesAtSyncRequest);
    }
  }

  /** A received snapshot replaced the state: everything up to {@code index} is applied and durable. */
  void onRestored(long index, long term, long bytes) {
    restoring = false;
    sentIndex = Math.max(sentIndex, index);
    appliedIndex = Math.max(appliedIndex, index);
    snapshotIndex = index;
    snapshotTerm = term;
    snapshotBytes = bytes;
    bytesSinceSnapshot = 0;
  }

  /**
   * Where the log may be compacted to: what the state machine holds durably, less the trailing
   * entries kept for followers a little behind, never past {@code keepFrom - 1} (a leader's
   * snapshot transfers in flight need the log after their snapshot).
   */
  long compactionPoint(RaftSettings settings, long keepFrom) {
    long point = Math.min(snapshotIndex - settings.trailingEntries(), keepFrom - 1);
    return Math.max(0, point);
  }
}
