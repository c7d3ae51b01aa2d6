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
 * Scenario 5: about ninety seconds of faults drawn at random from all kinds — kill a node or the
 * leader (restarted in the background a few seconds later, so that it may still be starting when
 * the next fault comes), pause a node or the leader, isolate a node or the leader, a random
 * majority/minority split — each held for a few seconds and then healed, under register and set
 * load on five nodes, with a share of transactions as large as the API allows and larger, under
 * keys of multi-byte characters. The register history stays linearizable, no acknowledged add is
 * lost, every large transaction is applied or refused (413, 400), and no node's log tells of a
 * message dropped for its size. A watcher of every key from revision 1 on each node, started
 * before the load, follows its stream through the faults (resuming with Last-Event-ID, on another
 * node after a kill or a compacted stream, back on its own node later); at the end each has
 * received revisions 1..R once each and in order, they all received the same events, and their
 * replay is the final state ({@link WatchClient}, {@link WatchChecker}).
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 7, unit = TimeUnit.MINUTES)
class MixedFaultsIT {

  private static final int NODES = 5;

  /** The faults this scenario draws from. */
  private enum Fault { KILL, KILL_LEADER, PAUSE, PAUSE_LEADER, ISOLATE, ISOLATE_LEADER, SPLIT }

  @Test
  void mixOfAllFaultsUnderRegisterAndSetLoad(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES);
        WatchClient watchers = WatchClient.start(scenario.cluster(), scenario::log)) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(4).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.setClients().clients(2).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.largeClients().clients(1).duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);
      scenario.repeatFor(Duration.ofSeconds(85), () -> {
        List<NodeProcess> up = nemesis.up();
        if (up.size() <= NODES / 2 + 1) {
          // a restarted node is still starting: keep a majority besides the next victim
          scenario.hold(500, 1_000);
          return;
        }
        Fault fault = scenario.pick(List.of(Fault.values()));
        switch (fault) {
          case KILL, KILL_LEADER -> {
            NodeProcess victim = fault == Fault.KILL ? scenario.pick(up) : nemesis.killLeader();
            if (fault == Fault.KILL) {
              nemesis.kill(victim);
            }
            scenario.hold(2_000, 5_000);
            nemesis.restartInBackground(victim);
          }
          case PAUSE, PAUSE_LEADER -> {
            NodeProcess victim = fault == Fault.PAUSE ? scenario.pick(up) : nemesis.pauseLeader();
            if (fault == Fault.PAUSE) {
              nemesis.pause(victim);
            }
            scenario.hold(2_000, 5_000);
            nemesis.resume(victim);
          }
          case ISOLATE, ISOLATE_LEADER -> {
            nemesis.isolate(fault == Fault.ISOLATE ? scenario.pick(up)
                : cluster.awaitLeader(Duration.ofSeconds(30)));
            scenario.hold(2_000, 5_000);
            nemesis.healPartitions();
          }
          case SPLIT -> {
            List<NodeProcess> nodes = new ArrayList<>(cluster.nodes());
            Collections.shuffle(nodes, scenario.random());
            int minority = 1 + scenario.random().nextInt(NODES / 2);
            nemesis.partition(nodes.subList(0, minority), nodes.subList(minority, NODES));
            scenario.hold(2_000, 5_000);
            nemesis.healPartitions();
          }
          default -> throw new IllegalStateException("unknown fault " + fault);
        }
        scenario.hold(1_500, 3_000);
      });
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
      watchers.verify();
    }
  }
}
