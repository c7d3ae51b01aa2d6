package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import raftkv.history.History;
import raftkv.history.Op.Outcome;
import raftkv.multijvm.KvHttpClient.Result;

/**
 * Tests of the harness itself, so that the scenarios can trust it: no node process outlives its
 * {@link Cluster}, even when the test fails with nodes paused and killed; a node restarted on its
 * data dir keeps what was acknowledged; a cut made through the fault endpoints really isolates a
 * node, and healing it lets the node catch up.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class ClusterHarnessIT {

  @Test
  void closeKillsEveryNodeEvenWhenTheTestFails(TestInfo info) {
    List<ProcessHandle> started = new ArrayList<>();
    AssertionError failure = assertThrows(AssertionError.class, () -> {
      try (Cluster cluster = Cluster.start(Scenario.testName(info), 3)) {
        Nemesis nemesis = new Nemesis(cluster, new History());
        nemesis.pause(cluster.node("n2"));
        nemesis.kill(cluster.node("n3"));
        nemesis.restart(cluster.node("n3"));
        started.addAll(cluster.processesStarted());
        throw new AssertionError("a test failing with n2 paused");
      }
    });
    assertEquals("a test failing with n2 paused", failure.getMessage());

    assertEquals(4, started.size(), "n1, n2, n3 and the restarted n3");
    for (ProcessHandle process : started) {
      assertFalse(process.isAlive(), "pid " + process.pid() + " outlived close()");
    }
    List<ProcessHandle> nodesLeft = ProcessHandle.current().descendants()
        .filter(p -> p.info().commandLine().orElse("").contains("raftkv.cli.Main"))
        .toList();
    assertEquals(List.of(), nodesLeft, "node JVMs still running under the test JVM");
  }

  @Test
  void restartKeepsAcknowledgedWritesAndCutsIsolateANode(TestInfo info) {
    try (Cluster cluster = Cluster.start(Scenario.testName(info), 3)) {
      KvHttpClient http = new KvHttpClient();
      Nemesis nemesis = new Nemesis(cluster, new History());
      NodeProcess n1 = cluster.node("n1");

      // given a write acknowledged by the cluster
      assertEquals(Outcome.OK, http.put(n1, "k", "v1").outcome());
      // when every node is killed at once and restarted on its data dir
      nemesis.killAll();
      nemesis.restartAllDead();
      NodeProcess leader = cluster.awaitSettled(Scenario.SETTLE_TIMEOUT);
      // then the write is there
      assertEquals("v1", readUntilOk(http, leader, "k", false).value());

      // given a follower cut off from everyone
      NodeProcess follower = cluster.others(leader).get(0);
      nemesis.isolate(follower);
      // when the majority acknowledges a new value
      Poll.until("a write through the majority", Duration.ofSeconds(30),
          () -> http.put(leader, "k", "v2").outcome() == Outcome.OK);
      // then the follower's local state does not have it (it hears nothing)
      Result stale = readUntilOk(http, follower, "k", true);
      assertEquals("v1", stale.value(), "the isolated follower got a value it should not hear of");
      // and once healed it catches up
      nemesis.healPartitions();
      Poll.until(follower.id() + " to catch up after the heal", Duration.ofSeconds(30),
          () -> "v2".equals(http.get(follower, "k", true).value()));
      assertTrue(nemesis.leaderLosses().size() >= 1, "the kill-all lost the leader");
    }
  }

  private static Result readUntilOk(KvHttpClient http, NodeProcess node, String key,
      boolean serializable) {
    return Poll.until("a read of " + key + " on " + node.id(), Duration.ofSeconds(30), () -> {
      Result result = http.get(node, key, serializable);
      return result.outcome() == Outcome.OK ? Optional.of(result) : Optional.empty();
    }, () -> "");
  }
}
