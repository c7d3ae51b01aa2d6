package raftkv.recipes;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.cluster.OpenCluster;
import raftkv.kv.Compare;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ConfigWatcher on a 3-node in-process cluster that keeps only the last 50 revisions of watch
 * history: a transaction's keys change the snapshot at once; after writes of every kind through
 * every node the snapshot is what a linearizable read says; the watcher loads again, and ends up
 * right, when its watch finds the history compacted, when its stream breaks and when its stream
 * ends with Compacted.
 */
class ConfigWatcherTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static OpenCluster cluster;
  private static ActorTestKit clients;

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = OpenCluster.start(3, "raftkv.watch.history-retention.revisions = 50");
    clients = ActorTestKit.create("ConfigRecipeClients");
  }

  @AfterAll
  static void stopCluster() {
    clients.shutdownTestKit();
    cluster.close();
  }

  private static <T> T get(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  @Test
  void aTransactionOfThreeKeysIsOneChangeOfTheSnapshot() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "ConfigRecipeClients");
    get(cluster.node(0).write(put("app/db", "v0")));
    List<ConfigWatcher.Snapshot> seen = new CopyOnWriteArrayList<>();
    try (ConfigWatcher watcher = new ConfigWatcher(cluster.node(1), clients.system(), "app/").addListener(seen::add)) {
      ConfigWatcher.Snapshot first = get(watcher.start());
      assertEquals(Map.of("app/db", "v0"), strings(first.values()));
      assertEquals(List.of(first), seen, "the first load is the first snapshot");

      get(cluster.node(2).write(put("other/x", "not watched")));
      KvResult.TxnDone txn = (KvResult.TxnDone) get(cluster.node(0).write(new KvCommand.Txn(List.of(),
          List.of(txPut("app/db", "v1"), txPut("app/cache", "c1"), txPut("app/queue", "q1")), List.of())));
      KvResult.DeleteDone deleted = (KvResult.DeleteDone) get(cluster.node(2).write(KvCommand.Delete.of("app/cache")));

      await().atMost(WAIT).until(() -> watcher.snapshot().revision() == deleted.revision());
      assertEquals(3, seen.size(), "one call per revision that changed the prefix: " + seen);
      assertEquals(txn.revision(), seen.get(1).revision());
      assertEquals(Map.of("app/db", "v1", "app/cache", "c1", "app/queue", "q1"), strings(seen.get(1).values()),
          "all three keys of the transaction at once");
      assertEquals(Map.of("app/db", "v1", "app/queue", "q1"), strings(watcher.snapshot().values()));
      assertEquals(0, watcher.reloads());
    }
    threads.assertNoneLeft();
  }

  @Test
  void afterWritesOfEveryKindThroughEveryNodeTheSnapshotIsWhatALinearizableReadSays() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "ConfigRecipeClients");
    List<Long> revisions = new CopyOnWriteArrayList<>();
    try (ConfigWatcher watcher = new ConfigWatcher(cluster.node(2), clients.system(), "svc/")
        .addListener(s -> revisions.add(s.revision()))) {
      get(watcher.start());
      Random random = new Random(42);
      List<CompletableFuture<KvResult>> inFlight = new ArrayList<>();
      for (int i = 0; i < 120; i++) {
        RaftKv via = cluster.node(random.nextInt(3));
        String key = (random.nextInt(5) == 0 ? "svd/" : "svc/") + "k" + random.nextInt(12);
        KvCommand command = switch (random.nextInt(6)) {
          case 0 -> KvCommand.Delete.of(key);
          case 1 -> new KvCommand.Txn(List.of(new Compare(key, Compare.Target.VERSION, Compare.Op.GREATER, 0, null)),
              List.of(txPut(key, "t" + i), txPut("svc/k" + random.nextInt(12), "t" + i)), List.of(new TxnOp.Delete("svc/k1", false)));
          case 2 -> random.nextInt(10) == 0 ? new KvCommand.Delete("svc/k1", true, null) : put(key, "p" + i);
          default -> put(key, "p" + i);
        };
        inFlight.add(via.write(command).toCompletableFuture());
        if (inFlight.size() == 8) {
          CompletableFuture.allOf(inFlight.toArray(CompletableFuture[]::new)).get(20, TimeUnit.SECONDS);
          inFlight.clear();
        }
      }
      CompletableFuture.allOf(inFlight.toArray(CompletableFuture[]::new)).get(20, TimeUnit.SECONDS);
      long last = ((KvResult.PutDone) get(cluster.node(0).write(put("svc/zz-marker", "end")))).revision();
      await().atMost(WAIT).until(() -> watcher.snapshot().revision() >= last);
      KvResult.RangeDone range = (KvResult.RangeDone) get(cluster.node(1).read(new KvQuery.Range("svc/", null, 0),
          RaftKv.Consistency.LINEARIZABLE));
      Map<String, String> expected = new TreeMap<>();
      for (KeyValue kv : range.kvs()) {
        expected.put(kv.key(), new String(kv.value(), StandardCharsets.UTF_8));
      }
      assertEquals(expected, strings(watcher.snapshot().values()));
      for (int i = 1; i < revisions.size(); i++) {
        assertTrue(revisions.get(i) > revisions.get(i - 1), "in revision order: " + revisions);
      }
    }
    threads.assertNoneLeft();
  }

  @Test
  void theWatcherLoadsAgainWhenItsHistoryIsCompactedOrItsStreamBreaksOrEndsCompacted() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "ConfigRecipeClients");
    RaftKv node = cluster.node(1);
    ScriptedKv kv = new ScriptedKv(node)
        // 1. while the watcher is between its read and its watch, 60 writes go by, and the node applies
        // them (a linearizable read through it waits for that): the history it needs is gone
        .nextWatch(request -> writeMany(node, "feat/", 60)
            .thenCompose(done -> node.read(new KvQuery.Get("feat/k0"), RaftKv.Consistency.LINEARIZABLE))
            .thenCompose(applied -> node.watch(request)))
        // 2. the stream breaks after its first change, as a connection would (a lazy source: a failed
        // one fails a concat as soon as it is materialized)
        .nextWatch(request -> node.watch(request).thenApply(source -> source.takeWhile(m -> !(m instanceof WatchMessage.Change), true)
            .concatLazy(Source.lazySource(() -> Source.<WatchMessage>failed(
                new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "connection lost"))))))
        // 3. the stream ends with Compacted after its first change, as for a watcher that fell behind
        .nextWatch(request -> node.watch(request).thenApply(source -> source.takeWhile(m -> !(m instanceof WatchMessage.Change), true)
            .concatLazy(Source.single(new WatchMessage.Compacted(request.fromRevision())))));
    List<ConfigWatcher.Snapshot> seen = new CopyOnWriteArrayList<>();
    try (ConfigWatcher watcher = new ConfigWatcher(kv, clients.system(), "feat/").addListener(seen::add)) {
      get(watcher.start());
      await().atMost(WAIT).until(() -> watcher.reloads() == 1 && watcher.snapshot().values().size() == 60);
      assertEquals(linearizable("feat/"), strings(watcher.snapshot().values()), "loaded again after COMPACTED");

      get(node.write(put("feat/x1", "1")));
      await().atMost(WAIT).until(() -> watcher.reloads() == 2 && watcher.snapshot().values().containsKey("feat/x1"));
      get(node.write(put("feat/x2", "2")));
      await().atMost(WAIT).until(() -> watcher.reloads() == 3 && watcher.snapshot().values().containsKey("feat/x2"));
      long last = ((KvResult.PutDone) get(node.write(put("feat/x3", "3")))).revision();
      await().atMost(WAIT).until(() -> watcher.snapshot().revision() == last);
      assertEquals(linearizable("feat/"), strings(watcher.snapshot().values()));
      assertEquals(3, watcher.reloads());
      assertEquals(4, kv.watches(), "one watch per load");
      for (int i = 1; i < seen.size(); i++) {
        assertTrue(seen.get(i).revision() > seen.get(i - 1).revision(), "in revision order");
      }
    }
    threads.assertNoneLeft();
  }

  private static CompletionStage<Void> writeMany(RaftKv node, String prefix, int count) {
    CompletableFuture<?>[] all = new CompletableFuture<?>[count];
    for (int i = 0; i < count; i++) {
      all[i] = node.write(put(prefix + "k" + i, "v" + i)).toCompletableFuture();
    }
    return CompletableFuture.allOf(all);
  }

  private static Map<String, String> linearizable(String prefix) throws Exception {
    KvResult.RangeDone range = (KvResult.RangeDone) get(cluster.node(0).read(new KvQuery.Range(prefix, null, 0),
        RaftKv.Consistency.LINEARIZABLE));
    Map<String, String> out = new TreeMap<>();
    range.kvs().forEach(kv -> out.put(kv.key(), new String(kv.value(), StandardCharsets.UTF_8)));
    return out;
  }

  private static Map<String, String> strings(Map<String, byte[]> values) {
    Map<String, String> out = new TreeMap<>();
    values.forEach((k, v) -> out.put(k, new String(v, StandardCharsets.UTF_8)));
    return out;
  }

  private static KvCommand put(String key, String value) {
    return KvCommand.Put.of(key, value.getBytes(StandardCharsets.UTF_8));
  }

  private static TxnOp txPut(String key, String value) {
    return new TxnOp.Put(key, value.getBytes(StandardCharsets.UTF_8), 0);
  }
}
