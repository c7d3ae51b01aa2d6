package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.testkit.typed.javadsl.TestProbe;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** When a snapshot is due, what compaction may drop, and what goes to the applier. */
class ApplyingTest {
  private static ActorTestKit kit;

  @BeforeAll
  static void start() {
    kit = ActorTestKit.create(ConfigFactory.parseString("akka.actor.provider = local").withFallback(ConfigFactory.load()));
  }

  @AfterAll
  static void stop() {
    kit.shutdownTestKit();
  }

  private static RaftSettings settings(String extra) {
    return RaftSettings.fromConfig(ConfigFactory.parseString(extra).withFallback(ConfigFactory.load()));
  }

  private static RaftLog log(int entries, int bytesEach) {
    RaftLog log = new RaftLog();
    for (int i = 1; i <= entries; i++) {
      log.append(new LogEntry(i, 1, new LogEntry.Command(new byte[bytesEach])));
    }
    return log;
  }

  @Test
  void aSnapshotIsDueAfterSnapshotEntriesAppliedEntries() {
    RaftSettings s = settings("raftkv.raft.snapshot-entries = 100");
    Applying a = new Applying(kit.<Applier.Command>createTestProbe().ref(), 0, 0);
    a.appliedIndex = 99;
    assertFalse(a.snapshotDue(s));
    a.appliedIndex = 100;
    assertTrue(a.snapshotDue(s));
    a.syncInFlight = true;
    assertFalse(a.snapshotDue(s), "one sync at a time");
    a.onSynced(100, 1, 5000);
    assertEquals(100, a.snapshotIndex);
    assertFalse(a.snapshotDue(s));
  }

  @Test
  void aSnapshotIsDueWhenTheLogAppliedSinceOutgrowsTheStoreFourTimes() {
    RaftSettings s = settings("raftkv.raft.snapshot-entries = 1000000\nraftkv.raft.snapshot-min-log-bytes = 1 KiB");
    TestProbe<Applier.Command> applier = kit.createTestProbe();
    Applying a = new Applying(applier.ref(), 0, 0);
    a.onSynced(0, 0, 10_000); // a store of 10,000 bytes
    RaftLog log = log(100, 500); // 100 entries of a little over 500 bytes
    a.applyUpTo(70, log); // about 36,000 bytes: less than 4 x 10,000
    a.appliedIndex = 70;
    assertFalse(a.snapshotDue(s));
    a.applyUpTo(100, log); // about 52,000 bytes
    a.appliedIndex = 100;
    assertTrue(a.snapshotDue(s));
    // the sync counts only what was applied before it was asked for
    a.requestSync(kit.<RaftNode.Command>createTestProbe().ref());
    a.onSynced(100, 1, 10_000);
    assertFalse(a.snapshotDue(s));
    assertEquals(0, a.bytesSinceSnapshot);
  }

  @Test
  void aTinyStoreIsNotSnapshottedEveryFewWrites() {
    RaftSettings s = settings("raftkv.raft.snapshot-entries = 1000000");
    Applying a = new Applying(kit.<Applier.Command>createTestProbe().ref(), 0, 0);
    a.onSynced(0, 0, 10); // 10 bytes: 4x would be 40
    a.applyUpTo(100, log(100, 500));
    a.appliedIndex = 100;
    assertFalse(a.snapshotDue(s), "at least snapshot-min-log-bytes (16 MiB) of log");
  }

  @Test
  void compactionKeepsTrailingEntriesAndWhatATransferNeeds() {
    RaftSettings s = settings("raftkv.raft.trailing-entries = 50");
    Applying a = new Applying(kit.<Applier.Command>createTestProbe().ref(), 0, 0);
    assertEquals(0, a.compactionPoint(s, Long.MAX_VALUE), "nothing durable: nothing goes");
    a.onSynced(1000, 3, 1);
    assertEquals(950, a.compactionPoint(s, Long.MAX_VALUE), "the state machine's durable point less the trailing entries");
    assertEquals(700, a.compactionPoint(s, 701), "a snapshot at 700 being sent needs 701 on");
    a.onSynced(30, 1, 1); // a late answer about less changes nothing
    assertEquals(950, a.compactionPoint(s, Long.MAX_VALUE));
  }

  @Test
  void committedEntriesGoToTheApplierInOrderWithTheRepliesOfThisLeadersWrites() {
    TestProbe<Applier.Command> applier = kit.createTestProbe();
    TestProbe<RaftNode.ClientReply> client = kit.createTestProbe();
    TestProbe<RaftNode.ClientReply> stale = kit.createTestProbe();
    Applying a = new Applying(applier.ref(), 0, 0);
    RaftLog log = new RaftLog();
    log.append(new LogEntry(1, 1, new LogEntry.NoOp(1)));
    log.append(new LogEntry(2, 2, new LogEntry.Command(new byte[] {1})));
    log.append(new LogEntry(3, 2, new LogEntry.Command(new byte[] {2})));
    a.expect(2, 2, client.ref());
    a.expect(3, 1, stale.ref()); // proposed in term 1, but the entry at 3 is of term 2
    a.applyUpTo(3, log);
    Applier.Apply apply = applier.expectMessageClass(Applier.Apply.class);
    assertEquals(List.of(1L, 2L, 3L), apply.entries().stream().map(StateMachine.Entry::index).toList());
    assertNull(apply.entries().get(0).command(), "a no-op carries no command");
    assertTrue(Arrays.equals(new byte[] {1}, apply.entries().get(1).command()));
    assertEquals(Arrays.asList(null, client.ref(), null), apply.replies());
    RaftNode.Failed failed = stale.expectMessageClass(RaftNode.Failed.class);
    assertEquals(RaftNode.ErrorKind.UNAVAILABLE, failed.kind(), "another leader's entry took its place: not applied");
    a.applyUpTo(3, log);
    applier.expectNoMessage(Duration.ofMillis(50));
    a.restoring = true;
    log.append(new LogEntry(4, 2, new LogEntry.Command(new byte[] {3})));
    a.applyUpTo(4, log);
    applier.expectNoMessage(Duration.ofMillis(50));
  }

  @Test
  void theStateMachineHearsOfLeadershipOnlyAfterTheLeadersNoOp() {
    TestProbe<Applier.Command> applier = kit.createTestProbe();
    Applying a = new Applying(applier.ref(), 0, 0);
    RaftLog log = new RaftLog();
    log.append(new LogEntry(1, 1, new LogEntry.Command(new byte[] {1})));
    log.append(new LogEntry(2, 2, new LogEntry.NoOp(2)));
    // a follower that won an election while a snapshot it received is still being restored
    a.restoring = true;
    a.applyUpTo(2, log);
    a.announceLeadershipAfter(2, new Applier.Leadership(2, true));
    applier.expectNoMessage(Duration.ofMillis(50));
    // the restore ends (the state machine is at 1): the no-op goes first, then the news
    a.restoring = false;
    a.sentIndex = 1;
    a.applyUpTo(2, log);
    assertEquals(List.of(2L), applier.expectMessageClass(Applier.Apply.class).entries().stream()
        .map(StateMachine.Entry::index).toList());
    assertEquals(new Applier.Leadership(2, true), applier.expectMessageClass(Applier.Leadership.class));
    assertFalse(a.cancelLeadershipAnnouncement(), "told once");
    // an announcement that has not gone out yet is dropped when the leadership ends first
    a.announceLeadershipAfter(5, new Applier.Leadership(3, true));
    assertTrue(a.cancelLeadershipAnnouncement());
    log.append(new LogEntry(3, 3, new LogEntry.NoOp(3)));
    a.applyUpTo(3, log);
    applier.expectMessageClass(Applier.Apply.class);
    applier.expectNoMessage(Duration.ofMillis(50));
  }
}
