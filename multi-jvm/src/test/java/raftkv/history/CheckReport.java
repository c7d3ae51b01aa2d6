package raftkv.history;

import java.util.List;
import java.util.Optional;

/**
 * The verdicts of the {@link LinearizabilityChecker} on every key of a history; its
 * {@link #toString()} is the text to put in an assertion message.
 *
 * @param results one result per key, in key order
 */
public record CheckReport(List<CheckResult> results) {

  /** Copies the results. */
  public CheckReport {
    results = List.copyOf(results);
  }

  /** True when every key is linearizable. */
  public boolean ok() {
    return results.stream().allMatch(CheckResult::ok);
  }

  /** The keys proven not linearizable. */
  public List<CheckResult> violations() {
    return results.stream().filter(CheckResult::violation).toList();
  }

  /** The keys the search could not decide within its budget. */
  public List<CheckResult> inconclusive() {
    return results.stream().filter(CheckResult::inconclusive).toList();
  }

  /** The result for {@code key}, if the history had operations on it. */
  public Optional<CheckResult> result(String key) {
    return results.stream().filter(r -> r.key().equals(key)).findFirst();
  }

  /** A summary line, then the explanation of every key that is not linearizable or undecided. */
  public String describe() {
    long ops = results.stream().mapToLong(CheckResult::opsRecorded).sum();
    long millis = results.stream().mapToLong(CheckResult::elapsedNanos).sum() / 1_000_000;
    StringBuilder text = new StringBuilder()
        .append(ok() ? "linearizable" : "NOT linearizable").append(": ")
        .append(results.size()).append(" keys, ").append(ops).append(" ops, ")
        .append(violations().size()).append(" violating, ")
        .append(inconclusive().size()).append(" inconclusive, checked in ")
        .append(millis).append(" ms\n");
    for (CheckResult result : results) {
      if (!result.ok()) {
        text.append('\n').append(result.explanation()).append('\n');
      }
    }
    return text.toString();
  }

  @Override
  public String toString() {
    return describe();
  }
}
