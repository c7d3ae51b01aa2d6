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
    selfAddress = selfAddress();
    reconcileProgress();
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
    } else if (message instanceof RaftNode.Propose p && transferTo != null) {
      p.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, "leadership is being handed to "
          + transferTo + "; the write was not applied, retry shortly"));
    } else if ((message instanceof RaftNode.ChangeMembership || message instanceof RaftNode.TransferLeadership)
        && s.commitIndex < noOpIndex) {
      requestsBeforeNoOp.addLast(message); // (dissertation §4.1's fix: no change before the leader's own entry commits)
    } else if (message instanceof RaftNode.ChangeMembership c) {
      onChangeMembership(c);
    } else if (message instanceof RaftNode.TransferLeadership t) {
      onTransferLeadership(t);
    } else if (message == RaftNode.Tick.TRANSFER_TIMEOUT) {
      abortTransfer("it did not complete within " + s.settings.electionTimeout().toMillis() + " ms (the election timeout)");
    } else if (message instanceof RaftNode.TimeoutNow) {
      // a leader of an earlier term handing over: this node leads already
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
    handTransferOver();
    leave();
  }

  // ---- membership changes (DESIGN.md §7, dissertation §4.1: one server at a time) --------------

  /** Membership changes and transfers that came before this leader's no-op committed: handled once it has. */
  private final ArrayDeque<RaftNode.Command> requestsBeforeNoOp = new ArrayDeque<>();

  private void handleRequestsBeforeNoOp() {
    while (!requestsBeforeNoOp.isEmpty()) {
      RaftNode.Command r = requestsBeforeNoOp.pollFirst();
      if (r instanceof RaftNode.ChangeMembership c) {
        onChangeMembership(c);
      } else if (r instanceof RaftNode.TransferLeadership t) {
        onTransferLeadership(t);
      }
    }
  }

  /** The change awaiting its commit, and who asked: answered once it commits (0: none). */
  private long changeIndex;
  private ActorRef<RaftNode.ClientReply> changeReplyTo;

  /**
   * Members to replicate to: every member of the configuration in effect but this node, and while
   * that configuration is not committed, those of the one before it too (a member being removed
   * hears of its removal, and the old quorum still hears from this leader).
   */
  private java.util.Set<String> replicaIds() {
    java.util.Set<String> ids = new java.util.LinkedHashSet<>();
    for (Membership.Member m : s.membership().members()) {
      ids.add(m.id());
    }
    long at = s.log.membershipIndex();
    if (at > s.commitIndex && at > s.log.snapshotIndex()) {
      for (Membership.Member m : s.log.membershipAt(at - 1).members()) {
        ids.add(m.id());
      }
    }
    ids.remove(s.self.id());
    return ids;
  }

  /** Progress for each member replicated to, new ones probing from the end of the log; the others' dropped. */
  private void reconcileProgress() {
    java.util.Set<String> ids = replicaIds();
    progress.keySet().removeIf(id -> !ids.contains(id));
    long now = System.nanoTime();
    for (String id : ids) {
      if (!progress.containsKey(id) && s.peers.ref(id) != null) {
        Progress p = new Progress(s.log.lastIndex() + 1, now);
        progress.put(id, p);
        if (s.role.equals("leader") && noOpIndex != 0) {
          sendAppend(id, p, List.of()); // a probe now, rather than at the next heartbeat
        }
      }
    }
  }

  @Override
  protected Behavior<RaftNode.Command> onMembershipChanged() {
    reconcileProgress();
    return null;
  }

  private void onChangeMembership(RaftNode.ChangeMembership c) {
    RaftNode.Failed refused = refuseChange(c.change());
    if (refused != null) {
      c.replyTo().tell(refused);
      return;
    }
    Membership current = s.membership();
    if (c.change() instanceof RaftNode.RemoveMember r && r.id().equals(s.self.id()) && current.isVoter(r.id())) {
      String target = caughtUpVoter();
      if (target != null) {
        // hand leadership over first; the new leader then removes this node (dissertation §3.10)
        s.ctx.getLog().info("{} is asked to remove itself: handing leadership to {} first", s.self.id(), target);
        startTransfer(target, null, c);
        return;
      }
    }
    Membership next;
    if (c.change() instanceof RaftNode.AddMember a) {
      next = current.with(new Membership.Member(a.id(), a.host(), a.port(), a.httpAddress(), !a.learner()));
    } else if (c.change() instanceof RaftNode.RemoveMember r) {
      next = current.without(r.id());
    } else {
      next = current.promoted(((RaftNode.PromoteMember) c.change()).id());
    }
    // the HTTP addresses the leader learned (bootstrap members have none in the configuration) go
    // with it, so that every member, a new one too, can name every member's HTTP address
    next = next.withHttpAddresses(s.peers::http);
    long index = s.log.lastIndex() + 1;
    s.appendLocal(new LogEntry(index, s.currentTerm, new LogEntry.Config(next)));
    changeIndex = index;
    changeReplyTo = c.replyTo();
    s.ctx.getLog().info("{} proposes configuration at index {}: {} ({})", s.self.id(), index, next.describe(),
        c.change());
    s.syncMembership(); // in effect on append (DESIGN.md §7)
    reconcileProgress();
    maybeCommit();
  }

  /** Why {@code change} cannot be made now (nothing is changed then), or null. */
  private RaftNode.Failed refuseChange(RaftNode.MembershipChange change) {
    Membership current = s.membership();
    if (transferTo != null) {
      return new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, "leadership is being handed to " + transferTo
          + "; nothing changed, retry shortly");
    }
    if (s.log.membershipIndex() > s.commitIndex) {
      return conflict("another membership change (at index " + s.log.membershipIndex() + ") is not committed yet");
    }
    long now = System.nanoTime();
    if (change instanceof RaftNode.AddMember a) {
      {
        if (!Peer.isValidId(a.id())) {
          return new RaftNode.Failed(RaftNode.ErrorKind.BAD_REQUEST,
              "a member id is 1 to 64 letters, digits, '.', '_' or '-'");
        }
        if (a.host() == null || a.host().isBlank() || a.port() < 1 || a.port() > 65535) {
          return new RaftNode.Failed(RaftNode.ErrorKind.BAD_REQUEST, "the address must be host:port with a port in 1..65535");
        }
        if (current.isMember(a.id())) {
          return conflict("member id '" + a.id() + "' exists already");
        }
        if (current.memberAt(a.host() + ":" + a.port()) != null) {
          return conflict("address " + a.host() + ":" + a.port() + " is member "
              + current.memberAt(a.host() + ":" + a.port()).id() + "'s");
        }
        if (a.learner() && current.learners().size() >= s.settings.maxLearners()) {
          return conflict("the cluster has " + current.learners().size() + " learners, the most raftkv.raft.max-learners allows");
        }
        if (!a.learner() && !hasQuorumContact(now)) {
          return conflict("the leader has not heard from a quorum of voters within the election timeout;"
              + " a new voter could make the cluster unavailable");
        }
      }
    } else if (change instanceof RaftNode.RemoveMember r) {
      {
        if (!current.isMember(r.id())) {
          return new RaftNode.Failed(RaftNode.ErrorKind.NOT_FOUND, "'" + r.id() + "' is not a member");
        }
        if (current.isVoter(r.id())) {
          Membership next = current.without(r.id());
          if (next.voterCount() == 0) {
            return conflict("'" + r.id() + "' is the last voter");
          }
          int live = 0;
          for (Membership.Member m : next.voters()) {
            Progress p = progress.get(m.id());
            if (m.id().equals(s.self.id()) || (p != null && now - p.lastReplyNanos < s.settings.electionTimeout().toNanos())) {
              live++;
            }
          }
          if (live < next.quorumSize()) {
            return conflict("without '" + r.id() + "', " + live + " of the " + next.voterCount()
                + " remaining voters are live, fewer than a quorum (" + next.quorumSize() + ")");
          }
        }
      }
    } else if (change instanceof RaftNode.PromoteMember pm) {
      {
        if (!current.isMember(pm.id())) {
          return new RaftNode.Failed(RaftNode.ErrorKind.NOT_FOUND, "'" + pm.id() + "' is not a member");
        }
        if (current.isVoter(pm.id())) {
          return conflict("'" + pm.id() + "' is a voter already");
        }
        Progress p = progress.get(pm.id());
        if (p != null && now - p.lastReplyNanos >= s.settings.electionTimeout().toNanos()) {
          // a voter that is down from the start would leave the larger cluster a voter short
          return conflict("learner '" + pm.id() + "' has not answered within the election timeout ("
              + (now - p.lastReplyNanos) / 1_000_000 + " ms ago); promote it once it is running");
        }
        if (p == null || !p.readyToPromote(s.log.lastIndex(), s.settings.promoteMaxLag())) {
          return conflict("learner '" + pm.id() + "' has not caught up: its log matches up to "
              + (p == null ? 0 : p.matchIndex) + ", the leader's ends at " + s.log.lastIndex()
              + (p != null && p.state == Progress.State.SNAPSHOT ? " (a snapshot is on its way to it)" : "")
              + "; promote it once it is within " + s.settings.promoteMaxLag() + " entries");
        }
      }
    }
    return null;
  }

  private static RaftNode.Failed conflict(String why) {
    return new RaftNode.Failed(RaftNode.ErrorKind.CONFLICT, why + "; nothing changed");
  }

  /** A voter (not this node) whose log matches the leader's to the end and that answered recently, or null. */
  private String caughtUpVoter() {
    long now = System.nanoTime();
    String best = null;
    long bestMatch = -1;
    for (Membership.Member m : s.membership().voters()) {
      Progress p = progress.get(m.id());
      if (m.id().equals(s.self.id()) || p == null || p.state != Progress.State.REPLICATE
          || now - p.lastReplyNanos >= s.settings.electionTimeout().toNanos()) {
        continue;
      }
      if (p.matchIndex > bestMatch) {
        best = m.id();
        bestMatch = p.matchIndex;
      }
    }
    return best != null && bestMatch >= s.log.lastIndex() - s.settings.promoteMaxLag() ? best : null;
  }

  /** The committed configuration no longer lists this leader as a voter: step down (it removed itself). */
  private Behavior<RaftNode.Command> maybeStepDownRemoved() {
    if (s.isVoter() || s.commitIndex < s.log.membershipIndex()) {
      return null;
    }
    s.ctx.getLog().info("{} steps down: the configuration that removes it is committed", s.self.id());
    String next = caughtUpVoter();
    if (next != null) {
      s.tellPeer(s.peers.ref(next), new RaftNode.TimeoutNow(s.currentTerm, s.self.id())); // spare them an election timeout
    }
    failReads("this node left the cluster");
    failTransfer("this node left the cluster");
    leave();
    s.leaderId = null;
    return new Follower(s, null).start();
  }

  // ---- leadership transfer (dissertation §3.10) ------------------------------------------------

  /** The voter leadership is being handed to (null: no transfer), who asked, and what waits for it. */
  private String transferTo;
  private ActorRef<RaftNode.ClientReply> transferReplyTo;
  private RaftNode.ChangeMembership transferThen;
  private boolean timeoutNowSent;

  private void onTransferLeadership(RaftNode.TransferLeadership t) {
    if (transferTo != null) {
      t.replyTo().tell(conflict("a leadership transfer to " + transferTo + " is in progress"));
      return;
    }
    String target = t.to();
    Membership m = s.membership();
    if (target == null) {
      target = mostUpToDateVoter(m, s.self.id(), progress);
      if (target == null) {
        t.replyTo().tell(conflict("there is no other voter to hand leadership to"));
        return;
      }
    } else if (target.equals(s.self.id())) {
      t.replyTo().tell(new RaftNode.LeaderTransferred(s.self.id()));
      return;
    } else if (!m.isMember(target)) {
      // 409, as issue #12 asks of a transfer (a member endpoint answers 404 for an unknown id)
      t.replyTo().tell(conflict("'" + target + "' is not a member; leadership goes to a voter"));
      return;
    } else if (!m.isVoter(target)) {
      t.replyTo().tell(conflict("'" + target + "' is a learner; only a voter can lead"));
      return;
    }
    startTransfer(target, t.replyTo(), null);
  }

  /** The voter other than {@code self} whose log matches the leader's furthest (first in order on a tie), or null. */
  static String mostUpToDateVoter(Membership m, String self, Map<String, Progress> progress) {
    String target = null;
    long bestMatch = -1;
    for (Membership.Member v : m.voters()) {
      Progress p = progress.get(v.id());
      if (!v.id().equals(self) && p != null && p.matchIndex > bestMatch) {
        target = v.id();
        bestMatch = p.matchIndex;
      }
    }
    return target;
  }

  /**
   * Stops taking writes, catches {@code target} up and sends it TimeoutNow; aborted after an
   * election timeout. {@code then}: a removal of this node, for the new leader to carry out.
   */
  private void startTransfer(String target, ActorRef<RaftNode.ClientReply> replyTo, RaftNode.ChangeMembership then) {
    transferTo = target;
    transferReplyTo = replyTo;
    transferThen = then;
    timeoutNowSent = false;
    s.timers.startSingleTimer(RaftNode.Tick.TRANSFER_TIMEOUT, RaftNode.Tick.TRANSFER_TIMEOUT, s.settings.electionTimeout());
    s.ctx.getLog().info("{} hands leadership to {} (its log matches up to {}, the leader's ends at {})", s.self.id(),
        target, progress.get(target).matchIndex, s.log.lastIndex());
    for (RaftNode.Propose p : queuedProposals) {
      p.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, "leadership is being handed to " + target
          + "; the write was not applied, retry shortly"));
    }
    queuedProposals.clear();
    Progress p = progress.get(target);
    maybeSendTimeoutNow();
    if (!timeoutNowSent) {
      sendEntries(target, p);
    }
  }

  /** TimeoutNow once the target's log is as long as the leader's (and durable there). */
  private void maybeSendTimeoutNow() {
    Progress p = transferTo == null ? null : progress.get(transferTo);
    if (p != null && !timeoutNowSent && p.matchIndex >= s.log.lastIndex()) {
      timeoutNowSent = true;
      s.tellPeer(s.peers.ref(transferTo), new RaftNode.TimeoutNow(s.currentTerm, s.self.id()));
    }
  }

  private void abortTransfer(String why) {
    if (transferTo == null) {
      return;
    }
    s.ctx.getLog().info("{} aborts the leadership transfer to {}: {}; it keeps leading", s.self.id(), transferTo, why);
    failTransfer("the leadership transfer to " + transferTo + " was aborted: " + why);
  }

  private void failTransfer(String why) {
    if (transferTo == null) {
      return;
    }
    if (transferReplyTo != null) {
      transferReplyTo.tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; retry"));
    }
    if (transferThen != null) {
      transferThen.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; nothing changed, retry"));
    }
    transferTo = null;
    transferReplyTo = null;
    transferThen = null;
    s.timers.cancel(RaftNode.Tick.TRANSFER_TIMEOUT);
  }

  /** Deposed (by the transfer's target, most likely): who waits for the transfer waits for the new leader. */
  private void handTransferOver() {
    if (changeReplyTo != null) {
      changeReplyTo.tell(new RaftNode.Failed(RaftNode.ErrorKind.TIMEOUT,
          "leadership changed before the membership change committed; its outcome is unknown, see /v1/cluster/status"));
      changeReplyTo = null;
    }
    if (transferTo == null) {
      return;
    }
    if (transferReplyTo != null) {
      s.transferWaiters.add(transferReplyTo);
    }
    if (transferThen != null) {
      s.afterTransfer.add(transferThen);
    }
    transferTo = null;
    transferReplyTo = null;
    transferThen = null;
    s.timers.startSingleTimer(RaftNode.Tick.TRANSFER_TIMEOUT, RaftNode.Tick.TRANSFER_TIMEOUT,
        s.settings.electionTimeout().multipliedBy(2));
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
    long now = System.currentTimeMillis(); // the state machine's clock (DESIGN.md §5); it never lets it go back
    for (RaftNode.Propose p : queuedProposals) {
      s.log.append(new LogEntry(index, s.currentTerm, new LogEntry.Command(p.command(), now)));
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
        prev, prevTerm, entries, s.commitIndex, ++seq, selfAddress));
  }

  /**
   * This leader's Raft address as its configurations name it (null if none does): sent with every
   * AppendEntries and InstallSnapshot, so that a member that missed the change adding this leader
   * can still answer it.
   */
  private String selfAddress;

  private String selfAddress() {
    for (Membership m : s.log.configHistory().descendingMap().values()) {
      Membership.Member me = m.member(s.self.id());
      if (me != null) {
        return me.address();
      }
    }
    return null;
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
              s.log.snapshotIndex(), s.log.snapshotTerm(), List.of(), s.commitIndex, ++seq, selfAddress));
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
        s.applying.applier().tell(new Applier.WriteSnapshotFile(s.snapshotDir, s.log.configHistory(), s.ctx.getSelf()));
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
        p.snapshotIndex, p.snapshotTerm, c.offset(), c.data(), c.last(), selfAddress));
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
      failTransfer("leadership lost");
      handTransferOver();
      leave();
      s.leaderId = null;
      return new Follower(s, null).start();
    }
    broadcastHeartbeat();
    return null;
  }

  /** Whether a quorum of the voters (this node, if it votes, among them) was heard from within the election timeout. */
  private boolean hasQuorumContact(long now) {
    Membership m = s.membership();
    int inContact = 0;
    for (Membership.Member v : s.voters()) {
      Progress p = progress.get(v.id());
      if (v.id().equals(s.self.id()) || (p != null && now - p.lastReplyNanos < s.settings.electionTimeout().toNanos())) {
        inContact++;
      }
    }
    return inContact >= m.quorumSize();
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
      if (r.followerId().equals(transferTo)) {
        maybeSendTimeoutNow();
      }
    } else if (p.state != Progress.State.SNAPSHOT) {
      onReject(r, p);
    }
    confirmReads();
    return maybeStepDownRemoved();
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
    List<Membership.Member> voters = s.voters();
    if (voters.isEmpty()) {
      return;
    }
    long[] match = new long[voters.size()];
    int i = 0;
    for (Membership.Member peer : voters) {
      Progress p = progress.get(peer.id());
      match[i++] = peer.id().equals(s.self.id()) ? s.durableIndex() : (p == null ? 0 : p.matchIndex);
    }
    long newCommit = Quorum.commitIndex(match, s.commitIndex, s.currentTerm, s.log);
    if (newCommit > s.commitIndex) {
      boolean configCommitted = s.commitIndex < s.log.membershipIndex() && newCommit >= s.log.membershipIndex();
      s.commitIndex = newCommit;
      s.applyCommitted();
      if (changeReplyTo != null && s.commitIndex >= changeIndex) {
        List<RaftNode.Member> members = s.status(null).members();
        changeReplyTo.tell(new RaftNode.MembershipChanged(changeIndex, members));
        changeReplyTo = null;
      }
      if (configCommitted) {
        s.ctx.getLog().info("{}: configuration at index {} committed: {}", s.self.id(), s.log.membershipIndex(),
            s.membership().describe());
        reconcileProgress(); // members the change removed are no longer replicated to
      }
      if (!announced && s.commitIndex >= noOpIndex) {
        announced = true; // after its no-op: the state machine's leader-only work may start
        s.applying.announceLeadershipAfter(noOpIndex, new Applier.Leadership(s.currentTerm, true));
      }
      if (!requestsBeforeNoOp.isEmpty() && s.commitIndex >= noOpIndex) {
        handleRequestsBeforeNoOp();
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
    List<Membership.Member> voters = s.voters();
    if (voters.isEmpty()) {
      return;
    }
    long[] acked = new long[voters.size()];
    int i = 0;
    for (Membership.Member peer : voters) {
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
        s.applying.applier().tell(new Applier.StreamSnapshot(s.log.configHistory(), b.out(), b.done()));
      }
    }
  }

  @Override
  protected Behavior<RaftNode.Command> afterPersisted() {
    maybeCommit();
    serveAppliedReads(); // what was committed may only now be durable here, and so sent to the applier
    return maybeStepDownRemoved();
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
    for (RaftNode.Command r : requestsBeforeNoOp) {
      ActorRef<RaftNode.ClientReply> to = r instanceof RaftNode.ChangeMembership c ? c.replyTo()
          : ((RaftNode.TransferLeadership) r).replyTo();
      to.tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; nothing changed, retry"));
    }
    requestsBeforeNoOp.clear();
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
