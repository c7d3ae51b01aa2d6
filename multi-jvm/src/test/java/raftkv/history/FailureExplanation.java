package raftkv.history;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

import raftkv.history.CheckResult.Verdict;
import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * The text of a {@link CheckResult} that is not linearizable (or undecided), written for a person
 * chasing a stale read: the operation that could never be linearized, why the register could not
 * give its result, where the value it wanted came from, the end of the longest partial
 * linearization, every operation concurrent with it, and the nemesis events around them.
 */
final class FailureExplanation {

  private static final long SECOND = 1_000_000_000L;
  private static final int PREFIX_SHOWN = 10;
  private static final int CONCURRENT_SHOWN = 40;
  private static final int WRITERS_SHOWN = 5;
  private static final int EVENTS_SHOWN = 30;

  private final String key;
  private final Verdict verdict;
  private final long start;
  private final List<Op> recorded;
  private final Map<Integer, String> ignored;
  private final int checkedCount;
  private final long configurations;
  private final long elapsedNanos;
  private final Op failing;
  private final List<Op> prefix;
  private final Long prefixEndNanos; // end of the shortest failing prefix, if known
  private final List<NemesisEvent> events;
  private final Map<Integer, Integer> positionInPrefix = new HashMap<>();

  FailureExplanation(String key, Verdict verdict, long startNanos, List<Op> recorded,
      Map<Integer, String> ignored, int checkedCount, long configurations, long elapsedNanos,
      Op failing, List<Op> prefix, Long prefixEndNanos, List<NemesisEvent> events) {
    this.key = key;
    this.verdict = verdict;
    this.start = startNanos;
    this.recorded = recorded;
    this.ignored = ignored;
    this.checkedCount = checkedCount;
    this.configurations = configurations;
    this.elapsedNanos = elapsedNanos;
    this.failing = failing;
    this.prefix = prefix;
    this.prefixEndNanos = prefixEndNanos;
    this.events = events;
    for (int i = 0; i < prefix.size(); i++) {
      positionInPrefix.put(prefix.get(i).index(), i + 1);
    }
  }

  String write() {
    StringBuilder text = new StringBuilder();
    if (verdict == Verdict.NOT_LINEARIZABLE) {
      text.append("key ").append(Op.formatValue(key)).append(": NOT LINEARIZABLE. No order of the"
          + " operations respects both real time and the register.\n");
    } else {
      text.append("key ").append(Op.formatValue(key)).append(": INCONCLUSIVE. The search used its"
          + " budget of ").append(configurations).append(" configurations without an answer;"
          + " below is the furthest point it reached.\n");
    }
    text.append(String.format(Locale.ROOT, "  %d ops recorded, %d checked, %d ignored; %d"
            + " configurations explored in %.1f ms. Times are ms since the history started.%n",
        recorded.size(), checkedCount, ignored.size(), configurations, elapsedNanos / 1e6));
    if (failing == null) {
      return text.toString();
    }
    if (verdict == Verdict.INCONCLUSIVE) {
      text.append("\nThe operation the search could not yet place:\n");
    } else if (prefixEndNanos != null) {
      text.append("\nThis operation can never be linearized:\n");
    } else {
      text.append("\nThe search got no further than the completion of this operation (locating"
          + " the op that breaks linearizability ran out of budget; it completes no earlier):\n");
    }
    text.append("    ").append(failing.describe(start)).append('\n');
    if (prefixEndNanos != null) {
      text.append("    It is the first op whose completion breaks linearizability: the ops invoked up to ")
          .append(Op.formatMillis(prefixEndNanos, start)).append(" ms\n    (those still running"
              + " then counted as unknown) are not linearizable; every shorter prefix is.\n");
    }

    Op setter = null;
    String value = null;
    List<String> valueAfter = new ArrayList<>();
    for (Op op : prefix) {
      if (op.mutates()) {
        setter = op;
        value = op.value();
      }
      valueAfter.add(Op.formatValue(value));
    }
    writeWhy(text, setter, value);

    text.append("\nLongest partial linearization found: ").append(prefix.size()).append(" of ")
        .append(checkedCount).append(" checked ops");
    int from = Math.max(0, prefix.size() - PREFIX_SHOWN);
    text.append(from > 0 ? "; its last " + PREFIX_SHOWN : "")
        .append(" (=> register after each):\n");
    if (prefix.isEmpty()) {
      text.append("    (empty: the key was still absent)\n");
    }
    for (int i = from; i < prefix.size(); i++) {
      text.append("    ").append(prefix.get(i).describe(start)).append("  => ")
          .append(valueAfter.get(i)).append('\n');
    }

    long windowStart = failing.invokeNanos();
    if (setter != null) {
      windowStart = Math.min(windowStart, setter.invokeNanos());
    }
    List<Op> concurrent = concurrentOps();
    text.append("\nOperations concurrent with #").append(failing.index()).append(" (")
        .append(Op.formatMillis(failing.invokeNanos(), start)).append(" .. ")
        .append(Op.formatMillis(failing.completeNanos(), start))
        .append(" ms), and where that partial linearization left them:\n");
    if (concurrent.isEmpty()) {
      text.append("    (none)\n");
    }
    int hidden = Math.max(0, concurrent.size() - CONCURRENT_SHOWN);
    if (hidden > 0) {
      text.append("    ... ").append(hidden).append(" more, invoked earlier\n");
    }
    for (Op op : concurrent.subList(hidden, concurrent.size())) {
      text.append("    ").append(op.describe(start)).append("  [").append(status(op))
          .append("]\n");
      if (op.outcome() != Outcome.UNKNOWN) {
        windowStart = Math.min(windowStart, op.invokeNanos());
      }
    }

    long from1 = Math.max(start, windowStart - SECOND);
    long to1 = failing.completeNanos() == Op.NEVER ? Op.NEVER : failing.completeNanos() + SECOND;
    List<NemesisEvent> near = events.stream()
        .filter(e -> e.timeNanos() >= from1 && e.timeNanos() <= to1).toList();
    text.append("\nNemesis events from ").append(Op.formatMillis(from1, start)).append(" to ")
        .append(to1 == Op.NEVER ? "the end" : Op.formatMillis(to1, start) + " ms")
        .append(" (the ops above, +/- 1 s):\n");
    if (near.isEmpty()) {
      text.append("    (none)\n");
    }
    for (NemesisEvent event : near.subList(0, Math.min(EVENTS_SHOWN, near.size()))) {
      text.append("    ").append(event.describe(start)).append('\n');
    }
    if (near.size() > EVENTS_SHOWN) {
      text.append("    ... ").append(near.size() - EVENTS_SHOWN).append(" more\n");
    }
    return text.toString();
  }

  /** Why the failing op does not fit: what it needed, what the register held, who wrote what. */
  private void writeWhy(StringBuilder text, Op setter, String value) {
    text.append("\nWhy:\n");
    String ref = "#" + failing.index();
    String left = value != null ? "left the register at " + Op.formatValue(value) + ", last set by:"
        : setter == null ? "left the register absent: nothing had set it yet."
        : "left the register absent, last made so by:";
    switch (failing.kind()) {
      case READ -> text.append("    It returned ").append(Op.formatValue(failing.output()))
          .append("; but when ").append(ref).append(" had to take effect, the longest partial\n"
              + "    linearization had ").append(left).append('\n');
      case CAS -> text.append("    It succeeded, so the register held ")
          .append(Op.formatValue(failing.expected())).append(" when it took effect; but when ")
          .append(ref).append(" had to take effect,\n    the longest partial linearization had ")
          .append(left).append('\n');
      case WRITE, DELETE -> text.append("    Every place the search tried for it before it"
          + " completed made a later op impossible.\n    The longest partial linearization had ")
          .append(left).append('\n');
    }
    if (setter != null) {
      text.append("      ").append(setter.describe(start)).append('\n');
      if (setter.outcome() == Outcome.OK && setter.completeNanos() < failing.invokeNanos()) {
        text.append("      which completed before ").append(ref).append(" began, so ").append(ref)
            .append(" comes after it.\n");
      } else if (setter.outcome() == Outcome.UNKNOWN) {
        text.append("      (UNKNOWN: this partial linearization assumed it took effect)\n");
      }
    }
    if (failing.kind() != Kind.READ && failing.kind() != Kind.CAS) {
      return;
    }
    String wanted = failing.kind() == Kind.READ ? failing.output() : failing.expected();
    List<Op> writers = recorded.stream()
        .filter(op -> op.mutates() && op != failing && Objects.equals(op.value(), wanted))
        .toList();
    if (wanted == null) {
      text.append("    The key starts absent");
      text.append(writers.isEmpty() ? " and nothing deleted it.\n" : "; it was deleted by:\n");
    } else if (writers.isEmpty()) {
      text.append("    No operation on this key ever wrote ").append(Op.formatValue(wanted))
          .append(": that value does not come from this key's history.\n");
    } else {
      text.append("    ").append(Op.formatValue(wanted)).append(" was written by:\n");
    }
    for (Op writer : writers.subList(0, Math.min(WRITERS_SHOWN, writers.size()))) {
      text.append("      ").append(writer.describe(start)).append("  [").append(status(writer))
          .append("]\n");
    }
    if (writers.size() > WRITERS_SHOWN) {
      text.append("      ... ").append(writers.size() - WRITERS_SHOWN).append(" more\n");
    }
    Op lastWrite = writers.stream()
        .filter(op -> op.outcome() == Outcome.OK && op.completeNanos() < failing.invokeNanos())
        .max(Comparator.comparingLong(Op::completeNanos)).orElse(null);
    if (lastWrite == null) {
      return;
    }
    List<Op> between = recorded.stream()
        .filter(op -> op.outcome() == Outcome.OK && op != failing && op != lastWrite
            && op.invokeNanos() > lastWrite.completeNanos()
            && op.completeNanos() < failing.invokeNanos()
            && (op.kind() == Kind.READ ? !Objects.equals(op.output(), wanted)
                : !Objects.equals(op.value(), wanted)))
        .sorted(Comparator.comparingLong(Op::invokeNanos))
        .toList();
    if (between.isEmpty()) {
      return;
    }
    text.append("    After #").append(lastWrite.index()).append(" completed and before ").append(ref)
        .append(" began, these ops saw or set another value\n    (in every order they come"
            + " between the two):\n");
    for (Op op : between.subList(0, Math.min(WRITERS_SHOWN, between.size()))) {
      text.append("      ").append(op.describe(start)).append('\n');
    }
    if (between.size() > WRITERS_SHOWN) {
      text.append("      ... ").append(between.size() - WRITERS_SHOWN).append(" more\n");
    }
  }

  /**
   * The ops whose interval overlaps the failing op's, an UNKNOWN op still able to take effect
   * counting as open-ended; by invocation.
   */
  private List<Op> concurrentOps() {
    List<Op> concurrent = new ArrayList<>();
    for (Op op : recorded) {
      if (op == failing || op.invokeNanos() > failing.completeNanos()) {
        continue;
      }
      boolean stillOpen = op.outcome() == Outcome.UNKNOWN && !ignored.containsKey(op.index())
          && !positionInPrefix.containsKey(op.index());
      if (stillOpen || op.completeNanos() >= failing.invokeNanos()) {
        concurrent.add(op);
      }
    }
    concurrent.sort(Comparator.comparingLong(Op::invokeNanos).thenComparingInt(Op::index));
    return concurrent;
  }

  private String status(Op op) {
    Integer position = positionInPrefix.get(op.index());
    if (position != null) {
      return "linearized " + position + (position == prefix.size() ? ", last" : "");
    }
    String reason = ignored.get(op.index());
    if (reason != null) {
      return "ignored: " + reason;
    }
    return op.outcome() == Outcome.UNKNOWN ? "not linearized: may never have happened"
        : "not linearized";
  }
}
