package raftkv.raft;

import java.nio.file.Path;

/**
 * What a leader knows of one follower's log (§5.3's nextIndex and matchIndex), in one of three
 * states, after etcd's tracker/progress.go:
 * <ul>
 *   <li>{@link State#PROBE}: where the logs match is not known; one AppendEntries at a time (the
 *       probe, or the next heartbeat), moving nextIndex back on each reject.</li>
 *   <li>{@link State#REPLICATE}: the logs match up to matchIndex; entries are pipelined, nextIndex
 *       runs ahead of what is acknowledged.</li>
 *   <li>{@link State#SNAPSHOT}: the entries the follower needs are compacted away; it receives a
 *       snapshot file chunk by chunk (one chunk in flight) and no entries until it is installed.</li>
 * </ul>
 * Plain class, owned by the leader's actor.
 */
final class Progress {
  enum State { PROBE, REPLICATE, SNAPSHOT }

  State state = State.PROBE;
  long nextIndex;
  long matchIndex;
  long lastReplyNanos;
  /** Highest AppendEntries seq echoed back in this term: the ReadIndex confirmation. */
  long ackedSeq;

  // SNAPSHOT state: the transfer
  /** The snapshot being sent (0: waiting for a file or a transfer slot). */
  long snapshotIndex;
  long snapshotTerm;
  Path snapshotFile;
  /** The offset of the chunk in flight, or of the next one to send. */
  long offset;
  /** A chunk is being read or is on its way; the next waits for its reply. */
  boolean chunkInFlight;
  long chunkSentNanos;

  Progress(long nextIndex, long now) {
    this.nextIndex = nextIndex;
    this.lastReplyNanos = now;
  }

  /**
   * Whether a learner with this progress may become a voter: its log matches the leader's within
   * {@code maxLag} entries of the leader's last index, and no snapshot is on its way to it (a voter
   * that is far behind would leave the cluster one voter short of its new, larger quorum).
   */
  boolean readyToPromote(long leaderLastIndex, long maxLag) {
    return state != State.SNAPSHOT && !transferring() && matchIndex >= leaderLastIndex - maxLag;
  }

  /** The logs match up to {@code match} (a success reply): record it; true when it moved. */
  boolean acknowledged(long match) {
    boolean moved = match > matchIndex;
    if (moved) {
      matchIndex = match;
    }
    nextIndex = Math.max(nextIndex, matchIndex + 1);
    return moved;
  }

  /** PROBE → REPLICATE on a success reply; from SNAPSHOT only once the follower's log covers what it missed. */
  void becomeReplicate() {
    state = State.REPLICATE;
    clearTransfer();
    nextIndex = Math.max(nextIndex, matchIndex + 1);
  }

  /** Any state → PROBE (a reject, or a snapshot that was installed or failed): send from {@code next}. */
  void becomeProbe(long next) {
    state = State.PROBE;
    clearTransfer();
    nextIndex = Math.max(matchIndex + 1, next);
  }

  /** The follower needs entries before the leader's log start: a snapshot, once a file and a slot are there. */
  void becomeSnapshot() {
    state = State.SNAPSHOT;
    clearTransfer();
  }

  /** Starts sending {@code file}, a snapshot at {@code index}/{@code term}, from its first byte. */
  void startTransfer(Path file, long index, long term) {
    snapshotFile = file;
    snapshotIndex = index;
    snapshotTerm = term;
    offset = 0;
    chunkInFlight = false;
  }

  boolean transferring() {
    return state == State.SNAPSHOT && snapshotFile != null;
  }

  private void clearTransfer() {
    snapshotFile = null;
    snapshotIndex = 0;
    snapshotTerm = 0;
    offset = 0;
    chunkInFlight = false;
  }

  @Override
  public String toString() {
    return state + "[next=" + nextIndex + ", match=" + matchIndex + (transferring() ? ", snapshot=" + snapshotIndex
        + "@" + offset : "") + "]";
  }
}
