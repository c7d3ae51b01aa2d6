package raftkv.history;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import raftkv.history.CheckResult.Verdict;
import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * Checks that each key of a {@link History} behaves as one linearizable register: values are
 * strings, the key starts absent, READ returns the current value, WRITE sets it, CAS sets it iff
 * the current value equals the expected one, DELETE makes the key absent.
 *
 * <p>Keys are independent, so each is checked on its own. For one key the checker searches for a
 * linearization as Wing &amp; Gong did, with Lowe's memoisation and his "just-in-time" form (as in
 * porcupine): the invocations and completions are sorted by time into one list; the search walks
 * it, linearizes an operation whose invocation comes before every completion still in the list (a
 * <em>minimal</em> one) when the register allows it, and backtracks when it meets the completion of
 * an operation it has not linearized. A configuration — the set of linearized operations and the
 * register value — that was explored once is never explored again. The search is iterative, with
 * an explicit stack.
 *
 * <p>What each outcome means: FAIL operations did not happen and are left out. An UNKNOWN operation
 * has an invocation but no completion: it may take effect at any later instant, or never, so the
 * history is linearizable if all OK operations and any subset of UNKNOWN ones can be linearized. An
 * UNKNOWN read says nothing and is left out.
 *
 * <p>Reductions keep realistic histories cheap; each is sound and keeps the search complete (the
 * argument is next to each in {@code RegisterSearch}):
 * <ul>
 *   <li>a minimal read that matches the current value is linearized at once, and only there;
 *   <li>a configuration is abandoned as soon as an OK read or CAS still to linearize needs a value
 *       that is not current and that nothing still to linearize can write before that op
 *       completes (with unique values, a stale branch dies at the write that overwrites it);
 *   <li>an OK write or delete whose value nothing still to linearize observes is not tried on its
 *       own (unless it is due): it is linearized just before the next write or delete;
 *   <li>an UNKNOWN op is tried only just before an op that observes the value it leaves, only if
 *       it changes the value, and only the first of several pending UNKNOWN ops alike;
 *   <li>the minimal OK ops are tried before the UNKNOWN ones, and a configuration is abandoned if
 *       one with the same OK ops and value but fewer UNKNOWN ops taken has failed;
 *   <li>a value nothing left can observe is memoised as one "dead" value.
 * </ul>
 * With unique write values, UNKNOWN writes nobody saw then cost nothing.
 *
 * <p>When the history is not linearizable, the checker then looks for the shortest failing
 * prefix (up to some completion; see {@code minimalFailure}) to name the op that can never be
 * linearized, and the longest partial linearization up to it.
 *
 * <p>Each search is bounded by a budget of distinct configurations (locating the failing op may
 * take two budgets more); past it the key's verdict is {@link Verdict#INCONCLUSIVE}. The default
 * budget, 1,000,000 configurations (about 150 MB at worst, a few seconds), is far more than
 * linearizable histories of 5,000 operations from 40 clients need (under 10,000), and enough to
 * prove a stale read in 3,000 operations from 20 clients (under 400,000 in all).
 *
 * <p>A checker keeps no state between checks: one instance can serve several threads.
 */
public final class LinearizabilityChecker {

  /** The default budget: distinct configurations explored per key before giving up. */
  public static final long DEFAULT_MAX_CONFIGURATIONS = 1_000_000L;

  /** Locating the op that breaks linearizability may take this many budgets more. */
  private static final int LOCATING_ALLOWANCE = 2;

  private final long maxConfigurations;

  /** A checker with the {@link #DEFAULT_MAX_CONFIGURATIONS default budget}. */
  public LinearizabilityChecker() {
    this(DEFAULT_MAX_CONFIGURATIONS);
  }

  /** A checker that explores at most {@code maxConfigurations} configurations per key. */
  public LinearizabilityChecker(long maxConfigurations) {
    if (maxConfigurations < 1) {
      throw new IllegalArgumentException("maxConfigurations must be positive: " + maxConfigurations);
    }
    this.maxConfigurations = maxConfigurations;
  }

  /** Checks every key of {@code history}, in key order. */
  public CheckReport check(History history) {
    List<CheckResult> results = new ArrayList<>();
    for (String key : history.keys()) {
      results.add(check(history, key));
    }
    return new CheckReport(results);
  }

  /** Checks the operations of {@code history} on {@code key}. */
  public CheckResult check(History history, String key) {
    Objects.requireNonNull(key, "key");
    long started = System.nanoTime();
    List<Op> recorded = history.ops(key);
    Map<Integer, String> ignored = new LinkedHashMap<>();
    List<Op> checked = opsToCheck(recorded, ignored);
    RegisterSearch search = new RegisterSearch(checked, maxConfigurations, -1);
    Verdict verdict = search.run();
    long configurations = search.configurations();

    if (verdict == Verdict.LINEARIZABLE) {
      long elapsed = System.nanoTime() - started;
      String line = String.format(Locale.ROOT,
          "key %s: linearizable (%d ops recorded, %d checked, %d configurations, %.1f ms)",
          Op.formatValue(key), recorded.size(), checked.size(), configurations, elapsed / 1e6);
      return new CheckResult(key, verdict, recorded.size(), checked.size(), configurations,
          elapsed, null, line);
    }
    Op failing = search.furthestOp();
    List<Op> prefix = search.furthestPrefix();
    Long prefixEnd = null;
    if (verdict == Verdict.NOT_LINEARIZABLE) {
      MinimalFailure minimal = minimalFailure(checked, failing);
      configurations += minimal.configurations;
      if (minimal.failing != null) {
        failing = minimal.failing;
        prefix = minimal.prefix;
        prefixEnd = minimal.endNanos;
      }
    }
    Map<Integer, Op> original = new HashMap<>();
    recorded.forEach(op -> original.put(op.index(), op));
    failing = failing == null ? null : original.get(failing.index());
    prefix = prefix.stream().map(op -> original.get(op.index())).toList();
    long elapsed = System.nanoTime() - started;
    String text = new FailureExplanation(key, verdict, history.startNanos(), recorded, ignored,
        checked.size(), configurations, elapsed, failing, prefix, prefixEnd,
        history.nemesisEvents()).write();
    return new CheckResult(key, verdict, recorded.size(), checked.size(), configurations,
        elapsed, failing, text);
  }

  /** The op that makes a history non-linearizable, and the partial linearization before it. */
  private record MinimalFailure(Op failing, List<Op> prefix, Long endNanos, long configurations) {
  }

  /**
   * Finds the shortest failing prefix of a non-linearizable history: the prefix up to the k-th
   * completion has the ops invoked by then, the first k completed ops as they ended, and the
   * others as still running (an unfinished read says nothing; an unfinished mutation is UNKNOWN).
   * Linearizability of these prefixes is monotone in k, so a search finds the least k that fails;
   * the k-th completed op is then the one that can never be linearized (always a read or a CAS: a
   * write can always go last). Every prefix ending before the completion where the first search
   * got stuck is linearizable, so the search gallops up from there, then bisects. A last search,
   * which that op does not prune, stops at its completion with every other op linearized: that is
   * the partial linearization to show.
   */
  private MinimalFailure minimalFailure(List<Op> checked, Op stuckAt) {
    List<Op> completions = checked.stream().filter(op -> op.outcome() == Outcome.OK)
        .sorted(Comparator.comparingLong(Op::completeNanos).thenComparingInt(Op::index))
        .toList();
    if (completions.isEmpty()) {
      return new MinimalFailure(null, List.of(), null, 0);
    }
    long[] configurations = {0};
    int good = 0; // the longest prefix known to be linearizable
    if (stuckAt != null) {
      while (good < completions.size()
          && completions.get(good).completeNanos() < stuckAt.completeNanos()) {
        good++;
      }
    }
    int bad = completions.size(); // the shortest prefix known not to be
    for (int step = 1; good + step < bad; step *= 2) {
      Verdict verdict = checkPrefix(checked, completions, good + step, configurations);
      if (verdict == Verdict.INCONCLUSIVE) {
        return new MinimalFailure(null, List.of(), null, configurations[0]);
      }
      if (verdict == Verdict.NOT_LINEARIZABLE) {
        bad = good + step;
        break;
      }
      good += step;
    }
    while (bad - good > 1) {
      int middle = (good + bad) >>> 1;
      Verdict verdict = checkPrefix(checked, completions, middle, configurations);
      if (verdict == Verdict.INCONCLUSIVE) {
        return new MinimalFailure(null, List.of(), null, configurations[0]);
      }
      if (verdict == Verdict.NOT_LINEARIZABLE) {
        bad = middle;
      } else {
        good = middle;
      }
    }
    Op failing = completions.get(bad - 1);
    RegisterSearch explain = new RegisterSearch(prefix(checked, completions, bad),
        Math.max(1, LOCATING_ALLOWANCE * maxConfigurations - configurations[0]), failing.index());
    explain.run();
    configurations[0] += explain.configurations();
    return new MinimalFailure(failing, explain.furthestPrefix(), failing.completeNanos(),
        configurations[0]);
  }

  private Verdict checkPrefix(List<Op> checked, List<Op> completions, int k, long[] configurations) {
    long left = LOCATING_ALLOWANCE * maxConfigurations - configurations[0];
    if (left <= 0) {
      return Verdict.INCONCLUSIVE;
    }
    RegisterSearch search = new RegisterSearch(prefix(checked, completions, k), left, -1);
    Verdict verdict = search.run();
    configurations[0] += search.configurations();
    return verdict;
  }

  /** The history up to the {@code k}-th completion (see {@link #minimalFailure}). */
  private static List<Op> prefix(List<Op> checked, List<Op> completions, int k) {
    long end = completions.get(k - 1).completeNanos();
    Set<Integer> done = new HashSet<>();
    for (Op op : completions.subList(0, k)) {
      done.add(op.index());
    }
    List<Op> prefix = new ArrayList<>();
    for (Op op : checked) {
      if (op.invokeNanos() > end) {
        continue;
      }
      if (op.outcome() != Outcome.OK || done.contains(op.index())) {
        prefix.add(op);
      } else if (op.mutates()) {
        prefix.add(new Op(op.index(), op.process(), op.key(), op.kind(), op.value(),
            op.expected(), Outcome.UNKNOWN, null, op.invokeNanos(), op.completeNanos()));
      }
    }
    return prefix;
  }

  /**
   * The operations the search must place, sorted by invocation; the others go to {@code ignored}
   * with the reason. Removing an UNKNOWN mutation whose resulting value no remaining operation
   * observes cannot change the verdict (any linearization that contains it stays one without it),
   * so such operations are removed until none is left.
   */
  private static List<Op> opsToCheck(List<Op> recorded, Map<Integer, String> ignored) {
    List<Op> kept = new ArrayList<>();
    for (Op op : recorded) {
      if (op.outcome() == Outcome.FAIL) {
        ignored.put(op.index(), "failed: did not happen");
      } else if (op.kind() == Kind.READ && op.outcome() == Outcome.UNKNOWN) {
        ignored.put(op.index(), "unknown read: says nothing");
      } else {
        kept.add(op);
      }
    }
    boolean removed = true;
    while (removed) {
      Set<String> observed = new HashSet<>(); // null: absent
      for (Op op : kept) {
        if (op.kind() == Kind.READ) {
          observed.add(op.output());
        } else if (op.kind() == Kind.CAS) {
          observed.add(op.expected());
        }
      }
      removed = false;
      for (var it = kept.iterator(); it.hasNext(); ) {
        Op op = it.next();
        if (op.outcome() == Outcome.UNKNOWN && op.mutates() && !observed.contains(op.value())) {
          it.remove();
          ignored.put(op.index(),
              "unknown, and no read or CAS saw " + Op.formatValue(op.value()));
          removed = true;
        }
      }
    }
    kept.sort(Comparator.comparingLong(Op::invokeNanos).thenComparingInt(Op::index));
    return kept;
  }
}
