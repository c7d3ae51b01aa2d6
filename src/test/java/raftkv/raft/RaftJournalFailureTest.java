package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.persistence.testkit.JournalOperation;
import akka.persistence.testkit.PersistenceTestKitPlugin;
import akka.persistence.testkit.ProcessingPolicy;
import akka.persistence.testkit.ProcessingResult;
import akka.persistence.testkit.ProcessingSuccess$;
import akka.persistence.testkit.ReadEvents;
import akka.persistence.testkit.ReadSeqNum$;
import akka.persistence.testkit.StorageFailure;
import akka.persistence.testkit.WriteEvents;
import akka.persistence.testkit.javadsl.PersistenceTestKit;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A node whose journal failed comes back by itself once the journal does: a failed write restarts
 * the journal and the node, and a recovery that fails meanwhile (a full disk, the journal's
 * circuit breaker open) is tried again after back-off. At the first start, a journal that cannot
 * be read still ends in {@link RaftNode.StartFailed}, for the launcher to exit with one line.
 *
 * <p>{@code raftkv.journal} is akka-persistence-testkit's journal here, on the storage that
 * {@link PersistenceTestKit} controls, so that the failures it injects hit the node's journal.
 */
class RaftJournalFailureTest {

  private static final String NODE = "n1";
  private static final String PERSISTENCE_ID = "raft-" + NODE;
  private static final Duration REPLY = Duration.ofSeconds(3);
  /** Back-off of the node's supervisor: 200 ms doubling up to 5 s, plus elections: well within this. */
  private static final Duration COME_BACK = Duration.ofSeconds(30);

  /**
   * The testkit's journal plugin under the plugin id {@code raftkv.journal}. The plugin keeps its
   * events in a storage named by its config path, while PersistenceTestKit (2.6.21) always works
   * on the storage of {@code akka.persistence.testkit.journal}: this one uses that storage.
   */
  public static final class KitJournal extends PersistenceTestKitPlugin {
    public KitJournal(Config config, String configPath) {
      super(config, PersistenceTestKitPlugin.PluginId());
    }
  }

  @TempDir
  Path dir;

  private ActorTestKit kit;
  private PersistenceTestKit journal;

  @BeforeEach
  void start() throws IOException {
    kit = ActorTestKit.create("raftkv", ConfigFactory.parseString("""
            akka.actor.provider = local
            raftkv.journal.class = "%s"
            raftkv.snapshot-store.dir = "%s"
            raftkv.raft.heartbeat-interval = 50ms
            raftkv.raft.election-timeout = 200ms
            """.formatted(KitJournal.class.getName(), dir.resolve("snapshots")))
        .withFallback(PersistenceTestKitPlugin.getInstance().config())
        .withFallback(ConfigFactory.load()).resolve());
    journal = PersistenceTestKit.create(kit.system());
  }

  @AfterEach
  void stop() {
    kit.shutdownTestKit();
  }

  /**
   * A disk that fills up under a running node: the next write fails, and the next {@code
   * failedReads} reads of the journal fail too; then the disk is back.
   */
  private static final class DiskFull implements ProcessingPolicy<JournalOperation> {
    private final AtomicInteger writesToFail = new AtomicInteger(1);
    private final AtomicInteger readsToFail;
    final AtomicInteger failedWrites = new AtomicInteger();
    final AtomicInteger failedReads = new AtomicInteger();

    DiskFull(int failedReads) {
      this.readsToFail = new AtomicInteger(failedReads);
    }

    @Override
    public ProcessingResult tryProcess(String persistenceId, JournalOperation op) {
      if (!persistenceId.equals(PERSISTENCE_ID)) {
        return ProcessingSuccess$.MODULE$;
      }
      if (op instanceof WriteEvents && writesToFail.getAndDecrement() > 0) {
        failedWrites.incrementAndGet();
        return new StorageFailure(new IOException("No space left on device (injected)"));
      }
      // a recovery after the failed write: the disk is still full, or the circuit breaker open
      if (failedWrites.get() > 0 && (op instanceof ReadEvents || op == ReadSeqNum$.MODULE$)
          && readsToFail.getAndDecrement() > 0) {
        failedReads.incrementAndGet();
        return new StorageFailure(new IOException("Circuit Breaker is open; calls are failing fast (injected)"));
      }
      return ProcessingSuccess$.MODULE$;
    }
  }

  /** The node's state machine: the same one for every incarnation, as a disk would be. */
  private final MemoryStateMachine stateMachine = new MemoryStateMachine();

  private ActorRef<RaftNode.Command> spawnNode(TestProbe<RaftNode.Lifecycle> lifecycle) {
    List<Peer> voters = List.of(new Peer(NODE, "127.0.0.1", 2552)); // a cluster of one: it elects itself
    return kit.spawn(RaftNode.create(new RaftNode.NodeIdentity(NODE, ""), voters,
        RaftSettings.fromConfig(kit.system().settings().config()), () -> stateMachine,
        java.nio.file.Path.of(kit.system().settings().config().getString("raftkv.snapshot-store.dir"), "files"),
        lifecycle.ref()), "raftkv");
  }

  private RaftNode.ClientReply ask(ActorRef<RaftNode.Command> node,
                                   Function<ActorRef<RaftNode.ClientReply>, RaftNode.Command> request) {
    TestProbe<RaftNode.ClientReply> reply = kit.createTestProbe();
    node.tell(request.apply(reply.ref()));
    return reply.receiveMessage(REPLY);
  }

  private static RaftNode.Command put(String key, String value, ActorRef<RaftNode.ClientReply> replyTo) {
    return new RaftNode.Propose(MemoryStateMachine.put(key, value), replyTo, 0);
  }

  /** Writes until the node accepts the write (it may have no leader yet, or be restarting). */
  private void writeEventually(ActorRef<RaftNode.Command> node, String key, String value, Duration within) {
    await().atMost(within).pollInterval(Duration.ofMillis(100)).untilAsserted(() ->
        assertInstanceOf(RaftNode.Ok.class, ask(node, r -> put(key, value, r)), "write of " + key));
  }

  private String read(ActorRef<RaftNode.Command> node, String key) {
    RaftNode.ClientReply reply = ask(node, r -> new RaftNode.Read(MemoryStateMachine.get(key), true, r, 0));
    String value = MemoryStateMachine.text(assertInstanceOf(RaftNode.Ok.class, reply).result());
    assertFalse(value.isEmpty(), key + " is missing");
    return value;
  }

  @Test
  void aNodeWhoseJournalFailedComesBackByItselfOnceTheJournalDoes() {
    TestProbe<RaftNode.Lifecycle> lifecycle = kit.createTestProbe();
    ActorRef<RaftNode.Command> node = spawnNode(lifecycle);
    lifecycle.expectMessageClass(RaftNode.Started.class, Duration.ofSeconds(10));
    writeEventually(node, "a", "1", Duration.ofSeconds(10));

    // the disk fills: the next write fails, and so do the next three recoveries that follow it
    DiskFull disk = new DiskFull(3);
    journal.withPolicy(disk);
    TestProbe<RaftNode.ClientReply> lost = kit.createTestProbe();
    node.tell(put("b", "2", lost.ref())); // fails or times out: either is fine
    await().atMost(Duration.ofSeconds(10)).until(() -> disk.failedWrites.get() == 1);

    // nothing more is injected: the node must come back by itself, with what it had and more
    writeEventually(node, "c", "3", COME_BACK);
    await().atMost(COME_BACK).pollInterval(Duration.ofMillis(100)).untilAsserted(() -> {
      assertEquals("1", read(node, "a"));
      assertEquals("3", read(node, "c"));
    });
    assertEquals(3, disk.failedReads.get(), "every injected recovery failure was met and retried");
    lifecycle.expectNoMessage(Duration.ofMillis(200)); // a restart is not a start: no second Started
  }

  @Test
  void aJournalThatCannotBeReadAtTheFirstStartStillEndsInStartFailed() {
    journal.failNextRead(PERSISTENCE_ID);
    TestProbe<RaftNode.Lifecycle> lifecycle = kit.createTestProbe();
    ActorRef<RaftNode.Command> node = spawnNode(lifecycle);
    RaftNode.StartFailed failed = lifecycle.expectMessageClass(RaftNode.StartFailed.class, Duration.ofSeconds(10));
    assertTrue(failed.reason().startsWith("cannot read the journal"), failed.reason());
    lifecycle.expectTerminated(node, Duration.ofSeconds(5)); // stopped for good: the launcher exits
    lifecycle.expectNoMessage(Duration.ofMillis(500));
  }
}
