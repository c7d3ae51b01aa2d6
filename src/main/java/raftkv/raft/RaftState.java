package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.TimerScheduler;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKvException;
import raftkv.kv.KeyValue;
import raftkv.kv.KvResult;
import raftkv.kv.KvStore;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The working state of one node, shared by whichever role it is in: the durable part (term, vote,
 * log, voters) with the pipeline that persists it, the volatile part (commit and apply indices,
 * the state machine), and the outbox that holds messages until what they depend on is durable.
 *
 * <p>Persist before you speak: every outgoing Raft message waits for the batch that holds the
 * current term and vote ({@link #send}); a success reply to AppendEntries also waits for the
 * entries it acknowledges ({@link #sendAfterLog}). At most one batch is in flight to the journal;
 * what arrives meanwhile goes into the next batch (group commit).
 */
final class RaftState {
  final ActorContext<RaftNode.Command> ctx;
  final RaftNode.NodeIdentity self;
  final RaftSettings settings;
  final ActorRef<RaftJournal.Command> journal;
  TimerScheduler<RaftNode.Command> timers;

  // durable (working copy; the journal holds the truth)
  long currentTerm;
  String votedFor;
  List<Peer> voters;
  final RaftLog log;

  // volatile
  long commitIndex;
  long lastApplied;
  String leaderId;
  long lastLeaderContactNanos;
  String role = "follower";
  final KvStore store = new KvStore();
  final Map<String, String> httpAddresses = new HashMap<>();
  final Map<String, ActorRef<RaftNode.Command>> peerRefs = new LinkedHashMap<>();

  /**
   * The last pre-vote round this node started. It starts at random, so that a round of this
   * incarnation is not mistaken for one of an incarnation before a restart.
   */
  private long preVoteRound = java.util.concurrent.ThreadLocalRandom.current().nextLong();

  /** Writes proposed by this node as leader, by log index: answered when that index is applied. */
  final Map<Long, PendingWrite> pendingWrites = new HashMap<>();

  record PendingWrite(long term, ActorRef<RaftNode.ClientReply> replyTo) {}

  // persistence pipeline
  /** Tells this incarnation's journal acknowledgements from those of one before a restart. */
  final long incarnation = java.util.concurrent.ThreadLocalRandom.current().nextLong();
  private long openSeq = 1;
  private long ackedSeq;
  private long inflightSeq;
  private long inflightLastIndex;
  private final List<RaftJournal.Event> openHardState = new ArrayList<>();
  private long openFromIndex = Long.MAX_VALUE;
  private long hardStateSeq;
  /** The log up to here is durable and equal to the in-memory log. */
  long durableIndex;

  private record Deferred(ActorRef<RaftNode.Command> to, RaftNode.Command message, long requiredSeq) {}

  private final ArrayDeque<Deferred> outbox = new ArrayDeque<>();
  /**
   * Whether the batch in flight carries messages that the journal sends once it is durable: until
   * it is acknowledged, later messages queue behind them, so that none overtakes them.
   */
  private boolean journalSends;

  RaftState(ActorContext<RaftNode.Command> ctx, RaftNode.NodeIdentity self, RaftSettings settings,
            ActorRef<RaftJournal.Command> journal, RaftNode.Recovered recovered, List<Peer> initialVoters) {
    this.ctx = ctx;
    this.self = self;
    this.settings = settings;
    this.journal = journal;
    this.currentTerm = recovered.term();
    this.votedFor = recovered.votedFor();
    this.log = recovered.log();
    this.durableIndex = log.lastIndex();
    if (recovered.voters().isEmpty()) {
      // First start on an empty data dir: the initial voters become part of the durable state, so a
      // restart never takes them from the command line again.
      this.voters = List.copyOf(initialVoters);
      openHardState.add(new RaftJournal.Bootstrapped(this.voters));
      hardStateSeq = openSeq;
      persistIfIdle();
    } else {
      this.voters = recovered.voters();
    }
    this.commitIndex = log.snapshotIndex();
    this.lastApplied = log.snapshotIndex();
    httpAddresses.put(self.id(), self.httpAddress());
    ActorRefResolver resolver = ActorRefResolver.get(ctx.getSystem());
    String system = ctx.getSystem().name();
    for (Peer p : voters) {
      if (!p.id().equals(self.id())) {
        peerRefs.put(p.id(), resolver.resolveActorRef(
            "akka://" + system + "@" + p.host() + ":" + p.port() + "/system/raftkv"));
      }
    }
  }

  /** A new pre-vote round: the replies that echo it are the only ones that count for it. */
  long nextPreVoteRound() {
    return ++preVoteRound;
  }

  List<String> voterIds() {
    return voters.stream().map(Peer::id).toList();
  }

  boolean isVoter() {
    return voters.stream().anyMatch(p -> p.id().equals(self.id()));
  }

  int quorumSize() {
    return Quorum.majority(voters.size());
  }

  // ---- durable changes ------------------------------------------------------------------------

  void advanceTerm(long term) {
    currentTerm = term;
    votedFor = null;
    leaderId = null;
    openHardState.add(new RaftJournal.TermAdvanced(term));
    hardStateSeq = openSeq;
  }

  void castVote(String candidateId) {
    votedFor = candidateId;
    openHardState.add(new RaftJournal.VoteCast(currentTerm, candidateId));
    hardStateSeq = openSeq;
  }

  /** Appends at the tail (leader). */
  void appendLocal(LogEntry entry) {
    log.append(entry);
    noteLogWritten(entry.index());
  }

  /** Records that the in-memory log changed from {@code fromIndex} on (appended or replaced). */
  void noteLogWritten(long fromIndex) {
    openFromIndex = Math.min(openFromIndex, fromIndex);
    durableIndex = Math.min(durableIndex, fromIndex - 1);
  }

  /**
   * The log up to here has been handed to the journal (it is durable, or in the batch in flight);
   * what follows waits in the open batch for the one in flight to finish.
   */
  long journaledIndex() {
    return openFromIndex == Long.MAX_VALUE ? log.lastIndex() : openFromIndex - 1;
  }

  /** The batch that will hold everything changed so far: wait for it to speak about the log. */
  long lastRequestedSeq() {
    if (!openHardState.isEmpty() || openFromIndex != Long.MAX_VALUE) {
      return openSeq;
    }
    return inflightSeq != 0 ? inflightSeq : ackedSeq;
  }

  /**
   * Sends what changed to the journal, unless a batch is in flight (then it goes with the next).
   * Only for the bootstrap in the constructor; while the node runs, Role closes one batch at the
   * end of each message ({@link #nextBatch}), so that one message's changes (a new term and a
   * vote, say) share one batch and one fsync.
   */
  void persistIfIdle() {
    RaftJournal.Persist batch = nextBatch();
    if (batch != null) {
      journal.tell(batch);
    }
  }

  /**
   * Closes the open batch and marks it in flight, for the caller to send to the journal; null when
   * nothing changed or a batch is in flight already.
   */
  RaftJournal.Persist nextBatch() {
    if (inflightSeq != 0 || (openHardState.isEmpty() && openFromIndex == Long.MAX_VALUE)) {
      return null;
    }
    List<RaftJournal.Event> events = new ArrayList<>(openHardState);
    if (openFromIndex != Long.MAX_VALUE) {
      long from = openFromIndex;
      events.add(new RaftJournal.EntriesAppended(from, log.tail(from)));
    }
    inflightSeq = openSeq;
    inflightLastIndex = log.lastIndex();
    openSeq++;
    openHardState.clear();
    openFromIndex = Long.MAX_VALUE;
    // What waits for this batch leaves with it: the journal sends it as soon as the batch is durable.
    // No batch was in flight, so everything in the outbox waits for this one. Order per peer holds
    // because Artery queues all messages to one node in one queue, whichever thread offers them:
    // the journal's come before its Persisted, and the node's later ones after that.
    List<RaftJournal.Send> whenDurable = outbox.isEmpty() ? List.of() : new ArrayList<>(outbox.size());
    while (!outbox.isEmpty() && outbox.peekFirst().requiredSeq() <= inflightSeq) {
      Deferred d = outbox.pollFirst();
      whenDurable.add(new RaftJournal.Send(d.to(), d.message()));
    }
    journalSends = !whenDurable.isEmpty();
    return new RaftJournal.Persist(incarnation, inflightSeq, events, whenDurable);
  }

  /**
   * The journal acknowledged batch {@code seq}: release what waited for it. The next batch goes out
   * at the end of the message (Role), with everything else that message changed.
   */
  void onPersisted(long seq) {
    if (seq != inflightSeq || seq == 0) {
      throw new IllegalStateException("journal acknowledged batch " + seq + " while " + inflightSeq + " was in flight");
    }
    ackedSeq = seq;
    inflightSeq = 0;
    journalSends = false; // the journal sent this batch's messages before it acknowledged it
    // entries replaced in memory since that batch left are not durable in their new form yet
    durableIndex = Math.max(durableIndex, Math.min(inflightLastIndex, openFromIndex - 1));
    while (!outbox.isEmpty() && outbox.peekFirst().requiredSeq() <= ackedSeq) {
      Deferred d = outbox.pollFirst();
      d.to().tell(d.message());
    }
  }

  /** Sends a Raft message once the current term and vote are durable. */
  void send(ActorRef<RaftNode.Command> to, RaftNode.Command message) {
    sendAfter(to, message, hardStateSeq);
  }

  /** Sends once everything written to the log so far is durable. */
  void sendAfterLog(ActorRef<RaftNode.Command> to, RaftNode.Command message) {
    sendAfter(to, message, lastRequestedSeq());
  }

  private void sendAfter(ActorRef<RaftNode.Command> to, RaftNode.Command message, long requiredSeq) {
    if (requiredSeq <= ackedSeq && outbox.isEmpty() && !journalSends) {
      to.tell(message);
    } else {
      // keep the outbox in order of the batches it waits for (it only ever grows at the tail); only
      // onPersisted releases it, so a message queued behind those that the journal sends stays
      // behind them
      long seq = Math.max(requiredSeq, outbox.isEmpty() ? 0 : outbox.peekLast().requiredSeq());
      outbox.addLast(new Deferred(to, message, seq));
    }
  }

  // ---- apply ----------------------------------------------------------------------------------

  /** Applies committed entries in log order, answering the writes this node proposed. */
  void applyCommitted() {
    while (lastApplied < commitIndex) {
      long index = lastApplied + 1;
      LogEntry entry = log.entry(index);
      KvResult result = null;
      String error = null;
      if (entry.payload() instanceof LogEntry.ClientCommand c) {
        try {
          result = store.apply(c.command());
        } catch (RuntimeException e) {
          // deterministic: every node fails the same entry the same way and skips it
          error = e.getMessage();
        }
      }
      lastApplied = index;
      PendingWrite w = pendingWrites.remove(index);
      if (w != null) {
        if (w.term() != entry.term()) {
          w.replyTo().tell(new RaftNode.Failed(RaftKvException.Kind.UNAVAILABLE,
              "leadership changed before the write was committed; it was not applied"));
        } else if (result != null) {
          reply(w.replyTo(), result, true);
        } else {
          w.replyTo().tell(new RaftNode.Failed(RaftKvException.Kind.BAD_REQUEST,
              error == null ? "the command could not be applied" : error));
        }
      }
    }
  }

  /**
   * Answers a client. The answer to a request that another node forwarded crosses the network;
   * one too large for a frame would be dropped there, and the client would wait for its timeout
   * and learn nothing. It gets an error that says why instead: for a read, TOO_LARGE (nothing
   * happened); for a write, which was applied, TIMEOUT with a message that says so.
   */
  void reply(ActorRef<RaftNode.ClientReply> to, KvResult result, boolean write) {
    // (not to.path(): an ask's ref makes and registers a path of its own when asked for one)
    if (akka.actor.typed.javadsl.Adapter.toClassic(to) instanceof akka.actor.ActorRefScope scope && !scope.isLocal()) {
      long bytes = replyBytesBound(result);
      if (bytes > settings.maxBytesPerAppend()) {
        String why = "its result of up to " + bytes + " bytes is more than a request forwarded between nodes can carry back ("
            + settings.maxBytesPerAppend() + "); send it to the leader ("
            + (self.httpAddress() == null || self.httpAddress().isEmpty() ? "node " + self.id() : "http://" + self.httpAddress()) + ")";
        to.tell(write
            ? new RaftNode.Failed(RaftKvException.Kind.TIMEOUT, "the write was applied, but " + why + ", or read the keys")
            : new RaftNode.Failed(RaftKvException.Kind.TOO_LARGE, "the read was not answered: " + why
                + ", or read fewer keys at a time"));
        return;
      }
    }
    to.tell(new RaftNode.Ok(result));
  }

  /**
   * A bound on the size of {@code result} in the Jackson CBOR of a client reply: each string at
   * 3 bytes a character, each value's bytes, and 256 bytes for the field names and numbers of
   * each key-value and result.
   */
  static long replyBytesBound(KvResult result) {
    if (result instanceof KvResult.GetDone g) {
      return 256 + (g.kv() == null ? 0 : keyValueBytesBound(g.kv()));
    } else if (result instanceof KvResult.RangeDone r) {
      long n = 256;
      for (KeyValue kv : r.kvs()) {
        n += keyValueBytesBound(kv);
      }
      return n;
    } else if (result instanceof KvResult.TxnDone t) {
      long n = 256;
      for (KvResult r : t.results()) {
        n += replyBytesBound(r);
      }
      return n;
    }
    return 256;
  }

  private static long keyValueBytesBound(KeyValue kv) {
    return 256 + 3L * kv.key().length() + (kv.value() == null ? 0 : kv.value().length);
  }

  // ---- status ---------------------------------------------------------------------------------

  ClusterStatus status(Map<String, long[]> leaderView) {
    List<ClusterStatus.Member> members = new ArrayList<>();
    for (Peer p : voters) {
      long[] view = leaderView == null ? null : leaderView.get(p.id());
      members.add(new ClusterStatus.Member(p.id(), p.address(), httpAddresses.get(p.id()), true,
          view == null ? null : view[0], view == null ? null : view[1]));
    }
    return new ClusterStatus(self.id(), role, currentTerm, leaderId, commitIndex, lastApplied,
        log.lastIndex(), log.snapshotIndex(), store.revision(), members);
  }

  Health health() {
    String reason;
    if (leaderId == null) {
      reason = "no leader known";
    } else if (lastApplied < commitIndex) {
      reason = "applying: " + lastApplied + " of " + commitIndex + " committed entries";
    } else {
      reason = "ok";
    }
    return new Health("ok".equals(reason), reason, leaderId, commitIndex, lastApplied);
  }
}
