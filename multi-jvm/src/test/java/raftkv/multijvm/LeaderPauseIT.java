package raftkv.multijvm;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Scenario 3: the leader is frozen with SIGSTOP for longer than the election timeout (the nodes run
 * with 500 ms), then resumed with SIGCONT. The rest elect a new leader meanwhile; once resumed, the
 * old leader must not acknowledge anything on the strength of its stale leadership: a read it
 * served from its own state, or a write it confirmed, would break linearizability.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class LeaderPauseIT {

  @Test
  void pausedLeaderResumesWithoutActingAsLeader(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, 3)) {
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);
      scenario.repeatFor(Duration.ofSeconds(25), () -> {
        NodeProcess paused = nemesis.pauseLeader();
        scenario.hold(2_000, 3_500);
        nemesis.resume(paused);
        scenario.hold(2_000, 3_000);
      });
      scenario.hold(3_000, 3_000); // healthy load after the last fault
      scenario.verify();
    }
  }
}
