package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;

import java.util.HashSet;
import java.util.Set;

/** The candidate role (§5.2): a new term, a vote for itself, durable before it asks anyone. */
final class Candidate extends Role {
  private final Set<String> votes = new HashSet<>();

  Candidate(RaftState state) {
    super(state);
  }

  @Override
  Behavior<RaftNode.Command> start() {
    s.role = "candidate";
    s.timers.cancel(RaftNode.Tick.HEARTBEAT);
    s.advanceTerm(s.currentTerm + 1);
    s.castVote(s.self.id());
    votes.add(s.self.id());
    resetElectionTimer();
    if (votes.size() >= s.quorumSize()) {
      return new Leader(s).start();
    }
    RaftNode.RequestVote rv = new RaftNode.RequestVote(s.currentTerm, s.self.id(), s.log.lastIndex(), s.log.lastTerm());
    for (ActorRef<RaftNode.Command> peer : s.peerRefs.values()) {
      s.send(peer, rv);
    }
    return behavior();
  }

  @Override
  protected Behavior<RaftNode.Command> handle(RaftNode.Command message) {
    if (message instanceof RaftNode.VoteReply v) {
      if (v.term() == s.currentTerm && v.granted() && s.peerRefs.containsKey(v.voterId())) {
        votes.add(v.voterId());
        if (votes.size() >= s.quorumSize()) {
          return new Leader(s).start();
        }
      }
    } else if (message instanceof RaftNode.AppendEntries ae && ae.term() == s.currentTerm) {
      // another node won this term: follow it and handle its message as a follower
      Follower follower = new Follower(s, ae.leaderId());
      Behavior<RaftNode.Command> started = follower.start();
      Behavior<RaftNode.Command> next = follower.handle(ae);
      return next == null ? started : next;
    } else if (message instanceof RaftNode.AppendEntries ae) {
      ActorRef<RaftNode.Command> to = s.peerRefs.get(ae.leaderId());
      if (to != null) { // an older term: tell the sender about ours
        s.send(to, new RaftNode.AppendReply(s.currentTerm, s.self.id(), s.self.httpAddress(), false, 0,
            ae.prevLogIndex(), 0, -1, ae.seq()));
      }
    } else if (message instanceof RaftNode.RequestVote rv) {
      onRequestVote(rv); // same term: we voted for ourselves, so this is a refusal
    } else if (message == RaftNode.Tick.ELECTION_TIMEOUT) {
      s.ctx.getLog().info("{} won no majority in term {}: trying again", s.self.id(), s.currentTerm);
      return new Candidate(s).start();
    } else if (message instanceof RaftNode.Propose || message instanceof RaftNode.Read) {
      forwardOrReject(message);
    }
    return null;
  }
}
