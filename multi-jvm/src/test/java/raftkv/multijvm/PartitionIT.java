package raftkv.multijvm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Scenario 4: partitions on a 5-node cluster, each healed before the next: the leader isolated,
 * a follower isolated, a minority holding the leader split from the majority, and a split with
 * the leader on the majority side. The register history stays linearizable.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class PartitionIT {

  private static final int NODES = 5;

  @Test
  void partitionsOfLeaderFollowerAndMinorityHeal(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES)) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(6).duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);

      scenario.log("phase: isolate the leader");
      nemesis.isolate(cluster.awaitLeader(Duration.ofSeconds(30)));
      scenario.hold(4_000, 6_000);
      nemesis.healPartitions();
      scenario.hold(3_000, 4_000);

      scenario.log("phase: isolate a follower");
      NodeProcess leader = cluster.awaitLeader(Duration.ofSeconds(30));
      nemesis.isolate(scenario.pick(cluster.others(leader)));
      scenario.hold(4_000, 6_000);
      nemesis.healPartitions();
      scenario.hold(3_000, 4_000);

      scenario.log("phase: the leader in a minority");
      leader = cluster.awaitLeader(Duration.ofSeconds(30));
      List<NodeProcess> followers = shuffled(scenario, cluster.others(leader));
      nemesis.partition(List.of(leader, followers.get(0)), followers.subList(1, followers.size()));
      scenario.hold(4_000, 6_000);
      nemesis.healPartitions();
      scenario.hold(3_000, 4_000);

      scenario.log("phase: the leader in the majority");
      leader = cluster.awaitLeader(Duration.ofSeconds(30));
      followers = shuffled(scenario, cluster.others(leader));
      List<NodeProcess> majority = new ArrayList<>(followers.subList(0, 2));
      majority.add(leader);
      nemesis.partition(majority, followers.subList(2, followers.size()));
      scenario.hold(4_000, 6_000);
      nemesis.healPartitions();

      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
    }
  }

  private static List<NodeProcess> shuffled(Scenario scenario, List<NodeProcess> nodes) {
    List<NodeProcess> copy = new ArrayList<>(nodes);
    Collections.shuffle(copy, scenario.random());
    return copy;
  }
}
