package raftkv.recipes;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.awaitility.Awaitility.await;

/**
 * Counts live threads before a recipe is made and after it is closed: any new thread that is not
 * one of the actor systems' own (named after the system: {@code raftkv-...} for the nodes, the
 * clients' system's name) must be gone within a few seconds.
 */
final class ThreadLeakCheck {
  private final Set<Long> before;
  private final List<String> allowedPrefixes;

  private ThreadLeakCheck(List<String> allowedPrefixes) {
    this.allowedPrefixes = allowedPrefixes;
    this.before = Thread.getAllStackTraces().keySet().stream().map(Thread::getId).collect(Collectors.toSet());
  }

  /** Takes the count now; threads named with one of {@code systemNames} followed by '-' belong to actor systems. */
  static ThreadLeakCheck start(String... systemNames) {
    List<String> allowed = new java.util.ArrayList<>(java.util.Arrays.stream(systemNames).map(n -> n + "-").toList());
    allowed.add("awaitility"); // Awaitility's own poller, started by every await
    return new ThreadLeakCheck(allowed);
  }

  /** The threads started since, not the actor systems' own, that are still alive. */
  List<String> leaked() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && !before.contains(t.getId()))
        .map(Thread::getName)
        .filter(name -> allowedPrefixes.stream().noneMatch(name::startsWith))
        .sorted()
        .toList();
  }

  /** Waits (up to 5 s) until no thread started since is left but the actor systems' own. */
  void assertNoneLeft() {
    await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(100))
        .untilAsserted(() -> org.junit.jupiter.api.Assertions.assertEquals(List.of(), leaked(),
            "threads left behind"));
  }
}
