package raftkv.recipes;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.cluster.OpenCluster;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DistributedLock on a 3-node in-process cluster (election timeout 1 s), contenders on different
 * nodes: the second gets the lock only once the first unlocks, with a larger token; a holder whose
 * keepalives stop is told it lost the lock and its fenced write is refused, while the next holder's
 * goes through; close() revokes the lease; no thread is left behind.
 */
class DistributedLockTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static OpenCluster cluster;
  private static ActorTestKit clients;

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = OpenCluster.start(3, "");
    clients = ActorTestKit.create("LockRecipeClients");
  }

  @AfterAll
  static void stopCluster() {
    clients.shutdownTestKit();
    cluster.close();
  }

  private static DistributedLock lock(int via, String name, Duration ttl) {
    return new DistributedLock(cluster.node(via), clients.system(), name, LeaseSettings.of(ttl));
  }

  private static <T> T get(java.util.concurrent.CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  @Test
  void theSecondContenderGetsTheLockOnlyAfterTheFirstUnlocksWithALargerToken() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "LockRecipeClients");
    try (DistributedLock a = lock(0, "jobs", Duration.ofSeconds(5)); DistributedLock b = lock(1, "jobs", Duration.ofSeconds(5))) {
      DistributedLock.Held first = get(a.lock());
      assertEquals(Optional.of(first), a.held());
      CompletableFuture<DistributedLock.Held> second = b.lock().toCompletableFuture();
      await().atMost(WAIT).until(() -> waiters(cluster.node(2), "jobs").size() == 2);
      assertEquals(Optional.empty(), get(lock(2, "jobs", Duration.ofSeconds(5)).tryLock(Duration.ZERO)),
          "a third contender that will not wait does not get it");
      assertEquals(2, waiters(cluster.node(2), "jobs").size(), "and leaves nothing behind");
      assertFalse(second.isDone(), "nobody gets a held lock");
      assertInstanceOf(KvResult.PutDone.class, get(cluster.node(2).write(a.fenced(put("jobs-state", "a")))));

      get(a.unlock());
      assertEquals(Optional.empty(), a.held());
      DistributedLock.Held next = second.get(20, TimeUnit.SECONDS);
      assertTrue(next.fencingToken() > first.fencingToken(), first + " then " + next);
      assertInstanceOf(KvResult.FenceFailed.class, get(cluster.node(0).write(new KvCommand.Fenced("jobs", first.fencingToken(),
          put("jobs-state", "a late")))));
      assertInstanceOf(KvResult.PutDone.class, get(cluster.node(0).write(b.fenced(put("jobs-state", "b")))));
      assertThrows(IllegalStateException.class, () -> a.fenced(put("jobs-state", "x")), "a does not hold it");

      // again, the other way round
      get(b.unlock());
      DistributedLock.Held third = get(a.tryLock(Duration.ofSeconds(5))).orElseThrow();
      assertTrue(third.fencingToken() > next.fencingToken());
    }
    assertEquals(List.of(), waiters(cluster.node(0), "jobs"), "closed: nobody waits");
    threads.assertNoneLeft();
  }

  @Test
  void aHolderWhoseKeepalivesStopIsToldItLostTheLockAndItsFencedWritesAreRefused() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "LockRecipeClients");
    List<String> lost = new CopyOnWriteArrayList<>();
    try (DistributedLock paused = lock(0, "db", Duration.ofSeconds(2)).onLost(lost::add);
         DistributedLock next = lock(1, "db", Duration.ofSeconds(2))) {
      DistributedLock.Held held = get(paused.lock());
      KvCommand late = paused.fenced(put("db-state", "from the paused holder")); // made while it held
      CompletableFuture<DistributedLock.Held> waiting = next.lock().toCompletableFuture();
      await().atMost(WAIT).until(() -> waiters(cluster.node(2), "db").size() == 2);

      paused.suspendKeepAlive(); // as if its process stopped: no keepalive, no revoke
      DistributedLock.Held nextHeld = waiting.get(20, TimeUnit.SECONDS); // its lease expired: 2 s + an election timeout
      assertTrue(nextHeld.fencingToken() > held.fencingToken());
      await().atMost(WAIT).until(() -> !lost.isEmpty());
      assertTrue(lost.get(0).contains(held.key()), "the reason names the key: " + lost);
      assertEquals(Optional.empty(), paused.held());

      assertEquals(new KvResult.FenceFailed("db", nextHeld.fencingToken()), get(cluster.node(2).write(late)),
          "the old holder's write, sent late, is refused");
      assertInstanceOf(KvResult.PutDone.class, get(cluster.node(2).write(next.fenced(put("db-state", "from the next")))));
      assertEquals("from the next", value(0, "db-state"));

      // a hold whose lease is revoked by someone else is lost too, and reported
      List<String> alsoLost = new CopyOnWriteArrayList<>();
      next.onLost(alsoLost::add);
      get(cluster.node(0).revokeLease(nextHeld.lease()));
      await().atMost(WAIT).until(() -> !alsoLost.isEmpty());
      assertEquals(Optional.empty(), next.held());
    }
    assertEquals(1, lost.size(), "told once: " + lost);
    threads.assertNoneLeft();
  }

  @Test
  void aWaiterThatGivesUpLeavesTheQueueAtOnce() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "LockRecipeClients");
    try (DistributedLock a = lock(0, "queue", Duration.ofSeconds(5)); DistributedLock b = lock(1, "queue", Duration.ofSeconds(5))) {
      get(a.lock());
      CompletableFuture<DistributedLock.Held> waiting = b.lock().toCompletableFuture();
      await().atMost(WAIT).until(() -> waiters(cluster.node(2), "queue").size() == 2);
      get(b.unlock());
      assertInstanceOf(IllegalStateException.class, assertThrows(java.util.concurrent.ExecutionException.class,
          () -> waiting.get(5, TimeUnit.SECONDS)).getCause(), "the wait failed, long before its 60 s");
      assertEquals(1, waiters(cluster.node(2), "queue").size(), "its key went with its lease");
      assertTrue(get(b.tryLock(Duration.ZERO)).isEmpty(), "b may try again");
    }
    threads.assertNoneLeft();
  }

  @Test
  void closeRevokesTheLeaseAndRefusesLaterLocks() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "LockRecipeClients");
    DistributedLock lock = lock(2, "closing", Duration.ofSeconds(10));
    DistributedLock.Held held = get(lock.lock());
    assertInstanceOf(KvResult.LeaseInfo.class, get(cluster.node(0).read(new KvQuery.LeaseGet(held.lease()), RaftKv.Consistency.LINEARIZABLE)));
    lock.close();
    assertInstanceOf(KvResult.LeaseNotFound.class, get(cluster.node(0).read(new KvQuery.LeaseGet(held.lease()),
        RaftKv.Consistency.LINEARIZABLE)), "close() revoked the lease");
    assertNull(kv(0, held.key()), "and its key went with it");
    assertInstanceOf(IllegalStateException.class, assertThrows(java.util.concurrent.ExecutionException.class,
        () -> get(lock.lock())).getCause());
    threads.assertNoneLeft();
  }

  private static KvCommand put(String key, String value) {
    return KvCommand.Put.of(key, value.getBytes(StandardCharsets.UTF_8));
  }

  static List<KeyValue> waiters(RaftKv via, String name) throws Exception {
    return ((KvResult.RangeDone) get(via.read(new KvQuery.Range(name + "/", null, 0),
        RaftKv.Consistency.LINEARIZABLE))).kvs();
  }

  private static KeyValue kv(int via, String key) throws Exception {
    return ((KvResult.GetDone) get(cluster.node(via).read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE))).kv();
  }

  private static String value(int via, String key) throws Exception {
    return new String(kv(via, key).value(), StandardCharsets.UTF_8);
  }
}
