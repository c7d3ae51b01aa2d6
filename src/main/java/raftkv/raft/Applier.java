package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.PostStop;
import akka.actor.typed.javadsl.Behaviors;

import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * Drives the {@link StateMachine} on a thread of its own (the apply dispatcher), so that applying,
 * querying, syncing and restoring, which may touch the disk, never run on the Raft actor: Raft
 * hands it committed entries in log order and reads that ReadIndex released, and it answers the
 * clients itself. Messages from the Raft actor arrive in the order it sent them, so a read sent
 * after the entries up to its read index is answered from a state that holds them.
 */
final class Applier {
  private Applier() {}

  /** The dispatcher of the applier (reference.conf): one thread, apart from the Raft actor's. */
  static final String DISPATCHER = "raftkv.apply-dispatcher";

  sealed interface Command {}

  /**
   * Apply {@code entries}; {@code replies.get(i)}, when not null, gets the outcome of entry i
   * ({@code writes}: proposals this node made; a reply to a remote asker that is too large to travel
   * is replaced by an error that says the write was applied).
   */
  record Apply(List<StateMachine.Entry> entries, List<ActorRef<RaftNode.ClientReply>> replies) implements Command {}

  /** Answer a read from the applied state. */
  record Query(byte[] query, ActorRef<RaftNode.ClientReply> replyTo) implements Command {}

  /** Make the state durable, then tell the node {@link RaftNode.Synced}. */
  record Sync(ActorRef<RaftNode.Command> replyTo) implements Command {}

  /** Write a snapshot file of the current state into {@code dir} (off this thread), then tell {@link RaftNode.SnapshotFileReady}. */
  /**
   * {@code configs}: the node's configurations by the index each took effect at (RaftLog#configHistory);
   * the file carries the one in effect at the state machine's index.
   */
  record WriteSnapshotFile(Path dir, java.util.NavigableMap<Long, Membership> configs, ActorRef<RaftNode.Command> replyTo)
      implements Command {}

  /** Stream a snapshot (header, data, hash) of the current state into {@code out}, off this thread. */
  record StreamSnapshot(java.util.NavigableMap<Long, Membership> configs, java.io.OutputStream out,
                        CompletableFuture<long[]> done) implements Command {}

  /** Replace the state with the verified snapshot file; then tell {@link RaftNode.Restored}. */
  record Restore(Path file, SnapshotFile.Header header, ActorRef<RaftNode.Command> replyTo) implements Command {}

  /** Leadership changed (the state machine's leader-only work hangs off it). */
  record Leadership(long term, boolean leader) implements Command {}

  /**
   * Opens the state machine ({@code open} throws IllegalStateException with a one-line reason when
   * it cannot), tells the node where it stands, and closes it when the applier stops (the node
   * stopped or restarts: the next incarnation opens it again).
   */
  static Behavior<Command> create(java.util.function.Supplier<StateMachine> open, ActorRef<RaftNode.Command> node,
                                  RaftSettings settings) {
    return create(open, node, settings, null);
  }

  /**
   * {@code snapshotDir}: where the node keeps snapshot files; the configuration of the one at the
   * state machine's index, if any, goes with {@link RaftNode.StateMachineOpened} (for a node whose
   * journal missed the snapshot it installed last).
   */
  static Behavior<Command> create(java.util.function.Supplier<StateMachine> open, ActorRef<RaftNode.Command> node,
                                  RaftSettings settings, Path snapshotDir) {
    return Behaviors.setup(ctx -> {
      StateMachine sm;
      try {
        sm = open.get();
      } catch (RuntimeException e) {
        node.tell(new RaftNode.StateMachineFailed(describe(e)));
        return Behaviors.stopped();
      }
      // durable before the node builds its log on it: after a kill, what it holds may be writes
      // that are only in the page cache, and the node may compact or reset its log against them
      try {
        sm.sync();
      } catch (RuntimeException e) {
        sm.close(); // no PostStop for a behavior that failed in its setup: close it here, or its lock stays taken
        node.tell(new RaftNode.StateMachineFailed(describe(e)));
        return Behaviors.stopped();
      }
      node.tell(new RaftNode.StateMachineOpened(sm.appliedIndex(), sm.appliedTerm(),
          SnapshotFile.membershipOf(snapshotDir, sm.appliedIndex(), sm.appliedTerm())));
      Executor blocking = ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking());
      Replies replies = new Replies(settings);
      return Behaviors.receive(Command.class)
          .onMessage(Apply.class, a -> {
            List<StateMachine.Result> results = sm.apply(a.entries());
            for (int i = 0; i < results.size(); i++) {
              ActorRef<RaftNode.ClientReply> to = a.replies() == null ? null : a.replies().get(i);
              if (to != null) {
                StateMachine.Result r = results.get(i);
                if (r.error() != null) {
                  to.tell(new RaftNode.Failed(RaftNode.ErrorKind.BAD_REQUEST, r.error()));
                } else {
                  replies.reply(to, r.reply(), true);
                }
              }
            }
            // (no Applied back to the node per batch: that was two thread wake-ups per write on every
            // node; the node counts what it sent, and a Sync or Query sent later is answered after it)
            return Behaviors.same();
          })
          .onMessage(Query.class, q -> {
            byte[] result;
            try {
              result = sm.query(q.query());
            } catch (IllegalArgumentException e) {
              q.replyTo().tell(new RaftNode.Failed(RaftNode.ErrorKind.BAD_REQUEST, e.getMessage()));
              return Behaviors.same();
            }
            replies.reply(q.replyTo(), result, false);
            return Behaviors.same();
          })
          .onMessage(Sync.class, s -> {
            long index = sm.sync();
            s.replyTo().tell(new RaftNode.Synced(index, sm.appliedTerm(), sm.sizeBytes()));
            return Behaviors.same();
          })
          .onMessage(WriteSnapshotFile.class, w -> {
            StateMachine.Snapshot view = sm.snapshot(); // cheap: a point-in-time view
            CompletableFuture.runAsync(() -> {
              try (view) {
                Membership membership = membershipAt(w.configs(), view.index());
                Path file = SnapshotFile.write(w.dir(), view, membership, 2);
                SnapshotFile.Header header = new SnapshotFile.Header(view.index(), view.term(), membership, 0);
                w.replyTo().tell(new RaftNode.SnapshotFileReady(header, file, java.nio.file.Files.size(file), null));
              } catch (Exception e) {
                w.replyTo().tell(new RaftNode.SnapshotFileReady(null, null, 0, describe(e)));
              }
            }, blocking);
            return Behaviors.same();
          })
          .onMessage(StreamSnapshot.class, w -> {
            StateMachine.Snapshot view = sm.snapshot();
            CompletableFuture.runAsync(() -> {
              try (view) {
                SnapshotFile.stream(w.out(), view, membershipAt(w.configs(), view.index()));
                w.done().complete(new long[] {view.index(), view.term()});
              } catch (Exception e) {
                w.done().completeExceptionally(e);
              }
            }, blocking);
            return Behaviors.same();
          })
          .onMessage(Restore.class, r -> {
            String error = null;
            try (InputStream in = SnapshotFile.openData(r.file(), r.header())) {
              sm.restore(in);
              if (sm.appliedIndex() != r.header().index()) {
                error = "the snapshot's state machine is at " + sm.appliedIndex() + ", its header says " + r.header().index();
              }
            } catch (Exception e) {
              error = describe(e);
            }
            r.replyTo().tell(new RaftNode.Restored(sm.appliedIndex(), sm.appliedTerm(), sm.sizeBytes(), error));
            return Behaviors.same();
          })
          .onMessage(Leadership.class, l -> {
            sm.leadershipChanged(l.term(), l.leader());
            return Behaviors.same();
          })
          .onSignal(PostStop.class, s -> {
            sm.close();
            return Behaviors.same();
          })
          .build();
    });
  }

  static String describe(Throwable e) {
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }

  /**
   * Answers clients. The answer to a request that another node forwarded crosses the network;
   * one too large for a frame would be dropped there, and the client would wait for its timeout
   * and learn nothing. It gets an error that says why instead: for a read, TOO_LARGE (nothing
   * happened); for a write, which was applied, TIMEOUT with a message that says so.
   */
  static final class Replies {
    private final RaftSettings settings;

    Replies(RaftSettings settings) {
      this.settings = settings;
    }

    void reply(ActorRef<RaftNode.ClientReply> to, byte[] result, boolean write) {
      // (not to.path(): an ask's ref makes and registers a path of its own when asked for one)
      if (akka.actor.typed.javadsl.Adapter.toClassic(to) instanceof akka.actor.ActorRefScope scope && !scope.isLocal()) {
        long bytes = (result == null ? 0 : result.length) + 256L;
        if (bytes > settings.maxBytesPerAppend()) {
          String why = "its result of " + bytes + " bytes is more than a request forwarded between nodes can carry back ("
              + settings.maxBytesPerAppend() + "); send it to the leader";
          to.tell(write
              ? new RaftNode.Failed(RaftNode.ErrorKind.TIMEOUT, "the write was applied, but " + why + ", or read the keys")
              : new RaftNode.Failed(RaftNode.ErrorKind.TOO_LARGE, "the read was not answered: " + why
                  + ", or read fewer keys at a time"));
          return;
        }
      }
      to.tell(new RaftNode.Ok(result));
    }
  }

  /** The configuration in effect at {@code index}, from a node's configurations by the index each took effect at. */
  static Membership membershipAt(java.util.NavigableMap<Long, Membership> configs, long index) {
    java.util.Map.Entry<Long, Membership> e = configs.floorEntry(index);
    return e != null ? e.getValue() : configs.firstEntry().getValue();
  }
}
