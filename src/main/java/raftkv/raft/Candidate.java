package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;

import java.util.HashSet;
import java.util.Set;

/**
 * The candidate role (§5.2), in two phases. First a pre-vote (§9.6 of the dissertation): ask
 * whether a majority would vote for this node in the next term, changing no term. Then, with that
 * majority, the election proper: a new term and a vote for itself, durable before it asks anyone.
 */
final class Candidate extends Role {
  private final Set<String> votes = new HashSet<>();
  private final boolean preVote;
  /** This pre-vote round: only the replies that echo it count (0 in an election proper). */
  private final long round;
  /** Campaigning because the leader handed leadership over (TimeoutNow): voters skip the live-leader rule. */
  private final boolean transfer;

  Candidate(RaftState state, boolean preVote) {
    this(state, preVote, false);
  }

  Candidate(RaftState state, boolean preVote, boolean transfer) {
    super(state);
    this.preVote = preVote;
    this.transfer = transfer;
    this.round = preVote ? state.nextPreVoteRound() : 0;
  }

  /** Whether this is the pre-vote phase (nothing durable changed yet). */
  boolean inPreVote() {
    return preVote;
  }

  /** Votes of the voters of the configuration in effect (it may change during the election). */
  private boolean wonQuorum() {
    Membership m = s.membership();
    int n = 0;
    for (String id : votes) {
      if (m.isVoter(id)) {
        n++;
      }
    }
    return n >= m.quorumSize();
  }

  /** The other voters' Raft actors. */
  private java.util.List<ActorRef<RaftNode.Command>> otherVoters() {
    java.util.List<ActorRef<RaftNode.Command>> refs = new java.util.ArrayList<>();
    for (Membership.Member m : s.membership().voters()) {
      ActorRef<RaftNode.Command> ref = s.peers.ref(m.id());
      if (ref != null) {
        refs.add(ref);
      }
    }
    return refs;
  }

  @Override
  Behavior<RaftNode.Command> start() {
    s.role = "candidate";
    if (s.leaderId != null && !s.leaderId.equals(s.self.id())) {
      s.failForwarded("leader " + s.leaderId + " went quiet");
    }
    s.leaderId = null;
    s.timers.cancel(RaftNode.Tick.HEARTBEAT);
    if (!s.isVoter()) {
      return new Follower(s, null).start(); // a learner, or a node removed meanwhile, never campaigns
    }
    if (preVote) {
      votes.add(s.self.id());
      if (wonQuorum()) {
        return new Candidate(s, false).start();
      }
      resetElectionTimer();
      RaftNode.PreVote pv = new RaftNode.PreVote(s.currentTerm + 1, s.self.id(), s.log.lastIndex(), s.log.lastTerm(),
          round);
      for (ActorRef<RaftNode.Command> peer : otherVoters()) {
        s.tellPeer(peer, pv);
      }
      return behavior();
    }
    s.advanceTerm(s.currentTerm + 1);
    s.castVote(s.self.id());
    votes.add(s.self.id());
    resetElectionTimer();
    if (wonQuorum()) {
      return new Leader(s).start();
    }
    RaftNode.RequestVote rv = new RaftNode.RequestVote(s.currentTerm, s.self.id(), s.log.lastIndex(), s.log.lastTerm(),
        transfer);
    for (ActorRef<RaftNode.Command> peer : otherVoters()) {
      s.send(peer, rv);
    }
    return behavior();
  }

  @Override
  protected Behavior<RaftNode.Command> handle(RaftNode.Command message) {
    if (message instanceof RaftNode.PreVoteReply r) {
      if (!preVote || r.nextTerm() != s.currentTerm + 1 || !s.peers.isPeer(r.voterId())) {
        return null;
      }
      if (r.granted() && r.round() == round) {
        votes.add(r.voterId());
        if (wonQuorum()) {
          s.ctx.getLog().info("{} won a pre-vote for term {}: starting an election", s.self.id(), s.currentTerm + 1);
          return new Candidate(s, false).start();
        }
      } else if (!r.granted() && r.term() > s.currentTerm) { // (a higher term is news in any round)
        s.advanceTerm(r.term()); // this node fell behind: catch up, and wait to hear from a leader
        return new Follower(s, null).start();
      }
    } else if (message instanceof RaftNode.VoteReply v) {
      if (!preVote && v.term() == s.currentTerm && v.granted() && s.peers.isPeer(v.voterId())) {
        votes.add(v.voterId());
        if (wonQuorum()) {
          return new Leader(s).start();
        }
      }
    } else if (message instanceof RaftNode.AppendEntries ae && ae.term() == s.currentTerm) {
      // another node won this term: follow it and handle its message as a follower
      Follower follower = new Follower(s, ae.leaderId());
      Behavior<RaftNode.Command> started = follower.start();
      Behavior<RaftNode.Command> next = follower.handle(ae);
      return next == null ? started : next;
    } else if (message instanceof RaftNode.InstallSnapshot is && is.term() == s.currentTerm) {
      Follower follower = new Follower(s, is.leaderId());
      Behavior<RaftNode.Command> started = follower.start();
      Behavior<RaftNode.Command> next = follower.handle(is);
      return next == null ? started : next;
    } else if (message instanceof RaftNode.InstallSnapshot is) {
      ActorRef<RaftNode.Command> to = s.peers.ref(is.leaderId());
      if (to != null) {
        s.send(to, new RaftNode.InstallSnapshotReply(s.currentTerm, s.self.id(), is.snapshotIndex(), 0, false));
      }
    } else if (message instanceof RaftNode.AppendEntries ae) {
      ActorRef<RaftNode.Command> to = s.peers.ref(ae.leaderId());
      if (to != null) { // an older term: tell the sender about ours
        s.send(to, new RaftNode.AppendReply(s.currentTerm, ae.term(), s.self.id(), s.self.httpAddress(), false, 0,
            ae.prevLogIndex(), 0, -1, ae.seq()));
      }
    } else if (message instanceof RaftNode.RequestVote rv) {
      onRequestVote(rv); // same term: granted only by a pre-candidate that has not voted in it
      if (preVote && rv.candidateId().equals(s.votedFor)) {
        return new Follower(s, null).start();
      }
    } else if (message == RaftNode.Tick.ELECTION_TIMEOUT) {
      s.ctx.getLog().info("{} won no majority {} term {}: trying again", s.self.id(),
          preVote ? "of pre-votes for" : "in", preVote ? s.currentTerm + 1 : s.currentTerm);
      return new Candidate(s, true).start();
    } else if (isClientRequest(message)) {
      forwardOrReject(message);
    }
    return null;
  }

  /** A node that no longer votes stops campaigning. */
  @Override
  protected Behavior<RaftNode.Command> onMembershipChanged() {
    if (!s.isVoter()) {
      return new Follower(s, null).start();
    }
    return null;
  }
}
