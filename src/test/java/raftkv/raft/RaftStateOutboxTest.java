package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.javadsl.Behaviors;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * Persist before you speak (RaftState's outbox): a message that depends on a batch leaves with that
 * batch, for the journal to send once it is durable, and nothing said later overtakes it.
 *
 * <p>Each step runs inside the node's actor; the step then tells the peer a marker, so that a peer
 * that sees the marker first has been told nothing else by that step (one sender, one order).
 */
class RaftStateOutboxTest {

  private static ActorTestKit kit;

  @BeforeAll
  static void start() {
    kit = ActorTestKit.create(ConfigFactory.parseString("akka.actor.provider = local")
        .withFallback(ConfigFactory.load()).resolve());
  }

  @AfterAll
  static void stop() {
    kit.shutdownTestKit();
  }

  /** Runs {@code body} on the node's state inside its actor. */
  private record Step(Function<RaftState, Object> body, CompletableFuture<Object> result) implements RaftNode.Command {}

  private static final RaftNode.Command MARKER = new RaftNode.PreVoteReply(0, 0, "marker", false, 0);

  private ActorRef<RaftNode.Command> node;
  private TestProbe<RaftNode.Command> peer;

  private Object step(Function<RaftState, Object> body) throws Exception {
    CompletableFuture<Object> result = new CompletableFuture<>();
    node.tell(new Step(body, result));
    return result.get(5, TimeUnit.SECONDS);
  }

  private void peerGetsOnly(RaftNode.Command... messages) {
    for (RaftNode.Command m : messages) {
      assertEquals(m, peer.receiveMessage(Duration.ofSeconds(5)));
    }
    assertEquals(MARKER, peer.receiveMessage(Duration.ofSeconds(5)));
  }

  /** A message n1 sends, as it travels: tagged with its cluster id (0, as the node has no data dir). */
  private static RaftNode.Command message(int n) {
    return new RaftNode.FromCluster(0, new RaftNode.VoteReply(n, "n1", true));
  }

  /** What the step hands to RaftState.send: the message, before the envelope. */
  private static RaftNode.Command sent(int n) {
    return ((RaftNode.FromCluster) message(n)).message();
  }

  @Test
  void aMessageWaitingForABatchLeavesWithItAndLaterMessagesQueueBehindIt() throws Exception {
    peer = kit.createTestProbe();
    TestProbe<RaftJournal.Command> journal = kit.createTestProbe();
    // a node that has bootstrapped before: its journal holds its voters
    RaftNode.Recovered recovered = new RaftNode.Recovered(1, null,
        new RaftLog(0, 0, Membership.ofVoters(List.of(new Peer("n1", "127.0.0.1", 1)))));
    node = kit.spawn(Behaviors.setup(ctx -> {
      RaftState s = new RaftState(ctx, new RaftNode.NodeIdentity("n1", ""), RaftSettings.fromConfig(kit.system().settings().config()),
          journal.ref(), recovered, List.of(new Peer("n1", "127.0.0.1", 1)), kit.<Applier.Command>createTestProbe().ref(), 0, 0,
          java.nio.file.Path.of("unused"));
      return Behaviors.receiveMessage(m -> {
        Step st = (Step) m;
        Object out = st.body().apply(s);
        peer.ref().tell(MARKER);
        st.result().complete(out);
        return Behaviors.same();
      });
    }));
    ActorRef<RaftNode.Command> to = peer.ref();

    // a vote, and a message that announces it: the message waits for the vote's batch and goes with it
    RaftJournal.Persist first = assertInstanceOf(RaftJournal.Persist.class, step(s -> {
      s.castVote("n2");
      s.send(to, sent(1));
      return s.nextBatch();
    }));
    peerGetsOnly();
    assertEquals(List.of(new RaftJournal.VoteCast(1, "n2")), first.events());
    assertEquals(List.of(new RaftJournal.Send(to, message(1))), first.whenDurable());
    step(s -> {
      s.onPersisted(first.seq()); // the journal sent message 1 before this
      return null;
    });
    peerGetsOnly();

    // an append acknowledgement waits for the entry's batch; a message that needs nothing new still
    // waits behind it, or it would reach the peer before the acknowledgement
    RaftJournal.Persist second = assertInstanceOf(RaftJournal.Persist.class, step(s -> {
      s.appendLocal(new LogEntry(1, 1, new LogEntry.NoOp(1)));
      s.sendAfterLog(to, sent(2));
      RaftJournal.Persist batch = s.nextBatch();
      s.send(to, sent(3));
      return batch;
    }));
    peerGetsOnly();
    assertEquals(List.of(new RaftJournal.Send(to, message(2))), second.whenDurable());
    assertEquals(List.of(new RaftJournal.EntriesAppended(1, List.of(new LogEntry(1, 1, new LogEntry.NoOp(1))))),
        second.events());

    // while that batch is in flight, an acknowledgement of a newer entry waits for the next batch:
    // the batch in flight does not release it, the next one carries it
    assertEquals(true, step(s -> {
      s.appendLocal(new LogEntry(2, 1, new LogEntry.NoOp(1)));
      s.sendAfterLog(to, sent(4));
      return s.nextBatch() == null; // one batch in flight at a time
    }));
    peerGetsOnly();
    RaftJournal.Persist third = assertInstanceOf(RaftJournal.Persist.class, step(s -> {
      s.onPersisted(second.seq());
      return s.nextBatch();
    }));
    peerGetsOnly(message(3));
    assertEquals(List.of(new RaftJournal.Send(to, message(4))), third.whenDurable());
    assertEquals(List.of(new RaftJournal.EntriesAppended(2, List.of(new LogEntry(2, 1, new LogEntry.NoOp(1))))),
        third.events());
    step(s -> {
      s.onPersisted(third.seq());
      return null;
    });
    peerGetsOnly();

    // nothing waits any more: a message that needs nothing new leaves at once
    step(s -> {
      s.send(to, sent(5));
      return null;
    });
    peerGetsOnly(message(5));
  }
}
