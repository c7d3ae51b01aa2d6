package raftkv.cluster;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Leases on a cluster (election timeout 1 s): an abandoned lease's keys go within its TTL plus one
 * election timeout, at one revision; a lease kept alive through a follower survives the leader's
 * crash and a partition of the leader, and its keys are never deleted meanwhile.
 */
class LeaseClusterTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final long ELECTION_MILLIS = 1_000;

  private InProcessCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("LeaseClients", com.typesafe.config.ConfigFactory.parseString("akka.actor.provider = local")
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

  private static KvCommand put(String key, long lease) {
    return new KvCommand.Put(key, key.getBytes(StandardCharsets.UTF_8), lease, null, false);
  }

  @Test
  void anAbandonedLeaseTakesItsKeysWithinItsTtlPlusAnElectionTimeoutAtOneRevision() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    int follower = (leader + 1) % 3;
    KvResult.LeaseGranted granted = (KvResult.LeaseGranted) write(follower, new KvCommand.LeaseGrant(1234, 1));
    assertEquals(2, granted.ttlSeconds(), "the shortest lease is 1.5 election timeouts, rounded up to a second");
    long grantedAt = System.nanoTime();
    write(follower, put("svc/a", 1234));
    KvResult.PutDone last = (KvResult.PutDone) write(follower, put("svc/b", 1234));
    List<WatchMessage> seen = new CopyOnWriteArrayList<>();
    cluster.node(follower).watch(WatchRequest.prefix("svc/").from(last.revision() + 1)).toCompletableFuture().get(10, TimeUnit.SECONDS)
        .runWith(Sink.foreach(seen::add), clients.system());
    await().atMost(WAIT).pollInterval(Duration.ofMillis(20)).until(() -> local(follower, "svc/a") == null);
    long lived = (System.nanoTime() - grantedAt) / 1_000_000;
    assertTrue(lived <= 2_000 + ELECTION_MILLIS + 500, "the keys lived " + lived + " ms");
    assertTrue(lived >= 2_000, "the keys lived only " + lived + " ms");
    await().atMost(WAIT).until(() -> seen.stream().anyMatch(m -> m instanceof WatchMessage.Change));
    WatchMessage.Change change = (WatchMessage.Change) seen.stream().filter(m -> m instanceof WatchMessage.Change).findFirst().get();
    assertEquals(List.of("svc/a", "svc/b"), change.events().events().stream().map(e -> e.kv().key()).toList(),
        "both keys go at one revision, one watch message");
    assertTrue(change.events().events().stream().allMatch(e -> e.type() == Event.Type.DELETE));
    assertInstanceOf(KvResult.LeaseNotFound.class, cluster.node(leader)
        .read(new KvQuery.LeaseGet(1234), RaftKv.Consistency.LINEARIZABLE).toCompletableFuture().get(10, TimeUnit.SECONDS));
  }

  @Test
  void aLeaseKeptAliveSurvivesTheLeadersCrashAndPartitionAndItsKeyIsNeverDeleted() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    write(leader, new KvCommand.LeaseGrant(77, 3));
    KvResult.PutDone put = (KvResult.PutDone) write(leader, put("owner", 77));
    List<WatchMessage> seen = new CopyOnWriteArrayList<>();
    cluster.node(leader).watch(WatchRequest.key("owner").from(put.revision())).toCompletableFuture()
        .get(10, TimeUnit.SECONDS).runWith(Sink.foreach(seen::add), clients.system());

    KeepAlive keepAlive = new KeepAlive(77);
    java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
    timer.scheduleWithFixedDelay(keepAlive::once, 0, 500, TimeUnit.MILLISECONDS); // a client's keepalive period
    try {
      await().atMost(WAIT).until(() -> keepAlive.acks > 3);
      cluster.stop(leader); // a crash: the new leader gives the lease its TTL and an election timeout
      int second = cluster.awaitLeader(WAIT);
      int acks = keepAlive.acks;
      await().atMost(WAIT).until(() -> keepAlive.acks > acks + 8);
      cluster.start(leader);
      second = cluster.awaitLeader(WAIT);
      cluster.partition(second, (second + 1) % 3);
      cluster.partition(second, (second + 2) % 3);
      int cut = keepAlive.acks;
      await().atMost(WAIT).until(() -> keepAlive.acks > cut + 8); // renewed by the majority's new leader
      cluster.healAll();
      int healed = keepAlive.acks;
      await().atMost(WAIT).until(() -> keepAlive.acks > healed + 4);
    } finally {
      timer.shutdownNow();
      timer.awaitTermination(10, TimeUnit.SECONDS);
    }
    int now = cluster.awaitLeader(WAIT);
    assertEquals("owner", local(now, "owner"), "kept alive: never deleted");
    assertTrue(seen.stream().noneMatch(m -> m instanceof WatchMessage.Change c
        && c.events().events().stream().anyMatch(e -> e.type() == Event.Type.DELETE)), "no deletion was ever made: " + seen);
    // abandoned now: gone within its TTL and an election timeout of the last renewal
    long lastAck = keepAlive.lastAckNanos;
    await().atMost(WAIT).pollInterval(Duration.ofMillis(20)).until(() -> local(now, "owner") == null);
    long outlived = (System.nanoTime() - lastAck) / 1_000_000;
    assertTrue(outlived <= 3_000 + ELECTION_MILLIS + 500, "the key outlived its last renewal by " + outlived + " ms");
  }

  /** Renews a lease through whichever node is up (a follower forwards it to the leader). */
  private final class KeepAlive {
    final long id;
    volatile int acks;
    volatile long lastAckNanos;
    volatile String lastFailure;

    KeepAlive(long id) {
      this.id = id;
    }

    void once() {
      int round = acks;
      for (int i = 0; i < 3; i++) {
        int via = (round + i) % 3;
        if (!cluster.isUp(via)) {
          continue;
        }
        try {
          KvResult r = cluster.node(via).read(new KvQuery.LeaseKeepAlive(id), RaftKv.Consistency.LINEARIZABLE)
              .toCompletableFuture().get(2, TimeUnit.SECONDS);
          if (r instanceof KvResult.LeaseKeptAlive) {
            lastAckNanos = System.nanoTime();
            acks++;
            return;
          }
          lastFailure = r.toString();
        } catch (Exception e) {
          lastFailure = e.toString();
        }
      }
    }
  }

  private String local(int node, String key) throws Exception {
    KvResult.GetDone got = (KvResult.GetDone) cluster.node(node).read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE)
        .toCompletableFuture().get(10, TimeUnit.SECONDS);
    return got.kv() == null ? null : new String(got.kv().value(), StandardCharsets.UTF_8);
  }
}
