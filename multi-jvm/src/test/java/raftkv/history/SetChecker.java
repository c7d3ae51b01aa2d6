package raftkv.history;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * Checks a set workload: clients add unique elements (each an OK, FAIL or UNKNOWN operation), and
 * once the cluster is healed a final read returns the whole set. Every acknowledged add must be in
 * it; nothing may be in it that nobody tried to add, or whose every attempt definitely failed.
 *
 * <p>An add is any WRITE or CAS operation; its element is the operation's {@code value} (so a test
 * can record "add e17" as a write of "e17" to key "set/e17", or to one key per client). When an
 * element was attempted more than once (a retry), it counts as acknowledged if any attempt was OK,
 * else as unknown if any attempt was UNKNOWN, else as failed.
 */
public final class SetChecker {

  /** Compares the adds with the final read. */
  public SetCheckResult check(Collection<Op> adds, Collection<String> finalRead) {
    Map<String, Outcome> attempts = new HashMap<>();
    for (Op add : adds) {
      if (add.kind() != Kind.WRITE && add.kind() != Kind.CAS) {
        throw new IllegalArgumentException("not an add (WRITE or CAS): " + add);
      }
      if (add.value() == null) {
        throw new IllegalArgumentException("an add needs an element: " + add);
      }
      attempts.merge(add.value(), add.outcome(), SetChecker::strongest);
    }

    SortedSet<String> present = new TreeSet<>();
    SortedSet<String> duplicated = new TreeSet<>();
    for (String element : finalRead) {
      if (!present.add(element)) {
        duplicated.add(element);
      }
    }
    int acknowledged = 0;
    int failed = 0;
    int unknown = 0;
    int recovered = 0;
    SortedSet<String> lost = new TreeSet<>();
    SortedSet<String> revived = new TreeSet<>();
    for (Map.Entry<String, Outcome> attempt : attempts.entrySet()) {
      boolean found = present.contains(attempt.getKey());
      switch (attempt.getValue()) {
        case OK -> {
          acknowledged++;
          if (!found) {
            lost.add(attempt.getKey());
          }
        }
        case UNKNOWN -> {
          unknown++;
          if (found) {
            recovered++;
          }
        }
        case FAIL -> {
          failed++;
          if (found) {
            revived.add(attempt.getKey());
          }
        }
      }
    }
    SortedSet<String> phantoms = new TreeSet<>(present);
    phantoms.removeAll(attempts.keySet());
    return new SetCheckResult(attempts.size(), acknowledged, failed, unknown, recovered,
        unknown - recovered, present.size(), lost, phantoms, revived, duplicated);
  }

  /** OK beats UNKNOWN beats FAIL: what the retries of one element add up to. */
  private static Outcome strongest(Outcome a, Outcome b) {
    if (a == Outcome.OK || b == Outcome.OK) {
      return Outcome.OK;
    }
    return a == Outcome.UNKNOWN || b == Outcome.UNKNOWN ? Outcome.UNKNOWN : Outcome.FAIL;
  }
}
