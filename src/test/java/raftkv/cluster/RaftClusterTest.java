package raftkv.cluster;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.ClusterStatus;
import raftkv.client.RaftKv.Consistency;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Three nodes in one JVM, each in its own ActorSystem on loopback, each with its own journal:
 * the Raft guarantees that clients see, under crashes and leader changes.
 */
class RaftClusterTest {
  private static final Duration ELECTION = Duration.ofSeconds(15);
  private InProcessCluster cluster;

  @AfterEach
  void tearDown() {
    if (cluster != null) {
      cluster.assertOneLeaderPerTerm();
      cluster.close();
    }
  }

  @Test
  void electsExactlyOneLeaderThatEveryNodeFollows() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    ClusterStatus st = cluster.status(leader);
    assertEquals("leader", st.role());
    assertEquals(3, st.members().size());
    int followers = 0;
    for (int i = 0; i < 3; i++) {
      if (i != leader && "follower".equals(cluster.status(i).role())) {
        followers++;
      }
    }
    assertEquals(2, followers);
  }

  @Test
  void writesThroughAnyNodeAreReplicatedToEveryNode() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    int follower = (leader + 1) % 3;
    put(leader, "a", "1");
    put(follower, "b", "2"); // forwarded to the leader
    for (int i = 0; i < 3; i++) {
      int node = i;
      await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
        assertEquals("1", localValue(node, "a"));
        assertEquals("2", localValue(node, "b"));
      });
    }
    assertEquals("2", linearizableValue(follower, "b"));
  }

  @Test
  void concurrentLinearizableReadsNeverMissAnAcknowledgedWrite() throws Exception {
    // Reads that arrive while a ReadIndex heartbeat round is in flight wait for the next round:
    // waves of 64 reads, through the leader and forwarded by a follower, racing a write.
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    int follower = (leader + 1) % 3;
    for (int wave = 1; wave <= 20; wave++) {
      put(leader, "counter", Integer.toString(wave)); // acknowledged before any read of the wave starts
      CompletableFuture<KvResult> racing =
          cluster.node(leader).write(KvCommand.Put.of("counter", bytes(Integer.toString(wave + 1)))).toCompletableFuture();
      List<CompletableFuture<KvResult>> reads = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        reads.add(cluster.node(i % 2 == 0 ? leader : follower)
            .read(new KvQuery.Get("counter"), Consistency.LINEARIZABLE).toCompletableFuture());
      }
      for (CompletableFuture<KvResult> read : reads) {
        int seen = Integer.parseInt(value(read.get(10, TimeUnit.SECONDS)));
        assertTrue(seen == wave || seen == wave + 1, "wave " + wave + " read " + seen);
      }
      assertInstanceOf(KvResult.PutDone.class, racing.get(10, TimeUnit.SECONDS));
    }
  }

  @Test
  void aNewLeaderKeepsEveryAcknowledgedWriteAfterTheLeaderCrashes() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    List<String> acked = writeConcurrently(leader, "crash-", 200);
    cluster.stop(leader);
    int newLeader = cluster.awaitLeader(ELECTION);
    assertNotEquals(leader, newLeader);
    for (String key : acked) {
      assertEquals(key, linearizableValue(newLeader, key), "acknowledged write " + key + " lost");
    }
    put(newLeader, "after", "x");
    cluster.start(leader);
    // the restarted node may still be reading its journal: it says "retry shortly", and we do
    await().atMost(Duration.ofSeconds(10)).ignoreExceptions().untilAsserted(() -> assertEquals("x", localValue(leader, "after")));
  }

  @Test
  void aFollowerThatWasDownDuringAThousandWritesCatchesUp() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    int follower = (leader + 1) % 3;
    cluster.stop(follower);
    List<String> acked = writeConcurrently(leader, "w", 1000);
    assertEquals(1000, acked.size());
    cluster.start(follower);
    long leaderCommit = cluster.status(leader).commitIndex();
    await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
      ClusterStatus st = cluster.status(follower);
      assertNotNull(st);
      assertTrue(st.appliedIndex() >= leaderCommit, "follower applied " + st.appliedIndex() + " of " + leaderCommit);
    });
    for (String key : acked) {
      assertEquals(key, localValue(follower, key));
    }
  }

  @Test
  void aFullRestartOfEveryNodeRecoversEveryAcknowledgedWrite() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(ELECTION);
    List<String> acked = writeConcurrently(leader, "r", 300);
    long revision = cluster.status(leader).revision();
    for (int i = 0; i < 3; i++) {
      cluster.stop(i);
    }
    for (int i = 0; i < 3; i++) {
      cluster.start(i);
    }
    int newLeader = cluster.awaitLeader(ELECTION);
    for (String key : acked) {
      assertEquals(key, linearizableValue(newLeader, key), "acknowledged write " + key + " lost in the restart");
    }
    assertTrue(cluster.status(newLeader).revision() >= revision);
  }

  @Test
  void aLeaderCutOffFromItsFollowersAcknowledgesNoWriteAndServesNoStaleRead() throws Exception {
    cluster = new InProcessCluster(3);
    int old = cluster.awaitLeader(ELECTION);
    put(old, "k", "before");
    int f1 = (old + 1) % 3;
    int f2 = (old + 2) % 3;
    cluster.partition(old, f1);
    cluster.partition(old, f2);
    CompletableFuture<KvResult> staleWrite =
        cluster.node(old).write(KvCommand.Put.of("k", bytes("stale"))).toCompletableFuture();
    CompletableFuture<KvResult> staleRead =
        cluster.node(old).read(new KvQuery.Get("k"), Consistency.LINEARIZABLE).toCompletableFuture();
    // the majority side elects a new leader and moves on
    await().atMost(ELECTION).until(() -> {
      ClusterStatus st = cluster.status(f1);
      return st != null && st.leaderId() != null && !st.leaderId().equals(cluster.settings(old).id());
    });
    int newLeader = -1;
    for (int i : new int[] {f1, f2}) {
      if ("leader".equals(cluster.status(i).role())) {
        newLeader = i;
      }
    }
    if (newLeader < 0) {
      newLeader = cluster.awaitLeaderAmong(f1, f2, ELECTION);
    }
    put(newLeader, "k", "after");
    assertFailsWithoutEffect(staleWrite);
    assertFailsWithoutEffect(staleRead);
    cluster.healAll();
    int healed = cluster.awaitLeader(ELECTION);
    assertEquals("after", linearizableValue(healed, "k"));
    for (int i = 0; i < 3; i++) {
      int node = i;
      await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertEquals("after", localValue(node, "k")));
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private static void assertFailsWithoutEffect(CompletableFuture<KvResult> f) throws InterruptedException {
    try {
      KvResult r = f.get(15, TimeUnit.SECONDS);
      fail("a leader cut off from the majority answered " + r);
    } catch (ExecutionException e) {
      assertInstanceOf(RaftKvException.class, e.getCause());
    } catch (java.util.concurrent.TimeoutException e) {
      fail("the request got no answer at all");
    }
  }

  private void put(int node, String key, String value) throws Exception {
    KvResult r = cluster.node(node).write(KvCommand.Put.of(key, bytes(value))).toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertInstanceOf(KvResult.PutDone.class, r);
  }

  /**
   * Writes key=value for n keys, 32 at a time, through the current leader. A write that fails
   * (not applied, or outcome unknown, e.g. when an election happens under load) is retried
   * through whichever node leads then; putting the same value again is harmless. Returns the keys
   * in the order they were acknowledged: every one of them must survive what the test does next.
   */
  private List<String> writeConcurrently(int node, String prefix, int n) throws Exception {
    List<String> acked = new ArrayList<>();
    List<String> todo = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      todo.add(prefix + i);
    }
    int via = node;
    for (int attempt = 0; attempt < 10 && !todo.isEmpty(); attempt++) {
      List<String> failed = new ArrayList<>();
      for (int start = 0; start < todo.size(); start += 32) {
        List<String> keys = todo.subList(start, Math.min(todo.size(), start + 32));
        List<CompletableFuture<KvResult>> batch = new ArrayList<>();
        for (String key : keys) {
          batch.add(cluster.node(via).write(KvCommand.Put.of(key, bytes(key))).toCompletableFuture());
        }
        for (int i = 0; i < batch.size(); i++) {
          try {
            assertInstanceOf(KvResult.PutDone.class, batch.get(i).get(15, TimeUnit.SECONDS));
            acked.add(keys.get(i));
          } catch (ExecutionException e) {
            assertInstanceOf(RaftKvException.class, e.getCause());
            failed.add(keys.get(i));
          }
        }
      }
      todo = failed;
      if (!todo.isEmpty()) {
        via = cluster.awaitLeader(ELECTION);
      }
    }
    assertTrue(todo.isEmpty(), "writes never acknowledged: " + todo);
    return acked;
  }

  private String localValue(int node, String key) throws Exception {
    return value(cluster.node(node).read(new KvQuery.Get(key), Consistency.SERIALIZABLE).toCompletableFuture().get(5, TimeUnit.SECONDS));
  }

  private String linearizableValue(int node, String key) throws Exception {
    return value(cluster.node(node).read(new KvQuery.Get(key), Consistency.LINEARIZABLE).toCompletableFuture().get(10, TimeUnit.SECONDS));
  }

  private static String value(KvResult r) {
    KvResult.GetDone g = assertInstanceOf(KvResult.GetDone.class, r);
    return g.kv() == null ? null : new String(g.kv().value(), StandardCharsets.UTF_8);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
