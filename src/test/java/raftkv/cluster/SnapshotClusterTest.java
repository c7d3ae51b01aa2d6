package raftkv.cluster;

import org.junit.jupiter.api.Test;
import raftkv.client.ClusterStatus;
import raftkv.client.RaftKv;
import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Snapshots, log compaction and InstallSnapshot in a cluster of three in-process nodes, with
 * snapshots every 200 entries so that they happen within a test.
 */
class SnapshotClusterTest {
  /**
   * Snapshots every 200 entries; and at most 128 entries in flight to a follower, so that a
   * stopped follower misses most of what is written while it is down (Artery queues what is sent
   * to a node that is down, and hands it over when the node comes back on the same address).
   */
  private static final String SMALL_SNAPSHOTS = """
      raftkv.raft.max-entries-per-append = 64
      raftkv.raft.max-inflight-entries = 128
      raftkv.raft.snapshot-entries = 200
      raftkv.raft.trailing-entries = 50
      raftkv.raft.journal-snapshot-every = 20
      raftkv.raft.snapshot-chunk-bytes = 64 KiB
      """;
  private static final Duration WAIT = Duration.ofSeconds(30);



  /** Writes {@code count} keys {@code prefix}00000.. through node {@code via}. */
  private static void writeKeys(RaftKv via, String prefix, int from, int count) throws Exception {
    InProcessCluster.writeAll(via, i -> String.format("%s%05d", prefix, i), i -> "value-" + i, from, count);
  }

  private static void awaitSameContents(InProcessCluster c, int leader) {
    await().atMost(WAIT).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
      List<String> expected = c.contents(leader);
      for (int i = 0; i < c.size(); i++) {
        if (c.isUp(i)) {
          assertEquals(expected, c.contents(i), "node " + (i + 1) + " holds the leader's state");
        }
      }
    });
  }

  private static String listing(Path dataDir) {
    try (Stream<Path> files = Files.walk(dataDir, 2)) {
      return files.map(f -> dataDir.relativize(f).toString()).toList().toString();
    } catch (IOException e) {
      return e.toString();
    }
  }

  private static List<Path> snapshotFiles(Path dataDir) {
    Path dir = dataDir.resolve("snapshot-files");
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> f.getFileName().toString().endsWith(".snap")).toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  void aFollowerBehindTheCompactedLogCatchesUpThroughInstallSnapshot() throws Exception {
    try (InProcessCluster c = new InProcessCluster(3, SMALL_SNAPSHOTS, dirs -> {})) {
      int leader = c.awaitLeader(WAIT);
      int behind = (leader + 1) % 3;
      writeKeys(c.node(leader), "a/", 0, 20);
      c.stop(behind);

      // while it is down, the others write well past a snapshot and compact their logs
      writeKeys(c.node(leader), "b/", 0, 1200);
      await().atMost(WAIT).until(() -> c.status(leader).snapshotIndex() >= 1000);
      assertTrue(snapshotFiles(c.settings(behind).dataDir()).isEmpty(), "it received no snapshot before");

      // when it comes back, its next entry is gone from the leader's log
      c.start(behind);
      awaitSameContents(c, leader);

      // then it received a snapshot file (and only InstallSnapshot makes one on a follower), and
      // replication went on from the log after it
      assertFalse(snapshotFiles(c.settings(behind).dataDir()).isEmpty(), () -> "it caught up through InstallSnapshot; "
          + c.status(0) + " " + c.status(1) + " " + c.status(2) + " files "
          + listing(c.settings(behind).dataDir()));
      writeKeys(c.node(leader), "c/", 0, 50);
      awaitSameContents(c, leader);
      ClusterStatus st = c.status(behind);
      assertNotNull(st);
      assertTrue(st.snapshotIndex() >= 1000, "its state machine is durable from the snapshot on: " + st);
      c.assertOneLeaderPerTerm();
      assertEquals(List.of(), c.dropped().stream().filter(d -> !d.contains("was probably restarted")).toList(),
          "no message over the frame (only those to a restarted node before its handshake are dropped)");
    }
  }

  @Test
  void aRestartedClusterRecoversFromItsSnapshotsAndTheJournalsTail() throws Exception {
    List<String> before;
    Path root;
    try (InProcessCluster c = new InProcessCluster(3, SMALL_SNAPSHOTS, dirs -> {})) {
      int leader = c.awaitLeader(WAIT);
      writeKeys(c.node(leader), "k/", 0, 900);
      awaitSameContents(c, leader);
      await().atMost(WAIT).until(() -> c.status(leader).snapshotIndex() >= 600);
      before = c.contents(leader);
      for (int i = 0; i < 3; i++) {
        c.stop(i);
      }
      // the journals were compacted: Akka's snapshots of them exist
      for (int i = 0; i < 3; i++) {
        try (Stream<Path> files = Files.list(c.settings(i).dataDir().resolve("snapshots"))) {
          assertTrue(files.findAny().isPresent(), "node " + (i + 1) + " saved a snapshot of its journal");
        }
      }
      for (int i = 0; i < 3; i++) {
        c.start(i);
      }
      int again = c.awaitLeader(WAIT);
      awaitSameContents(c, again);
      assertEquals(before, c.contents(again), "every acknowledged write survived");
      writeKeys(c.node(again), "k/", 900, 100);
      awaitSameContents(c, again);
      c.assertOneLeaderPerTerm();
    }
  }

  @Test
  void aSnapshotOnRequestIsTakenOnceAndAnsweredAgainWhenNothingChanged() throws Exception {
    try (InProcessCluster c = new InProcessCluster(3)) {
      int leader = c.awaitLeader(WAIT);
      writeKeys(c.node(leader), "s/", 0, 40);
      raftkv.client.SnapshotInfo first = c.node(leader).snapshot().toCompletableFuture().get(10, TimeUnit.SECONDS);
      ClusterStatus st = c.status(leader);
      assertEquals(st.appliedIndex(), first.index(), "everything applied is in it");
      assertEquals(st.term(), first.term());
      assertTrue(first.bytes() > 0);
      assertEquals(first.index(), c.status(leader).snapshotIndex(), "the status reports it");
      assertEquals(first, c.node(leader).snapshot().toCompletableFuture().get(10, TimeUnit.SECONDS),
          "nothing was applied since: the same snapshot");
      writeKeys(c.node(leader), "s/", 40, 1);
      assertTrue(c.node(leader).snapshot().toCompletableFuture().get(10, TimeUnit.SECONDS).index() > first.index());
    }
  }

  /**
   * Sending a snapshot of a large store runs off the Raft actor: while it is written, read and
   * sent, heartbeats keep the followers from starting an election, and writes go on.
   */
  @Test
  void sendingASnapshotOfALargeStoreStallsNeitherHeartbeatsNorWrites() throws Exception {
    int keys = 1_000_000;
    try (InProcessCluster c = new InProcessCluster(3, SMALL_SNAPSHOTS + "raftkv.raft.snapshot-chunk-bytes = 1 MiB\n",
        dirs -> preload(dirs, keys))) {
      int leader = c.awaitLeader(WAIT);
      int behind = (leader + 1) % 3;
      int other = (leader + 2) % 3;
      c.stop(behind);
      writeKeys(c.node(leader), "w/", 0, 600);
      await().atMost(WAIT).until(() -> c.status(leader).snapshotIndex() >= 400);
      long term = c.status(leader).term();

      c.start(behind);
      // while the 1-million-key snapshot is written, read and sent, writes keep succeeding
      long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
      int batch = 0;
      while (snapshotFiles(c.settings(behind).dataDir()).isEmpty() && System.nanoTime() < deadline) {
        writeKeys(c.node(leader), "during/", batch * 10, 10);
        batch++;
        ClusterStatus l = c.status(leader);
        ClusterStatus o = c.status(other);
        assertNotNull(l);
        assertEquals(term, l.term(), "no election while the snapshot is sent");
        assertEquals("leader", l.role());
        assertNotNull(o);
        assertEquals(term, o.term(), "the other follower kept hearing heartbeats");
      }
      assertFalse(snapshotFiles(c.settings(behind).dataDir()).isEmpty(), "the follower received the snapshot");
      await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500)).untilAsserted(() -> {
        ClusterStatus l = c.status(leader);
        ClusterStatus b = c.status(behind);
        assertNotNull(b);
        assertEquals(l.revision(), b.revision(), "the follower caught up");
      });
      for (int i = 0; i < 3; i++) {
        assertEquals(term, c.status(i).term(), "no election at any point");
      }
      KvResult.GetDone got = (KvResult.GetDone) c.node(behind).read(new KvQuery.Get("pre/0999999"),
          RaftKv.Consistency.SERIALIZABLE).toCompletableFuture().get(10, TimeUnit.SECONDS);
      assertNotNull(got.kv(), "the preloaded keys came with the snapshot");
      assertTrue(batch > 0);
    }
  }

  /** The same {@code keys} keys in every node's state machine before the cluster first starts. */
  private static void preload(List<Path> dirs, int keys) {
    Path first = dirs.get(0).resolve("kv");
    try (KvDb db = KvDb.open(first)) {
      byte[] value = new byte[16];
      Arrays.fill(value, (byte) 'v');
      KvDb.Batch b = db.batch();
      for (int i = 0; i < keys; i++) {
        b.apply(KvCommand.Put.of(String.format("pre/%07d", i), value));
        if (i % 20_000 == 19_999) {
          b.commit(0, 0);
          b = db.batch();
        }
      }
      b.commit(0, 0);
      db.sync();
    }
    for (int n = 1; n < dirs.size(); n++) {
      copy(first, dirs.get(n).resolve("kv"));
    }
    // seeded as a restore seeds them: with the (same) cluster id, or the node takes the database
    // without a journal for an unfinished restore
    for (Path dir : dirs) {
      try {
        raftkv.node.DataDir.writeClusterId(dir, 0x5eed);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  }

  private static void copy(Path from, Path to) {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path f : files.toList()) {
        Path target = to.resolve(from.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(target);
        } else if (!f.getFileName().toString().equals("LOCK")) {
          Files.copy(f, target);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
