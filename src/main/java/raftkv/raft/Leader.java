package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import raftkv.client.RaftKvException;

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

  /** Replication progress of one follower (§5.3's nextIndex and matchIndex). */
  static final class Progress {
    long nextIndex;
    long matchIndex;
    /** Probing: one AppendEntries at a time until the follower's log is found to match. */
    boolean probing = true;
    long lastReplyNanos;
    /** Highest AppendEntries seq echoed back in this term: the ReadIndex confirmation. */
    long ackedSeq;

    Progress(long nextIndex, long now) {
      this.nextIndex = nextIndex;
      this.lastReplyNanos = now;
    }
  }

  private record PendingRead(RaftNode.Read read, long readIndex, long afterSeq) {}

  private final Map<String, Progress> progress = new LinkedHashMap<>();
  private final List<RaftNode.Propose> queuedProposals = new ArrayList<>();
  private boolean proposalFlushScheduled;
  private final ArrayDeque<RaftNode.Read> readsBeforeNoOp = new ArrayDeque<>();
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
    for (String id : s.peerRefs.keySet()) {
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
    } else if (message instanceof RaftNode.Propose p) {
      int bytes = RaftSerializer.commandBytes(p.command());
      if (bytes > s.settings.maxCommandBytes()) {
        // checked where it was proposed too; here for a node with other settings, so that no
        // entry exists that one AppendEntries could not carry
        p.replyTo().tell(new RaftNode.Failed(RaftKvException.Kind.TOO_LARGE, "the command is " + bytes
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
      ActorRef<RaftNode.Command> to = s.peerRefs.get(ae.leaderId());
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
  }

  @Override
  protected Behavior<RaftNode.Command> afterPersisted() {
    maybeCommit();
    return null;
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
      s.log.append(new LogEntry(index, s.currentTerm, new LogEntry.ClientCommand(p.command())));
      RaftState.PendingWrite replaced = s.pendingWrites.put(index, new RaftState.PendingWrite(s.currentTerm, p.replyTo()));
      if (replaced != null) {
        // proposed at this index in an earlier term and since cut from this log; another leader may still commit it
        replaced.replyTo().tell(new RaftNode.Failed(RaftKvException.Kind.TIMEOUT,
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
    if (p.probing) {
      return; // the probe in flight, or the next heartbeat, will find where the logs match
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
    s.peerRefs.get(id).tell(new RaftNode.AppendEntries(s.currentTerm, s.self.id(), s.self.httpAddress(),
        prev, prevTerm, entries, s.commitIndex, ++seq));
  }

  /** One message to every follower: a probe with entries, or a heartbeat that also checks the log. */
  private void broadcastHeartbeat() {
    for (Map.Entry<String, Progress> e : progress.entrySet()) {
      Progress p = e.getValue();
      if (p.probing) {
        sendAppend(e.getKey(), p, s.log.slice(p.nextIndex, s.settings.maxEntriesPerAppend(), appendBudget));
      } else {
        sendAppend(e.getKey(), p, List.of());
      }
    }
  }

  private Behavior<RaftNode.Command> onHeartbeatTick() {
    long now = System.nanoTime();
    if (!hasQuorumContact(now) && now - startedNanos > s.settings.electionTimeout().toNanos()) {
      s.ctx.getLog().info("{} lost contact with a majority in term {}: stepping down", s.self.id(), s.currentTerm);
      failReads("leadership lost");
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
      s.httpAddresses.put(r.followerId(), r.followerHttp());
    }
    if (r.success()) {
      if (r.matchIndex() > p.matchIndex) {
        p.matchIndex = r.matchIndex();
      }
      p.probing = false; // the logs match up to matchIndex: pipeline from here
      p.nextIndex = Math.max(p.nextIndex, p.matchIndex + 1);
      maybeCommit();
      sendEntries(r.followerId(), p);
    } else {
      onReject(r, p);
    }
    confirmReads();
    return null;
  }

  /** §5.3 with the conflict hint: move nextIndex back a whole term at a time, then probe. */
  private void onReject(RaftNode.AppendReply r, Progress p) {
    if (r.prevLogIndex() < p.matchIndex || (p.probing && r.prevLogIndex() != p.nextIndex - 1)) {
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
    p.nextIndex = next;
    p.probing = true;
    sendAppend(r.followerId(), p, s.log.slice(next, s.settings.maxEntriesPerAppend(), appendBudget));
  }

  private void maybeCommit() {
    long[] match = new long[s.voters.size()];
    int i = 0;
    for (Peer peer : s.voters) {
      Progress p = progress.get(peer.id());
      match[i++] = peer.id().equals(s.self.id()) ? s.durableIndex : (p == null ? 0 : p.matchIndex);
    }
    long newCommit = Quorum.commitIndex(match, s.commitIndex, s.currentTerm, s.log);
    if (newCommit > s.commitIndex) {
      s.commitIndex = newCommit;
      s.applyCommitted();
      if (!readsBeforeNoOp.isEmpty() && s.commitIndex >= noOpIndex) {
        while (!readsBeforeNoOp.isEmpty()) {
          onRead(readsBeforeNoOp.pollFirst());
        }
      }
      serveAppliedReads();
    }
  }

  // ---- linearizable reads (ReadIndex, §6.4 of the dissertation) ------------------------------

  private void onRead(RaftNode.Read r) {
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
    long[] acked = new long[s.voters.size()];
    int i = 0;
    for (Peer peer : s.voters) {
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

  private void serveAppliedReads() {
    while (!readsAwaitingApply.isEmpty() && readsAwaitingApply.peekFirst().readIndex() <= s.lastApplied) {
      PendingRead pr = readsAwaitingApply.pollFirst();
      s.reply(pr.read().replyTo(), s.store.query(pr.read().query()), false);
    }
  }

  private void failReads(String why) {
    RaftNode.Failed failed = new RaftNode.Failed(RaftKvException.Kind.UNAVAILABLE, why + "; retry the read");
    readsBeforeNoOp.forEach(r -> r.replyTo().tell(failed));
    readsAwaitingQuorum.forEach(r -> r.read().replyTo().tell(failed));
    readsAwaitingApply.forEach(r -> r.read().replyTo().tell(failed));
    readsBeforeNoOp.clear();
    readsAwaitingQuorum.clear();
    readsAwaitingApply.clear();
    for (RaftNode.Propose p : queuedProposals) {
      p.replyTo().tell(new RaftNode.Failed(RaftKvException.Kind.UNAVAILABLE, why + "; the write was not applied"));
    }
    queuedProposals.clear();
  }

  @Override
  protected Map<String, long[]> leaderView() {
    Map<String, long[]> view = new HashMap<>();
    long now = System.nanoTime();
    view.put(s.self.id(), new long[] {s.durableIndex, 0});
    progress.forEach((id, p) -> view.put(id, new long[] {p.matchIndex, (now - p.lastReplyNanos) / 1_000_000}));
    return view;
  }
}
