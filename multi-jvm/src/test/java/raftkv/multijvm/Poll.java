package raftkv.multijvm;

import java.time.Duration;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Waits for a condition with a deadline: the only way the suite synchronises with the cluster.
 * The condition is polled every {@value #INTERVAL_MILLIS} ms until it holds or the deadline
 * passes; then the wait fails with what it waited for and, when given, the state it last saw.
 */
public final class Poll {

  /** Time between two probes. */
  public static final long INTERVAL_MILLIS = 100;

  private Poll() {}

  /** Waits until {@code condition} holds; throws an AssertionError naming {@code what} if not in time. */
  public static void until(String what, Duration timeout, BooleanSupplier condition) {
    until(what, timeout, () -> condition.getAsBoolean() ? Optional.of(Boolean.TRUE) : Optional.empty(),
        () -> "");
  }

  /**
   * Waits until {@code probe} returns a value and returns it; on timeout the AssertionError names
   * {@code what} and adds what {@code diagnostics} says about the state at that moment.
   */
  public static <T> T until(String what, Duration timeout, Supplier<Optional<T>> probe,
      Supplier<String> diagnostics) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Optional<T> value = probe.get();
      if (value.isPresent()) {
        return value.get();
      }
      if (System.nanoTime() - deadline >= 0) {
        String state = diagnostics.get();
        throw new AssertionError("timed out after " + timeout.toSeconds() + " s waiting for " + what
            + (state.isEmpty() ? "" : "\n" + state));
      }
      pause(INTERVAL_MILLIS);
    }
  }

  /**
   * Sleeps for the length of a step of a schedule (a nemesis step, a client's think time, a
   * back-off): never used to wait for the cluster to reach a state.
   */
  public static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
