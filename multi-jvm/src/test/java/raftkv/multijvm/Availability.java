package raftkv.multijvm;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;

import raftkv.multijvm.ClientPool.Sample;
import raftkv.multijvm.Nemesis.LeaderLoss;
import raftkv.multijvm.Nemesis.Window;

/**
 * How available the cluster stayed under a scenario's faults: the share of operations invoked
 * while a fault was in force that got a 2xx answer, and for every loss of the leader the time
 * until a write invoked after the loss succeeded (the failover time as a client sees it).
 *
 * @param opsDuringFaults      operations invoked while some fault was in force
 * @param answeredDuringFaults of those, answered with a 2xx
 * @param opsTotal             every operation of the run
 * @param answeredTotal        of those, answered with a 2xx
 * @param failovers            one per leader loss, in order
 */
public record Availability(int opsDuringFaults, int answeredDuringFaults, int opsTotal,
    int answeredTotal, List<Failover> failovers) {

  /**
   * The time from a leader loss to the completion of the first successful write invoked after it.
   *
   * @param fault    the nemesis event that took the leader away
   * @param nanos    how long it took, -1 if no write succeeded after it
   */
  public record Failover(String fault, long nanos) {}

  /** Copies the failovers. */
  public Availability {
    failovers = List.copyOf(failovers);
  }

  /** Computes the report from the clients' samples and what the nemesis did. */
  public static Availability of(Collection<Sample> samples, List<Window> faultWindows,
      List<LeaderLoss> leaderLosses) {
    int during = 0;
    int answeredDuring = 0;
    int answered = 0;
    for (Sample sample : samples) {
      boolean faulty = faultWindows.stream().anyMatch(w -> w.contains(sample.invokeNanos()));
      if (sample.answered()) {
        answered++;
      }
      if (faulty) {
        during++;
        if (sample.answered()) {
          answeredDuring++;
        }
      }
    }
    List<Sample> appliedWrites = samples.stream().filter(Sample::applied)
        .sorted(Comparator.comparingLong(Sample::invokeNanos)).toList();
    List<Failover> failovers = new ArrayList<>();
    for (LeaderLoss loss : leaderLosses) {
      long first = appliedWrites.stream()
          .filter(w -> w.invokeNanos() >= loss.nanos())
          .mapToLong(Sample::completeNanos).min().orElse(-1);
      failovers.add(new Failover(loss.description(), first < 0 ? -1 : first - loss.nanos()));
    }
    return new Availability(during, answeredDuring, samples.size(), answered, failovers);
  }

  /** Answered share of the operations invoked during faults, 1 when there were none. */
  public double shareDuringFaults() {
    return opsDuringFaults == 0 ? 1.0 : (double) answeredDuringFaults / opsDuringFaults;
  }

  /** The longest failover in nanoseconds, empty if no leader was lost or no write followed. */
  public OptionalLong longestFailoverNanos() {
    return failovers.stream().mapToLong(Failover::nanos).filter(n -> n >= 0).max();
  }

  /** A few lines for the test output. */
  public String describe() {
    StringBuilder text = new StringBuilder(String.format(Locale.ROOT,
        "availability: %.1f%% of %d ops answered while faults were active (%.1f%% of all %d ops)",
        100 * shareDuringFaults(), opsDuringFaults,
        opsTotal == 0 ? 100.0 : 100.0 * answeredTotal / opsTotal, opsTotal));
    OptionalLong longest = longestFailoverNanos();
    text.append(String.format(Locale.ROOT, "%nfailover: %d leader losses, longest time to the next"
        + " successful write: %s", failovers.size(),
        longest.isPresent() ? String.format(Locale.ROOT, "%.2f s", longest.getAsLong() / 1e9) : "n/a"));
    for (Failover failover : failovers) {
      text.append(String.format(Locale.ROOT, "%n  %-40s %s", failover.fault(), failover.nanos() < 0
          ? "no successful write afterwards"
          : String.format(Locale.ROOT, "%.2f s", failover.nanos() / 1e9)));
    }
    return text.toString();
  }
}
