package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.AskPattern;
import com.typesafe.config.Config;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * A state machine that fails while applying does not leave a node that accepts writes and never
 * answers them: the node watches its applier, restarts from disk with a new one (which opens the
 * state machine again), and goes on applying the log where the state machine stands.
 */
class ApplierFailureTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  private final RemoteSystems systems = new RemoteSystems();
  private ActorSystem<Void> system;

  @TempDir
  Path dir;

  @AfterEach
  void tearDown() throws Exception {
    systems.close();
  }

  /** Fails the apply of the entry holding {@code poison}, the first time only. */
  private static final class FailingOnce extends MemoryStateMachine {
    final AtomicInteger failures;

    FailingOnce(AtomicInteger failures) {
      this.failures = failures;
    }

    @Override
    public synchronized List<Result> apply(List<Entry> entries) {
      for (Entry e : entries) {
        if (e.command() != null && text(e.command()).startsWith("poison=") && failures.compareAndSet(0, 1)) {
          throw new IllegalStateException("the disk said no (test)");
        }
      }
      return super.apply(entries);
    }
  }

  private RaftNode.ClientReply propose(ActorRef<RaftNode.Command> node, byte[] command) throws Exception {
    return AskPattern.<RaftNode.Command, RaftNode.ClientReply>ask(node, r -> new RaftNode.Propose(command, r, 0),
        Duration.ofSeconds(3), system.scheduler()).toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void aNodeWhoseApplierFailsRestartsAndGoesOnApplying() throws Exception {
    int port = RemoteSystems.freePort();
    system = systems.start("""
        akka.remote.artery.canonical.port = %d
        raftkv.journal.dir = "%s"
        raftkv.snapshot-store.dir = "%s"
        """.formatted(port, dir.resolve("journal"), dir.resolve("snapshots")));
    Config config = system.settings().config();
    AtomicInteger failures = new AtomicInteger();
    AtomicInteger opened = new AtomicInteger();
    // every incarnation opens a state machine of its own (as the KV store reopens its database)
    ActorRef<RaftNode.Command> node = system.systemActorOf(RaftNode.create(new RaftNode.NodeIdentity("n1", null),
        List.of(new Peer("n1", "127.0.0.1", port)), RaftSettings.fromConfig(config), () -> {
          opened.incrementAndGet();
          return new FailingOnce(failures);
        }, dir.resolve("snapshot-files"), null), "raftkv", Props.empty());

    await().atMost(WAIT).until(() -> propose(node, MemoryStateMachine.put("a", "1")) instanceof RaftNode.Ok);
    assertEquals(1, opened.get());

    // the applier fails on this entry: the write is not answered (its outcome is unknown to the
    // client, as after any timeout)...
    try {
      RaftNode.ClientReply poisoned = propose(node, MemoryStateMachine.put("poison", "x"));
      assertInstanceOf(RaftNode.Failed.class, poisoned, "no answer from a state machine that failed");
    } catch (java.util.concurrent.ExecutionException e) {
      assertInstanceOf(java.util.concurrent.TimeoutException.class, e.getCause());
    }
    assertEquals(1, failures.get());

    // ...but the node restarts with a new applier, which applies the whole log again, the poisoned entry included
    await().atMost(WAIT).until(() -> opened.get() >= 2);
    await().atMost(WAIT).until(() -> propose(node, MemoryStateMachine.put("b", "2")) instanceof RaftNode.Ok);
    RaftNode.Ok read = assertInstanceOf(RaftNode.Ok.class, AskPattern.<RaftNode.Command, RaftNode.ClientReply>ask(node,
        r -> new RaftNode.Read(MemoryStateMachine.get("poison"), true, r, 0), Duration.ofSeconds(3),
        system.scheduler()).toCompletableFuture().get(10, TimeUnit.SECONDS));
    assertEquals("x", MemoryStateMachine.text(read.result()), "the entry that failed once was applied on the restart");
  }
}
