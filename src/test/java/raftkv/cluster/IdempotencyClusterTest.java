package raftkv.cluster;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Clients that retry every write whose outcome they do not know, with its idempotency key, through
 * leader crashes and partitions: each logical write is applied exactly once. The writes are puts
 * to one key, so its version counts how often they were applied; without idempotency a retry of a
 * write that was applied after all (a timeout, a lost answer) would count twice.
 */
class IdempotencyClusterTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final int CLIENTS = 3;
  private static final int WRITES = 120;

  private InProcessCluster cluster;
  private final ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);

  @AfterEach
  void tearDown() {
    pool.shutdownNow();
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void retriedWritesAreAppliedExactlyOnceThroughCrashesAndPartitions() throws Exception {
    cluster = new InProcessCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    AtomicInteger done = new AtomicInteger();
    AtomicInteger replayed = new AtomicInteger();
    AtomicInteger retries = new AtomicInteger();
    AtomicBoolean stop = new AtomicBoolean();
    List<Future<?>> clients = new ArrayList<>();
    for (int c = 0; c < CLIENTS; c++) {
      int client = c;
      clients.add(pool.submit(() -> {
        Random random = new Random(client);
        for (int i = 0; i < WRITES && !stop.get(); i++) {
          String key = "client" + client + "-write" + i;
          byte[] value = key.getBytes(StandardCharsets.UTF_8);
          KvCommand put = new KvCommand.Idempotent(key, value, KvCommand.Put.of("counter", value));
          // every other write is sent twice even when the first answer arrives: a client that lost it
          int sends = i % 2 == 0 ? 2 : 1;
          for (int s = 0; s < sends; s++) {
            KvResult result = writeUntilKnown(random, put, retries);
            if (result instanceof KvResult.Replayed) {
              replayed.incrementAndGet();
            }
          }
          done.incrementAndGet();
        }
        return null;
      }));
    }
    await().atMost(WAIT).until(() -> done.get() > 60);
    cluster.stop(leader);
    int afterCrash = done.get();
    await().atMost(WAIT).until(() -> done.get() > afterCrash + 30 || failed(clients));
    cluster.start(leader);
    leader = cluster.awaitLeader(WAIT);
    cluster.partition(leader, (leader + 1) % 3);
    cluster.partition(leader, (leader + 2) % 3);
    int cut = done.get();
    await().atMost(WAIT).until(() -> done.get() > cut + 15 || failed(clients));
    cluster.healAll();
    for (Future<?> f : clients) {
      f.get(120, TimeUnit.SECONDS);
    }
    leader = cluster.awaitLeader(WAIT);
    KvResult.GetDone counter = (KvResult.GetDone) cluster.node(leader)
        .read(new KvQuery.Get("counter"), RaftKv.Consistency.LINEARIZABLE).toCompletableFuture().get(30, TimeUnit.SECONDS);
    System.out.println("idempotency: " + retries.get() + " retries after an unknown outcome, " + replayed.get()
        + " answers replayed, counter version " + counter.kv().version());
    assertEquals(CLIENTS * WRITES, counter.kv().version(), "each logical write applied exactly once ("
        + retries.get() + " retries after an unknown outcome, " + replayed.get() + " answers replayed)");
    assertTrue(replayed.get() >= CLIENTS * WRITES / 2, "every write sent twice was answered from its record");
  }

  /** Whether a client stopped early: its failure is thrown when the test collects it. */
  private static boolean failed(List<Future<?>> clients) {
    return clients.stream().anyMatch(Future::isDone);
  }

  /** Sends {@code put} through a random node until the answer says what happened (bounded). */
  private KvResult writeUntilKnown(Random random, KvCommand put, AtomicInteger retries) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    for (int attempt = 0; attempt < 2_000 && System.nanoTime() < deadline; attempt++) {
      int via = random.nextInt(3);
      if (!cluster.isUp(via)) {
        continue;
      }
      try {
        return cluster.node(via).write(put).toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof RaftKvException r) || (r.kind() != RaftKvException.Kind.UNAVAILABLE
            && r.kind() != RaftKvException.Kind.TIMEOUT)) {
          throw new AssertionError("unexpected failure", e);
        }
        retries.incrementAndGet(); // not applied, or not known: the same key again
      } catch (java.util.concurrent.TimeoutException e) {
        retries.incrementAndGet();
      }
      TimeUnit.MILLISECONDS.sleep(20); // a client's back-off between retries, not a wait for the cluster
    }
    throw new AssertionError("a write was not known to be applied within 60 s");
  }
}
