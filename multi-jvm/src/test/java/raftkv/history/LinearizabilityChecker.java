package raftkv.history;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;

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
 * <p>Two reductions keep realistic histories cheap, both sound: (1) a minimal read that matches the
 * current value is linearized at once and never tried elsewhere (moving a read to the front of any
 * linearization that exists keeps it valid); (2) an UNKNOWN write, CAS or delete is not tried while
 * no operation that is still to be linearized could observe the value it would leave (a read of
 * that value, a CAS expecting it). With unique write values, unknown writes nobody saw then cost
 * nothing.
 *
 * <p>The search is bounded by a budget of configurations; past it the key's verdict is
 * {@link Verdict#INCONCLUSIVE}. The default budget decides histories of several thousand operations
 * per key with a few dozen clients in seconds, in about 150 MB at most.
 */
public final class LinearizabilityChecker {

  /** The default budget: distinct configurations explored per key before giving up. */
  public static final long DEFAULT_MAX_CONFIGURATIONS = 1_500_000L;

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
    RegisterSearch search = new RegisterSearch(checked, maxConfigurations);
    Verdict verdict = search.run();
    long elapsed = System.nanoTime() - started;

    if (verdict == Verdict.LINEARIZABLE) {
      String line = String.format(java.util.Locale.ROOT,
          "key %s: linearizable (%d ops recorded, %d checked, %d configurations, %.1f ms)",
          Op.formatValue(key), recorded.size(), checked.size(), search.configurations,
          elapsed / 1e6);
      return new CheckResult(key, verdict, recorded.size(), checked.size(), search.configurations,
          elapsed, null, line);
    }
    Op failing = search.furthestOp >= 0 ? search.ops[search.furthestOp] : null;
    List<Op> prefix = new ArrayList<>();
    for (int op : search.furthestPrefix) {
      prefix.add(search.ops[op]);
    }
    String text = new FailureExplanation(key, verdict, history.startNanos(), recorded, ignored,
        checked.size(), search.configurations, elapsed, failing, prefix,
        history.nemesisEvents()).write();
    return new CheckResult(key, verdict, recorded.size(), checked.size(), search.configurations,
        elapsed, failing, text);
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

  /** A configuration of the search: the linearized set (compacted) and the register value. */
  private static final class Configuration {
    private final int hash;
    private final int firstWord; // words below it are all ones
    private final long[] words; // from firstWord up to the last non-zero word
    private final int value;

    private Configuration(int hash, int firstWord, long[] words, int value) {
      this.hash = hash;
      this.firstWord = firstWord;
      this.words = words;
      this.value = value;
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof Configuration that && hash == that.hash && value == that.value
          && firstWord == that.firstWord && Arrays.equals(words, that.words);
    }
  }

  /** The search over one key's operations; values are interned to ints, 0 being absent. */
  private static final class RegisterSearch {
    private static final long[] NO_WORDS = new long[0];

    private final Op[] ops;
    private final Kind[] kind;
    private final int[] observes; // value a READ must see or a CAS expects; -1 if none
    private final int[] leaves; // value a WRITE, CAS or DELETE leaves; -1 for a READ
    private final boolean[] ok;
    private final long maxConfigurations;

    // the entries, sorted by time, in a doubly linked list with sentinels HEAD and TAIL
    private final int head;
    private final int tail;
    private final int[] entryOp;
    private final boolean[] entryIsCall;
    private final int[] next;
    private final int[] prev;
    private final int[] callEntry;
    private final int[] returnEntry; // -1 for an UNKNOWN op

    // the current configuration and the path to it
    private final long[] linearized;
    private final long[] zobrist;
    private long linearizedHash;
    private int value;
    private int remainingOk;
    private final int[] observersLeft; // per value: unlinearized ops that observe it
    private final int[] stackOp;
    private final int[] stackValue; // the value before the op was linearized
    private final boolean[] stackForced;
    private int depth;

    private final Set<Configuration> explored = new HashSet<>();
    private long configurations;
    private boolean budgetUsed;

    // where the search got furthest: the latest completion it could not get past
    private int furthestEntry = -1;
    private int furthestOp = -1;
    private int[] furthestPrefix = new int[0];

    RegisterSearch(List<Op> checked, long maxConfigurations) {
      this.maxConfigurations = maxConfigurations;
      int m = checked.size();
      ops = checked.toArray(new Op[0]);
      kind = new Kind[m];
      observes = new int[m];
      leaves = new int[m];
      ok = new boolean[m];
      Map<String, Integer> valueIds = new HashMap<>();
      valueIds.put(null, 0);
      for (int i = 0; i < m; i++) {
        Op op = ops[i];
        kind[i] = op.kind();
        ok[i] = op.outcome() == Outcome.OK;
        observes[i] = -1;
        leaves[i] = -1;
        switch (op.kind()) {
          case READ -> observes[i] = valueIds.computeIfAbsent(op.output(), v -> valueIds.size());
          case WRITE -> leaves[i] = valueIds.computeIfAbsent(op.value(), v -> valueIds.size());
          case CAS -> {
            observes[i] = valueIds.computeIfAbsent(op.expected(), v -> valueIds.size());
            leaves[i] = valueIds.computeIfAbsent(op.value(), v -> valueIds.size());
          }
          case DELETE -> leaves[i] = 0;
        }
        if (ok[i]) {
          remainingOk++;
        }
      }
      observersLeft = new int[valueIds.size()];
      for (int i = 0; i < m; i++) {
        if (observes[i] >= 0) {
          observersLeft[observes[i]]++;
        }
      }

      // entries: a call per op, a return per OK op; at equal times calls first (more overlap)
      List<long[]> raw = new ArrayList<>(); // {time, 0 call / 1 return, op}
      for (int i = 0; i < m; i++) {
        raw.add(new long[] {ops[i].invokeNanos(), 0, i});
        if (ok[i]) {
          raw.add(new long[] {ops[i].completeNanos(), 1, i});
        }
      }
      raw.sort(Comparator.<long[]>comparingLong(e -> e[0]).thenComparingLong(e -> e[1])
          .thenComparingLong(e -> e[2]));
      int entries = raw.size();
      head = entries;
      tail = entries + 1;
      entryOp = new int[entries];
      entryIsCall = new boolean[entries];
      next = new int[entries + 2];
      prev = new int[entries + 2];
      callEntry = new int[m];
      returnEntry = new int[m];
      Arrays.fill(returnEntry, -1);
      for (int e = 0; e < entries; e++) {
        long[] r = raw.get(e);
        int op = (int) r[2];
        entryOp[e] = op;
        entryIsCall[e] = r[1] == 0;
        if (entryIsCall[e]) {
          callEntry[op] = e;
        } else {
          returnEntry[op] = e;
        }
        prev[e] = e == 0 ? head : e - 1;
        next[e] = e == entries - 1 ? tail : e + 1;
      }
      next[head] = entries == 0 ? tail : 0;
      prev[tail] = entries == 0 ? head : entries - 1;

      linearized = new long[(m + 63) / 64];
      zobrist = new long[m];
      SplittableRandom random = new SplittableRandom(0x5EED_1DEAL);
      for (int i = 0; i < m; i++) {
        zobrist[i] = random.nextLong();
      }
      stackOp = new int[m];
      stackValue = new int[m];
      stackForced = new boolean[m];
    }

    Verdict run() {
      boolean arrived = true; // at a configuration not yet scanned for a matching read
      int entry = next[head];
      while (true) {
        if (remainingOk == 0) {
          return Verdict.LINEARIZABLE; // the UNKNOWN ops still pending never took effect
        }
        if (arrived) {
          arrived = false;
          int read = minimalMatchingRead();
          if (read >= 0) {
            if (push(read, value, true)) {
              arrived = true;
              entry = next[head];
              continue;
            }
            if (budgetUsed) {
              return inconclusive();
            }
            // explored before, and failed: so does this configuration
            entry = backtrack();
            if (entry < 0) {
              return Verdict.NOT_LINEARIZABLE;
            }
            continue;
          }
        }
        if (entry != tail && entryIsCall[entry]) {
          int op = entryOp[entry];
          int after = pointless(op) ? -1 : step(op);
          if (after >= 0 && push(op, after, false)) {
            arrived = true;
            entry = next[head];
            continue;
          }
          if (budgetUsed) {
            return inconclusive();
          }
          entry = next[entry];
        } else {
          // the completion of an op not linearized: nothing more can be tried here
          if (entry != tail) {
            noteFurthest(entry);
          }
          entry = backtrack();
          if (entry < 0) {
            return Verdict.NOT_LINEARIZABLE;
          }
        }
      }
    }

    /** Out of budget: if no completion blocked the search yet, the first one ahead blocks it. */
    private Verdict inconclusive() {
      if (furthestOp < 0) {
        for (int e = next[head]; e != tail; e = next[e]) {
          if (!entryIsCall[e]) {
            noteFurthest(e);
            break;
          }
        }
      }
      return Verdict.INCONCLUSIVE;
    }

    /** The register after {@code op} from the current value, or -1 if it cannot happen now. */
    private int step(int op) {
      return switch (kind[op]) {
        case READ -> observes[op] == value ? value : -1;
        case WRITE, DELETE -> leaves[op];
        case CAS -> observes[op] == value ? leaves[op] : -1;
      };
    }

    /** True for an UNKNOWN op whose resulting value nothing left to linearize could observe. */
    private boolean pointless(int op) {
      return !ok[op] && leaves[op] >= 0 && observersLeft[leaves[op]] == 0;
    }

    /** A minimal read of the current value, or -1. */
    private int minimalMatchingRead() {
      for (int e = next[head]; e != tail && entryIsCall[e]; e = next[e]) {
        int op = entryOp[e];
        if (kind[op] == Kind.READ && observes[op] == value) {
          return op;
        }
      }
      return -1;
    }

    /** Linearizes {@code op} unless that configuration was explored; false if not pushed. */
    private boolean push(int op, int after, boolean forced) {
      linearized[op >>> 6] |= 1L << op;
      linearizedHash ^= zobrist[op];
      if (!explored.add(configuration(after))) {
        linearized[op >>> 6] &= ~(1L << op);
        linearizedHash ^= zobrist[op];
        return false;
      }
      if (++configurations >= maxConfigurations) {
        budgetUsed = true;
      }
      stackOp[depth] = op;
      stackValue[depth] = value;
      stackForced[depth] = forced;
      depth++;
      value = after;
      lift(op);
      if (ok[op]) {
        remainingOk--;
      }
      if (observes[op] >= 0) {
        observersLeft[observes[op]]--;
      }
      if (budgetUsed) {
        return false;
      }
      return true;
    }

    /**
     * Undoes linearizations until one leaves an alternative; returns the entry to go on from, or
     * -1 when the stack is empty. Undoing a forced read fails its parent configuration too.
     */
    private int backtrack() {
      while (depth > 0) {
        depth--;
        int op = stackOp[depth];
        value = stackValue[depth];
        linearized[op >>> 6] &= ~(1L << op);
        linearizedHash ^= zobrist[op];
        unlift(op);
        if (ok[op]) {
          remainingOk++;
        }
        if (observes[op] >= 0) {
          observersLeft[observes[op]]++;
        }
        if (!stackForced[depth]) {
          return next[callEntry[op]];
        }
      }
      return -1;
    }

    private void lift(int op) {
      remove(callEntry[op]);
      if (returnEntry[op] >= 0) {
        remove(returnEntry[op]);
      }
    }

    private void unlift(int op) {
      if (returnEntry[op] >= 0) {
        restore(returnEntry[op]);
      }
      restore(callEntry[op]);
    }

    private void remove(int e) {
      next[prev[e]] = next[e];
      prev[next[e]] = prev[e];
    }

    private void restore(int e) {
      next[prev[e]] = e;
      prev[next[e]] = e;
    }

    private Configuration configuration(int after) {
      int first = 0;
      while (first < linearized.length && linearized[first] == -1L) {
        first++;
      }
      int last = linearized.length - 1;
      while (last >= first && linearized[last] == 0L) {
        last--;
      }
      long[] words = last >= first ? Arrays.copyOfRange(linearized, first, last + 1) : NO_WORDS;
      long h = linearizedHash ^ ((after + 1L) * 0x9E3779B97F4A7C15L);
      h = (h ^ (h >>> 33)) * 0xFF51AFD7ED558CCDL;
      h ^= h >>> 29;
      return new Configuration((int) (h ^ (h >>> 32)), first, words, after);
    }

    private void noteFurthest(int entry) {
      if (entry > furthestEntry) {
        furthestEntry = entry;
        furthestOp = entryOp[entry];
        furthestPrefix = Arrays.copyOf(stackOp, depth);
      }
    }
  }
}
