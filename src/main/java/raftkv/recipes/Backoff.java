package raftkv.recipes;

import java.time.Duration;

/** Delays that double from {@code min} up to {@code max}, back to {@code min} after {@link #reset()}. Not thread-safe. */
final class Backoff {
  private final Duration min;
  private final Duration max;
  private Duration next;

  Backoff(Duration min, Duration max) {
    this.min = min;
    this.max = max;
    this.next = min;
  }

  /** The default of the recipes: 100 ms doubling up to 5 s. */
  static Backoff standard() {
    return new Backoff(Duration.ofMillis(100), Duration.ofSeconds(5));
  }

  Duration next() {
    Duration now = next;
    Duration doubled = next.multipliedBy(2);
    next = doubled.compareTo(max) > 0 ? max : doubled;
    return now;
  }

  void reset() {
    next = min;
  }
}
