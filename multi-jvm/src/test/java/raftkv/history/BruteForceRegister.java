package raftkv.history;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * The register model checked the obvious way, for a handful of operations: try every minimal
 * operation at every step, UNKNOWN ones optional, with no reduction but memoisation. The
 * {@link LinearizabilityChecker} must agree with it.
 */
final class BruteForceRegister {

  private final List<Op> ops = new ArrayList<>();
  private final Set<List<Object>> failed = new HashSet<>();

  private BruteForceRegister(List<Op> recorded) {
    for (Op op : recorded) {
      boolean says = op.outcome() != Outcome.FAIL
          && !(op.kind() == Kind.READ && op.outcome() == Outcome.UNKNOWN);
      if (says) {
        ops.add(op);
      }
    }
    if (ops.size() > 62) {
      throw new IllegalArgumentException("too many ops for brute force");
    }
  }

  /** Whether the operations are linearizable. */
  static boolean linearizable(List<Op> recorded) {
    BruteForceRegister search = new BruteForceRegister(recorded);
    return search.search(0L, null);
  }

  private boolean search(long done, String value) {
    boolean allOk = true;
    for (int i = 0; i < ops.size(); i++) {
      if ((done & (1L << i)) == 0 && ops.get(i).outcome() == Outcome.OK) {
        allOk = false;
      }
    }
    if (allOk) {
      return true;
    }
    List<Object> key = new ArrayList<>();
    key.add(done);
    key.add(value);
    if (failed.contains(key)) {
      return false;
    }
    for (int i = 0; i < ops.size(); i++) {
      if ((done & (1L << i)) != 0 || !minimal(done, ops.get(i))) {
        continue;
      }
      Op op = ops.get(i);
      String after;
      switch (op.kind()) {
        case READ -> {
          if (!Objects.equals(value, op.output())) {
            continue;
          }
          after = value;
        }
        case WRITE -> after = op.value();
        case CAS -> {
          if (!Objects.equals(value, op.expected())) {
            continue;
          }
          after = op.value();
        }
        case DELETE -> after = null;
        default -> throw new IllegalStateException();
      }
      if (search(done | (1L << i), after)) {
        return true;
      }
    }
    failed.add(key);
    return false;
  }

  /** No OK op still to linearize completed before {@code op} was invoked. */
  private boolean minimal(long done, Op op) {
    for (int j = 0; j < ops.size(); j++) {
      Op other = ops.get(j);
      if ((done & (1L << j)) == 0 && other.outcome() == Outcome.OK
          && other.completeNanos() < op.invokeNanos()) {
        return false;
      }
    }
    return true;
  }
}
