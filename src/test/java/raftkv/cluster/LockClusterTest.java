package raftkv.cluster;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.recipes.LockQueue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lock queue (raftkv.recipes.LockQueue) on a 3-node cluster, contenders on different nodes:
 * FIFO handoff with strictly increasing fencing tokens, fenced writes refused for an old holder,
 * a timed-out waiter leaves no key behind, a lease's expiry hands the lock on, and an election's
 * observers see every change of leader in order.
 */
class LockClusterTest {
  private static final Duration WAIT = Duration.ofSeconds(30);

  private InProcessCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("LockClients", com.typesafe.config.ConfigFactory.parseString("akka.actor.provider = local")
      .withFallback(com.typesafe.config.ConfigFactory.load()));

  @AfterEach
  void tearDown() {
    clients.shutdownTestKit();
    if (cluster != null) {
      cluster.close();
    }
  }

  private KvResult write(int via, KvCommand command) throws Exception {
    return cluster.node(via).write(command).toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private LockQueue queue(int via) {
    return LockQueue.create(cluster.node(via), clients.system());
  }

  private static <T> T get(java.util.concurrent.CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static RaftKvException.Kind failure(java.util.concurrent.CompletionStage<?> stage) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> stage.toCompletableFuture().get(20, TimeUnit.SECONDS));
    return assertInstanceOf(RaftKvException.class, e.getCause()).kind();
  }

  @Test
  void waitersGetTheLockInOrderWithGrowingTokensAndOldHoldersAreFencedOut() throws Exception {
    cluster = new InProcessCluster(3);
    cluster.awaitLeader(WAIT);
    for (int i = 1; i <= 4; i++) {
      write(i % 3, new KvCommand.LeaseGrant(i, 30));
    }
    LockQueue.Waiter first = get(queue(0).acquire("jobs", 1, new byte[0], Duration.ZERO));
    List<CompletableFuture<LockQueue.Waiter>> waiting = new ArrayList<>();
    for (int i = 2; i <= 4; i++) { // each joins after the one before, through another node
      waiting.add(queue(i % 3).acquire("jobs", i, new byte[0], Duration.ofSeconds(20)).toCompletableFuture());
      String key = LockQueue.waiterKey("jobs", i);
      await().atMost(WAIT).until(() -> exists(0, key));
    }
    assertTrue(waiting.stream().noneMatch(CompletableFuture::isDone), "nobody gets a held lock");
    assertInstanceOf(KvResult.PutDone.class, write(1, new KvCommand.Fenced("jobs", first.token(), put("counter", "1"))));

    List<Long> tokens = new ArrayList<>(List.of(first.token()));
    LockQueue.Waiter holder = first;
    for (CompletableFuture<LockQueue.Waiter> next : waiting) {
      long released = get(queue(2).release("jobs", holder.key(), holder.token()));
      assertTrue(released > holder.token());
      LockQueue.Waiter now = next.get(20, TimeUnit.SECONDS);
      assertTrue(now.token() > tokens.get(tokens.size() - 1), "tokens grow: " + tokens + " then " + now.token());
      tokens.add(now.token());
      // the previous holder, paused through its release, writes late with its token: refused
      assertEquals(new KvResult.FenceFailed("jobs", now.token()),
          write(0, new KvCommand.Fenced("jobs", holder.token(), put("counter", "late"))));
      assertInstanceOf(KvResult.PutDone.class, write(0, new KvCommand.Fenced("jobs", now.token(), put("counter", "ok"))));
      holder = now;
    }
    assertEquals(4, tokens.size());
    // a release of a key that no longer holds, or of a foreign key, changes nothing
    assertEquals(RaftKvException.Kind.NOT_FOUND, failure(queue(1).release("jobs", first.key(), 0)));
    assertEquals(RaftKvException.Kind.BAD_REQUEST, failure(queue(1).release("jobs", "other/1", 0)));
    assertEquals(holder.key(), get(queue(1).holder("jobs")).orElseThrow().key());
  }

  @Test
  void aWaiterThatTimesOutLeavesNoKeyAndAnExpiredHolderHandsTheLockOn() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    write(leader, new KvCommand.LeaseGrant(10, 2)); // never kept alive: expires within 2 s + an election timeout
    write(leader, new KvCommand.LeaseGrant(11, 30));
    LockQueue.Waiter first = get(queue(leader).acquire("db", 10, new byte[0], Duration.ZERO));
    long start = System.nanoTime();
    assertEquals(RaftKvException.Kind.LOCK_TIMEOUT, failure(queue((leader + 1) % 3).acquire("db", 11, new byte[0], Duration.ofMillis(300))));
    assertFalse(exists(leader, LockQueue.waiterKey("db", 11)), "told 408: its waiter key is gone");
    assertEquals(first.key(), get(queue(leader).holder("db")).orElseThrow().key(), "the holder is untouched");

    LockQueue.Waiter second = get(queue((leader + 2) % 3).acquire("db", 11, new byte[0], Duration.ofSeconds(20)));
    long waited = (System.nanoTime() - start) / 1_000_000;
    assertTrue(second.token() > first.token());
    assertTrue(waited >= 1_500 && waited <= 2_000 + 1_000 + 3_000, "handed on after the lease expired: " + waited + " ms");
    assertNull(kv(leader, first.key()));
    assertEquals(RaftKvException.Kind.NOT_FOUND, failure(queue(leader).acquire("db", 10, new byte[0], Duration.ZERO)),
        "an expired lease cannot wait");
  }

  @Test
  void electionObserversSeeEveryLeaderInOrderAndOnlyTheLeaderProclaims() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    write(leader, new KvCommand.LeaseGrant(21, 30));
    write(leader, new KvCommand.LeaseGrant(22, 30));
    List<LockQueue.Observed> seen = new CopyOnWriteArrayList<>();
    int watcher = (leader + 1) % 3;
    get(queue(watcher).observe("primary")).runWith(Sink.foreach(seen::add), clients.system());
    await().atMost(WAIT).until(() -> seen.size() == 1);
    assertTrue(seen.get(0).holder().isEmpty(), "nobody leads yet");

    LockQueue.Waiter a = get(queue(0).acquire("primary", 21, bytes("a"), Duration.ZERO));
    CompletableFuture<LockQueue.Waiter> b = queue(1).acquire("primary", 22, bytes("b"), Duration.ofSeconds(20)).toCompletableFuture();
    await().atMost(WAIT).until(() -> exists(0, LockQueue.waiterKey("primary", 22)));
    assertEquals(RaftKvException.Kind.PRECONDITION_FAILED,
        failure(queue(2).proclaim("primary", LockQueue.waiterKey("primary", 22), bytes("b!"))), "only the leader proclaims");
    get(queue(2).proclaim("primary", a.key(), bytes("a2")));
    get(queue(2).release("primary", a.key(), 0)); // resign
    LockQueue.Waiter bLeads = b.get(20, TimeUnit.SECONDS);
    get(queue(0).release("primary", bLeads.key(), 0));

    await().atMost(WAIT).until(() -> seen.size() == 5);
    List<String> story = seen.stream().map(o -> o.holder().map(h -> h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8))
        .orElse("-")).toList();
    assertEquals(List.of("-", "primary/15=a", "primary/15=a2", "primary/16=b", "-"), story);
    for (int i = 1; i < seen.size(); i++) {
      assertTrue(seen.get(i).revision() > seen.get(i - 1).revision(), "in revision order: " + seen);
    }
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static KvCommand put(String key, String value) {
    return new KvCommand.Put(key, bytes(value), 0, null, false);
  }

  private boolean exists(int node, String key) throws Exception {
    return kv(node, key) != null;
  }

  private raftkv.kv.KeyValue kv(int node, String key) throws Exception {
    return ((KvResult.GetDone) cluster.node(node).read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE)
        .toCompletableFuture().get(10, TimeUnit.SECONDS)).kv();
  }
}
