package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.Terminated;
import akka.actor.typed.javadsl.Behaviors;
import raftkv.client.RaftKvException;

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
          throw new IllegalStateException("the journal stopped; restarting the node from disk");
        })
        .build();
  }

  private Behavior<RaftNode.Command> receive(RaftNode.Command message) {
    Behavior<RaftNode.Command> next = receiveOne(message);
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

  private Behavior<RaftNode.Command> receiveOne(RaftNode.Command message) {
    if (message instanceof RaftNode.RaftMessage m && !s.peerRefs.containsKey(m.sender())) {
      s.ctx.getLog().debug("Ignoring {} from {}, which is not a member", m.getClass().getSimpleName(), m.sender());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.PreVote pv) {
      onPreVote(pv);
      return Behaviors.same();
    }
    if (message instanceof RaftNode.RaftMessage m) {
      if (m instanceof RaftNode.RequestVote rv && m.term() > s.currentTerm && leaderIsAlive()) {
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
      if (p.incarnation() != s.incarnation) {
        return Behaviors.same(); // acknowledges a batch of an incarnation before a restart
      }
      s.onPersisted(p.seq());
      Behavior<RaftNode.Command> next = afterPersisted();
      return next == null ? Behaviors.same() : next;
    }
    if (message instanceof RaftNode.GetStatus g) {
      g.replyTo().tell(s.status(leaderView()));
      return Behaviors.same();
    }
    if (message instanceof RaftNode.GetHealth h) {
      h.replyTo().tell(s.health());
      return Behaviors.same();
    }
    if (message instanceof RaftNode.Read r && !r.linearizable()) {
      r.replyTo().tell(new RaftNode.Ok(s.store.query(r.query())));
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

  /** Hook when a higher term ends this role: answer whatever the role still holds. */
  protected void onStepDown() {}

  /** Hook after a journal batch became durable. */
  protected Behavior<RaftNode.Command> afterPersisted() {
    return null;
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
    ActorRef<RaftNode.Command> leader = s.leaderId == null ? null : s.peerRefs.get(s.leaderId);
    if (request instanceof RaftNode.Propose p) {
      if (leader != null && p.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.Propose(p.command(), p.replyTo(), p.hops() + 1));
      } else {
        p.replyTo().tell(unavailable());
      }
    } else if (request instanceof RaftNode.Read r) {
      if (leader != null && r.hops() < s.settings.maxForwardHops()) {
        leader.tell(new RaftNode.Read(r.query(), true, r.replyTo(), r.hops() + 1));
      } else {
        r.replyTo().tell(unavailable());
      }
    }
  }

  protected RaftNode.Failed unavailable() {
    return new RaftNode.Failed(RaftKvException.Kind.UNAVAILABLE,
        s.leaderId == null ? "no leader is known at the moment; retry shortly" : "the leader could not be reached");
  }

  /** A vote request in the current term (§5.2, §5.4.1): at most one vote per term, durable first. */
  protected void onRequestVote(RaftNode.RequestVote rv) {
    boolean grant = rv.term() == s.currentTerm
        && (s.votedFor == null || s.votedFor.equals(rv.candidateId()))
        && s.log.isUpToDate(rv.lastLogTerm(), rv.lastLogIndex())
        && s.peerRefs.containsKey(rv.candidateId());
    if (grant && s.votedFor == null) {
      s.castVote(rv.candidateId());
      s.ctx.getLog().info("{} votes for {} in term {}", s.self.id(), rv.candidateId(), s.currentTerm);
    }
    ActorRef<RaftNode.Command> to = s.peerRefs.get(rv.candidateId());
    if (to != null) {
      s.send(to, new RaftNode.VoteReply(s.currentTerm, s.self.id(), grant));
    }
  }

  /**
   * Pre-Vote (§9.6): grant when a real vote could be granted, and no live leader is known. Changes
   * nothing durable, so the reply needs no persist.
   */
  private void onPreVote(RaftNode.PreVote pv) {
    ActorRef<RaftNode.Command> to = s.peerRefs.get(pv.candidateId());
    if (to == null) {
      return;
    }
    boolean grant = pv.nextTerm() > s.currentTerm
        && s.log.isUpToDate(pv.lastLogTerm(), pv.lastLogIndex())
        && !leaderIsAlive();
    to.tell(new RaftNode.PreVoteReply(s.currentTerm, pv.nextTerm(), s.self.id(), grant, pv.round()));
  }

  protected long randomElectionTimeoutMillis() {
    long base = s.settings.electionTimeout().toMillis();
    return base + ThreadLocalRandom.current().nextLong(base);
  }

  protected void resetElectionTimer() {
    s.timers.startSingleTimer(RaftNode.Tick.ELECTION_TIMEOUT, RaftNode.Tick.ELECTION_TIMEOUT,
        java.time.Duration.ofMillis(randomElectionTimeoutMillis()));
  }
}
