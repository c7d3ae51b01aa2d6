package raftkv.history;

import java.util.ArrayList;
import java.util.List;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * A history written by hand for a test, on one key, with times in milliseconds from 0: each method
 * adds one operation (indexes in the order they are written) and returns it.
 */
final class ScriptedHistory {

  private static final long MS = 1_000_000L;

  private final String key;
  private final List<Op> ops = new ArrayList<>();
  private final List<NemesisEvent> events = new ArrayList<>();

  ScriptedHistory(String key) {
    this.key = key;
  }

  /** An OK read by {@code process} over [from, to] ms that returned {@code output} (null: absent). */
  Op read(int process, String output, double from, double to) {
    return add(process, Kind.READ, null, null, Outcome.OK, output, from, to);
  }

  /** An OK read that found the key absent. */
  Op readAbsent(int process, double from, double to) {
    return read(process, null, from, to);
  }

  /** A read that failed or timed out: it returned nothing. */
  Op unansweredRead(int process, Outcome outcome, double from, double to) {
    return add(process, Kind.READ, null, null, outcome, null, from, to);
  }

  /** A write of {@code value} that ended with {@code outcome} (UNKNOWN: the client gave up at to). */
  Op write(int process, String value, Outcome outcome, double from, double to) {
    return add(process, Kind.WRITE, value, null, outcome, null, from, to);
  }

  /** An OK write. */
  Op write(int process, String value, double from, double to) {
    return write(process, value, Outcome.OK, from, to);
  }

  /** A compare-and-set from {@code expected} to {@code value}. */
  Op cas(int process, String expected, String value, Outcome outcome, double from, double to) {
    return add(process, Kind.CAS, value, expected, outcome, null, from, to);
  }

  /** A delete. */
  Op delete(int process, Outcome outcome, double from, double to) {
    return add(process, Kind.DELETE, null, null, outcome, null, from, to);
  }

  /** A nemesis event at {@code at} ms. */
  void nemesis(double at, String description) {
    events.add(new NemesisEvent(nanos(at), description));
  }

  /** The history, starting at 0 ms. */
  History build() {
    return History.of(0, ops, events);
  }

  private Op add(int process, Kind kind, String value, String expected, Outcome outcome,
      String output, double from, double to) {
    Op op = new Op(ops.size(), process, key, kind, value, expected, outcome, output, nanos(from),
        nanos(to));
    ops.add(op);
    return op;
  }

  private static long nanos(double ms) {
    return Math.round(ms * MS);
  }
}
