package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;

/** The follower role (§5.2, §5.3): answers leaders and candidates, and starts an election when the leader goes quiet. */
final class Follower extends Role {

  Follower(RaftState state, String leaderId) {
    super(state);
    if (leaderId != null) {
      state.leaderId = leaderId;
    }
  }

  @Override
  Behavior<RaftNode.Command> start() {
    s.role = "follower";
    s.timers.cancel(RaftNode.Tick.HEARTBEAT);
    if (s.isVoter()) {
      resetElectionTimer();
    }
    return behavior();
  }

  @Override
  protected boolean leaderIsAlive() {
    return s.leaderId != null
        && System.nanoTime() - s.lastLeaderContactNanos < s.settings.electionTimeout().toNanos();
  }

  @Override
  protected Behavior<RaftNode.Command> handle(RaftNode.Command message) {
    if (message instanceof RaftNode.AppendEntries ae) {
      onAppendEntries(ae);
    } else if (message instanceof RaftNode.RequestVote rv) {
      onRequestVote(rv);
      if (rv.candidateId().equals(s.votedFor)) {
        resetElectionTimer();
      }
    } else if (message == RaftNode.Tick.ELECTION_TIMEOUT) {
      s.ctx.getLog().info("{} heard from no leader in term {}: asking for pre-votes", s.self.id(), s.currentTerm);
      return new Candidate(s, true).start();
    } else if (message instanceof RaftNode.InstallSnapshot is) {
      onInstallSnapshot(is);
    } else if (message instanceof RaftNode.TimeoutNow t) {
      if (t.term() == s.currentTerm && t.leaderId().equals(s.leaderId) && s.isVoter()) {
        // the leader hands leadership to this node (dissertation §3.10): campaign now, no pre-vote
        s.ctx.getLog().info("{} is handed leadership by {} in term {}: campaigning at once", s.self.id(),
            t.leaderId(), s.currentTerm);
        return new Candidate(s, false, true).start();
      }
    } else if (isClientRequest(message)) {
      forwardOrReject(message);
    }
    return null;
  }

  /** A learner or a removed node never campaigns; a learner promoted to voter starts to. */
  @Override
  protected Behavior<RaftNode.Command> onMembershipChanged() {
    if (s.isVoter()) {
      resetElectionTimer();
    } else {
      s.timers.cancel(RaftNode.Tick.ELECTION_TIMEOUT);
    }
    return null;
  }

  private void onAppendEntries(RaftNode.AppendEntries ae) {
    ActorRef<RaftNode.Command> leader = s.peers.ref(ae.leaderId());
    if (leader == null) {
      return; // not a member we know
    }
    if (ae.term() < s.currentTerm) {
      s.send(leader, reject(ae, 0, -1));
      return;
    }
    noteLeader(ae.leaderId(), ae.leaderHttp(), ae.term());
    long prev = ae.prevLogIndex();
    if (prev > s.log.lastIndex()) {
      s.send(leader, reject(ae, s.log.lastIndex() + 1, -1));
      return;
    }
    if (prev >= s.log.snapshotIndex() && s.log.termAt(prev) != ae.prevLogTerm()) {
      long conflictTerm = s.log.termAt(prev);
      s.send(leader, reject(ae, s.log.firstIndexOfTerm(prev), conflictTerm));
      return;
    }
    if (prev < s.log.snapshotIndex() && !sameHistoryAsSnapshot(ae)) {
      // Terms never decrease along a log: an entry at or before this node's snapshot point with a
      // later term than the snapshot's last entry belongs to another history (a cluster seeded
      // from a backup on some nodes only, say). Acknowledging it would make the leader count
      // entries this node skips; refuse it instead.
      s.ctx.getLog().error("{} refuses entries of {} in term {}: they contradict its snapshot at {} (term {})",
          s.self.id(), ae.leaderId(), ae.term(), s.log.snapshotIndex(), s.log.snapshotTerm());
      s.send(leader, reject(ae, s.log.snapshotIndex() + 1, -1));
      return;
    }
    long lastBefore = s.log.lastIndex();
    long firstWritten = s.log.merge(ae.entries());
    if (firstWritten != -1) {
      s.noteLogWritten(firstWritten);
      if (firstWritten <= lastBefore) {
        s.noteTruncated(firstWritten);
      }
    }
    long lastNew = prev + ae.entries().size();
    long newCommit = Math.min(ae.leaderCommit(), lastNew);
    if (newCommit > s.commitIndex) {
      s.commitIndex = newCommit;
      s.applyCommitted();
    }
    RaftNode.AppendReply ok = new RaftNode.AppendReply(s.currentTerm, ae.term(), s.self.id(), s.self.httpAddress(),
        true, lastNew, prev, 0, 0, ae.seq());
    if (s.durableIndex() >= lastNew) {
      s.send(leader, ok);
    } else {
      s.sendAfterLog(leader, ok);
    }
  }

  /** Whether what {@code ae} says about indices up to the snapshot point fits the snapshot's last term. */
  private boolean sameHistoryAsSnapshot(RaftNode.AppendEntries ae) {
    long snapshotTerm = s.log.snapshotTerm();
    if (ae.prevLogTerm() > snapshotTerm) {
      return false;
    }
    for (LogEntry e : ae.entries()) {
      if (e.index() > s.log.snapshotIndex()) {
        break;
      }
      if (e.term() > snapshotTerm) {
        return false;
      }
    }
    return true;
  }

  /** Any message of the current leader: it is alive, and its address is known. */
  private void noteLeader(String leaderId, String leaderHttp, long term) {
    if (!leaderId.equals(s.leaderId)) {
      s.ctx.getLog().info("{} follows leader {} in term {}", s.self.id(), leaderId, term);
      if (s.leaderId != null) {
        s.failForwarded("leader " + s.leaderId + " was replaced by " + leaderId);
      }
      s.leaderId = leaderId;
      s.onNewLeaderKnown(leaderId);
    }
    s.leaderId = leaderId;
    s.lastLeaderContactNanos = System.nanoTime();
    s.peers.noteHttp(leaderId, leaderHttp);
    if (s.isVoter()) {
      resetElectionTimer();
    }
  }

  /** A chunk of a snapshot: counts as contact from the leader, like AppendEntries. */
  private void onInstallSnapshot(RaftNode.InstallSnapshot m) {
    ActorRef<RaftNode.Command> leader = s.peers.ref(m.leaderId());
    if (leader == null) {
      return;
    }
    if (m.term() < s.currentTerm) {
      s.send(leader, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), m.snapshotIndex(), 0, false));
      return;
    }
    noteLeader(m.leaderId(), m.leaderHttp(), m.term());
    receiveSnapshotChunk(m);
  }

  private RaftNode.AppendReply reject(RaftNode.AppendEntries ae, long conflictIndex, long conflictTerm) {
    return new RaftNode.AppendReply(s.currentTerm, ae.term(), s.self.id(), s.self.httpAddress(), false, 0,
        ae.prevLogIndex(), conflictIndex, conflictTerm, ae.seq());
  }
}
