package raftkv.multijvm;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Scenario 2: any node is killed at random and restarted later, sometimes two at once (the cluster
 * then has no majority until one returns); the register history stays linearizable.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class RandomKillIT {

  @Test
  void randomNodesKilledAndRestartedUnderLoad(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, 3)) {
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().duration(Scenario.MAX_LOAD));
      scenario.hold(1_000, 3_000);
      scenario.repeatFor(Duration.ofSeconds(25), () -> {
        NodeProcess first = scenario.pick(scenario.cluster().nodes());
        nemesis.kill(first);
        scenario.hold(1_000, 4_000);
        if (scenario.random().nextDouble() < 0.3) {
          nemesis.kill(scenario.pick(scenario.cluster().others(first)));
          scenario.hold(500, 2_000);
        }
        nemesis.restartAllDead();
        scenario.hold(1_000, 3_000);
      });
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
    }
  }
}
