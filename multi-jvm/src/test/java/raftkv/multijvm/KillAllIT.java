package raftkv.multijvm;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Scenario 6: every node is killed at the same instant in the middle of the load, twice, and all
 * are restarted on their data dirs: every acknowledged write must still be there (the register
 * history stays linearizable, the set has every acknowledged add).
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class KillAllIT {

  @Test
  void everyNodeKilledAtOnceAndRestartedKeepsAcknowledgedWrites(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, 3)) {
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(4).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.setClients().clients(2).duration(Scenario.MAX_LOAD));
      for (int round = 0; round < 2; round++) {
        scenario.hold(5_000, 8_000);
        nemesis.killAll();
        scenario.hold(1_000, 2_000);
        nemesis.restartAllDead();
      }
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
    }
  }
}
