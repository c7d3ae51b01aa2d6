package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.Terminated;
import akka.actor.typed.javadsl.Behaviors;

import java.util.concurrent.ThreadLocalRandom;

/**
 * What every role shares: the term check that runs once before any role's handler (§5.1: a
 * higher term makes the node a follower), the journal's acknowledgements, status, serializable
 * reads, and forwarding of client requests to the known leader.
 */
abstract class Role {
  protected final RaftState s;

  Role(RaftState state) {
    this.s = state;
  }

  /** Called when the node enters this role; returns its behavior. */
  abstract Behavior<RaftNode.Command> start();

  /** The role's own handling; returns null to stay in this role. */
  protected abstract Behavior<RaftNode.Command> handle(RaftNode.Command message);

  protected final Behavior<RaftNode.Command> behavior() {
    return Behaviors.receive(RaftNode.Command.class)
        .onMessage(RaftNode.Command.class, this::receive)
        .onSignal(Terminated.class, t -> {
          // the journal (after a failed write) or the applier (the state machine failed): the node
          // restarts from disk, with new ones
          if (!t.getRef().equals(s.journal) && !t.getRef().equals(s.applying.applier())) {
            return Behaviors.same();
          }
          String which = t.getRef().equals(s.journal) ? "the journal" : "the state machine's applier";
          throw new IllegalStateException(which + " stopped"
              + (t instanceof akka.actor.typed.ChildFailed failed ? " (" + failed.getCause() + ")" : "")
              + "; restarting the node from disk");
        })
        .build();
  }

  private Behavior<RaftNode.Command> receive(RaftNode.Command received) {
    RaftNode.Command message = received;
    if (received instanceof RaftNode.FromCluster envelope && !s.clusterIdKnown) {
      s.adoptClusterId(envelope); // a node started with --join learns its cluster's id from the leader
      return Behaviors.same();
    }
    if (received instanceof RaftNode.ClusterIdStored stored) {
      s.onClusterIdStored(stored);
      return Behaviors.same();
    }
    if (received instanceof RaftNode.FromCluster envelope) {
      message = s.fromOwnCluster(envelope);
      if (message == null) {
        return Behaviors.same(); // another cluster's: as if it never arrived
      }
    } else if ((s.clusterId != 0 || !s.clusterIdKnown) && isPeerMessage(received)) {
      // without the envelope: a node of a version without cluster ids (only a node of cluster 0,
      // run by a test without a data dir, takes these, from the test itself)
      s.fromOwnCluster(new RaftNode.FromCluster(0, received));
      return Behaviors.same();
    }
    Behavior<RaftNode.Command> next = receiveOne(message);
    // an entry appended or truncated, or a snapshot installed, may have changed the configuration:
    // the role follows (a role that just started read the configuration as it began)
    if (s.syncMembership() && next == Behaviors.<RaftNode.Command>same()) {
      Behavior<RaftNode.Command> changed = onMembershipChanged();
      next = changed == null ? next : changed;
    }
    RaftJournal.Persist batch = s.nextBatch(); // everything this message changed, as one batch
    if (next == Behaviors.<RaftNode.Command>same()) {
      afterMessage(); // only while this role lasts: a role that ended must not speak for its term
    }
    // After the leader's AppendEntries: a commit waits for a follower's write, not for the
    // leader's own, so the followers' copies start first (both run in parallel, §10.2.1).
    if (batch != null) {
      s.journal.tell(batch);
    }
    return next;
  }

  private static boolean isPeerMessage(RaftNode.Command m) {
    return m instanceof RaftNode.RaftMessage || m instanceof RaftNode.PreVote || m instanceof RaftNode.PreVoteReply;
  }

  private Behavior<RaftNode.Command> receiveOne(RaftNode.Command message) {
    String leaderAddress = message instanceof RaftNode.AppendEntries ae ? ae.leaderAddress()
        : message instanceof RaftNode.InstallSnapshot is ? is.leaderAddress() : null;
    if (leaderAddress != null && !s.peers.isPeer(((RaftNode.RaftMessage) message).sender())) {
      // a leader of this cluster (its id was checked) that this node's configuration does not name
      // yet: a member added while this node was down. Its entries bring the configuration.
      s.peers.learn(((RaftNode.RaftMessage) message).sender(), leaderAddress);
    }
    if (message instanceof RaftNode.RaftMessage m && !s.peers.isPeer(m.sender())) {
      s.ctx.getLog().debug("Ignoring {} from {}, which is not a member", m.getClass().getSimpleName(), m.sender());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.PreVote pv) {
      if (onPreVote(pv) && this instanceof Candidate) {
        return new Follower(s, null).start(); // stands back for the other pre-candidate
      }
      return Behaviors.same();
    }
    if (message instanceof RaftNode.RaftMessage m) {
      if (m instanceof RaftNode.RequestVote rv && m.term() > s.currentTerm && leaderIsAlive() && !rv.transfer()) {
        // §4.2.3 of the dissertation: a server that hears from a live leader ignores RequestVote,
        // so a node that was cut off and comes back cannot depose a working leader.
        s.ctx.getLog().debug("Ignoring vote request of {} for term {}: the leader is alive", rv.candidateId(), rv.term());
        return Behaviors.same();
      }
      if (m.term() > s.currentTerm) {
        s.ctx.getLog().info("Term {} seen from a peer (was {}): {} becomes follower", m.term(), s.currentTerm, s.self.id());
        onStepDown();
        s.advanceTerm(m.term());
        Follower follower = new Follower(s, null);
        Behavior<RaftNode.Command> started = follower.start();
        Behavior<RaftNode.Command> next = follower.handle(message);
        return next == null ? started : next;
      }
    }
    if (message instanceof RaftNode.Persisted p) {
      if (p.incarnation() != s.pipeline.incarnation) {
        return Behaviors.same(); // acknowledges a batch of an incarnation before a restart
      }
      s.onPersisted(p.seq());
      s.applyCommitted(); // what waited for this node's own copy (a Config entry) may go to the applier now
      Behavior<RaftNode.Command> next = afterPersisted();
      return next == null ? Behaviors.same() : next;
    }
    if (message instanceof RaftNode.Synced synced) {
      s.onSynced(synced, keepFrom());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.TakeSnapshot t) {
      s.takeSnapshot(t.replyTo());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.ChunkStored c) {
      onChunkStored(c);
      return Behaviors.same();
    }
    if (message instanceof RaftNode.Restored r) {
      onRestored(r);
      return Behaviors.same();
    }
    if (message instanceof RaftNode.GetStatus g) {
      g.replyTo().tell(s.status(leaderView()));
      return Behaviors.same();
    }
    if (message instanceof RaftNode.GetHealth h) {
      h.replyTo().tell(s.health());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.Backup b && !b.linearizable()) {
      s.applying.applier().tell(new Applier.StreamSnapshot(s.log.configHistory(), b.out(), b.done()));
      return Behaviors.same();
    }
    if (message == RaftNode.Tick.TRANSFER_TIMEOUT && !(this instanceof Leader)) {
      s.failTransferWaiters("leadership was handed over, but no new leader became known within "
          + s.settings.electionTimeout().toMillis() * 2 + " ms");
      return Behaviors.same();
    }
    if (message instanceof RaftNode.Backup b && !(this instanceof Leader)) {
      String http = s.leaderId == null ? null : s.peers.http(s.leaderId);
      b.done().completeExceptionally(new RaftNode.NotLeader(http, s.leaderId == null
          ? "no leader is known at the moment; retry shortly" : "a linearizable backup is taken by the leader, "
          + s.leaderId + (http == null ? "" : " at http://" + http)));
      return Behaviors.same();
    }
    if (message instanceof RaftNode.Read r && !r.linearizable()) {
      // serializable: this node's applied state, after everything already handed to the applier
      s.applying.applier().tell(new Applier.Query(r.query(), r.replyTo()));
      return Behaviors.same();
    }
    Behavior<RaftNode.Command> next = handle(message);
    return next == null ? Behaviors.same() : next;
  }

  /**
   * Hook after each message that left the node in this role, once its changes were closed into a
   * journal batch (which is sent to the journal right after this hook).
   */
  protected void afterMessage() {}

  /**
   * Hook after a message changed the configuration in effect (DESIGN.md §7): a leader creates and
   * drops per-member progress; a node that no longer votes stops campaigning. Returns the next
   * behavior, or null to stay.
   */
  protected Behavior<RaftNode.Command> onMembershipChanged() {
    return null;
  }

  /** Hook when a higher term ends this role: answer whatever the role still holds. */
  protected void onStepDown() {}

  /** Hook after a journal batch became durable. */
  protected Behavior<RaftNode.Command> afterPersisted() {
    return null;
  }

  /** The first log index this role still needs (a leader's snapshot transfers): compaction stops before it. */
  protected long keepFrom() {
    return Long.MAX_VALUE;
  }

  // ---- receiving a snapshot (any role: a transfer outlives the role that started it) -----------

  /**
   * A chunk of a snapshot from the current leader (the caller checked the term and noted the
   * contact): written off the actor; the next is asked for once it is on disk.
   */
  protected void receiveSnapshotChunk(RaftNode.InstallSnapshot m) {
    ActorRef<RaftNode.Command> leader = s.peers.ref(m.leaderId());
    if (m.snapshotIndex() <= s.applying.sentIndex) {
      // this node already applied past it: its log continues after the snapshot as it is (said once
      // what the log holds is durable, since the leader takes it as this node's match index)
      s.sendAfterLog(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), m.snapshotIndex(), 0, true));
      return;
    }
    SnapshotReceipt r = s.receipt;
    if (r != null && (r.writing || r.restoring)) {
      if (!r.sameTransfer(m) || m.offset() != r.expectedOffset) {
        return; // busy with another chunk or transfer; the leader sends again after its timeout
      }
      return;
    }
    if (r == null || !r.sameTransfer(m)) {
      if (m.offset() != 0) {
        s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), m.snapshotIndex(), 0, false));
        return;
      }
      r = new SnapshotReceipt(m.term(), m.leaderId(), m.snapshotIndex(), m.snapshotTerm(),
          s.snapshotDir.resolve("receiving.tmp"));
      s.receipt = r;
      s.ctx.getLog().info("{} receives a snapshot at index {} (term {}) from {}", s.self.id(), m.snapshotIndex(),
          m.snapshotTerm(), m.leaderId());
    }
    if (m.offset() != r.expectedOffset) {
      s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), m.snapshotIndex(),
          r.expectedOffset, false));
      return;
    }
    r.writing = true;
    java.nio.file.Path tmp = r.tmp;
    java.nio.file.Path dir = s.snapshotDir;
    long term = r.term;
    long index = r.index;
    long snapshotTerm = r.snapshotTerm;
    long next = m.offset() + m.data().length;
    byte[] data = m.data();
    boolean done = m.done();
    long offset = m.offset();
    s.ctx.pipeToSelf(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        java.nio.file.Files.createDirectories(dir);
        SnapshotFile.writeChunk(tmp, offset, data);
        if (!done) {
          return new RaftNode.ChunkStored(term, index, next, null, null, null);
        }
        SnapshotFile.Header header = SnapshotFile.verify(tmp);
        if (header.index() != index || header.term() != snapshotTerm) {
          throw new IllegalArgumentException("the snapshot received is at " + header.index() + " (term " + header.term()
              + "), the leader announced " + index + " (term " + snapshotTerm + ")");
        }
        java.nio.file.Path file = SnapshotFile.keep(tmp, dir, header, 2);
        return new RaftNode.ChunkStored(term, index, next, header, file, null);
      } catch (Exception e) {
        return new RaftNode.ChunkStored(term, index, 0, null, null, Applier.describe(e));
      }
    }, s.blocking), (stored, failure) -> stored != null ? stored
        : new RaftNode.ChunkStored(term, index, 0, null, null, Applier.describe(failure)));
  }

  private void onChunkStored(RaftNode.ChunkStored c) {
    SnapshotReceipt r = s.receipt;
    if (r == null || r.term != c.term() || r.index != c.snapshotIndex()) {
      return;
    }
    r.writing = false;
    ActorRef<RaftNode.Command> leader = s.peers.ref(r.leaderId);
    if (c.error() != null) {
      s.ctx.getLog().warn("{} could not store the snapshot at {} from {}: {}; starting over", s.self.id(), r.index,
          r.leaderId, c.error());
      s.receipt = null;
      s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), c.snapshotIndex(), 0, false));
    } else if (c.header() == null) {
      r.expectedOffset = c.nextOffset();
      s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), c.snapshotIndex(), c.nextOffset(),
          false));
    } else if (r.index <= s.applying.sentIndex) {
      s.receipt = null; // applied past it meanwhile
      s.sendAfterLog(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), c.snapshotIndex(), 0, true));
    } else {
      r.restoring = true;
      r.membership = c.header().membership();
      s.applying.restoring = true; // nothing more goes to the applier until the state is replaced
      s.applying.applier().tell(new Applier.Restore(c.file(), c.header(), s.ctx.getSelf()));
    }
  }

  private void onRestored(RaftNode.Restored restored) {
    SnapshotReceipt r = s.receipt;
    if (r == null || !r.restoring) {
      // from an applier of this node before it restarted: the recovery that followed read the state
      // machine as that restore left it
      s.ctx.getLog().debug("{} ignores a restore it did not ask for in this incarnation", s.self.id());
      return;
    }
    s.receipt = null;
    ActorRef<RaftNode.Command> leader = s.peers.ref(r.leaderId);
    if (restored.error() != null) {
      s.applying.restoring = false;
      s.ctx.getLog().error("{} could not install the snapshot at {}: {}", s.self.id(), r.index,
          restored.error());
      if (leader != null) {
        s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), r.index, 0, false));
      }
      s.applyCommitted();
      return;
    }
    long index = restored.index();
    s.applying.onRestored(index, restored.term(), restored.bytes());
    s.log.compactTo(index, restored.term(), r.membership);
    s.pipeline.noteCompacted(index);
    s.pipeline.recordHardState(new RaftJournal.Compacted(index, restored.term(), s.log.baseMembership()));
    s.commitIndex = Math.max(s.commitIndex, index);
    s.ctx.getLog().info("{} installed a snapshot at index {} (term {}); its log now runs {}..{}", s.self.id(), index,
        restored.term(), s.log.firstIndex(), s.log.lastIndex());
    if (leader != null) {
      // once the journal also says so: a restart then starts from the snapshot
      s.sendAfterLog(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), index, 0, true));
    }
    s.applyCommitted();
  }

  /** Leader's per-member [matchIndex, lastContactMillis], or null on other roles. */
  protected java.util.Map<String, long[]> leaderView() {
    return null;
  }

  /** Whether this node has heard from a leader of the current term within the election timeout. */
  protected boolean leaderIsAlive() {
    return false;
  }

  /** Follower and candidate: pass a client request to the leader, or fail it as unavailable. */
  protected void forwardOrReject(RaftNode.Command request) {
    ActorRef<RaftNode.Command> leader = s.leaderId == null ? null : s.peers.ref(s.leaderId);
    if (request instanceof RaftNode.Propose p) {
      if (leader != null && p.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.Propose(p.command(), p.replyTo(), p.hops() + 1));
        s.noteForwarded(p.replyTo(), false);
      } else {
        p.replyTo().tell(unavailable());
      }
    } else if (request instanceof RaftNode.Read r) {
      if (leader != null && r.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.Read(r.query(), true, r.replyTo(), r.hops() + 1));
        s.noteForwarded(r.replyTo(), true);
      } else {
        r.replyTo().tell(unavailable());
      }
    } else if (request instanceof RaftNode.ChangeMembership c) {
      if (leader != null && c.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.ChangeMembership(c.change(), c.replyTo(), c.hops() + 1));
      } else {
        c.replyTo().tell(unavailable());
      }
    } else if (request instanceof RaftNode.TransferLeadership t) {
      if (leader != null && t.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.TransferLeadership(t.to(), t.replyTo(), t.hops() + 1));
      } else {
        t.replyTo().tell(unavailable());
      }
    }
  }

  /** Whether {@code m} is a client request that a follower or candidate forwards to the leader. */
  protected static boolean isClientRequest(RaftNode.Command m) {
    return m instanceof RaftNode.Propose || m instanceof RaftNode.Read || m instanceof RaftNode.ChangeMembership
        || m instanceof RaftNode.TransferLeadership;
  }

  protected RaftNode.Failed unavailable() {
    return new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE,
        s.leaderId == null ? "no leader is known at the moment; retry shortly" : "the leader could not be reached");
  }

  /** A vote request in the current term (§5.2, §5.4.1): at most one vote per term, durable first. */
  protected void onRequestVote(RaftNode.RequestVote rv) {
    // only voters of this node's configuration vote, and only for voters of it (a learner, or a
    // node removed from the cluster, never becomes leader)
    boolean grant = rv.term() == s.currentTerm
        && (s.votedFor == null || s.votedFor.equals(rv.candidateId()))
        && s.log.isUpToDate(rv.lastLogTerm(), rv.lastLogIndex())
        && s.isVoter()
        && s.membership().isVoter(rv.candidateId());
    if (grant && s.votedFor == null) {
      s.castVote(rv.candidateId());
      s.ctx.getLog().info("{} votes for {} in term {}", s.self.id(), rv.candidateId(), s.currentTerm);
    }
    ActorRef<RaftNode.Command> to = s.peers.ref(rv.candidateId());
    if (to != null) {
      s.send(to, new RaftNode.VoteReply(s.currentTerm, s.self.id(), grant));
    }
  }

  /**
   * Pre-Vote (§9.6): grant when a real vote could be granted, and no live leader is known. Changes
   * nothing durable, so the reply needs no persist.
   */
  private boolean onPreVote(RaftNode.PreVote pv) {
    ActorRef<RaftNode.Command> to = s.peers.ref(pv.candidateId());
    if (to == null) {
      return false;
    }
    boolean grant = pv.nextTerm() > s.currentTerm
        && s.log.isUpToDate(pv.lastLogTerm(), pv.lastLogIndex())
        && !leaderIsAlive()
        && s.isVoter()
        && s.membership().isVoter(pv.candidateId());
    s.tellPeer(to, new RaftNode.PreVoteReply(s.currentTerm, pv.nextTerm(), s.self.id(), grant, pv.round()));
    // Another voter found the leader gone and is about to campaign: stand back, as after a vote,
    // rather than start an election of its own that would split the votes. Two pre-candidates
    // that grant each other's pre-votes would both stand back: only the one with the greater id does.
    if (grant && this instanceof Follower) {
      resetElectionTimer();
      return true;
    }
    return grant && this instanceof Candidate c && c.inPreVote() && pv.candidateId().compareTo(s.self.id()) < 0;
  }

  protected long randomElectionTimeoutMillis() {
    long base = s.settings.electionTimeout().toMillis();
    return base + ThreadLocalRandom.current().nextLong(Math.max(1, (long) (base * s.settings.electionTimeoutSpread())));
  }

  protected void resetElectionTimer() {
    s.timers.startSingleTimer(RaftNode.Tick.ELECTION_TIMEOUT, RaftNode.Tick.ELECTION_TIMEOUT,
        java.time.Duration.ofMillis(randomElectionTimeoutMillis()));
  }
}
