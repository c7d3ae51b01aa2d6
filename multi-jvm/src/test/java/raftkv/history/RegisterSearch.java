package raftkv.history;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import raftkv.history.CheckResult.Verdict;
import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * One search for a linearization of one key's operations against a register; see
 * {@link LinearizabilityChecker} for the algorithm, and the comments here for each reduction and
 * why it is sound. Values are interned to ints, 0 being absent. Not thread-safe; run once.
 */
final class RegisterSearch {

  private static final long[] NO_WORDS = new long[0];
  private static final int[] NO_OPS = new int[0];
  private static final int DEAD = -2; // a value nothing left to linearize can observe

  private static final byte NORMAL = 0; // a choice: when undone, try the next candidate
  private static final byte FORCED = 1; // a matching read: when undone, its parent failed too
  private static final byte ABSORBED = 2; // a transparent write, undone with the op above it

  private final Op[] ops; // by invocation
  private final Kind[] kind;
  private final int[] observes; // value a READ must see or a CAS expects; -1 if none
  private final int[] leaves; // value a WRITE, CAS or DELETE leaves; -1 for a READ
  private final boolean[] ok;
  private final int[] okRank; // position among the OK ops, for the OK part of a configuration
  private final boolean[] required; // an OK op that observes a value (not the explained one)
  private final int[] previousTwin; // for an UNKNOWN op, the last UNKNOWN op before it alike, or -1
  private final int explained; // the op whose completion to stop at, or -1
  private final long maxConfigurations;

  // the entries, sorted by time, in a doubly linked list between sentinels head and tail
  private final int head;
  private final int tail;
  private final int[] entryOp;
  private final boolean[] entryIsCall;
  private final int[] next;
  private final int[] prev;
  private final int[] callEntry;
  private final int[] returnEntry; // -1 for an UNKNOWN op

  // the current configuration: the linearized set (OK part as bits by okRank, UNKNOWN part as a
  // list in linearization order) and the register value
  private final long[] linearized; // by op, for membership
  private final long[] linearizedOk; // by okRank
  private final long[] zobrist; // by okRank
  private long okHash;
  private final int[] unknownLinearized;
  private int unknownCount;
  private int value;
  private int remainingOk;

  // bookkeeping for the reductions
  private final int[] observersLeft; // per value: unlinearized ops that observe it
  // per value: its required observers by completion, its writers by invocation, and the first of
  // each not linearized; a value is doomed when no writer left is invoked before the first
  // required observer left completes (that observer can then only see it while it is current)
  private final int[][] requiredOf;
  private final int[][] writersOf;
  private final int[] requiredNext;
  private final int[] writersNext;
  private final int[] requiredPosition; // of an op in requiredOf[observes[op]]
  private final int[] writerPosition; // of an op in writersOf[leaves[op]]
  private final boolean[] valueDoomed;
  private int doomedValues;

  // the path
  private final int[] stackOp;
  private final int[] stackValue; // the value before the op was linearized
  private final byte[] stackKind;
  private final Explored[] stackExplored; // the configuration a NORMAL or FORCED push reached
  private int depth;
  private int lastUndone = -1;

  // configurations explored: by OK part and value, each with the UNKNOWN parts seen with them
  private final Map<Configuration, Explored> explored = new HashMap<>();
  private long configurations;
  private boolean budgetUsed;

  // where the search got furthest: the latest completion it could not get past
  private int furthestEntry = -1;
  private int furthestOp = -1;
  private int[] furthestPrefix = NO_OPS;

  /**
   * A search over {@code checked} (in any order). If {@code explainedIndex} is the index of one of
   * them, that op's observation does not prune the search, and the search stops as soon as it
   * reaches that op's completion with every other OK op linearized.
   */
  RegisterSearch(List<Op> checked, long maxConfigurations, int explainedIndex) {
    this.maxConfigurations = maxConfigurations;
    List<Op> sorted = new ArrayList<>();
    for (Op op : checked) {
      if (op.outcome() != Outcome.FAIL
          && !(op.kind() == Kind.READ && op.outcome() == Outcome.UNKNOWN)) {
        sorted.add(op); // the others say nothing
      }
    }
    sorted.sort(Comparator.comparingLong(Op::invokeNanos).thenComparingInt(Op::index));
    int m = sorted.size();
    ops = sorted.toArray(new Op[0]);
    kind = new Kind[m];
    observes = new int[m];
    leaves = new int[m];
    ok = new boolean[m];
    okRank = new int[m];
    required = new boolean[m];
    int explainedOp = -1;
    int oks = 0;
    Map<String, Integer> valueIds = new HashMap<>();
    valueIds.put(null, 0);
    for (int i = 0; i < m; i++) {
      Op op = ops[i];
      kind[i] = op.kind();
      ok[i] = op.outcome() == Outcome.OK;
      okRank[i] = ok[i] ? oks++ : -1;
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
      if (op.index() == explainedIndex) {
        explainedOp = i;
      }
      required[i] = ok[i] && observes[i] >= 0 && op.index() != explainedIndex;
    }
    explained = explainedOp;
    remainingOk = oks;

    previousTwin = new int[m];
    Map<List<Object>, Integer> lastTwin = new HashMap<>();
    for (int i = 0; i < m; i++) {
      previousTwin[i] = -1;
      if (!ok[i]) {
        Integer twin = lastTwin.put(List.of(kind[i], observes[i], leaves[i]), i);
        previousTwin[i] = twin == null ? -1 : twin;
      }
    }

    int values = valueIds.size();
    observersLeft = new int[values];
    List<List<Integer>> requiredLists = new ArrayList<>();
    List<List<Integer>> writerLists = new ArrayList<>();
    for (int v = 0; v < values; v++) {
      requiredLists.add(new ArrayList<>());
      writerLists.add(new ArrayList<>());
    }
    for (int i = 0; i < m; i++) {
      if (observes[i] >= 0) {
        observersLeft[observes[i]]++;
        if (required[i]) {
          requiredLists.get(observes[i]).add(i);
        }
      }
      if (leaves[i] >= 0) {
        writerLists.get(leaves[i]).add(i); // already by invocation
      }
    }
    requiredOf = new int[values][];
    writersOf = new int[values][];
    requiredNext = new int[values];
    writersNext = new int[values];
    requiredPosition = new int[m];
    writerPosition = new int[m];
    valueDoomed = new boolean[values];
    for (int v = 0; v < values; v++) {
      List<Integer> byCompletion = requiredLists.get(v);
      byCompletion.sort(Comparator.comparingLong((Integer i) -> ops[i].completeNanos())
          .thenComparingInt(i -> i));
      requiredOf[v] = byCompletion.stream().mapToInt(Integer::intValue).toArray();
      writersOf[v] = writerLists.get(v).stream().mapToInt(Integer::intValue).toArray();
      for (int p = 0; p < requiredOf[v].length; p++) {
        requiredPosition[requiredOf[v][p]] = p;
      }
      for (int p = 0; p < writersOf[v].length; p++) {
        writerPosition[writersOf[v][p]] = p;
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
    linearizedOk = new long[(oks + 63) / 64];
    zobrist = new long[oks];
    SplittableRandom random = new SplittableRandom(0x5EED_1DEAL);
    for (int i = 0; i < oks; i++) {
      zobrist[i] = random.nextLong();
    }
    unknownLinearized = new int[m];
    stackOp = new int[m];
    stackValue = new int[m];
    stackKind = new byte[m];
    stackExplored = new Explored[m];
    for (int v = 0; v < values; v++) {
      refreshDoom(v);
    }
  }

  /**
   * Searches. The walk over the list tries, at each configuration, the minimal OK ops first and
   * the minimal UNKNOWN ops after them (so that configurations with fewer UNKNOWN ops taken are
   * explored first, and subsume those with more). Returns NOT_LINEARIZABLE too when it stopped at
   * the explained op's completion.
   */
  Verdict run() {
    boolean arrived = true; // at a configuration not yet checked for doom and matching reads
    boolean unknownPass = false; // trying the UNKNOWN ops of this configuration
    int entry = next[head];
    while (true) {
      if (remainingOk == 0) {
        return Verdict.LINEARIZABLE; // the UNKNOWN ops still pending never took effect
      }
      if (arrived) {
        arrived = false;
        unknownPass = false;
        entry = next[head];
        if (doomed()) {
          entry = backtrack();
          if (entry < 0) {
            return Verdict.NOT_LINEARIZABLE;
          }
          unknownPass = !ok[lastUndone];
          continue;
        }
        int read = minimalMatchingRead();
        if (read >= 0) {
          if (push(read, FORCED)) {
            arrived = true;
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
          unknownPass = !ok[lastUndone];
          continue;
        }
      }
      if (entry != tail && entryIsCall[entry]) {
        int op = entryOp[entry];
        if (ok[op] != unknownPass && worthTrying(op, entry) && push(op, NORMAL)) {
          arrived = true;
          continue;
        }
        if (budgetUsed) {
          return inconclusive();
        }
        entry = next[entry];
      } else if (!unknownPass) {
        unknownPass = true;
        entry = next[head];
      } else {
        // the completion of an op not linearized: nothing more can be tried here
        if (entry != tail) {
          noteFurthest(entry);
          if (entryOp[entry] == explained) {
            return Verdict.NOT_LINEARIZABLE;
          }
        }
        entry = backtrack();
        if (entry < 0) {
          return Verdict.NOT_LINEARIZABLE;
        }
        unknownPass = !ok[lastUndone];
      }
    }
  }

  /** Distinct configurations explored. */
  long configurations() {
    return configurations;
  }

  /** The op whose completion the search could not get past, at the furthest such point; or null. */
  Op furthestOp() {
    return furthestOp < 0 ? null : ops[furthestOp];
  }

  /** The partial linearization at that point. */
  List<Op> furthestPrefix() {
    List<Op> prefix = new ArrayList<>();
    for (int op : furthestPrefix) {
      prefix.add(ops[op]);
    }
    return prefix;
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

  /**
   * True if linearizing the minimal {@code op} (called at {@code entry}) now can matter.
   *
   * <p>An UNKNOWN op may also never take effect, so it is only worth taking effect just before an
   * op that observes the value it leaves (in any linearization where something else follows it, it
   * can be dropped): so only while such an observer is minimal too, and only if it changes the
   * value. Of several pending UNKNOWN ops alike, only the first is tried: they are interchangeable.
   *
   * <p>A transparent OK write is tried alone only when it is due; otherwise it is absorbed by the
   * next WRITE or DELETE (see {@link #push}).
   */
  private boolean worthTrying(int op, int entry) {
    int after = step(op);
    if (after < 0) {
      return false;
    }
    if (!ok[op]) {
      return after != value && (previousTwin[op] < 0 || isLinearized(previousTwin[op]))
          && minimalObserver(after);
    }
    return !transparent(op) || due(entry);
  }

  /** True if a minimal op still to linearize observes {@code v}. */
  private boolean minimalObserver(int v) {
    if (observersLeft[v] == 0) {
      return false;
    }
    for (int e = next[head]; e != tail && entryIsCall[e]; e = next[e]) {
      if (observes[entryOp[e]] == v) {
        return true;
      }
    }
    return false;
  }

  /**
   * True for an OK WRITE or DELETE whose value nothing left to linearize observes: it only makes
   * the register unreadable until the next WRITE or DELETE.
   */
  private boolean transparent(int op) {
    return ok[op] && (kind[op] == Kind.WRITE || kind[op] == Kind.DELETE)
        && observersLeft[leaves[op]] == 0;
  }

  /** True if the completion of the op called at {@code callEntry} is the first one in the list. */
  private boolean due(int callEntry) {
    int e = callEntry;
    while (e != tail && entryIsCall[e]) {
      e = next[e];
    }
    return e == returnEntry[entryOp[callEntry]];
  }

  /**
   * True if some OK op still to linearize needs a value that is not the current one and that no
   * op still to linearize can write in time (invoked before that op completes): every way on
   * from here fails.
   */
  private boolean doomed() {
    return doomedValues > (valueDoomed[value] ? 1 : 0);
  }

  /**
   * A minimal read of the current value, or -1. Linearizing it at once is always right: moving a
   * read that is minimal and matches to the front of any linearization from here keeps it valid.
   */
  private int minimalMatchingRead() {
    for (int e = next[head]; e != tail && entryIsCall[e]; e = next[e]) {
      int op = entryOp[e];
      if (kind[op] == Kind.READ && observes[op] == value) {
        return op;
      }
    }
    return -1;
  }

  /**
   * Linearizes {@code op} unless the configuration it leads to was explored, or is subsumed by one
   * that failed; false if not pushed. Before a WRITE or DELETE, every minimal transparent write is
   * linearized too: in any linearization such a write can move to just before the next WRITE or
   * DELETE, where it changes nothing.
   */
  private boolean push(int op, byte kindOfPush) {
    int mark = depth;
    if (kind[op] == Kind.WRITE || kind[op] == Kind.DELETE) {
      int e = next[head];
      while (e != tail && entryIsCall[e]) {
        int w = entryOp[e];
        int following = next[e];
        if (w != op && transparent(w)) {
          stackOp[depth] = w;
          stackValue[depth] = value;
          stackKind[depth] = ABSORBED;
          stackExplored[depth] = null;
          depth++;
          apply(w);
        }
        e = following;
      }
    }
    stackOp[depth] = op;
    stackValue[depth] = value;
    stackKind[depth] = kindOfPush;
    depth++;
    apply(op);
    Explored reached = explore();
    if (reached == null) {
      while (depth > mark) {
        depth--;
        undo(stackOp[depth], stackValue[depth]);
      }
      return false;
    }
    stackExplored[depth - 1] = reached;
    if (++configurations >= maxConfigurations) {
      budgetUsed = true;
      return false;
    }
    return true;
  }

  /**
   * Undoes linearizations until one leaves an alternative; returns the entry to go on from, or
   * -1 when the stack is empty. The configurations undone have failed. Undoing a forced read fails
   * its parent configuration too; undoing an op undoes the transparent writes absorbed before it.
   */
  private int backtrack() {
    while (depth > 0) {
      depth--;
      int op = stackOp[depth];
      stackExplored[depth].failed = true;
      undo(op, stackValue[depth]);
      if (stackKind[depth] == NORMAL) {
        while (depth > 0 && stackKind[depth - 1] == ABSORBED) {
          depth--;
          undo(stackOp[depth], stackValue[depth]);
        }
        lastUndone = op;
        return next[callEntry[op]];
      }
    }
    return -1;
  }

  private void apply(int op) {
    linearized[op >>> 6] |= 1L << op;
    value = step(op);
    remove(callEntry[op]);
    if (ok[op]) {
      int rank = okRank[op];
      linearizedOk[rank >>> 6] |= 1L << rank;
      okHash ^= zobrist[rank];
      remove(returnEntry[op]);
      remainingOk--;
    } else {
      unknownLinearized[unknownCount++] = op;
    }
    if (observes[op] >= 0) {
      int v = observes[op];
      observersLeft[v]--;
      if (required[op] && requiredNext[v] == requiredPosition[op]) {
        int[] list = requiredOf[v];
        int p = requiredNext[v];
        while (p < list.length && isLinearized(list[p])) {
          p++;
        }
        requiredNext[v] = p;
        refreshDoom(v);
      }
    }
    if (leaves[op] >= 0) {
      int v = leaves[op];
      if (writersNext[v] == writerPosition[op]) {
        int[] list = writersOf[v];
        int p = writersNext[v];
        while (p < list.length && isLinearized(list[p])) {
          p++;
        }
        writersNext[v] = p;
        refreshDoom(v);
      }
    }
  }

  private void undo(int op, int before) {
    if (leaves[op] >= 0) {
      int v = leaves[op];
      if (writerPosition[op] < writersNext[v]) {
        writersNext[v] = writerPosition[op];
        refreshDoom(v);
      }
    }
    if (observes[op] >= 0) {
      int v = observes[op];
      if (required[op] && requiredPosition[op] < requiredNext[v]) {
        requiredNext[v] = requiredPosition[op];
        refreshDoom(v);
      }
      observersLeft[v]++;
    }
    if (ok[op]) {
      int rank = okRank[op];
      linearizedOk[rank >>> 6] &= ~(1L << rank);
      okHash ^= zobrist[rank];
      restore(returnEntry[op]);
      remainingOk++;
    } else {
      unknownCount--; // undone in reverse order of apply
    }
    restore(callEntry[op]);
    value = before;
    linearized[op >>> 6] &= ~(1L << op);
  }

  private boolean isLinearized(int op) {
    return (linearized[op >>> 6] & (1L << op)) != 0;
  }

  private void refreshDoom(int v) {
    boolean doomed = false;
    if (requiredNext[v] < requiredOf[v].length) {
      long firstDeadline = ops[requiredOf[v][requiredNext[v]]].completeNanos();
      doomed = writersNext[v] == writersOf[v].length
          || ops[writersOf[v][writersNext[v]]].invokeNanos() > firstDeadline;
    }
    if (doomed != valueDoomed[v]) {
      valueDoomed[v] = doomed;
      doomedValues += doomed ? 1 : -1;
    }
  }

  private void remove(int e) {
    next[prev[e]] = next[e];
    prev[next[e]] = prev[e];
  }

  private void restore(int e) {
    next[prev[e]] = e;
    prev[next[e]] = e;
  }

  /**
   * Records the current configuration, or returns null if it need not be explored: it was already,
   * or one with the same OK ops and value and a subset of its UNKNOWN ops failed (that one can do
   * whatever this one can: an UNKNOWN op need never take effect).
   *
   * <p>A value nothing left can observe is recorded as DEAD: from two such configurations with the
   * same linearized set, the same continuations work. Likewise an UNKNOWN op whose value nothing
   * left can observe is never tried again, so whether it took effect is left out of the record.
   */
  private Explored explore() {
    int keyValue = observersLeft[value] == 0 ? DEAD : value;
    int first = 0;
    while (first < linearizedOk.length && linearizedOk[first] == -1L) {
      first++;
    }
    int last = linearizedOk.length - 1;
    while (last >= first && linearizedOk[last] == 0L) {
      last--;
    }
    long[] words = last >= first ? Arrays.copyOfRange(linearizedOk, first, last + 1) : NO_WORDS;
    long h = okHash ^ ((keyValue + 3L) * 0x9E3779B97F4A7C15L);
    h = (h ^ (h >>> 33)) * 0xFF51AFD7ED558CCDL;
    h ^= h >>> 29;
    Configuration key = new Configuration((int) (h ^ (h >>> 32)), first, words, keyValue);
    int relevant = 0;
    for (int i = 0; i < unknownCount; i++) {
      if (observersLeft[leaves[unknownLinearized[i]]] > 0) {
        relevant++;
      }
    }
    int[] unknowns = relevant == 0 ? NO_OPS : new int[relevant];
    for (int i = 0, j = 0; i < unknownCount; i++) {
      if (observersLeft[leaves[unknownLinearized[i]]] > 0) {
        unknowns[j++] = unknownLinearized[i];
      }
    }
    Arrays.sort(unknowns);
    Explored chain = explored.get(key);
    for (Explored seen = chain; seen != null; seen = seen.next) {
      if (Arrays.equals(seen.unknowns, unknowns)
          || seen.failed && isSubset(seen.unknowns, unknowns)) {
        return null;
      }
    }
    Explored reached = new Explored(unknowns, chain);
    explored.put(key, reached);
    return reached;
  }

  /** Whether sorted {@code small} is a subset of sorted {@code large}. */
  private static boolean isSubset(int[] small, int[] large) {
    if (small.length > large.length) {
      return false;
    }
    int j = 0;
    for (int x : small) {
      while (j < large.length && large[j] < x) {
        j++;
      }
      if (j == large.length || large[j] != x) {
        return false;
      }
      j++;
    }
    return true;
  }

  private void noteFurthest(int entry) {
    if (entry > furthestEntry) {
      furthestEntry = entry;
      furthestOp = entryOp[entry];
      furthestPrefix = Arrays.copyOf(stackOp, depth);
    }
  }

  /** The OK part of a configuration, compacted, and the register value. */
  private static final class Configuration {
    private final int hash;
    private final int firstWord; // the words below it are all ones
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

  /** The UNKNOWN part of an explored configuration, and whether it failed. */
  private static final class Explored {
    private final int[] unknowns; // sorted
    private final Explored next; // others with the same OK part and value
    private boolean failed;

    private Explored(int[] unknowns, Explored next) {
      this.unknowns = unknowns;
      this.next = next;
    }
  }
}
