package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import akka.actor.typed.ActorRef;
import akka.actor.typed.DispatcherSelector;
import akka.japi.pf.ReceiveBuilder;
import akka.pattern.Patterns;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.PartialFunction;
import scala.runtime.BoxedUnit;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A LevelDB journal whose write failed reopens its database on the next call: a failure that
 * sticks to the open database (LevelDB's background error after a full disk) does not outlive
 * the failed write. Here a database handle closed under the journal stands in for that error:
 * every call on it fails until the journal opens the database again.
 */
class ReopeningLeveldbJournalTest {

  private static final Duration WAIT = Duration.ofSeconds(15);

  /** The plugin, with a way for the test to break its open database. */
  public static final class BreakableJournal extends ReopeningLeveldbJournal {
    static final AtomicReference<akka.actor.ActorRef> LAST = new AtomicReference<>();
    static final AtomicReference<BreakableJournal> INSTANCE = new AtomicReference<>();

    public BreakableJournal(Config config) {
      super(config);
      LAST.set(self());
      INSTANCE.set(this);
    }

    @Override
    public PartialFunction<Object, BoxedUnit> receivePluginInternal() {
      return ReceiveBuilder.create()
          .matchEquals("break", m -> {
            leveldb().close(); // every later call on this handle fails, as after a sticky error
            sender().tell("broken", self());
          })
          .build().onMessage()
          .orElse(super.receivePluginInternal());
    }
  }

  @TempDir
  Path dir;

  private ActorTestKit kit() {
    return ActorTestKit.create("raftkv", ConfigFactory.parseString("""
            akka.actor.provider = local
            raftkv.journal.class = "%s"
            raftkv.journal.dir = "%s"
            raftkv.snapshot-store.dir = "%s"
            """.formatted(BreakableJournal.class.getName(), dir.resolve("journal"), dir.resolve("snapshots")))
        .withFallback(ConfigFactory.load()).resolve());
  }

  private static ActorRef<RaftJournal.Command> spawnJournal(ActorTestKit kit, TestProbe<RaftNode.Command> node,
                                                            String name) {
    return kit.spawn(RaftJournal.create("n1", node.ref(), 1000), name, DispatcherSelector.fromConfig(RaftJournal.DISPATCHER));
  }

  private static RaftJournal.Persist batch(long seq, RaftJournal.Event event) {
    return new RaftJournal.Persist(7, seq, List.of(event), List.of());
  }

  @Test
  void aJournalWhoseWriteFailedReopensItsDatabaseAndWorksAgain() throws Exception {
    ActorTestKit kit = kit();
    try {
      TestProbe<RaftNode.Command> node = kit.createTestProbe();
      ActorRef<RaftJournal.Command> journal = spawnJournal(kit, node, "journal");
      node.expectMessageClass(RaftNode.Recovered.class, WAIT);
      journal.tell(batch(1, new RaftJournal.VoteCast(3, "n2")));
      assertEquals(new RaftNode.Persisted(7, 1), node.expectMessageClass(RaftNode.Persisted.class, WAIT));

      assertEquals("broken", Patterns.ask(BreakableJournal.LAST.get(), "break", WAIT)
          .toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS));
      journal.tell(batch(2, new RaftJournal.TermAdvanced(4)));
      node.expectTerminated(journal, WAIT); // the write failed: the journal stops (and the node would restart)
      assertTrue(BreakableJournal.INSTANCE.get().reopenPending());

      // the node's next journal: its recovery is the first call after the failed write, and reopens
      TestProbe<RaftNode.Command> restarted = kit.createTestProbe();
      ActorRef<RaftJournal.Command> again = spawnJournal(kit, restarted, "journal-2");
      RaftNode.Recovered recovered = restarted.expectMessageClass(RaftNode.Recovered.class, WAIT);
      assertEquals(3, recovered.term(), "the failed batch is not on disk, the one before it is");
      assertEquals("n2", recovered.votedFor());
      assertFalse(BreakableJournal.INSTANCE.get().reopenPending());
      again.tell(batch(1, new RaftJournal.TermAdvanced(5)));
      assertEquals(new RaftNode.Persisted(7, 1), restarted.expectMessageClass(RaftNode.Persisted.class, WAIT));
    } finally {
      kit.shutdownTestKit();
    }

    ActorTestKit fresh = kit();
    try {
      TestProbe<RaftNode.Command> node = fresh.createTestProbe();
      spawnJournal(fresh, node, "journal");
      RaftNode.Recovered recovered = node.expectMessageClass(RaftNode.Recovered.class, WAIT);
      assertEquals(5, recovered.term(), "the write after the reopen is on disk");
    } finally {
      fresh.shutdownTestKit();
    }
  }
}
