package raftkv.recipes;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import raftkv.client.RaftKvException;
import raftkv.cluster.OpenCluster;
import raftkv.kv.KvCommand;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LeaderElection on a 3-node in-process cluster: candidates lead in the order they campaigned,
 * leader() and observe() agree with them, only the leader proclaims, a resignation hands
 * leadership on, a leader whose key is deleted is told it lost; close() ends the observe streams
 * and leaves no thread behind.
 */
class LeaderElectionTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static OpenCluster cluster;
  private static ActorTestKit clients;

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = OpenCluster.start(3, "");
    clients = ActorTestKit.create("ElectionRecipeClients");
  }

  @AfterAll
  static void stopCluster() {
    clients.shutdownTestKit();
    cluster.close();
  }

  private static LeaderElection candidate(int via, String name, String value) {
    return new LeaderElection(cluster.node(via), clients.system(), name, bytes(value), LeaseSettings.of(Duration.ofSeconds(5)));
  }

  private static <T> T get(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  @Test
  void candidatesLeadInTurnAndObserversSeeEveryLeaderInOrder() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "ElectionRecipeClients");
    List<LeaderElection.Observation> seen = new CopyOnWriteArrayList<>();
    CompletionStage<akka.Done> observing;
    try (LeaderElection watcher = candidate(2, "primary", "never campaigns");
         LeaderElection a = candidate(0, "primary", "a");
         LeaderElection b = candidate(1, "primary", "b")) {
      observing = watcher.observe().runWith(Sink.foreach(seen::add), clients.system());
      await().atMost(WAIT).until(() -> seen.size() == 1);
      assertEquals(Optional.empty(), seen.get(0).leader(), "nobody leads yet");
      assertEquals(Optional.empty(), get(watcher.leader()));

      LeaderElection.Leadership aLeads = get(a.campaign());
      assertEquals(Optional.of(aLeads), a.leadership());
      CompletableFuture<LeaderElection.Leadership> bLeads = b.campaign().toCompletableFuture();
      await().atMost(WAIT).until(() -> DistributedLockTest.waiters(cluster.node(2), "primary").size() == 2);
      assertFalse(bLeads.isDone(), "b waits behind a");
      LeaderElection.Leader now = get(watcher.leader()).orElseThrow();
      assertEquals(aLeads.key(), now.key());
      assertEquals(aLeads.leaderRevision(), now.leaderRevision());
      assertEquals("a", string(now.value()));

      assertEquals(RaftKvException.Kind.PRECONDITION_FAILED, failure(b.proclaim(bytes("b!"))), "only the leader proclaims");
      get(a.proclaim(bytes("a2")));
      assertEquals("a2", string(get(watcher.leader()).orElseThrow().value()));
      get(a.resign());
      assertEquals(Optional.empty(), a.leadership());
      LeaderElection.Leadership bLed = bLeads.get(20, TimeUnit.SECONDS);
      assertTrue(bLed.leaderRevision() > aLeads.leaderRevision());
      assertEquals("b", string(get(watcher.leader()).orElseThrow().value()), "b's refused proclaim changed nothing");
      get(b.resign());

      await().atMost(WAIT).until(() -> seen.size() == 5);
      List<String> story = seen.stream().map(o -> o.leader().map(l -> l.key() + "=" + string(l.value())).orElse("-")).toList();
      assertEquals(List.of("-", aLeads.key() + "=a", aLeads.key() + "=a2", bLed.key() + "=b", "-"), story);
      for (int i = 1; i < seen.size(); i++) {
        assertTrue(seen.get(i).revision() > seen.get(i - 1).revision(), "in revision order: " + seen);
      }
    }
    get(observing); // close() ended the observe stream
    threads.assertNoneLeft();
  }

  @Test
  void aLeaderWhoseKeyIsDeletedIsToldItLostAndTheNextLeads() throws Exception {
    ThreadLeakCheck threads = ThreadLeakCheck.start("raftkv", "ElectionRecipeClients");
    List<String> lost = new CopyOnWriteArrayList<>();
    try (LeaderElection a = candidate(1, "scheduler", "a").onLost(lost::add); LeaderElection b = candidate(2, "scheduler", "b")) {
      LeaderElection.Leadership aLeads = get(a.campaign());
      CompletableFuture<LeaderElection.Leadership> bLeads = b.campaign().toCompletableFuture();
      await().atMost(WAIT).until(() -> DistributedLockTest.waiters(cluster.node(0), "scheduler").size() == 2);
      get(cluster.node(0).write(KvCommand.Delete.of(aLeads.key()))); // an operator removes it
      await().atMost(WAIT).until(() -> !lost.isEmpty());
      assertTrue(lost.get(0).contains("deleted"), lost.toString());
      assertEquals(Optional.empty(), a.leadership());
      LeaderElection.Leadership bLed = bLeads.get(20, TimeUnit.SECONDS);
      assertEquals(bLed.key(), get(a.leader()).orElseThrow().key());

      // a campaigns again, behind b, and leads once b resigns
      CompletableFuture<LeaderElection.Leadership> again = a.campaign().toCompletableFuture();
      await().atMost(WAIT).until(() -> DistributedLockTest.waiters(cluster.node(0), "scheduler").size() == 2);
      get(b.resign());
      assertTrue(again.get(20, TimeUnit.SECONDS).leaderRevision() > bLed.leaderRevision());
    }
    threads.assertNoneLeft();
  }

  private static RaftKvException.Kind failure(CompletionStage<?> stage) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> stage.toCompletableFuture().get(20, TimeUnit.SECONDS));
    return assertInstanceOf(RaftKvException.class, e.getCause()).kind();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String string(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }
}
