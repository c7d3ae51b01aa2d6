package raftkv.raft;

import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.AskPattern;
import akka.actor.typed.javadsl.Behaviors;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A node never accepts Raft messages from another cluster. n1 is a real node of cluster {@code
 * OURS} (on a LevelDB journal); n2 is a probe in another ActorSystem at n2's address, which
 * speaks for a node of either cluster, or of a version without cluster ids (messages without the
 * envelope). Votes and entries of another cluster change nothing on n1
 * (its term, its log), and n1 says so in one log line per sender, however many arrive; the same
 * messages tagged with n1's own cluster id are obeyed. What n1 sends carries its cluster id.
 */
class ClusterIdTest {
  private static final Duration WAIT = Duration.ofSeconds(15);
  private static final long OURS = 0x1234_5678_9abc_def0L;
  private static final long THEIRS = 0x0fed_cba9_8765_4321L;
  private final RemoteSystems systems = new RemoteSystems();
  private final ListAppender<ILoggingEvent> logged = new ListAppender<>();

  @TempDir
  Path dir;

  @AfterEach
  void tearDown() throws Exception {
    ((Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME)).detachAppender(logged);
    systems.close();
  }

  /** A probe that gets whatever is sent to {@code system}'s Raft actor ({@code /system/raftkv}). */
  private static TestProbe<RaftNode.Command> raftActorProbe(ActorSystem<Void> system) {
    TestProbe<RaftNode.Command> probe = TestProbe.create(system);
    system.systemActorOf(Behaviors.<RaftNode.Command>receiveMessage(m -> {
      probe.ref().tell(m);
      return Behaviors.same();
    }), "raftkv", Props.empty());
    return probe;
  }

  /** The ActorSystem of the real node, its journal in the test's dir. */
  private ActorSystem<Void> nodeSystem() {
    return systems.start("""
        raftkv.journal.dir = "%s"
        raftkv.snapshot-store.dir = "%s"
        """.formatted(dir.resolve("journal"), dir.resolve("snapshots")));
  }

  private long refusals() {
    synchronized (logged.list) {
      return logged.list.stream().filter(e -> e.getFormattedMessage().contains("refuses Raft messages")).count();
    }
  }

  @Test
  void aNodeObeysOnlyMessagesOfItsOwnCluster() throws Exception {
    logged.start();
    ((Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME)).addAppender(logged);
    // given: n1 of cluster OURS; n2, a probe that gets whatever n1 sends it, envelope included
    ActorSystem<Void> peerSystem = systems.start("");
    TestProbe<RaftNode.Command> n2 = raftActorProbe(peerSystem);
    ActorSystem<Void> nodeSystem = nodeSystem();
    List<Peer> voters = List.of(
        new Peer("n1", "127.0.0.1", nodeSystem.address().getPort().get()),
        new Peer("n2", "127.0.0.1", peerSystem.address().getPort().get()),
        new Peer("n3", "127.0.0.1", RemoteSystems.freePort()));
    ActorRef<RaftNode.Command> local = nodeSystem.systemActorOf(RaftNode.create(
        new RaftNode.NodeIdentity("n1", null, OURS), voters, RaftSettings.fromConfig(nodeSystem.settings().config()),
        MemoryStateMachine::new, dir.resolve("snapshot-files"), null), "raftkv", Props.empty());
    ActorRef<RaftNode.Command> n1 = ActorRefResolver.get(peerSystem)
        .resolveActorRef(nodeSystem.address() + "/system/raftkv");

    // what n1 sends is tagged with its cluster id (it asks n2 for a pre-vote: n3 is not running)
    RaftNode.FromCluster asked = n2.expectMessageClass(RaftNode.FromCluster.class, WAIT);
    assertEquals(OURS, asked.clusterId());

    // when: n2 speaks for a leader of another cluster, in a term far ahead, many times
    LogEntry foreign = new LogEntry(1, 7, new LogEntry.Command(new byte[] {1, 2, 3}));
    for (int i = 0; i < 20; i++) {
      n1.tell(new RaftNode.FromCluster(THEIRS, new RaftNode.AppendEntries(7, "n2", null, 0, 0, List.of(foreign), 1, i)));
      n1.tell(new RaftNode.FromCluster(THEIRS, new RaftNode.RequestVote(8, "n2", 10, 7)));
    }
    // and as a node of a version before cluster ids (no envelope at all)
    for (int i = 0; i < 5; i++) {
      n1.tell(new RaftNode.RequestVote(9, "n2", 10, 7));
    }
    // and then once as a node of n1's own cluster, in a term below the foreign ones
    n1.tell(new RaftNode.FromCluster(OURS, new RaftNode.RequestVote(5, "n2", 0, 0)));

    // then: only its own cluster's message counted: n1 is in term 5, with no foreign entry, and
    // voted for n2 (which hears the vote, tagged with n1's cluster id)
    RaftNode.VoteReply vote = (RaftNode.VoteReply) n2.fishForMessage(WAIT, "n1's vote", m ->
        m instanceof RaftNode.FromCluster fc && fc.message() instanceof RaftNode.VoteReply
            ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete()
            : akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore())
        .stream().map(m -> ((RaftNode.FromCluster) m).message()).findFirst().orElseThrow();
    assertEquals(5, vote.term());
    assertEquals(true, vote.granted());
    RaftNode.Status status = AskPattern.<RaftNode.Command, RaftNode.Status>ask(local, RaftNode.GetStatus::new, WAIT,
        nodeSystem.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
    assertEquals(5, status.term(), "the foreign terms 7, 8 and 9 never reached n1");
    assertEquals(0, status.lastLogIndex(), "the foreign entry was never appended");
    assertEquals(RaftNode.clusterIdText(OURS), status.clusterId());
    // one line for the foreign sender, not one per message
    await().atMost(WAIT).until(() -> refusals() >= 2);
    assertEquals(2, refusals(), "one log line per foreign sender: n2 of the other cluster, n2 without an id");
  }

  /**
   * A node started with --join has no cluster id: it takes the id of the first AppendEntries from a
   * member it was told to contact, never that of a vote request or of a node it was not told about,
   * stores it before anything else, and from then on refuses other ids like any node.
   */
  @Test
  void aJoiningNodeTakesTheIdOfTheFirstLeaderAmongItsContactsOnly() throws Exception {
    ActorSystem<Void> peerSystem = systems.start("");
    TestProbe<RaftNode.Command> n1 = raftActorProbe(peerSystem);
    ActorSystem<Void> nodeSystem = nodeSystem();
    java.util.concurrent.atomic.AtomicLong stored = new java.util.concurrent.atomic.AtomicLong();
    java.util.concurrent.atomic.AtomicInteger stores = new java.util.concurrent.atomic.AtomicInteger();
    Peer contact = new Peer("n1", "127.0.0.1", peerSystem.address().getPort().get());
    ActorRef<RaftNode.Command> local = nodeSystem.systemActorOf(RaftNode.create(
        new RaftNode.NodeIdentity("n4", null, 0), List.of(), new RaftNode.Join(List.of(contact), id -> {
          stored.set(id);
          stores.incrementAndGet();
        }), RaftSettings.fromConfig(nodeSystem.settings().config()),
        MemoryStateMachine::new, dir.resolve("snapshot-files"), null), "raftkv", Props.empty());
    ActorRef<RaftNode.Command> n4 = ActorRefResolver.get(peerSystem)
        .resolveActorRef(nodeSystem.address() + "/system/raftkv");
    java.util.function.Supplier<RaftNode.Status> status = () -> {
      try {
        return AskPattern.<RaftNode.Command, RaftNode.Status>ask(local, RaftNode.GetStatus::new, WAIT,
            nodeSystem.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
    assertEquals("joining", status.get().memberState());

    // when: a vote request of its contact, and entries of a node it was not told about
    n4.tell(new RaftNode.FromCluster(THEIRS, new RaftNode.RequestVote(5, "n1", 0, 0)));
    n4.tell(new RaftNode.FromCluster(THEIRS, new RaftNode.AppendEntries(5, "x9", null, 0, 0, List.of(), 0, 1)));
    // then: no id taken (the status asked after them is answered after them)
    assertEquals(null, status.get().clusterId());
    assertEquals(0, stores.get());

    // when: its contact replicates to it, as leader of cluster OURS
    n4.tell(new RaftNode.FromCluster(OURS, new RaftNode.AppendEntries(3, "n1", null, 0, 0, List.of(), 0, 2)));
    await().atMost(WAIT).until(() -> RaftNode.clusterIdText(OURS).equals(status.get().clusterId()));
    assertEquals(OURS, stored.get());
    assertEquals(1, stores.get(), "stored once");
    // the message that carried the id is dropped; the next one is handled, and answered in OURS
    n4.tell(new RaftNode.FromCluster(OURS, new RaftNode.AppendEntries(3, "n1", null, 0, 0, List.of(), 0, 3)));
    RaftNode.FromCluster reply = (RaftNode.FromCluster) n1.fishForMessage(WAIT, "n4's append reply", m ->
        m instanceof RaftNode.FromCluster fc && fc.message() instanceof RaftNode.AppendReply
            ? akka.actor.testkit.typed.javadsl.FishingOutcomes.complete()
            : akka.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore()).get(0);
    assertEquals(OURS, reply.clusterId());
    assertEquals("n1", status.get().leaderId());
    // and another cluster's leader is refused from now on
    n4.tell(new RaftNode.FromCluster(THEIRS, new RaftNode.AppendEntries(9, "n1", null, 0, 0, List.of(), 0, 4)));
    assertEquals(3, status.get().term());
    assertEquals(RaftNode.clusterIdText(OURS), status.get().clusterId());
  }
}
