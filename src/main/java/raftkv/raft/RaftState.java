package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.TimerScheduler;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The working state of one node, shared by whichever role it is in: the durable part (term, vote,
 * log) with the pipeline that persists it ({@link PersistPipeline}), the membership view
 * ({@link Peers}), the commit index, and the apply side ({@link Applying}, which hands committed
 * entries to the state machine's {@link Applier} and decides when a snapshot is due).
 */
final class RaftState {
  final ActorContext<RaftNode.Command> ctx;
  final RaftNode.NodeIdentity self;
  final RaftSettings settings;
  final ActorRef<RaftJournal.Command> journal;
  final Path snapshotDir;
  TimerScheduler<RaftNode.Command> timers;

  // durable (working copy; the journal holds the truth)
  long currentTerm;
  String votedFor;
  final RaftLog log;
  final Peers peers;
  final PersistPipeline pipeline;

  // volatile
  long commitIndex;
  String leaderId;
  long lastLeaderContactNanos;
  String role = "follower";
  final Applying applying;
  /** A snapshot this follower is receiving from the leader, or null. */
  SnapshotReceipt receipt;
  /** Where blocking file work runs (snapshot chunks): never on the Raft actor's thread. */
  final java.util.concurrent.Executor blocking;
  /** Callers of POST /v1/cluster/snapshot, answered when the sync they started is done. */
  final List<ActorRef<RaftNode.SnapshotTaken>> snapshotWaiters = new ArrayList<>();

  /**
   * The last pre-vote round this node started. It starts at random, so that a round of this
   * incarnation is not mistaken for one of an incarnation before a restart.
   */
  private long preVoteRound = java.util.concurrent.ThreadLocalRandom.current().nextLong();

  /**
   * Builds the node's state from its journal and its state machine (applied up to {@code smIndex}
   * of {@code smTerm}). The log normally holds that entry with that term. When it does not — a
   * crash after the state machine applied committed entries that this node's own journal had not
   * yet made durable, or between restoring a received snapshot and journaling it — the log is
   * replaced by one that starts after it: everything up to {@code smIndex} is committed and in the
   * state machine, so this is the state after installing a snapshot at {@code smIndex}, and the
   * entries of the log it drops after {@code smIndex} were never acknowledged by this node.
   *
   * @throws IllegalStateException when the log was compacted past the state machine (the state
   *     machine's data was replaced or lost), with a one-line reason
   */
  RaftState(ActorContext<RaftNode.Command> ctx, RaftNode.NodeIdentity self, RaftSettings settings,
            ActorRef<RaftJournal.Command> journal, RaftNode.Recovered recovered, List<Peer> initialVoters,
            ActorRef<Applier.Command> applier, long smIndex, long smTerm, Path snapshotDir) {
    this.ctx = ctx;
    this.self = self;
    this.settings = settings;
    this.journal = journal;
    this.snapshotDir = snapshotDir;
    this.blocking = ctx.getSystem().dispatchers().lookup(akka.actor.typed.DispatcherSelector.blocking());
    this.currentTerm = recovered.term();
    this.votedFor = recovered.votedFor();
    this.log = recovered.log();
    if (smIndex < log.snapshotIndex()) {
      throw new IllegalStateException("the state machine holds entries up to " + smIndex
          + " but the log was compacted up to " + log.snapshotIndex()
          + ": the state machine's data (<data-dir>/kv) was replaced or lost; restore this node from a backup");
    }
    this.pipeline = new PersistPipeline(log);
    if (log.termAt(smIndex) != smTerm) {
      log.compactTo(smIndex, smTerm);
      pipeline.recordHardState(new RaftJournal.Compacted(smIndex, smTerm));
      pipeline.noteCompacted(smIndex);
    }
    if (log.lastTerm() > currentTerm) {
      // the state machine applied entries of a term whose TermAdvanced a crash kept from the
      // journal: a node's term is never below its log's (a stale leader of the lower term would
      // otherwise still be followed)
      advanceTerm(log.lastTerm());
    }
    List<Peer> voters = recovered.voters();
    if (voters.isEmpty()) {
      // First start on an empty data dir: the initial voters become part of the durable state, so a
      // restart never takes them from the command line again.
      voters = List.copyOf(initialVoters);
      pipeline.recordHardState(new RaftJournal.Bootstrapped(voters));
    }
    this.peers = new Peers(self.id(), self.httpAddress(), voters, ActorRefResolver.get(ctx.getSystem()),
        ctx.getSystem().name());
    this.commitIndex = smIndex;
    this.applying = new Applying(applier, smIndex, smTerm);
    persistIfIdle();
  }

  /** A new pre-vote round: the replies that echo it are the only ones that count for it. */
  long nextPreVoteRound() {
    return ++preVoteRound;
  }

  List<String> voterIds() {
    return peers.voterIds();
  }

  boolean isVoter() {
    return peers.selfVotes();
  }

  int quorumSize() {
    return peers.quorumSize();
  }

  long durableIndex() {
    return pipeline.durableIndex();
  }

  // ---- durable changes ------------------------------------------------------------------------

  void advanceTerm(long term) {
    currentTerm = term;
    votedFor = null;
    leaderId = null;
    pipeline.recordHardState(new RaftJournal.TermAdvanced(term));
  }

  void castVote(String candidateId) {
    votedFor = candidateId;
    pipeline.recordHardState(new RaftJournal.VoteCast(currentTerm, candidateId));
  }

  /** Appends at the tail (leader). */
  void appendLocal(LogEntry entry) {
    log.append(entry);
    pipeline.noteLogWritten(entry.index());
  }

  void noteLogWritten(long fromIndex) {
    pipeline.noteLogWritten(fromIndex);
  }

  long journaledIndex() {
    return pipeline.journaledIndex();
  }

  /** Sends what changed to the journal, unless a batch is in flight (then it goes with the next). */
  void persistIfIdle() {
    RaftJournal.Persist batch = pipeline.nextBatch();
    if (batch != null) {
      journal.tell(batch);
    }
  }

  RaftJournal.Persist nextBatch() {
    return pipeline.nextBatch();
  }

  void onPersisted(long seq) {
    pipeline.onPersisted(seq);
  }

  /** Sends a Raft message once the current term and vote are durable. */
  void send(ActorRef<RaftNode.Command> to, RaftNode.Command message) {
    pipeline.send(to, tagged(message));
  }

  /** Sends once everything written to the log so far is durable. */
  void sendAfterLog(ActorRef<RaftNode.Command> to, RaftNode.Command message) {
    pipeline.sendAfterLog(to, tagged(message));
  }

  /** Sends a message to a peer now, with nothing to wait for. */
  void tellPeer(ActorRef<RaftNode.Command> to, RaftNode.Command message) {
    to.tell(tagged(message));
  }

  /** {@code message} in the envelope every peer message travels in: tagged with this node's cluster id. */
  private RaftNode.FromCluster tagged(RaftNode.Command message) {
    return new RaftNode.FromCluster(self.clusterId(), message);
  }

  /**
   * The message inside {@code envelope} when it comes from this node's cluster; else null, and the
   * first message of each foreign sender (at most {@value #MAX_FOREIGN_SENDERS} of them) is logged.
   */
  RaftNode.Command fromOwnCluster(RaftNode.FromCluster envelope) {
    if (envelope.clusterId() == self.clusterId()) {
      return envelope.message();
    }
    String sender = envelope.message() instanceof RaftNode.RaftMessage m ? m.sender()
        : envelope.message() instanceof RaftNode.PreVote pv ? pv.candidateId()
        : envelope.message() instanceof RaftNode.PreVoteReply r ? r.voterId()
        : "?";
    String key = sender + "/" + envelope.clusterId();
    if (foreignSenders.size() < MAX_FOREIGN_SENDERS && foreignSenders.add(key)) {
      ctx.getLog().warn("{} refuses Raft messages from '{}' {}: this node belongs to cluster {}"
              + " (another cluster, or an old node at an address a restored cluster uses; said once per sender)",
          self.id(), sender, envelope.clusterId() == 0 ? "without a cluster id (a version before cluster ids)"
              : "of cluster " + RaftNode.clusterIdText(envelope.clusterId()), RaftNode.clusterIdText(self.clusterId()));
    }
    return null;
  }

  private static final int MAX_FOREIGN_SENDERS = 64;
  /** Senders of another cluster already logged, as "id/clusterId". */
  private final java.util.Set<String> foreignSenders = new java.util.HashSet<>();

  // ---- apply and snapshots ----------------------------------------------------------------------

  /**
   * Hands what is committed to the state machine, whether or not this node's own copy is durable
   * yet (a committed entry is durable on a majority; waiting for the local fsync too would add it
   * to every write's latency). A crash may then leave the state machine ahead of the log; the
   * constructor starts the log after the state machine's index, as after an installed snapshot.
   */
  void applyCommitted() {
    if (applying.sentIndex < commitIndex) {
      applying.applyUpTo(commitIndex, log);
      onApplied(applying.sentIndex);
    }
  }

  /**
   * Everything up to {@code index} went to the applier, which applies it in order before anything
   * sent later (a Sync, a Query): for the node it counts as applied. Maybe a snapshot is due.
   */
  void onApplied(long index) {
    applying.appliedIndex = Math.max(applying.appliedIndex, index);
    if (applying.snapshotDue(settings)) {
      applying.requestSync(ctx.getSelf());
    }
  }

  /** POST /v1/cluster/snapshot: sync now (or answer with the last one when nothing was applied since). */
  void takeSnapshot(ActorRef<RaftNode.SnapshotTaken> replyTo) {
    // (what was handed to the applier, not what it confirmed: a write already answered to its
    // client may not be confirmed yet, and the applier syncs after applying what came before)
    if (!applying.syncInFlight && applying.sentIndex == applying.snapshotIndex && applying.snapshotBytes > 0) {
      replyTo.tell(new RaftNode.SnapshotTaken(applying.snapshotIndex, applying.snapshotTerm, applying.snapshotBytes));
      return;
    }
    snapshotWaiters.add(replyTo);
    if (!applying.syncInFlight && !applying.restoring) {
      applying.requestSync(ctx.getSelf());
    }
  }

  /**
   * The state machine is durable up to {@code index}: compact the log up to the compaction point
   * ({@link Applying#compactionPoint}), in memory and, with the next batch, in the journal.
   *
   * @param keepFrom the first index the role still needs in the log (a leader's snapshot transfers)
   */
  void onSynced(RaftNode.Synced synced, long keepFrom) {
    applying.onSynced(synced.index(), synced.term(), synced.bytes());
    compact(keepFrom);
    for (ActorRef<RaftNode.SnapshotTaken> w : snapshotWaiters) {
      w.tell(new RaftNode.SnapshotTaken(applying.snapshotIndex, applying.snapshotTerm, applying.snapshotBytes));
    }
    snapshotWaiters.clear();
    if (applying.snapshotDue(settings)) {
      applying.requestSync(ctx.getSelf());
    }
  }

  void compact(long keepFrom) {
    long point = applying.compactionPoint(settings, keepFrom);
    if (point > log.snapshotIndex() && point <= log.lastIndex()) {
      long term = log.termAt(point);
      log.compactTo(point, term);
      pipeline.noteCompacted(point);
      pipeline.recordHardState(new RaftJournal.Compacted(point, term));
      ctx.getLog().debug("{} compacted its log up to {} (state machine durable at {})", self.id(), point,
          applying.snapshotIndex);
    }
  }

  // ---- status ---------------------------------------------------------------------------------

  RaftNode.Status status(Map<String, long[]> leaderView) {
    List<RaftNode.Member> members = new ArrayList<>();
    for (Peer p : peers.voters()) {
      long[] view = leaderView == null ? null : leaderView.get(p.id());
      members.add(new RaftNode.Member(p.id(), p.address(), peers.http(p.id()), true,
          view == null ? null : view[0], view == null ? null : view[1]));
    }
    return new RaftNode.Status(self.id(), role, currentTerm, leaderId, commitIndex, applying.appliedIndex,
        log.lastIndex(), applying.snapshotIndex, log.firstIndex(), members,
        self.clusterId() == 0 ? null : RaftNode.clusterIdText(self.clusterId()));
  }

  RaftNode.Health health() {
    String reason;
    if (leaderId == null) {
      reason = "no leader known";
    } else if (applying.restoring) {
      reason = "installing a snapshot from the leader";
    } else if (applying.appliedIndex < commitIndex) {
      reason = "applying: " + applying.appliedIndex + " of " + commitIndex + " committed entries";
    } else {
      reason = "ok";
    }
    return new RaftNode.Health("ok".equals(reason), reason, leaderId, commitIndex, applying.appliedIndex);
  }
}
