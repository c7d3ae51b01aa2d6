package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.DispatcherSelector;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The journal writes a batch before anything that depends on it is said: the messages a batch
 * carries leave once it is durable, and before the node hears that it is.
 */
class RaftJournalTest {

  /** Opening LevelDB and recovering can take seconds on a busy machine. */
  private static final Duration WAIT = Duration.ofSeconds(15);

  @TempDir
  Path dir;

  private ActorTestKit kit() {
    return ActorTestKit.create("raftkv", ConfigFactory.parseString("""
            akka.actor.provider = local
            raftkv.journal.dir = "%s"
            raftkv.snapshot-store.dir = "%s"
            """.formatted(dir.resolve("journal"), dir.resolve("snapshots")))
        .withFallback(ConfigFactory.load()).resolve());
  }

  private static ActorRef<RaftJournal.Command> spawnJournal(ActorTestKit kit, TestProbe<RaftNode.Command> node) {
    return kit.spawn(RaftJournal.create("n1", node.ref(), 1000), "journal", DispatcherSelector.fromConfig(RaftJournal.DISPATCHER));
  }

  @Test
  void theMessagesOfABatchLeaveOnceItIsWrittenAndBeforeItIsAcknowledged() {
    RaftNode.VoteReply vote = new RaftNode.VoteReply(3, "n1", true);
    ActorTestKit kit = kit();
    try {
      // one probe is both the node and the message's addressee, so that it sees the order of the two
      TestProbe<RaftNode.Command> node = kit.createTestProbe();
      ActorRef<RaftJournal.Command> journal = spawnJournal(kit, node);
      assertEquals(0, node.expectMessageClass(RaftNode.Recovered.class, WAIT).term());

      journal.tell(new RaftJournal.Persist(7, 1, List.of(new RaftJournal.VoteCast(3, "n2")),
          List.of(new RaftJournal.Send(node.ref(), vote))));

      assertEquals(vote, node.expectMessageClass(RaftNode.VoteReply.class, WAIT));
      assertEquals(new RaftNode.Persisted(7, 1), node.expectMessageClass(RaftNode.Persisted.class, WAIT));
    } finally {
      kit.shutdownTestKit();
    }

    ActorTestKit restarted = kit();
    try {
      TestProbe<RaftNode.Command> node = restarted.createTestProbe();
      spawnJournal(restarted, node);
      RaftNode.Recovered recovered = node.expectMessageClass(RaftNode.Recovered.class, WAIT);
      assertEquals(3, recovered.term(), "the vote that the message announced is on disk");
      assertEquals("n2", recovered.votedFor());
    } finally {
      restarted.shutdownTestKit();
    }
  }

  @Test
  void aLogHoldingAnEntryThatNoAppendEntriesCouldCarryStopsTheNodeWithOneLine() {
    // given: a journal written before commands had a size limit, with a 3 MB entry in it
    byte[] huge = new byte[3 * 1024 * 1024];
    ActorTestKit kit = kit();
    try {
      TestProbe<RaftNode.Command> node = kit.createTestProbe();
      ActorRef<RaftJournal.Command> journal = spawnJournal(kit, node);
      node.expectMessageClass(RaftNode.Recovered.class, WAIT);
      journal.tell(new RaftJournal.Persist(1, 1, List.of(
          new RaftJournal.Bootstrapped(List.of(new Peer("n1", "127.0.0.1", 2552))),
          new RaftJournal.EntriesAppended(1, List.of(new LogEntry(1, 1, new LogEntry.Command(huge))))), List.of()));
      node.expectMessageClass(RaftNode.Persisted.class, WAIT);
    } finally {
      kit.shutdownTestKit();
    }

    // when: a node starts on it with the default bounds
    ActorTestKit restarted = kit();
    try {
      TestProbe<RaftNode.Lifecycle> lifecycle = restarted.createTestProbe();
      restarted.spawn(RaftNode.create(new RaftNode.NodeIdentity("n1", "127.0.0.1:8080"),
          List.of(new Peer("n1", "127.0.0.1", 2552)), RaftSettings.fromConfig(restarted.system().settings().config()),
          MemoryStateMachine::new, dir.resolve("snapshot-files"), lifecycle.ref()));
      // then: it does not start, and says which settings would let it
      RaftNode.StartFailed failed = lifecycle.expectMessageClass(RaftNode.StartFailed.class, WAIT);
      assertTrue(failed.reason().contains("raftkv.raft.max-bytes-per-append")
          && failed.reason().contains("maximum-frame-size") && !failed.reason().contains("\n"), failed.reason());
    } finally {
      restarted.shutdownTestKit();
    }
  }
}
