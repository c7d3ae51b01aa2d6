package raftkv.recipes;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** LeaseSettings: a third of the TTL between keepalives by default, whole seconds asked for, nonsense refused. */
class LeaseSettingsTest {
  @Test
  void keepalivesComeEveryThirdOfTheTtlAndTheTtlIsAskedForInWholeSeconds() {
    LeaseSettings s = LeaseSettings.of(Duration.ofMillis(4500));
    assertEquals(Duration.ofMillis(1500), s.keepAliveEvery());
    assertEquals(5, s.ttlSeconds());
    assertEquals(LeaseSettings.DEFAULT_MAX_WAIT, s.maxWait());
    assertEquals(Duration.ZERO, s.withMaxWait(Duration.ZERO).maxWait());
    assertEquals(1, LeaseSettings.of(Duration.ofMillis(10)).ttlSeconds());
  }

  @Test
  void aKeepaliveNoMoreOftenThanTheTtlOrANonPositiveTtlIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new LeaseSettings(Duration.ofSeconds(2), Duration.ofSeconds(2), Duration.ZERO));
    assertThrows(IllegalArgumentException.class, () -> LeaseSettings.of(Duration.ZERO));
    assertThrows(IllegalArgumentException.class, () -> LeaseSettings.of(Duration.ofSeconds(3)).withMaxWait(Duration.ofSeconds(-1)));
  }
}
