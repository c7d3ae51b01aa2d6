package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import raftkv.multijvm.LeaseIdempotencyChecker.Report;
import raftkv.multijvm.LockChecker.FinalCounter;
import raftkv.multijvm.LockChecker.Outcome;
import raftkv.multijvm.LockChecker.Phases;

/**
 * A lock with fencing tokens guarding a counter through real faults (issue #14 §5), on three
 * nodes: ten quiet seconds, about 45 s of kills (SIGKILL, restarted in the background), pauses
 * (SIGSTOP) and isolations of a follower or of the leader, one at a time, each held 2 to 5 s (the
 * leader killed first; then a pause of the leader, isolations of a follower and of the leader, a
 * pause of a follower, random faults while time is left, and a follower killed last), then ten
 * quiet seconds once the last node killed is up.
 *
 * <p>Meanwhile five {@link LockClients} contend for {@code counter-lock}, each with a lease of 4 s
 * renewed every second through any node; each holder does one to three fenced compare-and-set
 * increments of {@code counter} ({@code If-Fence} with its token, {@code If-Match} with the mod
 * revision it read, an Idempotency-Key per increment, retried until answered) and releases with its
 * token. Two of them sometimes play a paused client: no keepalive for the TTL plus 2 s, and once a
 * linearizable read shows the lock held by another token (or none), an increment with the old token.
 *
 * <p>After healing: the register history (the counter's reads and its increments as
 * compare-and-sets) is linearizable, and the {@link LockChecker} finds the final counter equal to
 * the acknowledged increments, their values 1..N once each, tokens never going backwards, every
 * stale-token write refused by the fence, and acquisitions and increments in every phase. The
 * figures (acquisitions, increments, retries, stale writes refused) are printed, and every
 * acquisition, increment and stale write is written to {@code lock-history.txt} in the test's log
 * directory.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class LockFaultsIT {

  private static final int NODES = 3;
  private static final int CONTENDERS = 5;
  private static final int PAUSERS = 2;
  /** How long the faults go on. */
  private static final int FAULT_SECONDS = 45;
  /** No faults for this long before them and after them. */
  private static final int QUIET_SECONDS = 10;
  /** A follower is killed once this little of the fault phase is left, if none was before. */
  private static final int LAST_FAULT_SECONDS = 10;

  @Test
  void fencedIncrementsUnderALockAreNeitherLostNorAppliedTwiceThroughFaults(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES)) {
      String tag = "run-" + Long.toHexString(scenario.seed());
      try (LockClients clients = new LockClients(scenario.cluster(), scenario.history(), scenario.random().nextLong(),
          tag)) {
        runScenario(scenario, clients);
      }
    }
  }

  private void runScenario(Scenario scenario, LockClients clients) {
    Cluster cluster = scenario.cluster();
    Nemesis nemesis = scenario.nemesis();
    clients.init().start(CONTENDERS, PAUSERS);
    long start = System.nanoTime();
    scenario.log("no faults for " + QUIET_SECONDS + " s");
    scenario.hold(QUIET_SECONDS * 1_000L, QUIET_SECONDS * 1_000L);

    long faultsStart = System.nanoTime();
    MinorityFaults.run(scenario, NODES, FAULT_SECONDS, LAST_FAULT_SECONDS);
    long faultsEnd = System.nanoTime();
    scenario.log("no faults for " + QUIET_SECONDS + " s");
    scenario.hold(QUIET_SECONDS * 1_000L, QUIET_SECONDS * 1_000L);
    long end = System.nanoTime();
    clients.stop();
    scenario.log(clients.summary());
    Phases phases = new Phases(start, faultsStart, faultsEnd, end);
    writeLockHistory(scenario, clients, phases);

    scenario.verify(); // heals, settles, reads the counter from every node, checks linearizability
    TimedHttp http = new TimedHttp(Duration.ofSeconds(5));
    FinalCounter counter = Poll.until("a final read of " + LockClients.COUNTER, Duration.ofSeconds(30),
        () -> cluster.leader().flatMap(l -> {
          TimedHttp.Reply reply = http.send(l, "GET", "/v1/kv/" + LockClients.COUNTER, null);
          if (reply.status() != 200) {
            return Optional.empty();
          }
          return Optional.of(new FinalCounter(Long.parseLong(reply.answer().body().trim()),
              header(reply, "X-Version"), header(reply, "X-Mod-Revision")));
        }), cluster::describe);

    Report report = new LockChecker().check(clients.acquisitions(), clients.increments(), clients.staleAttempts(),
        counter, phases);
    scenario.log("lock check:" + report.describe());

    assertTrue(report.ok(), scenario.name() + " (seed " + scenario.seed() + "): the lock did not protect the counter"
        + " (history in " + Cluster.logDir(scenario.name()).resolve("lock-history.txt") + "):" + report.describe());
    assertTrue(clients.unexpected().isEmpty(), scenario.name() + " (seed " + scenario.seed()
        + "): answers no request should get: " + clients.unexpected());
    // the checks above must not have been vacuous
    long refused = clients.staleAttempts().stream().filter(s -> s.outcome() == Outcome.FENCED).count();
    assertTrue(refused >= 1, "no paused client's stale write was refused by the fence: nothing checked fencing");
    assertTrue(clients.acquisitions().size() >= 10, "only " + clients.acquisitions().size() + " acquisitions");
    assertTrue(nemesis.leaderLosses().size() > 0, "no fault took the leader away");
  }

  private static long header(TimedHttp.Reply reply, String name) {
    return reply.header(name).map(Long::parseLong).orElse(-1L);
  }

  /** Every acquisition, increment and stale write, in time order, to lock-history.txt. */
  private static void writeLockHistory(Scenario scenario, LockClients clients, Phases phases) {
    long t0 = scenario.history().startNanos();
    record Line(long at, String text) {}
    List<Line> lines = new ArrayList<>();
    clients.acquisitions().forEach(a -> lines.add(new Line(a.ackNanos(), String.format(Locale.ROOT,
        "%s acquired token %d (%s, lease %x), asked at %.3f s, released %s: %s", a.client(), a.token(), a.key(),
        a.lease(), (a.firstSendNanos() - t0) / 1e9, a.releaseNanos() < 0 ? "-" : String.format(Locale.ROOT, "%.3f s",
            (a.releaseNanos() - t0) / 1e9), a.end()))));
    clients.increments().forEach(i -> lines.add(new Line(i.endNanos(), String.format(Locale.ROOT,
        "%s increment to %d under token %d (If-Match %d, key %s): %s after %d tries, sent %.3f s", i.client(),
        i.value(), i.token(), i.readModRevision(), i.idempotencyKey(), i.outcome()
            + (i.holderToken() > 0 ? " (holder " + i.holderToken() + ")" : "") + (i.replayed() ? " (replayed)" : ""),
        i.answers().size(), (i.firstSendNanos() - t0) / 1e9))));
    clients.staleAttempts().forEach(s -> lines.add(new Line(s.answers().isEmpty() ? s.movedOnNanos()
        : s.answers().get(s.answers().size() - 1).endNanos(), String.format(Locale.ROOT,
        "%s STALE write of %d under old token %d, lock seen held by %d at %.3f s: %s (holder %d), %s", s.client(),
        s.value(), s.token(), s.holderSeen(), (s.movedOnNanos() - t0) / 1e9, s.outcome(), s.holderToken(),
        s.answers().stream().map(a -> a.describe() + " " + a.body()).collect(Collectors.joining("; "))))));
    lines.add(new Line(phases.faultsStartNanos(), "---- faults begin"));
    lines.add(new Line(phases.faultsEndNanos(), "---- faults end"));
    lines.sort(Comparator.comparingLong(Line::at));
    StringBuilder text = new StringBuilder();
    lines.forEach(l -> text.append(String.format(Locale.ROOT, "%9.3f s  %s%n", (l.at() - t0) / 1e9, l.text())));
    Path file = Cluster.logDir(scenario.name()).resolve("lock-history.txt");
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, text.toString(), StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      scenario.log("cannot write " + file + ": " + e);
    }
  }
}
