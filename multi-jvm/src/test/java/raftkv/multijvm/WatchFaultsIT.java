package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Watches through faults that take their history away: five nodes snapshot every 100 entries and
 * keep 20 behind, so that a follower cut off or paused for a few seconds under load comes back
 * through InstallSnapshot while a watcher streams from it; the watch ends with {@code event:
 * compacted} and the watcher must go on from another node with {@code Last-Event-ID}. First a
 * follower is isolated for 5 to 6 s (that always does it), then about fifty seconds of isolations
 * and pauses of followers and of the leader, and kills of either (restarted in the background),
 * at most two nodes impaired at a time, under register and set load. Then the register history
 * is linearizable, no acknowledged add is lost, and the {@link WatchClient}'s watchers (one per
 * node, from revision 1, started before the load) each received every revision once and in order,
 * all the same events, replaying to the final state; and a watch from revision 1 on each node
 * afterwards gets the same events, or a 410 and then the same events after the compact revision.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class WatchFaultsIT {

  private static final int NODES = 5;

  /** Small snapshots, so that every fault of a few seconds under load ends in InstallSnapshot. */
  private static final String SMALL_SNAPSHOTS = "-Draftkv.raft.snapshot-entries=100 -Draftkv.raft.trailing-entries=20";

  /** The faults this scenario draws from. */
  private enum Fault { ISOLATE, ISOLATE_LEADER, PAUSE, PAUSE_LEADER, KILL, KILL_LEADER }

  @Test
  void watchersGetEveryRevisionOnceThroughSnapshotsKillsPausesAndPartitions(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES, SMALL_SNAPSHOTS);
        WatchClient watchers = WatchClient.start(scenario.cluster(), scenario::log)) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(3).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.setClients().clients(2).duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);

      NodeProcess leader = cluster.awaitLeader(Duration.ofSeconds(30));
      nemesis.isolate(scenario.pick(cluster.others(leader)));
      scenario.hold(5_000, 6_000);
      nemesis.healPartitions();
      scenario.hold(2_000, 3_000);

      scenario.repeatFor(Duration.ofSeconds(50), () -> {
        List<NodeProcess> up = nemesis.up();
        if (up.size() <= NODES / 2 + 1) {
          scenario.hold(500, 1_000); // a restarted node is still starting
          return;
        }
        Fault fault = scenario.pick(List.of(Fault.values()));
        switch (fault) {
          case ISOLATE, ISOLATE_LEADER -> {
            nemesis.isolate(fault == Fault.ISOLATE ? scenario.pick(up) : cluster.awaitLeader(Duration.ofSeconds(30)));
            scenario.hold(3_000, 6_000);
            nemesis.healPartitions();
          }
          case PAUSE, PAUSE_LEADER -> {
            NodeProcess victim = fault == Fault.PAUSE ? scenario.pick(up) : nemesis.pauseLeader();
            if (fault == Fault.PAUSE) {
              nemesis.pause(victim);
            }
            scenario.hold(3_000, 5_000);
            nemesis.resume(victim);
          }
          case KILL, KILL_LEADER -> {
            NodeProcess victim = fault == Fault.KILL ? scenario.pick(up) : nemesis.killLeader();
            if (fault == Fault.KILL) {
              nemesis.kill(victim);
            }
            scenario.hold(2_000, 4_000);
            nemesis.restartInBackground(victim);
          }
          default -> throw new IllegalStateException("unknown fault " + fault);
        }
        scenario.hold(1_500, 3_000);
      });
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
      watchers.verify();
      int compactions = watchers.compactions();
      scenario.log("watchers were told " + compactions + " time(s) that a node lacked the revisions they needed");
      assertTrue(compactions > 0, "no watcher ever got compacted or 410: the scenario did not make a node with"
          + " live watchers install a snapshot, which is what it is for");
    }
  }
}
