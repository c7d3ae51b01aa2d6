package raftkv.history;

import java.util.Locale;
import java.util.Objects;

/**
 * One client operation on one key, as a {@link History} recorded it: who issued it, what it asked,
 * how it ended and when (times are {@link System#nanoTime()} readings).
 *
 * <p>Inputs by kind: a {@link Kind#WRITE} has {@code value}; a {@link Kind#CAS} has {@code expected}
 * (null: the key must be absent, as {@code If-None-Match: *}) and {@code value} (null: a conditional
 * delete); {@link Kind#READ} and {@link Kind#DELETE} have neither. Only an {@link Outcome#OK}
 * {@link Kind#READ} has an {@code output}: the value it saw, null when the key was absent.
 *
 * <p>An {@link Outcome#UNKNOWN} operation may take effect at any instant after its invocation, even
 * after the client gave up on it, or never: its {@code completeNanos} is only when the client
 * stopped waiting ({@link #NEVER} if it never did), and {@link #effectDeadlineNanos()} is +infinity.
 *
 * @param index         position of the invocation in its history, unique within it
 * @param process       the client that issued the operation; a client has one operation at a time
 * @param key           the key the operation is on
 * @param kind          what the operation does
 * @param value         the value written (WRITE, CAS), else null
 * @param expected      the value a CAS expects (null: absent), else null
 * @param outcome       how the operation ended
 * @param output        the value an OK READ returned (null: absent), else null
 * @param invokeNanos   when the client sent the request
 * @param completeNanos when the client got the response or gave up; {@link #NEVER} if pending
 */
public record Op(
    int index,
    int process,
    String key,
    Kind kind,
    String value,
    String expected,
    Outcome outcome,
    String output,
    long invokeNanos,
    long completeNanos) {

  /** The completion time of an operation whose client never heard back. */
  public static final long NEVER = Long.MAX_VALUE;

  /** What an operation does to the register under its key. */
  public enum Kind {
    /** Returns the current value, or absent. */
    READ,
    /** Sets the value. */
    WRITE,
    /** Sets {@code value} if the current value equals {@code expected}, else does nothing. */
    CAS,
    /** Makes the key absent. */
    DELETE
  }

  /** How an operation ended, as far as its client knows. */
  public enum Outcome {
    /** It happened, and any output is what it returned. */
    OK,
    /** It definitely did not happen: 503, 412, connection refused, 400. */
    FAIL,
    /** It may or may not have happened: 504, timeout, connection reset. */
    UNKNOWN
  }

  /** Rejects an operation whose fields contradict its kind or outcome. */
  public Op {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(outcome, "outcome");
    if (key.isEmpty()) {
      throw new IllegalArgumentException("op #" + index + ": empty key");
    }
    if (kind == Kind.WRITE && value == null) {
      throw new IllegalArgumentException("op #" + index + ": a WRITE needs a value (use DELETE)");
    }
    if ((kind == Kind.READ || kind == Kind.DELETE) && (value != null || expected != null)) {
      throw new IllegalArgumentException("op #" + index + ": a " + kind + " takes no input value");
    }
    if (kind == Kind.WRITE && expected != null) {
      throw new IllegalArgumentException("op #" + index + ": only a CAS has an expected value");
    }
    if (output != null && !(kind == Kind.READ && outcome == Outcome.OK)) {
      throw new IllegalArgumentException("op #" + index + ": only an OK READ has an output");
    }
    if (completeNanos < invokeNanos) {
      throw new IllegalArgumentException("op #" + index + ": completes before it is invoked");
    }
    if (completeNanos == NEVER && outcome != Outcome.UNKNOWN) {
      throw new IllegalArgumentException("op #" + index + ": a pending op can only be UNKNOWN");
    }
  }

  /**
   * The latest instant at which this operation can have taken effect: its completion when it is OK
   * (or FAIL, which takes no effect), +infinity ({@link #NEVER}) when it is UNKNOWN.
   */
  public long effectDeadlineNanos() {
    return outcome == Outcome.UNKNOWN ? NEVER : completeNanos;
  }

  /** True if the client never heard back, not even a timeout of its own. */
  public boolean pending() {
    return completeNanos == NEVER;
  }

  /** True if the operation may change the register: WRITE, CAS, DELETE. */
  public boolean mutates() {
    return kind != Kind.READ;
  }

  /** What the operation asked and saw, without times: {@code p3 CAS "a" -> "b"}. */
  public String describeCall() {
    return switch (kind) {
      case READ -> "p" + process + " READ -> "
          + (outcome == Outcome.OK ? formatValue(output) : "?");
      case WRITE -> "p" + process + " WRITE " + formatValue(value);
      case CAS -> "p" + process + " CAS " + formatValue(expected) + " -> " + formatValue(value);
      case DELETE -> "p" + process + " DELETE";
    };
  }

  /**
   * One line for a person: index, call, outcome and times in ms relative to {@code startNanos}, as
   * {@code #12 p3 READ -> "a"  OK  [40.0 .. 50.0 ms]}.
   */
  public String describe(long startNanos) {
    String times = "[" + formatMillis(invokeNanos, startNanos) + " .. ";
    if (outcome != Outcome.UNKNOWN) {
      times += formatMillis(completeNanos, startNanos) + " ms]";
    } else if (pending()) {
      times += "? ms] (never completed)";
    } else {
      times += "? ms] (client gave up at " + formatMillis(completeNanos, startNanos) + " ms)";
    }
    return String.format(Locale.ROOT, "#%-5d %-28s %-7s %s",
        index, describeCall(), outcome, times);
  }

  /** A value as the reports show it: quoted, shortened past 40 characters; null is "absent". */
  public static String formatValue(String value) {
    if (value == null) {
      return "absent";
    }
    String shown = value.length() > 40 ? value.substring(0, 37) + "..." : value;
    return '"' + shown + '"';
  }

  /** A {@code System.nanoTime()} reading as milliseconds after {@code startNanos}, e.g. "40.3". */
  public static String formatMillis(long nanos, long startNanos) {
    return String.format(Locale.ROOT, "%.1f", (nanos - startNanos) / 1e6);
  }
}
