package raftkv.multijvm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * InstallSnapshot under kill -9: a follower whose next entry the leader compacted away receives a
 * snapshot in 4 KiB chunks (so the transfer lasts seconds); first the receiver is killed in the
 * middle of it, then, in a second transfer, the sender (the leader). Each time the follower comes
 * back, receives a whole snapshot from whoever leads, and every node ends with exactly the keys
 * whose writes were acknowledged, with their values.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class InstallSnapshotFaultsIT {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final String VALUE = "v".repeat(1000);

  @Test
  void aTransferSurvivesTheDeathOfItsReceiverAndOfItsSender(TestInfo info) throws Exception {
    String name = Scenario.testName(info); // Class.method: where NodeLogsOnFailure looks for the logs
    try (Cluster cluster = Cluster.start(name, 3, "-Draftkv.raft.snapshot-chunk-bytes=4k")) {
      KvHttpClient client = new KvHttpClient();
      Map<String, String> acked = new LinkedHashMap<>();
      write(cluster, client, acked, "a/", 3000);
      NodeProcess leader = cluster.awaitLeader(WAIT);
      NodeProcess follower = cluster.others(leader).get(0);

      // the receiver dies in the middle of a transfer
      follower.kill();
      write(cluster, client, acked, "b/", 700);
      int before = count(follower, "receives a snapshot");
      int installedBefore = count(follower, "installed a snapshot");
      follower.start();
      Poll.until(follower.id() + " starts receiving a snapshot", WAIT, () -> count(follower, "receives a snapshot") > before);
      follower.kill();
      assertEquals(installedBefore, count(follower, "installed a snapshot"), "killed before the transfer ended");
      follower.start();
      cluster.awaitReady(follower, WAIT);
      awaitEveryNodeHolds(cluster, client, acked);
      assertTrue(count(follower, "installed a snapshot") > installedBefore, "it caught up through a snapshot");

      // the sender dies in the middle of a transfer
      follower.kill();
      write(cluster, client, acked, "c/", 700);
      NodeProcess sender = cluster.awaitLeader(WAIT);
      int receiving = count(follower, "receives a snapshot");
      int installed = count(follower, "installed a snapshot");
      follower.start();
      Poll.until(follower.id() + " starts receiving a snapshot again", WAIT,
          () -> count(follower, "receives a snapshot") > receiving);
      sender.kill();
      assertEquals(installed, count(follower, "installed a snapshot"), "the sender died before the transfer ended");
      NodeProcess next = Poll.until("a new leader", WAIT, () -> cluster.leader().filter(l -> l != sender),
          cluster::describe);
      write(cluster, client, acked, "d/", 100);
      sender.start();
      cluster.awaitReady(sender, WAIT);
      awaitEveryNodeHolds(cluster, client, acked);
      assertTrue(count(follower, "installed a snapshot") > installed,
          "the follower installed a snapshot from the next leader, " + next.id());
    }
  }

  /** Writes {@code n} keys to whoever leads, each until it is acknowledged (a retry may repeat it: same value). */
  private static void write(Cluster cluster, KvHttpClient client, Map<String, String> acked, String prefix, int n) {
    for (int i = 0; i < n; i++) {
      String key = String.format("%s%05d", prefix, i);
      String value = key + VALUE;
      Poll.until("write of " + key, WAIT, () -> {
        Optional<NodeProcess> leader = cluster.leader();
        return leader.isPresent() && client.put(leader.get(), key, value).outcome() == raftkv.history.Op.Outcome.OK
            ? Optional.of(Boolean.TRUE) : Optional.empty();
      }, cluster::describe);
      acked.put(key, value);
    }
  }

  /** Every running node holds exactly the acknowledged keys, read from its own state. */
  private static void awaitEveryNodeHolds(Cluster cluster, KvHttpClient client, Map<String, String> acked) {
    for (NodeProcess node : cluster.nodes()) {
      Poll.until(node.id() + " holds exactly the acknowledged keys", WAIT, () -> {
        Optional<Map<String, String>> kvs = client.range(node, "", true);
        return kvs.isPresent() && kvs.get().equals(acked) ? Optional.of(Boolean.TRUE) : Optional.empty();
      }, () -> client.range(node, "", true).map(m -> node.id() + " holds " + m.size() + " keys of "
          + acked.size()).orElse(node.id() + " does not answer"));
    }
  }

  private static int count(NodeProcess node, String text) {
    try {
      List<String> lines = Files.readAllLines(node.logFile(), StandardCharsets.UTF_8);
      return (int) lines.stream().filter(l -> l.contains(text)).count();
    } catch (java.io.IOException e) {
      return 0;
    }
  }
}
