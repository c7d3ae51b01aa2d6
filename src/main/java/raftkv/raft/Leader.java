package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The leader role (§5.3, §5.4, §8): appends a no-op for its term, batches proposals into one
 * durable write and one AppendEntries per follower, pipelines replication, commits by counting
 * entries of its own term, and serves linearizable reads through ReadIndex.
 */
final class Leader extends Role {

  /** A linearizable read (a Read, or a Backup) waiting for its read index to be confirmed and applied. */
  private record PendingRead(RaftNode.Command read, long readIndex, long afterSeq) {}

  private final Map<String, Progress> progress = new LinkedHashMap<>();
  private final List<RaftNode.Propose> queuedProposals = new ArrayList<>();
  private boolean proposalFlushScheduled;
  private final ArrayDeque<RaftNode.Command> readsBeforeNoOp = new ArrayDeque<>();
  private final ArrayDeque<PendingRead> readsAwaitingQuorum = new ArrayDeque<>();
  private final ArrayDeque<PendingRead> readsAwaitingApply = new ArrayDeque<>();
  private boolean readFlushScheduled;
  /**
   * The first seq of the heartbeat round that confirms reads, while it is unanswered (0: none).
   * One round at a time, as etcd's read loop does: the reads that arrive meanwhile share the next
   * round, which starts when this one is answered.
   */
  private long readRoundFirstSeq;
  private long seq;
  private long noOpIndex;
  /** The journaled index up to which entries have been offered to the followers. */
  private long replicatedUpTo;
  private final long startedNanos = System.nanoTime();
  /**
   * The most entry bytes one AppendEntries may carry: max-bytes-per-append less this leader's
   * header. Every message this leader sends, pipelined, probing or catching up, is sliced to it,
   * so none exceeds the transport's frame (RaftSettings checks the bounds fit together).
   */
  private final long appendBudget;
  /** The snapshot file followers that need one are sent (null: none yet, or being written). */
  private SnapshotFile.Header snapshotHeader;
  private java.nio.file.Path snapshotFile;
  private boolean snapshotFileWriting;
  /** Entries up to here had gone to the applier when the file was asked for: it holds at least those. */
  private long snapshotFileFrom;
  /** Whether the state machine was told of this leadership (once the no-op committed). */
  private boolean announced;

  Leader(RaftState state) {
    super(state);
    this.appendBudget = state.settings.appendBudget(state.self.id(), state.self.httpAddress());
  }

  @Override
  Behavior<RaftNode.Command> start() {
    s.role = "leader";
    s.leaderId = s.self.id();
    s.timers.cancel(RaftNode.Tick.ELECTION_TIMEOUT);
    long now = System.nanoTime();
    for (String id : s.peers.refs().keySet()) {
      progress.put(id, new Progress(s.log.lastIndex() + 1, now));
    }
    noOpIndex = s.log.lastIndex() + 1;
    s.appendLocal(new LogEntry(noOpIndex, s.currentTerm, new LogEntry.NoOp(s.currentTerm)));
    s.ctx.getLog().info("{} is leader of term {} (log up to {}, commit {})",
        s.self.id(), s.currentTerm, s.log.lastIndex(), s.commitIndex);
    s.timers.startTimerWithFixedDelay(RaftNode.Tick.HEARTBEAT, RaftNode.Tick.HEARTBEAT, s.settings.heartbeatInterval());
    broadcastHeartbeat(); // every follower starts probing: find where its log matches, now
    maybeCommit();
    return behavior();
  }

  @Override
  protected Behavior<RaftNode.Command> handle(RaftNode.Command message) {
    if (message instanceof RaftNode.AppendReply r) {
      return onAppendReply(r);
    } else if (message instanceof RaftNode.InstallSnapshotReply r) {
      onInstallSnapshotReply(r);
    } else if (message instanceof RaftNode.SnapshotFileReady f) {
      onSnapshotFileReady(f);
    } else if (message instanceof RaftNode.ChunkRead c) {
      onChunkRead(c);
    } else if (message instanceof RaftNode.InstallSnapshot is) {
      ActorRef<RaftNode.Command> to = s.peers.ref(is.leaderId());
      if (is.term() < s.currentTerm && to != null) {
        s.send(to, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), is.snapshotIndex(), 0, false));
      }
    } else if (message instanceof RaftNode.Propose p) {
      int bytes = p.command().length;
      if (bytes > s.settings.maxCommandBytes()) {
        // checked where it was proposed too; here for a node with other settings, so that no
        // entry exists that one AppendEntries could not carry
        p.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.TOO_LARGE, "the command is " + bytes
            + " bytes encoded, the limit is " + s.settings.maxCommandBytes() + " (raftkv.raft.max-command-bytes)"));
        return null;
      }
      queuedProposals.add(p);
      if (!proposalFlushScheduled) {
        proposalFlushScheduled = true;
        s.ctx.getSelf().tell(RaftNode.Tick.FLUSH_PROPOSALS);
      }
    } else if (message == RaftNode.Tick.FLUSH_PROPOSALS) {
      flushProposals();
    } else if (message instanceof RaftNode.Read r) {
      onRead(r);
    } else if (message instanceof RaftNode.Backup b) {
      onRead(b); // after a ReadIndex, like a read: the backup holds every write acknowledged before it
    } else if (message == RaftNode.Tick.FLUSH_READS) {
      readFlushScheduled = false;
      if (readRoundFirstSeq == 0) {
        startReadRound();
      }
    } else if (message == RaftNode.Tick.HEARTBEAT) {
      return onHeartbeatTick();
    } else if (message instanceof RaftNode.RequestVote rv) {
      onRequestVote(rv); // same term: already voted for itself
    } else if (message instanceof RaftNode.AppendEntries ae && ae.term() < s.currentTerm) {
      ActorRef<RaftNode.Command> to = s.peers.ref(ae.leaderId());
      if (to != null) {
        s.send(to, new RaftNode.AppendReply(s.currentTerm, ae.term(), s.self.id(), s.self.httpAddress(), false, 0,
            ae.prevLogIndex(), 0, -1, ae.seq()));
      }
    } else if (message instanceof RaftNode.AppendEntries ae) {
      // Election Safety (§5.2) makes a second leader in one term impossible
      throw new IllegalStateException("two leaders in term " + ae.term() + ": " + s.self.id() + " and " + ae.leaderId());
    }
    return null;
  }

  @Override
  protected void onStepDown() {
    failReads("leadership moved to a newer term");
    leave();
  }

  private void leave() {
    if (announced && !s.applying.cancelLeadershipAnnouncement()) {
      s.applying.applier().tell(new Applier.Leadership(s.currentTerm, false));
    }
  }

  // ---- writes ---------------------------------------------------------------------------------

  private void flushProposals() {
    proposalFlushScheduled = false;
    if (queuedProposals.isEmpty()) {
      return;
    }
    long first = s.log.lastIndex() + 1;
    long index = first;
    for (RaftNode.Propose p : queuedProposals) {
      s.log.append(new LogEntry(index, s.currentTerm, new LogEntry.Command(p.command())));
      Applying.PendingWrite replaced = s.applying.expect(index, s.currentTerm, p.replyTo());
      if (replaced != null) {
        // proposed at this index in an earlier term and since cut from this log; another leader may still commit it
        replaced.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.TIMEOUT,
            "leadership changed while the write was in flight; its outcome is unknown"));
      }
      index++;
    }
    queuedProposals.clear();
    s.noteLogWritten(first); // one journal batch for all of them
    maybeCommit(); // a single-node cluster commits on its own durable index
  }

  /**
   * One journal batch, one AppendEntries per follower: entries go to the followers when they go to
   * the leader's own journal (at once when it is idle, else with the next batch, which collects
   * everything proposed during the write in flight). The followers write in parallel with the
   * leader (§10.2.1), and under load each message carries as many entries as one fsync collects,
   * instead of the few that one mailbox run holds.
   */
  @Override
  protected void afterMessage() {
    long journaled = s.journaledIndex();
    if (journaled > replicatedUpTo) {
      replicatedUpTo = journaled;
      replicateAll();
    }
  }

  private void replicateAll() {
    for (Map.Entry<String, Progress> e : progress.entrySet()) {
      sendEntries(e.getKey(), e.getValue());
    }
  }

  /**
   * Sends what the follower lacks, up to what the leader's journal has been handed: one message
   * while probing, a window of them when matching.
   */
  private void sendEntries(String id, Progress p) {
    if (p.state != Progress.State.REPLICATE) {
      return; // the probe in flight, or the next heartbeat, will find where the logs match; or a snapshot
    }
    if (p.nextIndex <= s.log.snapshotIndex()) {
      needSnapshot(id, p);
      return;
    }
    long upTo = s.journaledIndex();
    while (p.nextIndex <= upTo
        && p.nextIndex - 1 - p.matchIndex < s.settings.maxInflightEntries()) {
      int count = (int) Math.min(s.settings.maxEntriesPerAppend(), upTo - p.nextIndex + 1);
      List<LogEntry> entries = s.log.slice(p.nextIndex, count, appendBudget);
      sendAppend(id, p, entries);
      p.nextIndex += entries.size();
    }
  }

  private void sendAppend(String id, Progress p, List<LogEntry> entries) {
    long prev = p.nextIndex - 1;
    long prevTerm = s.log.termAt(prev);
    if (prevTerm < 0) {
      throw new IllegalStateException("no term for index " + prev + " to replicate to " + id);
    }
    s.tellPeer(s.peers.ref(id), new RaftNode.AppendEntries(s.currentTerm, s.self.id(), s.self.httpAddress(),
        prev, prevTerm, entries, s.commitIndex, ++seq));
  }

  /**
   * One message to every follower: a probe with entries, a heartbeat that also checks the log, or
   * (for a follower receiving a snapshot) a heartbeat at the log's start, which keeps it from
   * starting an election between chunks and answers a ReadIndex round.
   */
  private void broadcastHeartbeat() {
    long now = System.nanoTime();
    for (Map.Entry<String, Progress> e : progress.entrySet()) {
      String id = e.getKey();
      Progress p = e.getValue();
      if (p.state != Progress.State.SNAPSHOT && p.nextIndex <= s.log.snapshotIndex()) {
        needSnapshot(id, p);
      }
      switch (p.state) {
        case PROBE -> sendAppend(id, p, s.log.slice(p.nextIndex, s.settings.maxEntriesPerAppend(), appendBudget));
        case REPLICATE -> sendAppend(id, p, List.of());
        case SNAPSHOT -> {
          s.tellPeer(s.peers.ref(id), new RaftNode.AppendEntries(s.currentTerm, s.self.id(), s.self.httpAddress(),
              s.log.snapshotIndex(), s.log.snapshotTerm(), List.of(), s.commitIndex, ++seq));
          if (p.transferring() && p.chunkInFlight && now - p.chunkSentNanos > s.settings.electionTimeout().toNanos()) {
            // the chunk or its answer was lost: send it again
            p.chunkInFlight = false;
            sendChunk(id, p);
          } else if (!p.transferring()) {
            startTransfer(id, p);
          }
        }
      }
    }
  }

  // ---- snapshots for followers whose next entry is compacted away --------------------------------

  private void needSnapshot(String id, Progress p) {
    if (p.state == Progress.State.SNAPSHOT) {
      return;
    }
    s.ctx.getLog().info("{} needs entries from {}, compacted away (log starts at {}): sending it a snapshot",
        id, p.nextIndex, s.log.firstIndex());
    p.becomeSnapshot();
    startTransfer(id, p);
  }

  private int transfersInFlight() {
    int n = 0;
    for (Progress p : progress.values()) {
      if (p.transferring()) {
        n++;
      }
    }
    return n;
  }

  /** Starts the transfer when a usable file and a transfer slot are there; else asks for a file or waits. */
  private void startTransfer(String id, Progress p) {
    if (snapshotFile == null || snapshotHeader.index() < s.log.snapshotIndex()
        || !java.nio.file.Files.exists(snapshotFile)) {
      if (!snapshotFileWriting) {
        snapshotFileWriting = true;
        snapshotFileFrom = s.applying.sentIndex;
        s.applying.applier().tell(new Applier.WriteSnapshotFile(s.snapshotDir, s.peers.voters(), s.ctx.getSelf()));
      }
      return; // onSnapshotFileReady starts it
    }
    if (transfersInFlight() >= s.settings.maxSnapshotTransfers()) {
      return; // a later heartbeat tries again
    }
    p.startTransfer(snapshotFile, snapshotHeader.index(), snapshotHeader.term());
    sendChunk(id, p);
  }

  private void onSnapshotFileReady(RaftNode.SnapshotFileReady f) {
    if (!snapshotFileWriting) {
      return; // asked for by an earlier leadership or incarnation of this node
    }
    snapshotFileWriting = false;
    if (f.error() != null) {
      s.ctx.getLog().error("{} could not write a snapshot file for followers: {}", s.self.id(), f.error());
      return; // the next heartbeat asks again
    }
    snapshotHeader = f.header();
    snapshotFile = f.file();
    s.ctx.getLog().info("{} wrote a snapshot at index {} ({} bytes) for followers", s.self.id(), f.header().index(),
        f.bytes());
    progress.forEach((id, p) -> {
      if (p.state == Progress.State.SNAPSHOT && !p.transferring()) {
        startTransfer(id, p);
      }
    });
  }

  /** Reads the chunk at the progress' offset off the actor; {@link #onChunkRead} sends it. */
  private void sendChunk(String id, Progress p) {
    p.chunkInFlight = true;
    p.chunkSentNanos = System.nanoTime();
    java.nio.file.Path file = p.snapshotFile;
    long offset = p.offset;
    int max = s.settings.snapshotChunkBytes();
    s.ctx.pipeToSelf(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        byte[] data = SnapshotFile.readChunk(file, offset, max);
        boolean last = offset + data.length >= java.nio.file.Files.size(file);
        return new RaftNode.ChunkRead(id, file, offset, data, last, null);
      } catch (Exception e) {
        return new RaftNode.ChunkRead(id, file, offset, null, false, Applier.describe(e));
      }
    }, s.blocking), (read, failure) -> read != null ? read
        : new RaftNode.ChunkRead(id, file, offset, null, false, Applier.describe(failure)));
  }

  private void onChunkRead(RaftNode.ChunkRead c) {
    Progress p = progress.get(c.followerId());
    if (p == null || !p.transferring() || !c.file().equals(p.snapshotFile) || c.offset() != p.offset) {
      return; // the transfer moved on
    }
    if (c.error() != null) {
      s.ctx.getLog().warn("{} could not read snapshot file {}: {}; starting over", s.self.id(), c.file(), c.error());
      snapshotFile = null;
      p.becomeSnapshot(); // the next heartbeat asks for a new file
      return;
    }
    p.chunkSentNanos = System.nanoTime();
    s.tellPeer(s.peers.ref(c.followerId()), new RaftNode.InstallSnapshot(s.currentTerm, s.self.id(), s.self.httpAddress(),
        p.snapshotIndex, p.snapshotTerm, c.offset(), c.data(), c.last()));
  }

  private void onInstallSnapshotReply(RaftNode.InstallSnapshotReply r) {
    Progress p = progress.get(r.followerId());
    if (p == null || r.term() != s.currentTerm) {
      return;
    }
    p.lastReplyNanos = System.nanoTime();
    if (!p.transferring() || r.snapshotIndex() != p.snapshotIndex) {
      return; // about a transfer that is over
    }
    if (r.installed()) {
      s.ctx.getLog().info("{} installed the snapshot at {}: replicating from {}", r.followerId(), r.snapshotIndex(),
          r.snapshotIndex() + 1);
      p.acknowledged(r.snapshotIndex());
      p.becomeProbe(r.snapshotIndex() + 1);
      maybeCommit();
      sendAppend(r.followerId(), p, s.log.slice(p.nextIndex, s.settings.maxEntriesPerAppend(), appendBudget));
      progress.forEach((id, other) -> {
        if (other.state == Progress.State.SNAPSHOT && !other.transferring()) {
          startTransfer(id, other); // a slot is free
        }
      });
      return;
    }
    p.offset = r.nextOffset();
    p.chunkInFlight = false;
    sendChunk(r.followerId(), p);
  }

  /** Compaction must leave the entries after every snapshot being sent, for those followers to continue from. */
  @Override
  protected long keepFrom() {
    long keep = Long.MAX_VALUE;
    for (Progress p : progress.values()) {
      if (p.transferring()) {
        keep = Math.min(keep, p.snapshotIndex + 1);
      }
    }
    if (snapshotFileWriting) {
      keep = Math.min(keep, snapshotFileFrom + 1); // the file being written will be at this index or later
    }
    return keep;
  }

  private Behavior<RaftNode.Command> onHeartbeatTick() {
    long now = System.nanoTime();
    if (!hasQuorumContact(now) && now - startedNanos > s.settings.electionTimeout().toNanos()) {
      s.ctx.getLog().info("{} lost contact with a majority in term {}: stepping down", s.self.id(), s.currentTerm);
      failReads("leadership lost");
      leave();
      s.leaderId = null;
      return new Follower(s, null).start();
    }
    broadcastHeartbeat();
    return null;
  }

  private boolean hasQuorumContact(long now) {
    int inContact = 1;
    for (Progress p : progress.values()) {
      if (now - p.lastReplyNanos < s.settings.electionTimeout().toNanos()) {
        inContact++;
      }
    }
    return inContact >= s.quorumSize();
  }

  @Override
  protected boolean leaderIsAlive() {
    return hasQuorumContact(System.nanoTime());
  }

  private Behavior<RaftNode.Command> onAppendReply(RaftNode.AppendReply r) {
    Progress p = progress.get(r.followerId());

    if (p == null || r.term() != s.currentTerm || r.requestTerm() != s.currentTerm) {
      return null; // stale: a reply to a message of an earlier term says nothing about this one
    }
    p.lastReplyNanos = System.nanoTime();
    p.ackedSeq = Math.max(p.ackedSeq, r.seq());
    if (r.followerHttp() != null) {
      s.peers.noteHttp(r.followerId(), r.followerHttp());
    }
    if (r.success()) {
      p.acknowledged(r.matchIndex());
      if (p.state == Progress.State.SNAPSHOT && p.matchIndex < s.log.snapshotIndex()) {
        // a heartbeat at the log's start matched, yet the follower lacks entries before it: keep sending
      } else if (p.state != Progress.State.REPLICATE) {
        p.becomeReplicate(); // the logs match up to matchIndex: pipeline from here
      }
      maybeCommit();
      sendEntries(r.followerId(), p);
    } else if (p.state != Progress.State.SNAPSHOT) {
      onReject(r, p);
    }
    confirmReads();
    return null;
  }

  /** §5.3 with the conflict hint: move nextIndex back a whole term at a time, then probe. */
  private void onReject(RaftNode.AppendReply r, Progress p) {
    if (r.prevLogIndex() < p.matchIndex || (p.state == Progress.State.PROBE && r.prevLogIndex() != p.nextIndex - 1)) {
      return; // about a message older than what we already know
    }
    long next;
    if (r.conflictTerm() > 0) {
      long last = s.log.lastIndexOfTerm(r.conflictTerm());
      next = last > 0 ? last + 1 : r.conflictIndex();
    } else {
      next = r.conflictIndex();
    }
    next = Math.max(p.matchIndex + 1, Math.min(next, s.log.lastIndex() + 1));
    s.ctx.getLog().debug("{} rejected entries after {}: retrying from {}", r.followerId(), r.prevLogIndex(), next);
    p.becomeProbe(next);
    if (p.nextIndex <= s.log.snapshotIndex()) {
      needSnapshot(r.followerId(), p);
      return;
    }
    sendAppend(r.followerId(), p, s.log.slice(p.nextIndex, s.settings.maxEntriesPerAppend(), appendBudget));
  }

  private void maybeCommit() {
    long[] match = new long[s.peers.voters().size()];
    int i = 0;
    for (Peer peer : s.peers.voters()) {
      Progress p = progress.get(peer.id());
      match[i++] = peer.id().equals(s.self.id()) ? s.durableIndex() : (p == null ? 0 : p.matchIndex);
    }
    long newCommit = Quorum.commitIndex(match, s.commitIndex, s.currentTerm, s.log);
    if (newCommit > s.commitIndex) {
      s.commitIndex = newCommit;
      s.applyCommitted();
      if (!announced && s.commitIndex >= noOpIndex) {
        announced = true; // after its no-op: the state machine's leader-only work may start
        s.applying.announceLeadershipAfter(noOpIndex, new Applier.Leadership(s.currentTerm, true));
      }
      if (!readsBeforeNoOp.isEmpty() && s.commitIndex >= noOpIndex) {
        while (!readsBeforeNoOp.isEmpty()) {
          onRead(readsBeforeNoOp.pollFirst());
        }
      }
      serveAppliedReads();
    }
  }

  // ---- linearizable reads (ReadIndex, §6.4 of the dissertation) ------------------------------

  private void onRead(RaftNode.Command r) {
    if (s.commitIndex < noOpIndex) {
      readsBeforeNoOp.addLast(r); // the commit index of earlier terms is not known until the no-op commits
      return;
    }
    readsAwaitingQuorum.addLast(new PendingRead(r, s.commitIndex, seq));
    if (progress.isEmpty()) {
      confirmReads();
    } else if (!readFlushScheduled && readRoundFirstSeq == 0) {
      readFlushScheduled = true; // every read queued until then shares one heartbeat round
      s.ctx.getSelf().tell(RaftNode.Tick.FLUSH_READS);
    }
  }

  /** Releases reads whose heartbeat round a majority has answered in this term. */
  private void confirmReads() {
    if (readsAwaitingQuorum.isEmpty() && readRoundFirstSeq == 0) {
      return; // (a round still marked in flight must be cleared even when no read waits on it)
    }
    long[] acked = new long[s.peers.voters().size()];
    int i = 0;
    for (Peer peer : s.peers.voters()) {
      Progress p = progress.get(peer.id());
      acked[i++] = peer.id().equals(s.self.id()) ? Long.MAX_VALUE : (p == null ? 0 : p.ackedSeq);
    }
    long confirmed = Quorum.agreed(acked);
    while (!readsAwaitingQuorum.isEmpty() && readsAwaitingQuorum.peekFirst().afterSeq() < confirmed) {
      readsAwaitingApply.addLast(readsAwaitingQuorum.pollFirst());
    }
    if (readRoundFirstSeq != 0 && confirmed >= readRoundFirstSeq) {
      readRoundFirstSeq = 0; // answered by a majority: the reads that waited meanwhile go next
      if (!readsAwaitingQuorum.isEmpty()) {
        startReadRound();
      }
    }
    serveAppliedReads();
  }

  /** A heartbeat to every follower whose echoed seq confirms every read queued so far. */
  private void startReadRound() {
    readRoundFirstSeq = seq + 1;
    broadcastHeartbeat();
  }

  /**
   * Hands each confirmed read whose read index went to the applier to it: the applier answers it
   * after everything sent before it, so from a state that holds the read index.
   */
  private void serveAppliedReads() {
    while (!readsAwaitingApply.isEmpty() && readsAwaitingApply.peekFirst().readIndex() <= s.applying.sentIndex) {
      PendingRead pr = readsAwaitingApply.pollFirst();
      if (pr.read() instanceof RaftNode.Read r) {
        s.applying.applier().tell(new Applier.Query(r.query(), r.replyTo()));
      } else if (pr.read() instanceof RaftNode.Backup b) {
        s.applying.applier().tell(new Applier.StreamSnapshot(s.peers.voters(), b.out(), b.done()));
      }
    }
  }

  @Override
  protected Behavior<RaftNode.Command> afterPersisted() {
    maybeCommit();
    serveAppliedReads(); // what was committed may only now be durable here, and so sent to the applier
    return null;
  }

  private void failReads(String why) {
    RaftNode.Failed failed = new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; retry the read");
    readsBeforeNoOp.forEach(r -> fail(r, failed));
    readsAwaitingQuorum.forEach(r -> fail(r.read(), failed));
    readsAwaitingApply.forEach(r -> fail(r.read(), failed));
    readsBeforeNoOp.clear();
    readsAwaitingQuorum.clear();
    readsAwaitingApply.clear();
    for (RaftNode.Propose p : queuedProposals) {
      p.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; the write was not applied"));
    }
    queuedProposals.clear();
  }

  private static void fail(RaftNode.Command read, RaftNode.Failed failed) {
    if (read instanceof RaftNode.Read r) {
      r.replyTo().tell(failed);
    } else if (read instanceof RaftNode.Backup b) {
      b.done().completeExceptionally(new RaftNode.NotLeader(null, failed.message()));
    }
  }

  @Override
  protected Map<String, long[]> leaderView() {
    Map<String, long[]> view = new HashMap<>();
    long now = System.nanoTime();
    view.put(s.self.id(), new long[] {s.durableIndex(), 0});
    progress.forEach((id, p) -> view.put(id, new long[] {p.matchIndex, (now - p.lastReplyNanos) / 1_000_000}));
    return view;
  }
}
