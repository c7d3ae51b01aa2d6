package raftkv.history;

import java.util.Objects;

/**
 * A fault the test injected or removed ("kill n2", "partition [n1] | [n2 n3]", "heal"), kept with
 * its time so that a failure report can show what the cluster went through around it.
 *
 * @param timeNanos   when it happened, a {@link System#nanoTime()} reading
 * @param description what happened, for a person
 */
public record NemesisEvent(long timeNanos, String description) {

  /** Rejects a missing description. */
  public NemesisEvent {
    Objects.requireNonNull(description, "description");
  }

  /** One line, with the time in ms relative to {@code startNanos}. */
  public String describe(long startNanos) {
    return Op.formatMillis(timeNanos, startNanos) + " ms  nemesis: " + description;
  }
}
