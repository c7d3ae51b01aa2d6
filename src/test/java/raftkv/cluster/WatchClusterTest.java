package raftkv.cluster;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Watchers on every node while writes go on and nodes crash, restart, receive snapshots and are cut
 * off: after healing, what each watcher received (resuming after its last revision, as a client
 * with Last-Event-ID does) is the committed history, every revision once and in order, the same
 * on every node, and it replays to the final state.
 */
class WatchClusterTest {
  private static final String SMALL_SNAPSHOTS = """
      raftkv.raft.max-entries-per-append = 64
      raftkv.raft.max-inflight-entries = 128
      raftkv.raft.snapshot-entries = 200
      raftkv.raft.trailing-entries = 50
      raftkv.raft.journal-snapshot-every = 20
      raftkv.raft.snapshot-chunk-bytes = 64 KiB
      raftkv.watch.buffer-revisions = 16
      """;
  private static final Duration WAIT = Duration.ofSeconds(60);

  private InProcessCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("WatchClients", com.typesafe.config.ConfigFactory.parseString("akka.actor.provider = local")
      .withFallback(com.typesafe.config.ConfigFactory.load()));
  private final ExecutorService writers = Executors.newFixedThreadPool(2);

  @AfterEach
  void tearDown() {
    writers.shutdownNow();
    clients.shutdownTestKit();
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void watchersOnEveryNodeReceiveTheCommittedHistoryThroughCrashesSnapshotsAndPartitions() throws Exception {
    cluster = new InProcessCluster(3, SMALL_SNAPSHOTS, dirs -> {});
    int leader = cluster.awaitLeader(WAIT);
    List<WatchRecorder> watchers = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      watchers.add(new WatchRecorder(clients.system(), cluster::node, cluster::isUp, 3, i % 3));
    }
    AtomicBoolean writing = new AtomicBoolean(true);
    AtomicInteger acknowledged = new AtomicInteger();
    List<Future<?>> load = new ArrayList<>();
    for (int w = 0; w < 2; w++) {
      long seed = 20261203L + w;
      load.add(writers.submit(() -> write(new Random(seed), writing, acknowledged)));
    }
    await().atMost(WAIT).until(() -> acknowledged.get() > 100);

    // a follower down while the log moves past its snapshot point: it comes back through InstallSnapshot
    int follower = (leader + 1) % 3;
    cluster.stop(follower);
    int before = acknowledged.get();
    await().atMost(WAIT).until(() -> acknowledged.get() > before + 600);
    cluster.start(follower);
    // its history starts at the snapshot it received: a watch from revision 1 there is refused, and moves on
    await().atMost(WAIT).until(() -> cluster.status(follower) != null
        && cluster.status(follower).appliedIndex() > 0 && cluster.node(follower).watchHub().head() > 0);
    watchers.add(new WatchRecorder(clients.system(), cluster::node, cluster::isUp, 3, follower));

    // a follower cut off while the log moves past its snapshot point, with watchers on it: they
    // stall, then the snapshot that catches it up replaces their history and they move on
    leader = cluster.awaitLeader(WAIT);
    int isolated = (leader + 2) % 3;
    cluster.partition(isolated, (isolated + 1) % 3);
    cluster.partition(isolated, (isolated + 2) % 3);
    int cutOff = acknowledged.get();
    await().atMost(WAIT).until(() -> acknowledged.get() > cutOff + 600);
    cluster.healAll();

    // the leader cut off from both followers for a while
    leader = cluster.awaitLeader(WAIT);
    cluster.partition(leader, (leader + 1) % 3);
    cluster.partition(leader, (leader + 2) % 3);
    int cut = acknowledged.get();
    await().atMost(WAIT).until(() -> acknowledged.get() > cut + 100);
    cluster.healAll();

    // the leader crashes and comes back
    leader = cluster.awaitLeader(WAIT);
    cluster.stop(leader);
    int crashed = acknowledged.get();
    await().atMost(WAIT).until(() -> acknowledged.get() > crashed + 100);
    cluster.start(leader);

    writing.set(false);
    for (Future<?> f : load) {
      f.get(60, TimeUnit.SECONDS);
    }
    leader = cluster.awaitLeader(WAIT);
    KvResult.RangeDone state = (KvResult.RangeDone) cluster.node(leader)
        .read(new KvQuery.Range("", null, 0), RaftKv.Consistency.LINEARIZABLE).toCompletableFuture().get(30, TimeUnit.SECONDS);
    long revision = state.revision();
    await().atMost(WAIT).until(() -> watchers.stream().allMatch(w -> w.lastRevision() >= revision));
    watchers.forEach(WatchRecorder::stop);
    List<raftkv.kv.RevisionEvents> reference = watchers.get(0).received();
    int resumed = 0;
    for (int i = 0; i < watchers.size(); i++) {
      WatchRecorder w = watchers.get(i);
      assertNull(WatchRecorder.check(w.received(), revision, state.kvs(), reference),
          "watcher " + i + ", its log:\n" + w.log());
      resumed += w.resumes();
      System.out.println("watcher " + i + ": " + w.resumes() + " resumes\n" + w.log());
    }
    assertTrue(resumed >= 2, "the watchers of the nodes that crashed resumed elsewhere");
    assertTrue(watchers.stream().anyMatch(w -> w.log().contains("compact")), "some watcher was sent elsewhere by compaction");
    assertTrue(revision > 900, "the load made " + revision + " revisions");
  }

  /** Puts, deletes, prefix deletes and transactions through any node that is up, until told to stop. */
  private void write(Random random, AtomicBoolean writing, AtomicInteger acknowledged) {
    for (int n = 0; n < 100_000 && writing.get(); n++) {
      int via = random.nextInt(3);
      if (!cluster.isUp(via)) {
        continue;
      }
      String key = "k" + random.nextInt(40);
      byte[] value = ("v" + n).getBytes(StandardCharsets.UTF_8);
      int kind = random.nextInt(20);
      KvCommand command = kind < 16 ? KvCommand.Put.of(key, value)
          : kind < 18 ? KvCommand.Delete.of(key)
          : kind < 19 ? new KvCommand.Delete("k3", true, null)
          : new KvCommand.Txn(List.of(), List.of(new TxnOp.Put(key, value, 0), new TxnOp.Put(key + "/t", value, 0)), List.of());
      try {
        cluster.node(via).write(command).toCompletableFuture().get(5, TimeUnit.SECONDS);
        acknowledged.incrementAndGet();
      } catch (Exception e) {
        // unavailable, timed out, or the node stopped: the watchers are checked against the final state
      }
    }
  }
}
