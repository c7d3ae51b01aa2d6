package raftkv.multijvm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The fault phase of LeaseIdempotencyFaultsIT and LockFaultsIT: one fault at a time, never more
 * than a minority impaired. Every kind of fault in every run, though a killed node may take 20 s
 * to start again on a busy machine: first the leader killed, then the cheap faults in turn, a
 * follower killed last (its restart goes on past the fault phase, until {@link #run} returns with
 * every node up), and random faults while time is left.
 */
final class MinorityFaults {
  enum Fault { KILL, KILL_LEADER, PAUSE, PAUSE_LEADER, ISOLATE, ISOLATE_LEADER }

  private MinorityFaults() {}

  /** Faults for {@code seconds}, the follower kill within its last {@code lastFaultSeconds}; every node is up after. */
  static void run(Scenario scenario, int nodes, int seconds, int lastFaultSeconds) {
    Cluster cluster = scenario.cluster();
    Nemesis nemesis = scenario.nemesis();
    List<Fault> plan = new ArrayList<>(List.of(Fault.KILL_LEADER, Fault.PAUSE_LEADER, Fault.ISOLATE,
        Fault.ISOLATE_LEADER, Fault.PAUSE));
    long phaseEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    boolean[] followerKilled = {false};
    scenario.repeatFor(Duration.ofSeconds(seconds), () -> {
      if (nemesis.up().size() < nodes) {
        scenario.hold(500, 1_000); // a restarted node is still starting: one fault at a time
        return;
      }
      boolean lastOne = phaseEnd - System.nanoTime() < TimeUnit.SECONDS.toNanos(lastFaultSeconds);
      Fault fault = !followerKilled[0] && lastOne ? Fault.KILL
          : !plan.isEmpty() ? plan.remove(0) : scenario.pick(List.of(Fault.values()));
      followerKilled[0] |= fault == Fault.KILL;
      NodeProcess leader = cluster.awaitLeader(Duration.ofSeconds(30));
      NodeProcess follower = scenario.pick(cluster.others(leader));
      NodeProcess victim = switch (fault) {
        case KILL_LEADER, PAUSE_LEADER, ISOLATE_LEADER -> leader;
        default -> follower;
      };
      switch (fault) {
        case KILL, KILL_LEADER -> {
          nemesis.kill(victim);
          scenario.hold(2_000, 5_000);
          nemesis.restartInBackground(victim);
        }
        case PAUSE, PAUSE_LEADER -> {
          nemesis.pause(victim);
          scenario.hold(2_000, 5_000);
          nemesis.resume(victim);
        }
        case ISOLATE, ISOLATE_LEADER -> {
          nemesis.isolate(victim);
          scenario.hold(2_000, 5_000);
          nemesis.healPartitions();
        }
        default -> throw new IllegalStateException("unknown fault " + fault);
      }
      scenario.hold(1_500, 3_000);
    });
    nemesis.restartAllDead(); // the last node killed is up: no fault in force from here on
  }
}
