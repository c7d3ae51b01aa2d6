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
    this(ctx, self, settings, journal, recovered, initialVoters, List.of(), applier, smIndex, smTerm, null, snapshotDir);
  }

  /**
   * @param joinContacts       for a node started with --join: the members it may hear from first
   * @param smMembership       the configuration of the snapshot file at the state machine's index,
   *                           if this node keeps one (null: none); used when the journal does not
   *                           hold that index (it missed the snapshot this node installed last)
   */
  RaftState(ActorContext<RaftNode.Command> ctx, RaftNode.NodeIdentity self, RaftSettings settings,
            ActorRef<RaftJournal.Command> journal, RaftNode.Recovered recovered, List<Peer> initialVoters,
            List<Peer> joinContacts, ActorRef<Applier.Command> applier, long smIndex, long smTerm,
            Membership smMembership, Path snapshotDir) {
    this.ctx = ctx;
    this.clusterId = self.clusterId();
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
    if (log.membership().isEmpty() && log.snapshotIndex() == 0 && log.lastIndex() == 0 && !initialVoters.isEmpty()) {
      // First start on an empty journal (a restored node's too): the initial voters become part of
      // the durable state, so a restart never takes them from the command line again. (A node
      // started with --join has none: it waits for a leader to replicate the configuration to it.)
      log.setBaseMembership(Membership.ofVoters(initialVoters));
      pipeline.recordHardState(new RaftJournal.Bootstrapped(List.copyOf(initialVoters)));
    }
    if (log.termAt(smIndex) != smTerm) {
      // The configuration at smIndex: the snapshot file's when this node installed one there;
      // else the log's (a node hands a Config entry to its state machine only once its own
      // journal holds it, and applies ahead of its journal only while the journal holds no entry
      // the log replaced: the journal's configurations up to smIndex are all committed ones).
      log.compactTo(smIndex, smTerm, smMembership);
      pipeline.recordHardState(new RaftJournal.Compacted(smIndex, smTerm, log.baseMembership()));
      pipeline.noteCompacted(smIndex);
    }
    if (log.lastTerm() > currentTerm) {
      // the state machine applied entries of a term whose TermAdvanced a crash kept from the
      // journal: a node's term is never below its log's (a stale leader of the lower term would
      // otherwise still be followed)
      advanceTerm(log.lastTerm());
    }
    this.peers = new Peers(self.id(), self.httpAddress(), log.membership().isEmpty() ? joinContacts : List.of(),
        ActorRefResolver.get(ctx.getSystem()), ctx.getSystem().name());
    syncMembership();
    this.commitIndex = smIndex;
    this.applying = new Applying(applier, smIndex, smTerm);
    persistIfIdle();
  }

  /** A new pre-vote round: the replies that echo it are the only ones that count for it. */
  long nextPreVoteRound() {
    return ++preVoteRound;
  }

  List<String> voterIds() {
    return membership().voterIds();
  }

  /** The configuration in effect: the last one appended to this node's log (DESIGN.md §7). */
  Membership membership() {
    return log.membership();
  }

  boolean isVoter() {
    return log.membership().isVoter(self.id());
  }

  private Membership votersOf;
  private List<Membership.Member> voters = List.of();

  /** The voters of the configuration in effect (kept per configuration: the commit path asks on every reply). */
  List<Membership.Member> voters() {
    Membership m = log.membership();
    if (m != votersOf) {
      voters = m.voters();
      votersOf = m;
    }
    return voters;
  }

  int quorumSize() {
    return log.membership().quorumSize();
  }

  // ---- membership --------------------------------------------------------------------------------

  /** The configuration this node last acted on (see {@link #syncMembership}). */
  private Membership knownMembership;
  /** This node was a member, and the configuration in its log no longer lists it. */
  boolean removed;

  /**
   * Catches up with the configuration in the log (an entry appended, truncated, or a snapshot
   * installed): the peers known, and whether this node is still a member. True when it changed,
   * for the role to follow (a leader's per-member progress).
   */
  boolean syncMembership() {
    Membership m = log.membership();
    if (m == knownMembership) {
      return false;
    }
    Membership before = knownMembership;
    knownMembership = m;
    peers.update(log.configHistory().values());
    if (m.isMember(self.id())) {
      if (removed) {
        ctx.getLog().info("{} is a member again: the configuration that removed it was truncated", self.id());
      }
      removed = false;
    } else if (!m.isEmpty() && (before == null || before.isMember(self.id()))) {
      removed = true;
      ctx.getLog().info("{} was removed from the cluster: its configuration at index {} is {}; it no longer votes"
          + " or campaigns (wipe its data dir before it joins again)", self.id(), log.membershipIndex(), m.describe());
    }
    if (before != null) {
      ctx.getLog().info("{}: configuration at index {} now in effect: {}", self.id(), log.membershipIndex(), m.describe());
    }
    return true;
  }

  /** null for a voter; "learner", "joining" (no configuration yet) or "removed". */
  String memberState() {
    Membership m = log.membership();
    if (m.isEmpty()) {
      return "joining";
    }
    if (!m.isMember(self.id())) {
      return "removed";
    }
    return m.isVoter(self.id()) ? null : "learner";
  }

  // ---- requests forwarded to the leader (failed at once when the leader changes) ------------------

  private record Forwarded(long nanos, ActorRef<RaftNode.ClientReply> replyTo, boolean read) {}

  private static final int MAX_FORWARDED = 1 << 17;
  private final java.util.ArrayDeque<Forwarded> forwarded = new java.util.ArrayDeque<>();

  /**
   * A request this node forwarded to the leader: remembered for as long as its client waits, so
   * that it fails at once if the leader changes (the answer may have come already: a second one
   * goes nowhere, its ask being over).
   */
  void noteForwarded(ActorRef<RaftNode.ClientReply> replyTo, boolean read) {
    long now = System.nanoTime();
    long horizon = now - settings.requestTimeout().toNanos();
    while (!forwarded.isEmpty() && (forwarded.peekFirst().nanos() - horizon < 0 || forwarded.size() >= MAX_FORWARDED)) {
      forwarded.pollFirst();
    }
    forwarded.addLast(new Forwarded(now, replyTo, read));
  }

  /**
   * The leader they went to is gone or deposed: fail the forwarded requests now rather than when
   * their clients give up. A read changed nothing (503); a write may be in the old leader's log and
   * be committed by the next one, so its outcome is unknown (504).
   */
  void failForwarded(String why) {
    if (forwarded.isEmpty()) {
      return;
    }
    long horizon = System.nanoTime() - settings.requestTimeout().toNanos();
    RaftNode.Failed read = new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; the read was not answered, retry it");
    RaftNode.Failed write = new RaftNode.Failed(RaftNode.ErrorKind.TIMEOUT,
        why + " while the write was forwarded to it; its outcome is unknown");
    int n = 0;
    for (Forwarded f : forwarded) {
      if (f.nanos() - horizon >= 0) {
        f.replyTo().tell(f.read() ? read : write);
        n++;
      }
    }
    forwarded.clear();
    ctx.getLog().debug("{} failed {} forwarded requests: {}", self.id(), n, why);
  }

  // ---- a leadership transfer, seen from a node that is no longer (or not yet) the leader ----------

  /** Callers of a transfer this node started as leader: answered when a new leader is known. */
  final List<ActorRef<RaftNode.ClientReply>> transferWaiters = new ArrayList<>();
  /** Membership changes held back by a transfer (the old leader's removal): forwarded to the new leader. */
  final List<RaftNode.ChangeMembership> afterTransfer = new ArrayList<>();

  /** A leader other than this node is known: what waited for the transfer goes on. */
  void onNewLeaderKnown(String leader) {
    if (transferWaiters.isEmpty() && afterTransfer.isEmpty()) {
      return;
    }
    for (ActorRef<RaftNode.ClientReply> w : transferWaiters) {
      w.tell(new RaftNode.LeaderTransferred(leader));
    }
    transferWaiters.clear();
    ActorRef<RaftNode.Command> to = peers.ref(leader);
    for (RaftNode.ChangeMembership c : afterTransfer) {
      if (to != null) {
        to.tell(new RaftNode.ChangeMembership(c.change(), c.replyTo(), c.hops() + 1));
      } else {
        c.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, "the new leader cannot be reached; retry"));
      }
    }
    afterTransfer.clear();
    timers.cancel(RaftNode.Tick.TRANSFER_TIMEOUT);
  }

  /** No leader became known in time after a transfer. */
  void failTransferWaiters(String why) {
    for (ActorRef<RaftNode.ClientReply> w : transferWaiters) {
      w.tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why));
    }
    transferWaiters.clear();
    for (RaftNode.ChangeMembership c : afterTransfer) {
      c.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.UNAVAILABLE, why + "; nothing changed, retry"));
    }
    afterTransfer.clear();
  }

  long durableIndex() {
    return pipeline.durableIndex();
  }

  // ---- durable changes ------------------------------------------------------------------------

  void advanceTerm(long term) {
    currentTerm = term;
    votedFor = null;
    if (leaderId != null && !leaderId.equals(self.id())) {
      failForwarded("leader " + leaderId + " was replaced in term " + term);
    }
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
    return new RaftNode.FromCluster(clusterId, message);
  }

  /** This node's cluster id: from its data dir, or adopted from the leader that first replicated to it (--join). */
  long clusterId;
  /** False on a node started with --join whose data dir holds no cluster id yet. */
  boolean clusterIdKnown = true;
  /** Writes an adopted cluster id into the data dir (blocking: run on {@link #blocking}); null when it is known. */
  java.util.function.LongConsumer storeClusterId;
  private boolean storingClusterId;

  /**
   * A node started with --join that has no cluster id takes the id of the first AppendEntries or
   * InstallSnapshot from one of the members it was told to contact (never from a vote request:
   * any node can ask for votes), and stores it in its data dir before it acts on any message. The
   * message itself is dropped: the leader sends again with its next heartbeat.
   */
  void adoptClusterId(RaftNode.FromCluster envelope) {
    if (storingClusterId || storeClusterId == null) {
      return;
    }
    RaftNode.Command m = envelope.message();
    String sender = m instanceof RaftNode.AppendEntries ae ? ae.leaderId()
        : m instanceof RaftNode.InstallSnapshot is ? is.leaderId() : null;
    if (sender == null || !peers.isContact(sender)) {
      ctx.getLog().debug("{} (joining) ignores {} from {}: not a leader's message from a member named in --join",
          self.id(), m.getClass().getSimpleName(), sender);
      return;
    }
    storingClusterId = true;
    long id = envelope.clusterId();
    java.util.function.LongConsumer store = storeClusterId;
    ctx.pipeToSelf(java.util.concurrent.CompletableFuture.runAsync(() -> store.accept(id), blocking),
        (ok, failure) -> new RaftNode.ClusterIdStored(id, sender, failure == null ? null : Applier.describe(failure)));
  }

  void onClusterIdStored(RaftNode.ClusterIdStored stored) {
    storingClusterId = false;
    if (stored.error() != null) {
      throw new IllegalStateException("cannot store the cluster id in the data dir: " + stored.error());
    }
    clusterId = stored.clusterId();
    clusterIdKnown = true;
    storeClusterId = null;
    ctx.getLog().info("{} joins cluster {}: first contacted by leader {}", self.id(),
        RaftNode.clusterIdText(clusterId), stored.leaderId());
  }

  /**
   * The message inside {@code envelope} when it comes from this node's cluster; else null, and the
   * first message of each foreign sender (at most {@value #MAX_FOREIGN_SENDERS} of them) is logged.
   */
  RaftNode.Command fromOwnCluster(RaftNode.FromCluster envelope) {
    if (envelope.clusterId() == clusterId) {
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
              : "of cluster " + RaftNode.clusterIdText(envelope.clusterId()), RaftNode.clusterIdText(clusterId));
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
    long upTo = commitIndex;
    long durable = durableIndex();
    if (upTo > durable) {
      // Ahead of this node's own journal only while that journal holds no entry the log has
      // since replaced, and never past a Config entry it does not hold yet: after a crash the
      // constructor then rebuilds the configuration at the state machine's index from the journal.
      if (truncatedFrom != 0 && durable >= truncatedFrom) {
        truncatedFrom = 0;
      }
      if (truncatedFrom != 0) {
        upTo = durable;
      } else {
        long config = log.firstConfigAfter(Math.max(applying.sentIndex, durable));
        if (config != -1 && config <= upTo) {
          upTo = config - 1;
        }
      }
    }
    if (applying.sentIndex < upTo) {
      applying.applyUpTo(upTo, log);
      onApplied(applying.sentIndex);
    }
  }

  /** The lowest index a follower's log replaced since its journal last caught up (0: none). */
  private long truncatedFrom;

  /** The log replaced entries from {@code index} on, which the journal still holds until the next batch. */
  void noteTruncated(long index) {
    truncatedFrom = truncatedFrom == 0 ? index : Math.min(truncatedFrom, index);
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
      pipeline.recordHardState(new RaftJournal.Compacted(point, term, log.baseMembership()));
      ctx.getLog().debug("{} compacted its log up to {} (state machine durable at {})", self.id(), point,
          applying.snapshotIndex);
    }
  }

  // ---- status ---------------------------------------------------------------------------------

  RaftNode.Status status(Map<String, long[]> leaderView) {
    List<RaftNode.Member> members = new ArrayList<>();
    for (Membership.Member p : log.membership().members()) {
      long[] view = leaderView == null ? null : leaderView.get(p.id());
      String http = peers.http(p.id());
      members.add(new RaftNode.Member(p.id(), p.address(), http != null ? http : p.httpAddress(), p.voter(),
          view == null ? null : view[0], view == null ? null : view[1]));
    }
    String state = memberState();
    return new RaftNode.Status(self.id(), "follower".equals(role) && "learner".equals(state) ? "learner" : role,
        currentTerm, leaderId, commitIndex, applying.appliedIndex, log.lastIndex(), applying.snapshotIndex,
        log.firstIndex(), members, clusterId == 0 ? null : RaftNode.clusterIdText(clusterId), state);
  }

  RaftNode.Health health() {
    String reason;
    if (log.membership().isEmpty()) {
      reason = "not a member yet: waiting for the leader to replicate to it (POST /v1/cluster/members on the leader adds it)";
    } else if (removed) {
      reason = "removed from the cluster";
    } else if (leaderId == null) {
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
