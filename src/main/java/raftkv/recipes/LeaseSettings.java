package raftkv.recipes;

import java.time.Duration;
import java.util.Objects;

/**
 * How a recipe that holds a place through a lease ({@link DistributedLock}, {@link LeaderElection})
 * keeps that lease: granted for {@code leaseTtl} (rounded up to whole seconds; the node may raise it
 * to its minimum, 1.5 election timeouts), renewed every {@code keepAliveEvery} (less than the TTL),
 * and how long a {@code lock()} or {@code campaign()} waits at most ({@code maxWait}).
 */
public record LeaseSettings(Duration leaseTtl, Duration keepAliveEvery, Duration maxWait) {

  /** As long as a node's {@code raftkv.locks.max-wait}, so that an embedded and a remote client wait alike. */
  public static final Duration DEFAULT_MAX_WAIT = Duration.ofSeconds(60);

  public LeaseSettings {
    Objects.requireNonNull(leaseTtl, "leaseTtl");
    Objects.requireNonNull(keepAliveEvery, "keepAliveEvery");
    Objects.requireNonNull(maxWait, "maxWait");
    if (leaseTtl.isNegative() || leaseTtl.isZero()) {
      throw new IllegalArgumentException("leaseTtl must be positive, not " + leaseTtl);
    }
    if (keepAliveEvery.isNegative() || keepAliveEvery.isZero() || keepAliveEvery.compareTo(leaseTtl) >= 0) {
      throw new IllegalArgumentException("keepAliveEvery must be positive and shorter than leaseTtl (" + leaseTtl + "), not "
          + keepAliveEvery);
    }
    if (maxWait.isNegative()) {
      throw new IllegalArgumentException("maxWait must not be negative, not " + maxWait);
    }
  }

  /** A lease of {@code leaseTtl}, renewed every third of it; waits up to {@link #DEFAULT_MAX_WAIT}. */
  public static LeaseSettings of(Duration leaseTtl) {
    return new LeaseSettings(leaseTtl, leaseTtl.dividedBy(3), DEFAULT_MAX_WAIT);
  }

  public LeaseSettings withMaxWait(Duration maxWait) {
    return new LeaseSettings(leaseTtl, keepAliveEvery, maxWait);
  }

  /** The TTL to ask for, in whole seconds (at least 1). */
  long ttlSeconds() {
    long millis = leaseTtl.toMillis();
    return Math.max(1, (millis + 999) / 1000);
  }
}
