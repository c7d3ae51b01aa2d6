package raftkv.raft;

import akka.actor.testkit.typed.javadsl.FishingOutcomes;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Pre-Vote (dissertation §9.6) counts a grant only in the round it answers. A node that asked for
 * pre-votes, heard nothing in time and asked again must not take a grant delayed from the first
 * round as one for the second: the leader that the voter had not heard from then may be alive
 * now, and a real election would depose it (its term would rise through this node's replies).
 *
 * <p>One real node (n1, on a LevelDB journal) with two peers: n2 is a probe in another
 * ActorSystem that answers as the test says, n3 is an address where nothing runs. A majority is
 * n1 and n2, so one grant of n2 is all it takes to start an election.
 */
class PreVoteRoundTest {
  private static final Duration WAIT = Duration.ofSeconds(15);
  private final RemoteSystems systems = new RemoteSystems();

  @TempDir
  Path dir;

  @AfterEach
  void tearDown() throws Exception {
    systems.close();
  }

  @Test
  void aGrantDelayedFromAnEarlierPreVoteRoundDoesNotStartAnElection() throws Exception {
    // given: n2, a probe at /system/raftkv of its own system, and n1, a real node that counts on it
    ActorSystem<Void> peerSystem = systems.start("");
    TestProbe<RaftNode.Command> n2 = TestProbe.create(peerSystem);
    peerSystem.systemActorOf(Behaviors.<RaftNode.Command>receiveMessage(m -> {
      n2.ref().tell(m instanceof RaftNode.FromCluster envelope ? envelope.message() : m);
      return Behaviors.same();
    }), "raftkv", Props.empty());
    ActorSystem<Void> nodeSystem = systems.start("""
        raftkv.journal.dir = "%s"
        raftkv.snapshot-store.dir = "%s"
        """.formatted(dir.resolve("journal"), dir.resolve("snapshots")));
    List<Peer> voters = List.of(
        new Peer("n1", "127.0.0.1", nodeSystem.address().getPort().get()),
        new Peer("n2", "127.0.0.1", peerSystem.address().getPort().get()),
        new Peer("n3", "127.0.0.1", RemoteSystems.freePort()));
    nodeSystem.systemActorOf(RaftNode.create(new RaftNode.NodeIdentity("n1", null), voters,
        RaftSettings.fromConfig(nodeSystem.settings().config()), MemoryStateMachine::new, dir.resolve("snapshot-files"),
        null), "raftkv", Props.empty());
    ActorRef<RaftNode.Command> n1 = ActorRefResolver.get(peerSystem)
        .resolveActorRef(nodeSystem.address() + "/system/raftkv");

    // when: n1 asks for pre-votes, hears nothing, and asks again in a new round
    RaftNode.PreVote first = n2.expectMessageClass(RaftNode.PreVote.class, WAIT);
    RaftNode.PreVote second = n2.expectMessageClass(RaftNode.PreVote.class, WAIT);
    assertEquals(first.nextTerm(), second.nextTerm(), "the same term: no election came between the rounds");
    assertNotEquals(first.round(), second.round(), "a new round");
    // ... and only then n2's grant for the first round arrives
    n1.tell(new RaftNode.FromCluster(0, new RaftNode.PreVoteReply(0, first.nextTerm(), "n2", true, first.round())));

    // then: n1 goes on asking for pre-votes; it never asks for real votes on the stale grant
    RaftNode.PreVote third = (RaftNode.PreVote) n2.fishForMessage(WAIT, "a third pre-vote round", m -> {
      if (m instanceof RaftNode.RequestVote rv) {
        fail("n1 started an election for term " + rv.term() + " on a grant of an earlier pre-vote round");
      }
      return m instanceof RaftNode.PreVote pv && pv.round() != first.round() && pv.round() != second.round()
          ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore();
    }).get(0);

    // and a grant for the round in progress is what starts the election
    n1.tell(new RaftNode.FromCluster(0, new RaftNode.PreVoteReply(0, third.nextTerm(), "n2", true, third.round())));
    RaftNode.RequestVote vote = (RaftNode.RequestVote) n2.fishForMessage(WAIT, "a vote request", m ->
        m instanceof RaftNode.RequestVote ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore()).get(0);
    assertEquals(third.nextTerm(), vote.term());
  }
}
