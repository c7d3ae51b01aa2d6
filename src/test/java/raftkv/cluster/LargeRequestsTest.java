package raftkv.cluster;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.ClusterStatus;
import raftkv.client.RaftKv.Consistency;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Requests as large as the API allows, or larger, never stop the cluster (issue: one 2 MB
 * transaction of gets on a 256-emoji key made every AppendEntries that carried it 3 MB, over
 * Artery's 2 MiB frame; the leader lost check-quorum on every heartbeat and no write succeeded
 * again). Each such request is applied or refused with TOO_LARGE, a small write right after it
 * commits, no message is ever dropped for its size, and a follower that lags by such entries
 * catches up.
 */
class LargeRequestsTest {
  private static final Duration ELECTION = Duration.ofSeconds(15);
  private static final String EMOJI_KEY = "\uD83D\uDE00".repeat(256); // 1,024 bytes of UTF-8, 1,536 in the log
  private static final String CJK_KEY = "\u9375".repeat(340); // 1,020 bytes, three per character
  private InProcessCluster cluster;

  @AfterEach
  void tearDown() {
    if (cluster != null) {
      List<String> oversized = cluster.dropped().stream().filter(d -> d.contains("versized")).toList();
      assertTrue(oversized.isEmpty(), oversized.size() + " messages dropped for their size, the first: "
          + (oversized.isEmpty() ? "" : oversized.get(0)));
      cluster.assertOneLeaderPerTerm();
      cluster.close();
    }
  }

  @Test
  void withOneFollowerDownTheLargestRequestsAreAppliedOrRefusedAndTheFollowerCatchesUp() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    int down = (leader + 1) % 3;
    int up = (leader + 2) % 3;
    cluster.stop(down); // as during any maintenance

    List<byte[]> applied = sendEveryKindOfLargeRequest(up);

    cluster.start(down);
    ClusterStatus leaderStatus = cluster.status(cluster.awaitLeader(ELECTION));
    await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100)).until(() -> {
      ClusterStatus st = cluster.status(down);
      return st != null && st.appliedIndex() >= leaderStatus.commitIndex();
    });
    assertEquals(applied.size(), 3, "three large requests were legal");
    assertArrayEquals(applied.get(0), localValue(down, EMOJI_KEY), "the follower holds the largest legal put");
    assertArrayEquals(applied.get(1), localValue(down, CJK_KEY + "/89"), "and the largest legal transaction");
  }

  @Test
  void withAllNodesUpTheLargestRequestsAreAppliedOrRefusedWithoutALeadershipChange() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    long term = cluster.status(leader).term();

    sendEveryKindOfLargeRequest((leader + 1) % 3); // through a follower: proposals are forwarded too

    assertEquals(term, cluster.status(cluster.awaitLeader(ELECTION)).term(), "the leader kept its term");
    for (int i = 0; i < 3; i++) {
      int node = i;
      await().atMost(Duration.ofSeconds(30)).untilAsserted(() ->
          assertEquals(8 * 1024, localValue(node, "group/" + CJK_KEY.substring(0, 100) + "/39/7").length));
    }
  }

  @Test
  void aResultTooLargeToCarryBackToTheForwardingNodeIsAnsweredWithWhyNotLeftToTimeOut() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    int follower = (leader + 1) % 3;
    for (int i = 0; i < 3; i++) { // three values of 900 KB: 2.7 MB together, more than a frame
      assertInstanceOf(KvResult.PutDone.class, write(leader, KvCommand.Put.of("big/" + i, filled(900_000, i))));
    }
    List<TxnOp> gets = List.of(new TxnOp.Get("big/0"), new TxnOp.Get("big/1"), new TxnOp.Get("big/2"));

    // a read through a follower: refused as too large (nothing happened), not a timeout
    ExecutionException read = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, () ->
        cluster.node(follower).read(new KvQuery.Range("big/", null, 0), Consistency.LINEARIZABLE)
            .toCompletableFuture().get(20, TimeUnit.SECONDS));
    RaftKvException tooLarge = assertInstanceOf(RaftKvException.class, read.getCause());
    assertEquals(RaftKvException.Kind.TOO_LARGE, tooLarge.kind(), tooLarge.getMessage());

    // a transaction of gets through a follower: applied, and the client is told so
    ExecutionException txn = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, () ->
        write(follower, new KvCommand.Txn(List.of(), gets, List.of())));
    RaftKvException applied = assertInstanceOf(RaftKvException.class, txn.getCause());
    assertEquals(RaftKvException.Kind.TIMEOUT, applied.kind());
    assertTrue(applied.getMessage().contains("was applied"), applied.getMessage());

    // on the leader both are answered in full
    KvResult range = cluster.node(leader).read(new KvQuery.Range("big/", null, 0), Consistency.LINEARIZABLE)
        .toCompletableFuture().get(20, TimeUnit.SECONDS);
    assertEquals(3, assertInstanceOf(KvResult.RangeDone.class, range).kvs().size());
    KvResult.TxnDone done = assertInstanceOf(KvResult.TxnDone.class, write(leader, new KvCommand.Txn(List.of(), gets, List.of())));
    assertEquals(3, done.results().size());
    smallWriteCommits(follower, "after-large-results");
  }

  /**
   * The request and its relatives, each followed by a small write that must commit; returns
   * the values of the legal ones (the largest put, the last put of the largest transaction, and a
   * marker of the group commit).
   */
  private List<byte[]> sendEveryKindOfLargeRequest(int via) throws Exception {
    List<byte[]> applied = new ArrayList<>();
    // the transaction: 1,900 gets on a 256-emoji key (API.md allows 128 operations)
    List<TxnOp> gets = new ArrayList<>();
    for (int i = 0; i < 1900; i++) {
      gets.add(new TxnOp.Get(EMOJI_KEY));
    }
    assertRefused(via, new KvCommand.Txn(List.of(), gets, List.of()), RaftKvException.Kind.BAD_REQUEST);
    smallWriteCommits(via, "after-1900-gets");

    // 128 puts of 8 KiB under the emoji key: within every per-op limit, 1.2 MB in the log
    List<TxnOp> puts = new ArrayList<>();
    for (int i = 0; i < 128; i++) {
      puts.add(new TxnOp.Put(EMOJI_KEY, new byte[8 * 1024], 0));
    }
    assertRefused(via, new KvCommand.Txn(List.of(), puts, List.of()), RaftKvException.Kind.TOO_LARGE);
    smallWriteCommits(via, "after-128-puts");

    // three 1 MiB values in one transaction (the embedded API had no bound at all)
    List<TxnOp> threeMiB = List.of(new TxnOp.Put("a", new byte[1 << 20], 0), new TxnOp.Put("b", new byte[1 << 20], 0),
        new TxnOp.Put("c", new byte[1 << 20], 0));
    assertRefused(via, new KvCommand.Txn(List.of(), threeMiB, List.of()), RaftKvException.Kind.TOO_LARGE);
    smallWriteCommits(via, "after-3-MiB");

    // the largest legal put: a 1 MiB value under a 1,024-byte key of four-byte characters
    byte[] big = filled(1 << 20, 7);
    assertInstanceOf(KvResult.PutDone.class, write(via, new KvCommand.Put(EMOJI_KEY, big, 0, null, false)));
    applied.add(big);
    smallWriteCommits(via, "after-largest-put");

    // a legal transaction just under the limit: 90 puts of 10 KiB under 1,020-byte CJK keys
    List<TxnOp> nearLimit = new ArrayList<>();
    byte[] tenK = filled(10 * 1024, 3);
    for (int i = 0; i < 90; i++) {
      nearLimit.add(new TxnOp.Put(CJK_KEY + "/" + i, tenK, 0));
    }
    assertInstanceOf(KvResult.TxnDone.class, write(via, new KvCommand.Txn(List.of(), nearLimit, List.of())));
    applied.add(tenK);
    smallWriteCommits(via, "after-near-limit-txn");

    // a group commit: 40 transactions of about 100 KB each at once, 4 MB in one batch, twice the frame
    List<CompletableFuture<KvResult>> batch = new ArrayList<>();
    byte[] eightK = filled(8 * 1024, 5);
    for (int t = 0; t < 40; t++) {
      List<TxnOp> ops = new ArrayList<>();
      for (int k = 0; k < 8; k++) {
        ops.add(new TxnOp.Put("group/" + CJK_KEY.substring(0, 100) + "/" + t + "/" + k, eightK, 0));
        ops.add(new TxnOp.Put("group/" + CJK_KEY.substring(0, 330) + "/" + t + "/" + k, eightK, 0));
      }
      batch.add(cluster.node(via).write(new KvCommand.Txn(List.of(), ops, List.of())).toCompletableFuture());
    }
    for (CompletableFuture<KvResult> f : batch) {
      assertInstanceOf(KvResult.TxnDone.class, f.get(30, TimeUnit.SECONDS));
    }
    applied.add(eightK);
    smallWriteCommits(via, "after-group-commit");
    return applied;
  }

  private void assertRefused(int via, KvCommand command, RaftKvException.Kind kind) throws Exception {
    try {
      KvResult result = write(via, command);
      fail("expected " + kind + " but the request was applied: " + result.getClass().getSimpleName());
    } catch (ExecutionException e) {
      RaftKvException cause = assertInstanceOf(RaftKvException.class, e.getCause());
      assertEquals(kind, cause.kind(), cause.getMessage());
    }
  }

  /** A small write through {@code via} commits within seconds: the cluster is not stalled. */
  private void smallWriteCommits(int via, String key) throws Exception {
    assertInstanceOf(KvResult.PutDone.class, write(via, KvCommand.Put.of(key, new byte[] {1})), key);
  }

  private KvResult write(int node, KvCommand command) throws Exception {
    return cluster.node(node).write(command).toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private byte[] localValue(int node, String key) throws Exception {
    KvResult r = cluster.node(node).read(new KvQuery.Get(key), Consistency.SERIALIZABLE).toCompletableFuture()
        .get(5, TimeUnit.SECONDS);
    KvResult.GetDone done = assertInstanceOf(KvResult.GetDone.class, r);
    assertTrue(done.kv() != null, key.length() > 40 ? key.substring(0, 40) + "..." : key);
    return done.kv().value();
  }

  private static byte[] filled(int size, int value) {
    byte[] b = new byte[size];
    Arrays.fill(b, (byte) value);
    return b;
  }
}
