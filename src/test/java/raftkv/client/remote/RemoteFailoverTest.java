package raftkv.client.remote;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RemoteRaftKv when endpoints fail: an endpoint that refuses connections and a node that stops are
 * skipped (writes too, without idempotency keys, when the connection was refused), and a watch
 * whose node stops resumes on another endpoint without a gap or a duplicate.
 */
class RemoteFailoverTest {
  private static final Duration WAIT = Duration.ofSeconds(30);

  private RemoteTestCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("RemoteFailoverClients", RemoteTestCluster.CLIENT_CONFIG);

  @AfterEach
  void tearDown() {
    clients.shutdownTestKit();
    if (cluster != null) {
      cluster.close();
    }
  }

  private static <T> T get(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String value(KvResult result) {
    return new String(((KvResult.GetDone) result).kv().value(), StandardCharsets.UTF_8);
  }

  @Test
  void callsGoThroughTheOtherEndpointsWhenOneRefusesConnectionsOrItsNodeStops() throws Exception {
    cluster = new RemoteTestCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    List<String> endpoints = new ArrayList<>();
    endpoints.add("127.0.0.1:" + RemoteTestCluster.freePort()); // nothing listens there
    endpoints.addAll(cluster.endpoints(leader, (leader + 1) % 3, (leader + 2) % 3));
    RemoteRaftKv.Settings settings = RemoteRaftKv.Settings.defaults().withMaxAttempts(10);
    try (RemoteRaftKv plain = RemoteRaftKv.create(clients.system(), endpoints, settings.withAutoIdempotency(false));
         RemoteRaftKv client = RemoteRaftKv.create(clients.system(), endpoints, settings)) {
      // a refused connection sent nothing: even a write without an idempotency key moves on
      assertInstanceOf(KvResult.PutDone.class, get(plain.write(KvCommand.Put.of("f/a", bytes("1")))));
      assertEquals("1", value(get(plain.read(new KvQuery.Get("f/a"), RaftKv.Consistency.LINEARIZABLE))));
      assertInstanceOf(KvResult.PutDone.class, get(client.write(KvCommand.Put.of("f/b", bytes("2")))));

      cluster.stop(leader); // the endpoint that answered last goes away, with the leader
      assertInstanceOf(KvResult.PutDone.class, get(client.write(KvCommand.Put.of("f/c", bytes("3")))));
      assertEquals("3", value(get(client.read(new KvQuery.Get("f/c"), RaftKv.Consistency.LINEARIZABLE))));
      assertEquals("1", value(get(plain.read(new KvQuery.Get("f/a"), RaftKv.Consistency.LINEARIZABLE))));
      KvResult.RangeDone range = (KvResult.RangeDone) get(client.read(new KvQuery.Range("f/", null, 0),
          RaftKv.Consistency.LINEARIZABLE));
      assertEquals(List.of("f/a", "f/b", "f/c"), range.kvs().stream().map(kv -> kv.key()).toList());
      assertTrue(range.kvs().stream().allMatch(kv -> kv.version() == 1), "each write applied once");
      assertTrue(get(client.status()).leaderId() != null);
    }
  }

  @Test
  void aWatchWhoseNodeStopsResumesOnAnotherEndpointWithoutGapOrDuplicate() throws Exception {
    cluster = new RemoteTestCluster(3);
    int leader = cluster.awaitLeader(WAIT);
    int watched = (leader + 1) % 3;
    RaftKv writer = cluster.node(leader);
    long start = ((KvResult.PutDone) get(writer.write(KvCommand.Put.of("before", bytes("x"))))).revision() + 1;
    RemoteRaftKv client = RemoteRaftKv.create(clients.system(),
        cluster.endpoints(watched, (leader + 2) % 3, leader));
    List<WatchMessage> seen = new CopyOnWriteArrayList<>();
    CompletionStage<akka.Done> done = get(client.watch(WatchRequest.prefix("w/").from(start)))
        .runWith(Sink.foreach(seen::add), clients.system());
    List<Long> revisions = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      revisions.add(((KvResult.PutDone) get(writer.write(KvCommand.Put.of("w/" + i, bytes("v" + i))))).revision());
      get(writer.write(KvCommand.Put.of("unwatched/" + i, bytes("u"))));
    }
    await().atMost(WAIT).until(() -> changes(seen).size() == 5);

    cluster.stop(watched); // the watch's connection goes with it
    for (int i = 5; i < 10; i++) {
      revisions.add(((KvResult.PutDone) get(writer.write(KvCommand.Put.of("w/" + i, bytes("v" + i))))).revision());
    }
    revisions.add(((KvResult.DeleteDone) get(writer.write(new KvCommand.Delete("w/", true, null)))).revision());
    await().atMost(WAIT).until(() -> changes(seen).size() >= revisions.size());
    List<WatchMessage.Change> changes = changes(seen);
    assertEquals(revisions, changes.stream().map(WatchMessage::revision).toList(), "every revision once, in order");
    for (int i = 0; i < 10; i++) {
      assertArrayEquals(bytes("v" + i), changes.get(i).events().events().get(0).kv().value());
    }
    assertEquals(10, changes.get(10).events().events().size(), "the prefix delete's events arrive together");
    long lastProgress = -1;
    for (WatchMessage m : seen) {
      if (m instanceof WatchMessage.Progress p) {
        assertTrue(p.revision() >= lastProgress, "progress never goes back");
        lastProgress = p.revision();
      }
    }

    client.close(); // an open watch ends with UNAVAILABLE; new calls are refused
    ExecutionException ended = assertThrows(ExecutionException.class, () -> done.toCompletableFuture().get(10, TimeUnit.SECONDS));
    assertEquals(RaftKvException.Kind.UNAVAILABLE, assertInstanceOf(RaftKvException.class, ended.getCause()).kind());
    ExecutionException refused = assertThrows(ExecutionException.class, () -> client.write(KvCommand.Put.of("x", bytes("x")))
        .toCompletableFuture().get(10, TimeUnit.SECONDS));
    assertEquals(RaftKvException.Kind.UNAVAILABLE, assertInstanceOf(RaftKvException.class, refused.getCause()).kind());
  }

  private static List<WatchMessage.Change> changes(List<WatchMessage> seen) {
    return seen.stream().filter(m -> m instanceof WatchMessage.Change).map(m -> (WatchMessage.Change) m).toList();
  }
}
