package raftkv.history;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.LongSupplier;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * What the clients of a test did and what the nemesis did to the cluster meanwhile: a thread-safe
 * recorder that many client threads share.
 *
 * <p>A client calls {@link #invoke} just before it sends a request and {@link #complete} as soon as
 * it has the response (or gives up), so that the recorded interval contains the real one:
 *
 * <pre>{@code
 * History.Invocation call = history.invokeWrite(process, "x", "v17");
 * try {
 *   kv.put("x", "v17");
 *   history.complete(call, Outcome.OK, null);
 * } catch (RaftKvException e) {
 *   history.complete(call, e.kind() == TIMEOUT ? Outcome.UNKNOWN : Outcome.FAIL, null);
 * }
 * }</pre>
 *
 * An operation never completed counts as {@link Outcome#UNKNOWN}. Write unique values (one per
 * write): the checker then tells quickly which unknown writes took effect.
 */
public final class History {

  /** The receipt of {@link #invoke}, to pass to {@link #complete}. */
  public static final class Invocation {
    private final History owner;
    private final int index;

    private Invocation(History owner, int index) {
      this.owner = owner;
      this.index = index;
    }

    /** The index the operation has in its history. */
    public int index() {
      return index;
    }
  }

  private final LongSupplier clock;
  private final long startNanos;
  private boolean finished; // guarded by this; made by of(): nothing more can be recorded
  private final List<Op> ops = new ArrayList<>(); // guarded by this; pending ones as UNKNOWN/NEVER
  private final List<Boolean> completed = new ArrayList<>(); // guarded by this
  private final List<NemesisEvent> nemesisEvents = new ArrayList<>(); // guarded by this

  /** A history on {@link System#nanoTime()} that starts now. */
  public History() {
    this(System::nanoTime);
  }

  /** A history on {@code clock} (nanoseconds) that starts at its current reading. */
  public History(LongSupplier clock) {
    this.clock = Objects.requireNonNull(clock, "clock");
    this.startNanos = clock.getAsLong();
  }

  /**
   * A finished history from recorded operations and events, e.g. written by hand in a test or read
   * back from a file; it records nothing more. Indexes must be unique.
   */
  public static History of(long startNanos, Collection<Op> ops, Collection<NemesisEvent> events) {
    History history = new History(() -> startNanos);
    Set<Integer> indexes = new HashSet<>();
    List<Op> sorted = new ArrayList<>(ops);
    sorted.sort(Comparator.comparingInt(Op::index));
    for (Op op : sorted) {
      if (!indexes.add(op.index())) {
        throw new IllegalArgumentException("two operations have index " + op.index());
      }
      history.ops.add(op);
      history.completed.add(Boolean.TRUE);
    }
    history.nemesisEvents.addAll(events);
    history.nemesisEvents.sort(Comparator.comparingLong(NemesisEvent::timeNanos));
    history.finished = true;
    return history;
  }

  /** The clock reading the history started at; reports show times relative to it. */
  public long startNanos() {
    return startNanos;
  }

  /**
   * Records that {@code process} is about to send a request; see {@link Op} for which of
   * {@code value} and {@code expected} each kind takes.
   */
  public Invocation invoke(int process, String key, Kind kind, String value, String expected) {
    synchronized (this) {
      refuseIfFinished();
      int index = ops.size();
      long now = clock.getAsLong();
      ops.add(new Op(index, process, key, kind, value, expected, Outcome.UNKNOWN, null, now,
          Op.NEVER));
      completed.add(Boolean.FALSE);
      return new Invocation(this, index);
    }
  }

  /** {@link #invoke} for a read. */
  public Invocation invokeRead(int process, String key) {
    return invoke(process, key, Kind.READ, null, null);
  }

  /** {@link #invoke} for a write of {@code value}. */
  public Invocation invokeWrite(int process, String key, String value) {
    return invoke(process, key, Kind.WRITE, value, null);
  }

  /** {@link #invoke} for a compare-and-set from {@code expected} (null: absent) to {@code value}. */
  public Invocation invokeCas(int process, String key, String expected, String value) {
    return invoke(process, key, Kind.CAS, value, expected);
  }

  /** {@link #invoke} for a delete. */
  public Invocation invokeDelete(int process, String key) {
    return invoke(process, key, Kind.DELETE, null, null);
  }

  /**
   * Records how the operation ended, now. {@code output} is what an OK read returned (null: the key
   * was absent); it is ignored for every other operation and outcome.
   *
   * @return the completed operation
   * @throws IllegalStateException if the operation was already completed
   */
  public Op complete(Invocation invocation, Outcome outcome, String output) {
    Objects.requireNonNull(outcome, "outcome");
    if (invocation.owner != this) {
      throw new IllegalArgumentException("invocation #" + invocation.index
          + " belongs to another history");
    }
    synchronized (this) {
      int index = invocation.index;
      if (completed.get(index)) {
        throw new IllegalStateException("op #" + index + " is already complete: " + ops.get(index));
      }
      long now = clock.getAsLong();
      Op call = ops.get(index);
      String kept = call.kind() == Kind.READ && outcome == Outcome.OK ? output : null;
      Op done = new Op(index, call.process(), call.key(), call.kind(), call.value(),
          call.expected(), outcome, kept, call.invokeNanos(), Math.max(now, call.invokeNanos()));
      ops.set(index, done);
      completed.set(index, Boolean.TRUE);
      return done;
    }
  }

  /** {@link #complete} without output: for writes, CAS, deletes and reads that did not succeed. */
  public Op complete(Invocation invocation, Outcome outcome) {
    return complete(invocation, outcome, null);
  }

  /** Records a fault injected or removed now, e.g. "kill n2", "partition [n1] | [n2 n3]". */
  public NemesisEvent nemesis(String description) {
    synchronized (this) {
      refuseIfFinished();
      NemesisEvent event = new NemesisEvent(clock.getAsLong(), description);
      nemesisEvents.add(event);
      return event;
    }
  }

  private void refuseIfFinished() {
    if (finished) {
      throw new IllegalStateException("this history was made by History.of: it records nothing");
    }
  }

  /** Every operation so far in invocation order; those still pending show as UNKNOWN. */
  public synchronized List<Op> ops() {
    return List.copyOf(ops);
  }

  /** The operations on {@code key}, in invocation order. */
  public synchronized List<Op> ops(String key) {
    return ops.stream().filter(op -> op.key().equals(key)).toList();
  }

  /** The keys that operations touched, sorted. */
  public synchronized Set<String> keys() {
    Set<String> keys = new TreeSet<>();
    ops.forEach(op -> keys.add(op.key()));
    return keys;
  }

  /** The nemesis events in time order. */
  public synchronized List<NemesisEvent> nemesisEvents() {
    return List.copyOf(nemesisEvents);
  }

  /** Every operation and nemesis event, one a line in time order, with times in ms. */
  public String describe() {
    List<Op> opsNow;
    List<NemesisEvent> eventsNow;
    synchronized (this) {
      opsNow = new ArrayList<>(ops);
      eventsNow = new ArrayList<>(nemesisEvents);
    }
    opsNow.sort(Comparator.comparingLong(Op::invokeNanos).thenComparingInt(Op::index));
    StringBuilder text = new StringBuilder();
    int e = 0;
    for (Op op : opsNow) {
      while (e < eventsNow.size() && eventsNow.get(e).timeNanos() <= op.invokeNanos()) {
        text.append(eventsNow.get(e++).describe(startNanos)).append('\n');
      }
      text.append(op.key()).append("  ").append(op.describe(startNanos)).append('\n');
    }
    while (e < eventsNow.size()) {
      text.append(eventsNow.get(e++).describe(startNanos)).append('\n');
    }
    return text.toString();
  }
}
