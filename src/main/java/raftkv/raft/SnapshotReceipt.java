package raftkv.raft;

import java.nio.file.Path;

/**
 * A follower's snapshot transfer in progress: which leader and snapshot it is, where the chunks go,
 * and the offset the next chunk must have. Plain class, owned by the node's actor; a new term or a
 * different snapshot starts a new one (the leader then starts from offset 0).
 */
final class SnapshotReceipt {
  final long term;
  final String leaderId;
  final long index;
  final long snapshotTerm;
  final Path tmp;
  long expectedOffset;
  /** A chunk is being written (off the actor); chunks that arrive meanwhile are dropped and sent again. */
  boolean writing;
  /** The file is complete and the applier is restoring it. */
  boolean restoring;
  /** The configuration the complete file carries (its header's), for the log once it is restored. */
  Membership membership;

  SnapshotReceipt(long term, String leaderId, long index, long snapshotTerm, Path tmp) {
    this.term = term;
    this.leaderId = leaderId;
    this.index = index;
    this.snapshotTerm = snapshotTerm;
    this.tmp = tmp;
  }

  boolean sameTransfer(RaftNode.InstallSnapshot m) {
    return m.term() == term && m.leaderId().equals(leaderId) && m.snapshotIndex() == index
        && m.snapshotTerm() == snapshotTerm;
  }
}
