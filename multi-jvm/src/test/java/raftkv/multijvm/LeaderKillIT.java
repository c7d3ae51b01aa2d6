package raftkv.multijvm;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Scenario 1: the leader is killed with SIGKILL again and again under load, and comes back on its
 * data dir each time; the register history stays linearizable.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class LeaderKillIT {

  @Test
  void leaderKilledRepeatedlyUnderLoad(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, 3)) {
      scenario.run(scenario.registerClients().duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);
      scenario.repeatFor(Duration.ofSeconds(25), () -> {
        NodeProcess killed = scenario.nemesis().killLeader();
        scenario.hold(2_000, 4_000);
        scenario.nemesis().restart(killed);
        scenario.hold(1_000, 3_000);
      });
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
    }
  }
}
