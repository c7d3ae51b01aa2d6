package raftkv.recipes;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.cluster.OpenCluster;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * ServiceRegistry on a 3-node in-process cluster: two instances registered through different nodes
 * are discovered and followed; closing one removes it at once (its lease revoked) and a follower
 * sees it go; a registration whose lease is revoked behind its back registers again; closing the
 * registry removes the rest and leaves no thread behind.
 */
class ServiceRegistryTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static OpenCluster cluster;
  private static ActorTestKit clients;

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = OpenCluster.start(3, "");
    clients = ActorTestKit.create("RegistryRecipeClients");
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
  void registeredInstancesAreDiscoveredAndFollowedAndGoWhenClosed() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "RegistryRecipeClients");
    List<Map<String, String>> followed = new CopyOnWriteArrayList<>();
    ServiceRegistry.Registration b1;
    try (ServiceRegistry instances0 = new ServiceRegistry(cluster.node(0), clients.system());
         ServiceRegistry instances1 = new ServiceRegistry(cluster.node(1), clients.system());
         ServiceRegistry clientSide = new ServiceRegistry(cluster.node(2), clients.system())) {
      b1 = get(instances0.register("billing", "b-1", bytes("10.0.0.1:8080"), Duration.ofSeconds(5)));
      ServiceRegistry.Registration b2 = get(instances1.register("billing", "b-2", bytes("10.0.0.2:8080"), Duration.ofSeconds(5)));
      get(instances1.register("search", "s-1", bytes("10.0.0.3:9200"), Duration.ofSeconds(5)));
      assertEquals("services/billing/b-1", b1.key());

      assertEquals(Map.of("b-1", "10.0.0.1:8080", "b-2", "10.0.0.2:8080"), strings(get(clientSide.discover("billing"))));
      ConfigWatcher follower = clientSide.follow("billing", instances -> followed.add(strings(instances)));
      get(follower.start());
      assertEquals(List.of(Map.of("b-1", "10.0.0.1:8080", "b-2", "10.0.0.2:8080")), followed);

      b1.close();
      assertInstanceOf(KvResult.LeaseNotFound.class, get(cluster.node(2).read(new KvQuery.LeaseGet(b1.lease()),
          RaftKv.Consistency.LINEARIZABLE)), "closing revoked its lease");
      await().atMost(WAIT).until(() -> followed.size() == 2);
      assertEquals(Map.of("b-2", "10.0.0.2:8080"), followed.get(1), "the follower saw b-1 go");
      assertEquals(Map.of("b-2", "10.0.0.2:8080"), strings(get(clientSide.discover("billing"))));

      // b-2's lease is revoked behind its back (an operator, or an expiry after a long pause): it registers again
      long before = b2.lease();
      get(cluster.node(0).revokeLease(before));
      await().atMost(WAIT).until(() -> b2.lease() != before && strings(get(clientSide.discover("billing"))).containsKey("b-2"));
      await().atMost(WAIT).until(() -> followed.get(followed.size() - 1).containsKey("b-2"));
      assertEquals(List.of(Map.of("b-2", "10.0.0.2:8080"), Map.of(), Map.of("b-2", "10.0.0.2:8080")),
          followed.subList(1, followed.size()), "the follower saw b-2 go and come back");

      assertThrows(IllegalArgumentException.class, () -> instances0.register("a/b", "x", bytes("-"), Duration.ofSeconds(5)));
    }
    // the registries closed: every instance is gone
    ServiceRegistry reader = new ServiceRegistry(cluster.node(0), clients.system());
    assertEquals(Map.of(), get(reader.discover("billing")));
    assertEquals(Map.of(), get(reader.discover("search")));
    threads.assertNoneLeft();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static Map<String, String> strings(Map<String, byte[]> values) {
    Map<String, String> out = new TreeMap<>();
    values.forEach((k, v) -> out.put(k, new String(v, StandardCharsets.UTF_8)));
    return out;
  }
}
