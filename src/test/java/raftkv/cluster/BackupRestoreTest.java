package raftkv.cluster;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import raftkv.cli.Restore;
import raftkv.client.ClusterStatus;
import raftkv.client.RaftKv;
import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.node.KvStateMachine;
import raftkv.raft.Peer;
import raftkv.raft.RaftNode;
import raftkv.raft.SnapshotFile;
import raftkv.raft.StateMachine;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A backup taken from a running cluster ({@link raftkv.node.RaftKvNode#backup}) seeds a new
 * cluster through {@link Restore} (what {@code raftkv restore} runs): every node of the new cluster
 * holds exactly the backup's keys, values and revisions, and writes go on from its revision. A
 * truncated or damaged file, and a data dir that is not empty, are refused with one line.
 */
class BackupRestoreTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final int KEYS = 300;
  private static final int REWRITTEN = 20;

  @TempDir
  Path tmp;

  @Test
  void aLeadersBackupSeedsANewClusterWhoseRevisionsGoOnFromIt() throws Exception {
    Path backup = tmp.resolve("backup.snap");
    long[] indexAndTerm;
    List<String> expected;
    String oldClusterId;
    try (InProcessCluster c = new InProcessCluster(3)) {
      int leader = c.awaitLeader(WAIT);
      RaftKv kv = c.node(leader);
      writeKeys(kv, "v", 0, KEYS);
      writeKeys(kv, "again", 0, REWRITTEN); // some keys at version 2, so that versions differ
      try (OutputStream out = Files.newOutputStream(backup)) {
        indexAndTerm = c.node(leader).backup(true, out).toCompletableFuture().get(30, TimeUnit.SECONDS);
      }
      expected = c.contents(leader);
      oldClusterId = c.status(leader).clusterId();
      assertEquals(KEYS + 1, expected.size(), "the revision line and one line per key");
      assertEquals("revision " + (KEYS + REWRITTEN), expected.get(0));

      // a follower takes no linearizable backup: it names the leader, whose HTTP endpoint serves it
      int follower = (leader + 1) % 3;
      ExecutionException refused = assertThrows(ExecutionException.class, () -> c.node(follower)
          .backup(true, OutputStream.nullOutputStream()).toCompletableFuture().get(30, TimeUnit.SECONDS));
      RaftNode.NotLeader notLeader = assertInstanceOf(RaftNode.NotLeader.class, refused.getCause());
      assertEquals(c.settings(leader).httpAddress(), notLeader.leaderHttp());
    }

    SnapshotFile.Header header = SnapshotFile.verify(backup);
    assertEquals(indexAndTerm[0], header.index());
    assertEquals(indexAndTerm[1], header.term());
    assertTrue(header.index() >= KEYS + REWRITTEN, "the backup holds every acknowledged write: " + header);

    List<Restore.Restored> restored = new ArrayList<>();
    try (InProcessCluster c = new InProcessCluster(3, "", dirs -> {
      // the peers only have to name the node (the new cluster's nodes take theirs from NodeSettings)
      List<Peer> peers = new ArrayList<>();
      for (int i = 0; i < dirs.size(); i++) {
        peers.add(new Peer(dirs.get(i).getFileName().toString(), "127.0.0.1", 40_001 + i));
      }
      for (Path dir : dirs) {
        restored.add(Restore.restore(backup, dir, dir.getFileName().toString(), peers));
      }
    })) {
      assertEquals(3, restored.size());
      long clusterId = restored.get(0).clusterId();
      for (Restore.Restored r : restored) {
        assertEquals(new Restore.Restored(KEYS, KEYS + REWRITTEN, header.index(), header.term(), clusterId), r,
            "every node restored from one file with the same peers is of the same cluster");
      }
      for (int i = 0; i < c.size(); i++) {
        assertEquals(RaftNode.clusterIdText(clusterId), c.status(i).clusterId());
      }
      assertNotNull(oldClusterId);
      assertNotEquals(oldClusterId, RaftNode.clusterIdText(clusterId), "a restored cluster is a new cluster");
      int leader = c.awaitLeader(WAIT);
      for (int i = 0; i < c.size(); i++) {
        assertEquals(expected, c.contents(i), "node " + (i + 1) + " holds exactly the backup's keys");
      }
      for (int i = 0; i < c.size(); i++) {
        ClusterStatus st = c.status(i);
        assertNotNull(st);
        assertTrue(st.appliedIndex() >= header.index(), "the new cluster's log continues after the backup's index: " + st);
        assertEquals(KEYS + REWRITTEN, st.revision(), "the revision is the backup's: " + st);
      }

      KvResult.PutDone put = (KvResult.PutDone) c.node(leader).write(KvCommand.Put.of("after",
          "restore".getBytes(StandardCharsets.UTF_8))).toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertEquals(KEYS + REWRITTEN + 1, put.revision(), "writes go on from the backup's revision");
      // key 0 was written twice before the backup: "k/00000=again-0@create/mod/2"
      String[] first = expected.get(1).split("[=@/]");
      assertEquals(List.of("k", "00000", "again-0"), List.of(first[0], first[1], first[2]), expected.get(1));
      KvResult.PutDone again = (KvResult.PutDone) c.node(leader).write(KvCommand.Put.of(key(0),
          "third".getBytes(StandardCharsets.UTF_8))).toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertEquals(KEYS + REWRITTEN + 2, again.revision());
      assertEquals(Long.parseLong(first[4]), again.prevModRevision(), "the key's modRevision is the backup's");

      List<String> after = new ArrayList<>(expected);
      after.set(0, "revision " + (KEYS + REWRITTEN + 2));
      after.set(1, key(0) + "=third@" + first[3] + "/" + (KEYS + REWRITTEN + 2) + "/3");
      after.add("after=restore@" + (KEYS + REWRITTEN + 1) + "/" + (KEYS + REWRITTEN + 1) + "/1");
      after.subList(1, after.size()).sort(null);
      await().atMost(WAIT).pollInterval(Duration.ofMillis(100)).untilAsserted(() -> {
        for (int i = 0; i < c.size(); i++) {
          assertEquals(after, c.contents(i), "node " + (i + 1) + " applied the writes after the restore");
        }
      });
      c.assertOneLeaderPerTerm();
    }
  }

  @Test
  void aTruncatedOrDamagedBackupAndANonEmptyDataDirAreRefusedWithOneLine() throws Exception {
    Path backup = localBackup(tmp.resolve("source"), 50);
    byte[] bytes = Files.readAllBytes(backup);
    List<Peer> peers = List.of(new Peer("n1", "127.0.0.1", 2552), new Peer("n2", "127.0.0.1", 2553));

    // cut short: in the data, and in the SHA-256 trailer
    for (int length : new int[] {bytes.length / 2, bytes.length - 1, 10}) {
      Path cut = tmp.resolve("cut-" + length + ".snap");
      Files.write(cut, Arrays.copyOf(bytes, length));
      Path dir = tmp.resolve("cut-" + length);
      String reason = refused(IllegalArgumentException.class, () -> Restore.restore(cut, dir, "n1", peers));
      assertTrue(reason.contains("truncated") || reason.contains("SHA-256"), reason);
      assertFalse(Files.exists(dir), "nothing is written for a refused file");
    }

    // one byte flipped in the middle of the state machine's bytes
    byte[] flipped = bytes.clone();
    flipped[flipped.length / 2] ^= 0x40;
    Path damaged = tmp.resolve("flipped.snap");
    Files.write(damaged, flipped);
    String corrupt = refused(IllegalArgumentException.class, () -> Restore.restore(damaged, tmp.resolve("f"), "n1", peers));
    assertTrue(corrupt.contains("SHA-256"), corrupt);
    assertFalse(Files.exists(tmp.resolve("f")));

    // a data dir that holds anything is never overwritten
    Path used = tmp.resolve("used");
    Files.createDirectories(used.resolve("journal"));
    Files.writeString(used.resolve("raftkv-node-id"), "n1\n");
    String notEmpty = refused(IllegalStateException.class, () -> Restore.restore(backup, used, "n1", peers));
    assertTrue(notEmpty.contains("not empty"), notEmpty);
    assertEquals("n1\n", Files.readString(used.resolve("raftkv-node-id")));

    // bad arguments
    assertTrue(refused(IllegalArgumentException.class, () -> Restore.restore(backup, tmp.resolve("x"), "n9", peers))
        .contains("'n9'"));
    assertTrue(refused(IllegalArgumentException.class,
        () -> Restore.restore(tmp.resolve("absent.snap"), tmp.resolve("x"), "n1", peers)).contains("does not exist"));

    // and the intact file, into an empty dir that exists: the keys at the backup's index with term 0, the revision kept
    Path fresh = Files.createDirectories(tmp.resolve("fresh"));
    Restore.Restored r = Restore.restore(backup, fresh, "n2", peers);
    assertEquals(new Restore.Restored(50, 50, 50, 1, r.clusterId()), r);
    assertEquals(RaftNode.clusterIdText(r.clusterId()), Files.readString(fresh.resolve("raftkv-cluster-id")).trim());
    assertNotEquals(r.clusterId(), Restore.restore(backup, tmp.resolve("other-token"), "n2", peers, "another")
        .clusterId(), "another token, another cluster");
    assertEquals("n2", Files.readString(fresh.resolve("raftkv-node-id")).trim());
    try (KvDb db = KvDb.open(fresh.resolve("kv"))) {
      assertEquals(50, db.appliedIndex());
      assertEquals(0, db.appliedTerm(), "below every term of the new cluster");
      assertEquals(50, db.revision());
      assertEquals(50, db.keyCount());
      KvResult.GetDone got = (KvResult.GetDone) db.query(new KvQuery.Get(key(49)));
      assertEquals("v-49", new String(got.kv().value(), StandardCharsets.UTF_8));
    }
  }

  /** Runs {@code restore}, which must throw {@code type}; returns its message, which must be one line. */
  private static String refused(Class<? extends RuntimeException> type, Executable restore) {
    RuntimeException e = assertThrows(type, restore::run);
    String message = e.getMessage();
    assertNotNull(message);
    assertFalse(message.isBlank() || message.contains("\n"), () -> "one line: " + message);
    return message;
  }

  /** A backup file of a state machine in {@code dir} holding keys 0..n-1, one entry each, in term 1. */
  private static Path localBackup(Path dir, int n) throws Exception {
    Path file = dir.resolve("backup.snap");
    try (KvStateMachine sm = KvStateMachine.open(dir.resolve("kv"))) {
      List<StateMachine.Entry> entries = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        entries.add(new StateMachine.Entry(i + 1, 1, KvCodec.encode(KvCommand.Put.of(key(i),
            ("v-" + i).getBytes(StandardCharsets.UTF_8)))));
      }
      sm.apply(entries);
      try (StateMachine.Snapshot view = sm.snapshot(); OutputStream out = Files.newOutputStream(file)) {
        SnapshotFile.stream(out, view, List.of(new Peer("old1", "10.0.0.1", 2552)));
      }
    }
    return file;
  }

  private static String key(int i) {
    return String.format("k/%05d", i);
  }



  /** Puts keys {@code key(i)} with values {@code prefix-i}. */
  private static void writeKeys(RaftKv via, String prefix, int from, int count) throws Exception {
    InProcessCluster.writeAll(via, BackupRestoreTest::key, i -> prefix + "-" + i, from, count);
  }

  /** A restore call, which may throw anything. */
  @FunctionalInterface
  private interface Executable {
    void run() throws Exception;
  }
}
