package raftkv.client.remote;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import raftkv.kv.KvCommand;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;
import raftkv.recipes.ConfigWatcher;
import raftkv.recipes.DistributedLock;
import raftkv.recipes.LeaderElection;
import raftkv.recipes.LeaseSettings;
import raftkv.recipes.ServiceRegistry;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java recipes over the remote client (issue #14 §5: "the Java library's recipes against an
 * embedded node and against a remote client over HTTP"; the embedded side is raftkv.recipes'
 * tests): each client talks to a different node first, over HTTP only.
 */
class RemoteRecipesTest {
  private static final Duration WAIT = Duration.ofSeconds(30);

  private RemoteTestCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("RemoteRecipeClients", RemoteTestCluster.CLIENT_CONFIG);
  private RemoteRaftKv a;
  private RemoteRaftKv b;

  @BeforeEach
  void start() throws Exception {
    cluster = new RemoteTestCluster(3);
    cluster.awaitLeader(WAIT);
    a = RemoteRaftKv.create(clients.system(), cluster.endpoints(0, 1, 2));
    b = RemoteRaftKv.create(clients.system(), cluster.endpoints(1, 2, 0));
  }

  @AfterEach
  void stop() {
    a.close();
    b.close();
    clients.shutdownTestKit();
    cluster.close();
  }

  private static <T> T get(java.util.concurrent.CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void aFencedLockAnElectionAConfigWatcherAndARegistryWorkOverHttp() throws Exception {
    // the lock: the second client gets it after the first unlocks, with a larger token; the old token is fenced out
    try (DistributedLock first = new DistributedLock(a, clients.system(), "jobs", LeaseSettings.of(Duration.ofSeconds(5)));
         DistributedLock second = new DistributedLock(b, clients.system(), "jobs", LeaseSettings.of(Duration.ofSeconds(5)))) {
      DistributedLock.Held held = get(first.lock());
      CompletableFuture<DistributedLock.Held> next = second.lock().toCompletableFuture();
      await().atMost(WAIT).until(() -> ((KvResult.RangeDone) get(a.read(new raftkv.kv.KvQuery.Range("jobs/", null, 0),
          raftkv.client.RaftKv.Consistency.LINEARIZABLE))).kvs().size() == 2);
      assertFalse(next.isDone());
      KvCommand late = first.fenced(KvCommand.Put.of("jobs-state", bytes("first")));
      assertInstanceOf(KvResult.PutDone.class, get(a.write(late)));
      get(first.unlock());
      DistributedLock.Held then = next.get(20, TimeUnit.SECONDS);
      assertTrue(then.fencingToken() > held.fencingToken());
      assertInstanceOf(KvResult.FenceFailed.class, get(a.write(late)), "the old holder's write, sent again late");
      assertInstanceOf(KvResult.PutDone.class, get(b.write(second.fenced(KvCommand.Put.of("jobs-state", bytes("second"))))));
    }

    // the election: observers over HTTP see the leaders in order
    List<String> seen = new CopyOnWriteArrayList<>();
    try (LeaderElection x = new LeaderElection(a, clients.system(), "primary", bytes("x"), LeaseSettings.of(Duration.ofSeconds(5)));
         LeaderElection y = new LeaderElection(b, clients.system(), "primary", bytes("y"), LeaseSettings.of(Duration.ofSeconds(5)))) {
      x.observe().runWith(Sink.foreach(o -> seen.add(o.leader().map(l -> new String(l.value(), StandardCharsets.UTF_8))
          .orElse("-"))), clients.system());
      await().atMost(WAIT).until(() -> seen.size() == 1);
      get(x.campaign());
      CompletableFuture<?> yLeads = y.campaign().toCompletableFuture();
      await().atMost(WAIT).until(() -> seen.size() == 2);
      get(x.resign());
      yLeads.get(20, TimeUnit.SECONDS);
      await().atMost(WAIT).until(() -> seen.size() == 3);
      assertEquals(List.of("-", "x", "y"), seen);
    }

    // configuration: a txn of three keys is one change, seen through the other client
    try (ConfigWatcher config = new ConfigWatcher(b, clients.system(), "config/")) {
      List<Map<String, byte[]>> changes = new CopyOnWriteArrayList<>();
      config.addListener(snapshot -> changes.add(snapshot.values()));
      get(config.start());
      get(a.write(new KvCommand.Txn(List.of(), List.of(new TxnOp.Put("config/a", bytes("1"), 0),
          new TxnOp.Put("config/b", bytes("2"), 0), new TxnOp.Put("config/c", bytes("3"), 0)), List.of())));
      await().atMost(WAIT).until(() -> !changes.isEmpty() && changes.get(changes.size() - 1).size() == 3);
      assertTrue(changes.stream().allMatch(m -> m.isEmpty() || m.size() == 3), "never a part of the txn: " + changes);
    }

    // discovery: registered through one client, discovered through the other, gone when closed
    try (ServiceRegistry ra = new ServiceRegistry(a, clients.system()); ServiceRegistry rb = new ServiceRegistry(b, clients.system())) {
      ServiceRegistry.Registration me = get(ra.register("web", "w-1", bytes("127.0.0.1:9"), Duration.ofSeconds(5)));
      assertEquals("127.0.0.1:9", new String(get(rb.discover("web")).get("w-1"), StandardCharsets.UTF_8));
      me.close();
      await().atMost(WAIT).until(() -> get(rb.discover("web")).isEmpty());
    }
  }
}
