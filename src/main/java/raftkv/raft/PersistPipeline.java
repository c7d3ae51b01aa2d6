package raftkv.raft;

import akka.actor.typed.ActorRef;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Persist before you speak: the node's journal batches and the outbox of messages that wait for
 * them. Every outgoing Raft message waits for the batch that holds the current term and vote
 * ({@link #send}); a success reply to AppendEntries also waits for the entries it acknowledges
 * ({@link #sendAfterLog}). At most one batch is in flight to the journal; what arrives meanwhile
 * goes into the next batch (group commit). Plain class, owned by the node's actor.
 */
final class PersistPipeline {
  private final RaftLog log;
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
  private long durableIndex;

  private record Deferred(ActorRef<RaftNode.Command> to, RaftNode.Command message, long requiredSeq) {}

  private final ArrayDeque<Deferred> outbox = new ArrayDeque<>();
  /**
   * Whether the batch in flight carries messages that the journal sends once it is durable: until
   * it is acknowledged, later messages queue behind them, so that none overtakes them.
   */
  private boolean journalSends;

  PersistPipeline(RaftLog log) {
    this.log = log;
    this.durableIndex = log.lastIndex();
  }

  long durableIndex() {
    return durableIndex;
  }

  /** A change of term, vote or voters, or a compaction: the next batch carries it, before any entries. */
  void recordHardState(RaftJournal.Event event) {
    openHardState.add(event);
    hardStateSeq = openSeq;
  }

  /** Records that the in-memory log changed from {@code fromIndex} on (appended or replaced). */
  void noteLogWritten(long fromIndex) {
    openFromIndex = Math.min(openFromIndex, fromIndex);
    durableIndex = Math.min(durableIndex, fromIndex - 1);
  }

  /**
   * The log now starts after {@code index} (compacted, or replaced by a snapshot): entries at or
   * before it are no longer the open batch's to write.
   */
  void noteCompacted(long index) {
    if (openFromIndex <= index) {
      openFromIndex = index + 1 > log.lastIndex() ? Long.MAX_VALUE : index + 1;
    }
    if (log.lastIndex() == index && log.snapshotIndex() == index) {
      // nothing is left in the log (all of it compacted, or replaced by an installed snapshot):
      // what it held is durable in the state machine
      durableIndex = index;
    }
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
    durableIndex = Math.max(durableIndex, Math.min(Math.min(inflightLastIndex, log.lastIndex()), openFromIndex - 1));
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
}
