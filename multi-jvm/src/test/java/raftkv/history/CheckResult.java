package raftkv.history;

import java.util.Objects;

/**
 * The verdict of the {@link LinearizabilityChecker} on the operations of one key.
 *
 * @param key            the key checked
 * @param verdict        linearizable, not, or unknown within the search budget
 * @param opsRecorded    operations recorded on the key
 * @param opsChecked     operations the search had to place (FAIL ops, UNKNOWN reads and UNKNOWN
 *                       writes whose value nobody saw carry no information and are left out)
 * @param configurations distinct (linearized set, register value) pairs the search explored
 * @param elapsedNanos   how long the search took
 * @param failingOp      for a violation, the operation that could never be linearized; for an
 *                       inconclusive search, the furthest one it got stuck at; else null
 * @param explanation    for a person: one line when linearizable, else the failing window
 */
public record CheckResult(
    String key,
    Verdict verdict,
    int opsRecorded,
    int opsChecked,
    long configurations,
    long elapsedNanos,
    Op failingOp,
    String explanation) {

  /** What the search concluded. */
  public enum Verdict {
    /** Some order of the operations respects real time and the register's rules. */
    LINEARIZABLE,
    /** No such order exists: a consistency bug, or a wrongly recorded history. */
    NOT_LINEARIZABLE,
    /** The search used its budget of configurations before it could tell. */
    INCONCLUSIVE
  }

  /** Rejects missing fields. */
  public CheckResult {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(verdict, "verdict");
    Objects.requireNonNull(explanation, "explanation");
  }

  /** True only when the key's history is linearizable; false too when the search gave up. */
  public boolean ok() {
    return verdict == Verdict.LINEARIZABLE;
  }

  /** True when the history is proven not linearizable. */
  public boolean violation() {
    return verdict == Verdict.NOT_LINEARIZABLE;
  }

  /** True when the search ran out of budget. */
  public boolean inconclusive() {
    return verdict == Verdict.INCONCLUSIVE;
  }

  @Override
  public String toString() {
    return explanation;
  }
}
