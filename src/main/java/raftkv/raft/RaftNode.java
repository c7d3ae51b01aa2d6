package raftkv.raft;

import com.fasterxml.jackson.annotation.JsonCreator;
import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.SupervisorStrategy;
import akka.actor.typed.Terminated;
import akka.actor.typed.javadsl.Behaviors;
import raftkv.CborSerializable;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * One Raft server: spawns its {@link RaftJournal}, waits for recovery, then runs as
 * {@link Follower}, {@link Candidate} or {@link Leader}, each a behavior that returns the next.
 * This file holds the node's whole protocol.
 */
public final class RaftNode {
  private RaftNode() {}

  /** Everything the node actor accepts. */
  public interface Command {}

  // ---- between peers (remote, §5) -------------------------------------------------------------

  /** A message between Raft peers; every one carries the sender's term (checked once, in Role). */
  public interface RaftMessage extends Command, CborSerializable {
    long term();

    /** The id of the node that sent it. */
    String sender();
  }

  /**
   * {@code transfer}: the candidate campaigns because the leader handed leadership to it
   * (TimeoutNow, dissertation §3.10); voters then grant it even while they hear from that leader.
   */
  public record RequestVote(long term, String candidateId, long lastLogIndex, long lastLogTerm, boolean transfer)
      implements RaftMessage {
    public RequestVote(long term, String candidateId, long lastLogIndex, long lastLogTerm) {
      this(term, candidateId, lastLogIndex, lastLogTerm, false);
    }

    @Override
    public String sender() {
      return candidateId;
    }
  }

  public record VoteReply(long term, String voterId, boolean granted) implements RaftMessage {
    @Override
    public String sender() {
      return voterId;
    }
  }

  /**
   * AppendEntries (§5.3); an empty one is a heartbeat. {@code seq} grows with every message a
   * leader sends and is echoed back, so that a ReadIndex can tell which replies came after it.
   */
  public record AppendEntries(long term, String leaderId, String leaderHttp, long prevLogIndex, long prevLogTerm,
                              List<LogEntry> entries, long leaderCommit, long seq, String leaderAddress)
      implements RaftMessage {
    /** Without the leader's Raft address (tests; a leader of a version before membership changes). */
    public AppendEntries(long term, String leaderId, String leaderHttp, long prevLogIndex, long prevLogTerm,
                         List<LogEntry> entries, long leaderCommit, long seq) {
      this(term, leaderId, leaderHttp, prevLogIndex, prevLogTerm, entries, leaderCommit, seq, null);
    }

    @Override
    public String sender() {
      return leaderId;
    }
  }

  /**
   * The reply to AppendEntries. On success {@code matchIndex} is durable on the follower. On
   * failure {@code conflictIndex}/{@code conflictTerm} let the leader skip a whole term at a time
   * (conflictTerm -1: the follower's log is too short).
   */
  public record AppendReply(long term, long requestTerm, String followerId, String followerHttp, boolean success,
                            long matchIndex, long prevLogIndex, long conflictIndex, long conflictTerm, long seq)
      implements RaftMessage {
    @Override
    public String sender() {
      return followerId;
    }
  }

  /**
   * Pre-Vote (dissertation §9.6): would you vote for me in {@code nextTerm}? Changes no state on
   * either side, so a node that was cut off cannot raise everyone's term and depose a working
   * leader. Not a RaftMessage: its term must not move the receiver's term. {@code round} names
   * this pre-vote round of the candidate, and the reply echoes it: a grant delayed from an
   * earlier round of the same term must not count in a later one, when the leader it did not
   * hear from then may be alive again.
   */
  public record PreVote(long nextTerm, String candidateId, long lastLogIndex, long lastLogTerm, long round)
      implements Command, CborSerializable {}

  /** {@code term} is the voter's current term, so that a candidate that fell behind catches up. */
  public record PreVoteReply(long term, long nextTerm, String voterId, boolean granted, long round)
      implements Command, CborSerializable {}

  /**
   * InstallSnapshot (§7, dissertation §5.3), one chunk: {@code data} holds the snapshot file's bytes
   * from {@code offset} on; {@code done} marks the last chunk. A follower answers every chunk, and
   * the leader sends the next one only then (one chunk in flight per follower).
   */
  public record InstallSnapshot(long term, String leaderId, String leaderHttp, long snapshotIndex, long snapshotTerm,
                                long offset, byte[] data, boolean done, String leaderAddress) implements RaftMessage {
    public InstallSnapshot(long term, String leaderId, String leaderHttp, long snapshotIndex, long snapshotTerm,
                           long offset, byte[] data, boolean done) {
      this(term, leaderId, leaderHttp, snapshotIndex, snapshotTerm, offset, data, done, null);
    }

    @Override
    public String sender() {
      return leaderId;
    }
  }

  /**
   * The answer to one InstallSnapshot chunk: {@code nextOffset} is the offset the follower expects
   * next (0: start again). {@code installed}: the whole snapshot is durable and restored, and the
   * follower's log now continues after {@code snapshotIndex}.
   */
  public record InstallSnapshotReply(long term, String followerId, long snapshotIndex, long nextOffset,
                                     boolean installed) implements RaftMessage {
    @Override
    public String sender() {
      return followerId;
    }
  }

  /**
   * From the leader to the voter it hands leadership to (dissertation §3.10), once that voter's log
   * is as long as the leader's: campaign now, without a pre-vote.
   */
  public record TimeoutNow(long term, String leaderId) implements RaftMessage {
    @Override
    public String sender() {
      return leaderId;
    }
  }

  /**
   * How every message between peers travels: tagged with the sender's cluster id. A node drops
   * what another cluster sends (a node of an old cluster at an address a restored cluster now
   * uses, two clusters configured with the same addresses), so that no vote, entry or snapshot
   * of one cluster ever reaches another. Messages a node's own code tells it locally (tests) come
   * without the envelope.
   */
  public record FromCluster(long clusterId, Command message) implements Command, CborSerializable {}

  // ---- clients (may be forwarded from another node) -----------------------------------------

  /**
   * Replicate {@code command} (the state machine's encoding); the answer goes to {@code replyTo}
   * once it is applied (or failed).
   */
  public record Propose(byte[] command, ActorRef<ClientReply> replyTo, int hops)
      implements Command, CborSerializable {}

  /** Answer {@code query}, through ReadIndex on the leader unless {@code linearizable} is false. */
  public record Read(byte[] query, boolean linearizable, ActorRef<ClientReply> replyTo, int hops)
      implements Command, CborSerializable {}

  // ---- membership and leadership (API.md §5; forwarded to the leader like a write) ----------

  /** A single-server membership change. */
  @com.fasterxml.jackson.annotation.JsonTypeInfo(use = com.fasterxml.jackson.annotation.JsonTypeInfo.Id.NAME, property = "t")
  @com.fasterxml.jackson.annotation.JsonSubTypes({
      @com.fasterxml.jackson.annotation.JsonSubTypes.Type(value = AddMember.class, name = "add"),
      @com.fasterxml.jackson.annotation.JsonSubTypes.Type(value = RemoveMember.class, name = "remove"),
      @com.fasterxml.jackson.annotation.JsonSubTypes.Type(value = PromoteMember.class, name = "promote")})
  public sealed interface MembershipChange extends CborSerializable {}

  /** Adds a voter, or a learner when {@code learner}; {@code httpAddress} may be null. */
  public record AddMember(String id, String host, int port, String httpAddress, boolean learner)
      implements MembershipChange {}

  /** Removes a voter or a learner, the leader included. */
  public record RemoveMember(String id) implements MembershipChange {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public RemoveMember {}
  }

  /** Makes a caught-up learner a voter. */
  public record PromoteMember(String id) implements MembershipChange {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public PromoteMember {}
  }

  /**
   * Apply {@code change} (on the leader; a follower forwards it): answered with {@link
   * MembershipChanged} once the new configuration is committed, or {@link Failed} (NOT_FOUND,
   * CONFLICT, BAD_REQUEST: nothing changed; UNAVAILABLE; TIMEOUT: unknown).
   */
  public record ChangeMembership(MembershipChange change, ActorRef<ClientReply> replyTo, int hops)
      implements Command, CborSerializable {}

  /**
   * Hand leadership to voter {@code to} (null: the most up-to-date voter): answered with {@link
   * LeaderTransferred} once the new leader is known, or {@link Failed}.
   */
  public record TransferLeadership(String to, ActorRef<ClientReply> replyTo, int hops)
      implements Command, CborSerializable {}

  public record GetStatus(ActorRef<Status> replyTo) implements Command {}

  public record GetHealth(ActorRef<Health> replyTo) implements Command {}

  /**
   * Make the state machine durable and compact the log now (POST /v1/cluster/snapshot); the answer
   * names the snapshot: the state machine's durable index, its term, and its size in bytes.
   */
  public record TakeSnapshot(ActorRef<SnapshotTaken> replyTo) implements Command {}

  public record SnapshotTaken(long index, long term, long bytes) {}

  /**
   * Write a backup (a whole snapshot: header, the state machine's data, SHA-256) into {@code out},
   * off the node's threads; {@code done} completes with its index and term once it is written. A
   * linearizable one is taken by the leader after a ReadIndex, so it holds every write acknowledged
   * before it was asked for; elsewhere {@code done} fails with {@link NotLeader}. Local only.
   */
  public record Backup(boolean linearizable, java.io.OutputStream out,
                       java.util.concurrent.CompletableFuture<long[]> done) implements Command {}

  /** This node cannot serve the request: {@code leaderHttp} (when known) can. */
  public static final class NotLeader extends RuntimeException {
    private final String leaderHttp;

    public NotLeader(String leaderHttp, String message) {
      super(message, null, false, false);
      this.leaderHttp = leaderHttp;
    }

    public String leaderHttp() {
      return leaderHttp;
    }
  }

  /** The answer to Propose or Read: the state machine's reply, as it encoded it. */
  public sealed interface ClientReply extends CborSerializable {}

  public record Ok(byte[] result) implements ClientReply {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Ok {}
  }

  public record Failed(ErrorKind kind, String message) implements ClientReply {}

  /** A membership change is committed: the configuration at {@code index}. */
  public record MembershipChanged(long index, List<Member> members) implements ClientReply {}

  /** A leadership transfer is done: {@code leaderId} leads. */
  public record LeaderTransferred(String leaderId) implements ClientReply {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaderTransferred {}
  }

  /** Why a request failed, and so what the client knows of its fate. */
  public enum ErrorKind {
    /** The state machine refused it; nothing was applied. */
    BAD_REQUEST,
    /** Too large to carry; nothing was applied (for a write; a read was not answered). */
    TOO_LARGE,
    /** No leader known, or it cannot be reached: the request was not applied. */
    UNAVAILABLE,
    /** Proposed but not known to be committed in time: the outcome is unknown. */
    TIMEOUT,
    /** The member named is not one (membership calls); nothing changed. */
    NOT_FOUND,
    /** Refused in the cluster's present state (another change pending, a learner not caught up, ...); nothing changed. */
    CONFLICT
  }

  /** A node's view of the cluster. */
  public record Status(String id, String role, long term, String leaderId, long commitIndex, long appliedIndex,
                       long lastLogIndex, long snapshotIndex, long logStartIndex, List<Member> members,
                       String clusterId, String memberState) {}

  /** {@code matchIndex} and {@code lastContactMillis} are known on the leader only (else null). */
  public record Member(String id, String address, String httpAddress, boolean voter, Long matchIndex,
                       Long lastContactMillis) implements CborSerializable {}

  /**
   * Healthy when the node knows a leader and has applied all it knows to be committed (a node that
   * is not a member yet, or was removed, is not).
   */
  public record Health(boolean healthy, String reason, String leaderId, long commitIndex, long appliedIndex) {}

  // ---- internal ------------------------------------------------------------------------------

  /** From the journal: the durable state, rebuilt (the log is the node's own copy). */
  record Recovered(long term, String votedFor, RaftLog log) implements Command {}

  /** From the applier: the state machine is open, applied up to {@code index} of {@code term}. */
  record StateMachineOpened(long index, long term, Membership snapshotMembership) implements Command {
    StateMachineOpened(long index, long term) {
      this(index, term, null);
    }
  }

  /** From the applier: the state machine cannot be opened (a one-line reason). */
  record StateMachineFailed(String reason) implements Command {}

  /** From the applier: the state machine is durable up to {@code index} (of {@code term}), {@code bytes} large. */
  record Synced(long index, long term, long bytes) implements Command {}

  /** From the applier: a received snapshot replaced the state ({@code error} null), or could not. */
  record Restored(long index, long term, long bytes, String error) implements Command {}

  /** A snapshot file for followers is written (or {@code error}). */
  record SnapshotFileReady(SnapshotFile.Header header, Path file, long bytes, String error) implements Command {}

  /** A chunk of the snapshot file for {@code followerId} was read (or {@code error}). */
  record ChunkRead(String followerId, Path file, long offset, byte[] data, boolean last, String error)
      implements Command {}

  /**
   * A received chunk is on disk (or {@code error}); with the last chunk the whole file was checked
   * and kept as {@code file}, and {@code header} is what it says of itself (else both are null).
   */
  record ChunkStored(long term, long snapshotIndex, long nextOffset, SnapshotFile.Header header, Path file,
                     String error) implements Command {}

  /** An adopted cluster id is in the data dir (or could not be written: {@code error}). */
  record ClusterIdStored(long clusterId, String leaderId, String error) implements Command {}

  /**
   * A node started with {@code --join} (API.md §1): the members it contacts, and, when its data
   * dir holds no cluster id yet, how to store the id it adopts from the first leader that
   * replicates to it (blocking; run off the actor). Null where no join applies.
   */
  public record Join(List<Peer> contacts, java.util.function.LongConsumer storeClusterId) {}

  /** From the journal: it could not read the data dir. */
  record RecoveryFailed(String reason) implements Command {}

  /** From the journal: batch {@code seq} of node incarnation {@code incarnation} is durable. */
  record Persisted(long incarnation, long seq) implements Command {}

  enum Tick implements Command { ELECTION_TIMEOUT, HEARTBEAT, FLUSH_PROPOSALS, FLUSH_READS, TRANSFER_TIMEOUT }

  /** What the node tells an optional listener about its life (the launcher uses it). */
  public sealed interface Lifecycle {}

  public record Started(String nodeId, long term, long lastLogIndex) implements Lifecycle {}

  public record StartFailed(String reason) implements Lifecycle {}

  /**
   * The node's behavior. A failure of the node restarts it from the journal (with back-off): the
   * durable term, vote and log come back from disk, so a restart never forgets a vote.
   *
   * <p>A journal that cannot be read at the node's first start in this process (a corrupt or
   * foreign data dir) stops the node and tells {@code lifecycle} {@link StartFailed}, for the
   * launcher to exit with one line. Once the node has run, a failed write stops the journal and
   * the node restarts (Role); a recovery that then fails (the disk still full, the journal's
   * circuit breaker still open) fails the node again, and the supervisor tries once more after
   * its back-off, until the journal can be read. {@link Started} is told once: a restart is not
   * a start (the launcher would bind its HTTP port again).
   */
  public static Behavior<Command> create(NodeIdentity identity, List<Peer> initialVoters, RaftSettings settings,
                                         java.util.function.Supplier<StateMachine> openStateMachine, Path snapshotDir,
                                         ActorRef<Lifecycle> lifecycle) {
    return create(identity, initialVoters, null, settings, openStateMachine, snapshotDir, lifecycle);
  }

  /**
   * {@code join}: for a node started with --join (then {@code initialVoters} is empty), else null.
   */
  public static Behavior<Command> create(NodeIdentity identity, List<Peer> initialVoters, Join join,
                                         RaftSettings settings,
                                         java.util.function.Supplier<StateMachine> openStateMachine, Path snapshotDir,
                                         ActorRef<Lifecycle> lifecycle) {
    StartHistory history = new StartHistory(); // outside the supervised behavior: survives restarts
    Behavior<Command> node = Behaviors.setup(ctx -> {
      ActorRef<RaftJournal.Command> journal =
          ctx.spawn(RaftJournal.create(identity.id(), ctx.getSelf(), settings.journalSnapshotEvery()), "journal",
              DispatcherSelector.fromConfig(RaftJournal.DISPATCHER));
      ctx.watch(journal);
      // the applier opens the state machine on its own thread and closes it when it stops
      ActorRef<Applier.Command> applier = ctx.spawn(Applier.create(openStateMachine, ctx.getSelf(), settings, snapshotDir),
          "applier", DispatcherSelector.fromConfig(Applier.DISPATCHER));
      ctx.watch(applier); // an applier that fails restarts the node (Role), which opens the state machine again
      StateMachineOpened[] opened = new StateMachineOpened[1];
      Recovered[] recovered = new Recovered[1];
      String[] reported = new String[1]; // the reason in this incarnation's RecoveryFailed, if any
      return Behaviors.withStash(1_000, stash -> {
        // both the journal and the state machine are read: run as a follower
        java.util.function.BiFunction<Recovered, StateMachineOpened, Behavior<Command>> start = (r, o) -> {
                long budget = settings.appendBudget(identity.id(), identity.httpAddress());
                if (r.log().largestEntryBytes() > budget) {
                  // written before commands had a size limit: no AppendEntries could carry it
                  return startFailed(ctx, identity, lifecycle, "the log holds an entry of " + r.log().largestEntryBytes()
                      + " bytes, more than one AppendEntries may carry (" + budget + "); raise raftkv.raft.max-bytes-per-append"
                      + " and akka.remote.artery.advanced.maximum-frame-size above it on every node");
                }
                RaftState state;
                try {
                  state = new RaftState(ctx, identity, settings, journal, r, initialVoters,
                      join == null ? List.of() : join.contacts(), applier, o.index(), o.term(), o.snapshotMembership(),
                      snapshotDir);
                  if (join != null && join.storeClusterId() != null) {
                    Long adopted = history.adoptedClusterId;
                    if (adopted != null) {
                      state.clusterId = adopted; // stored by an incarnation before a restart
                    } else {
                      state.clusterIdKnown = false;
                      state.storeClusterId = id -> {
                        join.storeClusterId().accept(id);
                        history.adoptedClusterId = id;
                      };
                    }
                  }
                } catch (IllegalStateException e) {
                  return startFailed(ctx, identity, lifecycle, e.getMessage());
                }
                if (!history.started) {
                  history.started = true;
                  ctx.getLog().info("Node {} recovered: term {}, state machine at {}, log {}..{}, voters {}",
                      identity.id(), r.term(), o.index(), state.log.firstIndex(), state.log.lastIndex(),
                      state.voterIds());
                  if (lifecycle != null) {
                    lifecycle.tell(new Started(identity.id(), r.term(), r.log().lastIndex()));
                  }
                } else {
                  ctx.getLog().info("Node {} recovered again{}: term {}, log up to {}, voters {}",
                      identity.id(), history.failedRecoveries == 0 ? ""
                          : " after " + history.failedRecoveries + " failed tries",
                      r.term(), r.log().lastIndex(), state.voterIds());
                }
                history.failedRecoveries = 0;
                return Behaviors.withTimers(timers -> {
                  state.timers = timers;
                  return stash.unstashAll(new Follower(state, null).start());
                });
        };
        return Behaviors.receive(Command.class)
          .onMessage(StateMachineOpened.class, o -> {
            opened[0] = o;
            return recovered[0] == null ? Behaviors.same() : start.apply(recovered[0], o);
          })
          .onMessage(StateMachineFailed.class, f -> {
            if (!history.started) {
              return startFailed(ctx, identity, lifecycle, "cannot open the state machine: " + f.reason());
            }
            history.failedRecoveries++;
            throw new JournalUnavailable("node " + identity.id() + " cannot open its state machine after a failure ("
                + history.failedRecoveries + (history.failedRecoveries == 1 ? " try" : " tries") + "): "
                + f.reason() + "; it will try again after a back-off of at most 5 s");
          })
          .onMessage(Recovered.class, r -> {
            recovered[0] = r;
            return opened[0] == null ? Behaviors.same() : start.apply(r, opened[0]);
          })
          .onMessage(RecoveryFailed.class, f -> {
            if (!history.started) {
              return startFailed(ctx, identity, lifecycle, f.reason());
            }
            // The journal stops right after this; its Terminated triggers the retry. (After a
            // restart, one from the journal before it may still arrive here: it only lends its
            // reason to the next failure, if there is one.)
            reported[0] = f.reason();
            return Behaviors.same();
          })
          .onSignal(Terminated.class, t -> {
            if (t.getRef().equals(applier)) {
              String reason = "the state machine's applier stopped while the journal was read"
                  + (t instanceof akka.actor.typed.ChildFailed failed ? ": " + failed.getCause() : "");
              if (!history.started) {
                return startFailed(ctx, identity, lifecycle, reason);
              }
              throw new JournalUnavailable("node " + identity.id() + ": " + reason + "; restarting");
            }
            if (!t.getRef().equals(journal)) {
              return Behaviors.same();
            }
            String reason = journalStopReason(t, reported[0]);
            if (!history.started) {
              return startFailed(ctx, identity, lifecycle, reason);
            }
            history.failedRecoveries++;
            throw new JournalUnavailable("node " + identity.id() + " cannot read its journal after a journal failure ("
                + history.failedRecoveries + (history.failedRecoveries == 1 ? " try" : " tries") + "): "
                + reason + "; it will try again after a back-off of at most 5 s");
          })
          // Until the journal is read (which after a journal failure may take as long as the disk
          // does), nothing that can be large is kept: clients hear at once that the node is not
          // ready, and Raft messages are dropped (their senders retry: a leader on its next
          // heartbeat, a candidate in its next election).
          .onMessage(Propose.class, p -> {
            p.replyTo().tell(RECOVERING);
            return Behaviors.same();
          })
          .onMessage(Read.class, r -> {
            r.replyTo().tell(RECOVERING);
            return Behaviors.same();
          })
          .onMessage(GetHealth.class, h -> {
            h.replyTo().tell(new Health(false, "recovering its journal", null, 0, 0));
            return Behaviors.same();
          })
          .onMessage(GetStatus.class, g -> {
            if (!stash.isFull()) {
              stash.stash(g); // answered once the state is known
            }
            return Behaviors.same();
          })
          .onAnyMessage(m -> Behaviors.same())
          .build();
      });
    });
    return Behaviors.supervise(node).onFailure(SupervisorStrategy.restartWithBackoff(
        Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
  }

  private static final Failed RECOVERING = new Failed(ErrorKind.UNAVAILABLE,
      "this node is still reading its journal; retry shortly");

  /** What the node's incarnations in this process share; only the node actor touches it. */
  private static final class StartHistory {
    /** Whether the node has recovered once in this process. */
    boolean started;
    /** Recoveries that failed in a row since the node last ran. */
    int failedRecoveries;
    /** The cluster id a node started with --join adopted and stored (written off the actor: volatile). */
    volatile Long adoptedClusterId;
  }

  /** At the first start the journal cannot be read: stop, and tell the launcher (which exits). */
  private static Behavior<Command> startFailed(akka.actor.typed.javadsl.ActorContext<Command> ctx,
                                               NodeIdentity identity, ActorRef<Lifecycle> lifecycle, String reason) {
    ctx.getLog().error("Node {} cannot read its journal: {}", identity.id(), reason);
    if (lifecycle != null) {
      lifecycle.tell(new StartFailed("cannot read the journal: " + reason));
    }
    return Behaviors.stopped();
  }

  /** Why the journal stopped before it recovered: its own report, or the cause of its failure. */
  private static String journalStopReason(Terminated t, String reported) {
    if (reported != null) {
      return reported;
    }
    if (t instanceof akka.actor.typed.ChildFailed failed && failed.getCause() != null) {
      Throwable cause = failed.getCause();
      while (cause.getCause() != null && cause.getCause() != cause) {
        cause = cause.getCause(); // the journal's own failure, not the wrapper of the event sourcing
      }
      return cause.getMessage() != null ? cause.getMessage() : cause.toString();
    }
    return "the journal stopped before its recovery completed";
  }

  /**
   * The node's journal cannot be read for now: the supervisor logs this one line (no stack trace,
   * the message says it all) and restarts the node after its back-off.
   */
  private static final class JournalUnavailable extends RuntimeException {
    JournalUnavailable(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Who this node is: its id, the HTTP address it advertises (empty when it has none), and the id
   * of the cluster it belongs to (kept in its data dir; see {@link FromCluster}).
   */
  public record NodeIdentity(String id, String httpAddress, long clusterId) {
    /** A node of cluster 0 (tests that run nodes without a data dir). */
    public NodeIdentity(String id, String httpAddress) {
      this(id, httpAddress, 0);
    }
  }

  /** A cluster id as it is shown and stored: 16 hex digits. */
  public static String clusterIdText(long clusterId) {
    return String.format("%016x", clusterId);
  }
}
