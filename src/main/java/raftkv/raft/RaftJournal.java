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
import akka.persistence.typed.javadsl.SignalHandler;
import raftkv.CborSerializable;

import java.util.List;

/**
 * The durable half of a Raft node: term, vote, voters and log, event-sourced on the journal.
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

  /** Durable state while it is rebuilt; mutable, owned by this actor until handed over. */
  static final class Durable {
    long term;
    String votedFor;
    List<Peer> voters = List.of();
    RaftLog log = new RaftLog();
  }

  /** The dispatcher this actor runs on: the journal plugin's own, one thread (reference.conf). */
  static final String DISPATCHER = "raftkv.journal-dispatcher";

  private final ActorRef<RaftNode.Command> node;

  public static Behavior<Command> create(String nodeId, ActorRef<RaftNode.Command> node) {
    return Behaviors.setup(ctx -> new RaftJournal(PersistenceId.ofUniqueId("raft-" + nodeId), node));
  }

  private RaftJournal(PersistenceId id, ActorRef<RaftNode.Command> node) {
    super(id);
    this.node = node;
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
          s.voters = e.voters();
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
          if (s.log != null) { // null once handed over: the node owns the log from then on
            if (e.fromIndex() <= s.log.lastIndex()) {
              s.log.truncateFrom(e.fromIndex());
            }
            for (LogEntry entry : e.entries()) {
              s.log.append(entry);
            }
          }
          return s;
        })
        .build();
  }

  @Override
  public SignalHandler<Durable> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(RecoveryCompleted.instance(), state -> {
          node.tell(new RaftNode.Recovered(state.term, state.votedFor, state.voters, state.log));
          state.log = null;
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
