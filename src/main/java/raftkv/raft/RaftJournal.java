package raftkv.raft;

import com.fasterxml.jackson.annotation.JsonCreator;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import akka.persistence.typed.PersistenceId;
import akka.persistence.typed.RecoveryCompleted;
import akka.persistence.typed.RecoveryFailed;
import akka.persistence.typed.javadsl.CommandHandler;
import akka.persistence.typed.javadsl.EventHandler;
import akka.persistence.typed.javadsl.EventSourcedBehavior;
import akka.persistence.typed.javadsl.RetentionCriteria;
import akka.persistence.typed.javadsl.SignalHandler;
import raftkv.CborSerializable;

import java.util.List;

/**
 * The durable half of a Raft node: term, vote, voters and log, event-sourced on the journal.
 *
 * <p>Compaction (DESIGN.md §4): the node tells this actor with {@link Compacted} that the state
 * machine holds every entry up to an index durably; the log here drops them. Every
 * {@code raftkv.raft.journal-snapshot-every} events Akka saves this actor's state (term, vote,
 * voters, the compaction point and the log after it: small, since the log is compacted) as a
 * snapshot, fsynced ({@link SyncingSnapshotStore}), and deletes the events older than the
 * snapshot before it; LevelDB's compaction gives their space back. Recovery reads the newest
 * readable snapshot and the events after it, so term, vote and voters survive every deletion.
 *
 * <p>The node actor keeps the working copy of all of it and sends this actor one {@link Persist}
 * per batch; this actor writes the batch as one atomic journal write (fsync on), then sends the
 * Raft messages that waited for it and answers {@link RaftNode.Persisted}. No vote, append
 * acknowledgement or client reply leaves before the batch that it depends on is durable. After
 * recovery the rebuilt state is handed to the node ({@link RaftNode.Recovered}) and this actor
 * keeps no copy of the log.
 */
public final class RaftJournal extends EventSourcedBehavior<RaftJournal.Command, RaftJournal.Event, RaftJournal.Durable> {

  /** Commands: only the owning node sends them. */
  public sealed interface Command {}

  /**
   * Write {@code events} atomically; once they are durable, send {@code whenDurable} (the Raft
   * messages that depend on them, in order) and then tell the node {@code Persisted(incarnation, seq)}.
   */
  public record Persist(long incarnation, long seq, List<Event> events, List<Send> whenDurable) implements Command {}

  /** A message for {@code to} that may leave only once the batch that carries it is durable. */
  public record Send(ActorRef<RaftNode.Command> to, RaftNode.Command message) {}

  /** Events, past tense, as STYLE.md asks. */
  public sealed interface Event extends CborSerializable {}

  /** The initial voters, written once when a node starts on an empty data dir. */
  public record Bootstrapped(List<Peer> voters) implements Event {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Bootstrapped {}
  }

  /** The node moved to {@code term} (and has voted for nobody in it yet). */
  public record TermAdvanced(long term) implements Event {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public TermAdvanced {}
  }

  /** The node voted for {@code candidateId} in {@code term}. */
  public record VoteCast(long term, String candidateId) implements Event {}

  /** Every entry at {@code fromIndex} and after is replaced by {@code entries}. */
  public record EntriesAppended(long fromIndex, List<LogEntry> entries) implements Event {}

  /**
   * The state machine holds every entry up to {@code index} (of {@code term}) durably: the log
   * drops them ({@link RaftLog#compactTo}: when it does not hold that entry, it is replaced by an
   * empty log that starts after it, as after an installed snapshot).
   */
  public record Compacted(long index, long term, Membership membership) implements Event {
    /** A compaction of the node's own log: the configuration at {@code index} follows from the entries dropped. */
    public Compacted(long index, long term) {
      this(index, term, null);
    }
  }

  /**
   * The durable state: rebuilt on recovery, kept up to date by every event, and saved as Akka's
   * snapshot. Mutable, owned by this actor; Akka saves a snapshot while it holds back the next
   * command, so no event changes it while it is written.
   */
  static final class Durable {
    long term;
    String votedFor;
    /** The log, with the configuration at its start and those its Config entries hold. */
    RaftLog log = new RaftLog();

    Durable() {}

    Durable(long term, String votedFor, RaftLog log) {
      this.term = term;
      this.votedFor = votedFor;
      this.log = log;
    }
  }

  /** The dispatcher this actor runs on: the journal plugin's own, one thread (reference.conf). */
  static final String DISPATCHER = "raftkv.journal-dispatcher";

  private final ActorRef<RaftNode.Command> node;
  private final int snapshotEvery;

  public static Behavior<Command> create(String nodeId, ActorRef<RaftNode.Command> node, int snapshotEvery) {
    return Behaviors.setup(ctx -> new RaftJournal(PersistenceId.ofUniqueId("raft-" + nodeId), node, snapshotEvery));
  }

  private RaftJournal(PersistenceId id, ActorRef<RaftNode.Command> node, int snapshotEvery) {
    super(id);
    this.node = node;
    this.snapshotEvery = snapshotEvery;
  }

  /** A snapshot every {@code snapshotEvery} events; the events before the older of the last two go. */
  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(snapshotEvery, 2).withDeleteEventsOnSnapshot();
  }

  @Override
  public String journalPluginId() {
    return "raftkv.journal";
  }

  @Override
  public String snapshotPluginId() {
    return "raftkv.snapshot-store";
  }

  @Override
  public Durable emptyState() {
    return new Durable();
  }

  @Override
  public CommandHandler<Command, Event, Durable> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Persist.class, (state, p) -> p.events().isEmpty()
            ? Effect().none().thenRun(s -> durable(p))
            : Effect().persist(p.events()).thenRun(s -> durable(p)))
        .build();
  }

  /**
   * The batch is on disk: its messages leave from here, without a hop through the node actor (on a
   * follower the append acknowledgement is what the leader waits for), and the node hears of it last.
   */
  private void durable(Persist p) {
    for (Send s : p.whenDurable()) {
      s.to().tell(s.message());
    }
    node.tell(new RaftNode.Persisted(p.incarnation(), p.seq()));
  }

  @Override
  public EventHandler<Durable, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(Bootstrapped.class, (s, e) -> {
          if (s.log.membership().isEmpty()) {
            s.log.setBaseMembership(Membership.ofVoters(e.voters()));
          }
          return s;
        })
        .onEvent(TermAdvanced.class, (s, e) -> {
          s.term = e.term();
          s.votedFor = null;
          return s;
        })
        .onEvent(VoteCast.class, (s, e) -> {
          s.term = e.term();
          s.votedFor = e.candidateId();
          return s;
        })
        .onEvent(EntriesAppended.class, (s, e) -> {
          long from = e.fromIndex();
          int skip = 0;
          if (from <= s.log.snapshotIndex()) {
            // entries the log was compacted past meanwhile (the node compacts on its own copy)
            skip = (int) Math.min(e.entries().size(), s.log.snapshotIndex() + 1 - from);
            from = s.log.snapshotIndex() + 1;
          }
          if (from <= s.log.lastIndex()) {
            s.log.truncateFrom(from);
          }
          if (from > s.log.lastIndex() + 1 && skip < e.entries().size()) {
            throw new IllegalStateException("journal corrupt: entries from " + from + " follow a log that ends at "
                + s.log.lastIndex());
          }
          for (int i = skip; i < e.entries().size(); i++) {
            s.log.append(e.entries().get(i));
          }
          return s;
        })
        .onEvent(Compacted.class, (s, e) -> {
          s.log.compactTo(e.index(), e.term(), e.membership());
          return s;
        })
        .build();
  }

  @Override
  public SignalHandler<Durable> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(RecoveryCompleted.instance(), state -> {
          node.tell(new RaftNode.Recovered(state.term, state.votedFor, state.log.copy()));
        })
        .onSignal(RecoveryFailed.class, (state, failed) -> node.tell(new RaftNode.RecoveryFailed(
            describe(failed.getFailure()))))
        .build();
  }

  /** The failure's message, or its class when it has none (never "null" in the node's one-line reason). */
  private static String describe(Throwable failure) {
    return failure.getMessage() != null ? failure.getMessage() : failure.toString();
  }
}
