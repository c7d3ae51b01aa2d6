package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import raftkv.multijvm.LeaseIdempotencyChecker.Bounds;
import raftkv.multijvm.LeaseIdempotencyChecker.FinalKey;
import raftkv.multijvm.LeaseIdempotencyChecker.Observations;
import raftkv.multijvm.LeaseIdempotencyChecker.Report;
import raftkv.multijvm.WatchChecker.Kind;
import raftkv.multijvm.WatchChecker.Message;

/**
 * Idempotency keys and leases through real faults, on three nodes: ten quiet seconds, fifty seconds
 * of kills (SIGKILL, restarted in the background), pauses (SIGSTOP) and isolations of a follower or
 * of the leader, one at a time, each held 2 to 5 s (the leader killed first; then a pause of the
 * leader, isolations of a follower and of the leader, a pause of a follower, random faults while
 * time is left, and a follower killed last), then ten quiet seconds again once the last node
 * killed is up (so that some leases are abandoned and expire with no fault at all).
 *
 * <p>Meanwhile three {@link IdempotentWriters} write their own key with an {@code Idempotency-Key}
 * per logical write, retrying every write whose outcome they do not know, with the same key, to
 * another node until it is answered 200; some writes are sent once more after their 200, some
 * followed by another body under the used key. {@link LeaseClients} keep four leases (TTL 6 to
 * 10 s) alive every TTL/4 through any node, each with a key, and two abandoners grant leases of 6
 * to 9 s with two keys each, renew them zero to two times, and leave them. A {@link WatchClient}
 * (a watcher of every key per node) records every event, and a {@link LeaderMonitor} when each
 * term's leader was first seen.
 *
 * <p>After healing: the register history (every logical write one op, from its first send to its
 * 200, and the reads between them) is linearizable; the watchers got every revision once and in
 * order; and the {@link LeaseIdempotencyChecker} finds each key's version equal to the number of
 * its logical writes, every write sent again answered from its record with the same body, every
 * other body under a used key a 422; no key of a lease renewed in time ever deleted; every key of
 * an abandoned lease gone, at one revision per lease, never before the TTL, and at most one
 * election timeout plus an observer allowance (1.5 s, 3.5 s when a fault was in force) after the
 * latest deadline the server's lease keeper sets: {@code max(lastRenewal + TTL, newLeader + TTL +
 * ET)} (a new leader starts every lease's whole TTL again; README.md's shorter bound for a leader
 * change does not hold, see {@link LeaseIdempotencyChecker}: the leases beyond it are counted, not
 * failed). The figures (retries, replays, how late abandoned leases went) are printed. The
 * availability report of {@link Scenario#verify()} is empty here: these clients are no
 * {@link ClientPool}.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class LeaseIdempotencyFaultsIT {

  private static final int NODES = 3;
  /** raftkv.raft.election-timeout of {@link Cluster#DEFAULT_JAVA_OPTS}. */
  private static final long ELECTION_TIMEOUT_MILLIS = 500;
  private static final List<Integer> KEPT_TTLS = List.of(6, 7, 8, 10);
  private static final int ABANDONED_MIN_TTL = 6;
  private static final int ABANDONED_MAX_TTL = 9;

  /**
   * How late a deletion may be seen past the latest deadline, besides one election timeout: the
   * leader's 100 ms tick, the revoke's commit, and a watcher's or a poll's delay on two busy cores
   * (the nodes, the test and other builds share them); with a fault in the window, a restarting
   * JVM, a watcher reconnecting and a new leader's no-op too.
   */
  private static final Bounds BOUNDS = new Bounds(TimeUnit.MILLISECONDS.toNanos(ELECTION_TIMEOUT_MILLIS),
      TimeUnit.MILLISECONDS.toNanos(1_500), TimeUnit.MILLISECONDS.toNanos(3_500), TimeUnit.SECONDS.toNanos(1));

  /** How long the faults go on. */
  private static final int FAULT_SECONDS = 50;
  /** No faults for this long before them and after them. */
  private static final int QUIET_SECONDS = 10;
  /** A follower is killed once this little of the fault phase is left, if none was before. */
  private static final int LAST_FAULT_SECONDS = 12;

  @Test
  void retriedWritesApplyOnceAndLeasesKeepOrDropTheirKeysThroughFaults(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES);
        WatchClient watchers = WatchClient.start(scenario.cluster(), scenario::log);
        LeaderMonitor leaders = LeaderMonitor.start(scenario.cluster())) {
      String tag = "run-" + Long.toHexString(scenario.seed());
      try (IdempotentWriters writers = new IdempotentWriters(scenario.cluster(), scenario.history(), scenario.random().nextLong(),
          3, 2_000, tag).start();
          LeaseClients leases = new LeaseClients(scenario.cluster(), scenario.random().nextLong(), tag)) {
        runScenario(scenario, watchers, leaders, writers, leases);
      }
    }
  }

  private void runScenario(Scenario scenario, WatchClient watchers, LeaderMonitor leaders, IdempotentWriters writers,
      LeaseClients leases) {
    Cluster cluster = scenario.cluster();
    Nemesis nemesis = scenario.nemesis();
    leases.startKeepers(KEPT_TTLS);
    leases.startAbandoners(2, ABANDONED_MIN_TTL, ABANDONED_MAX_TTL);
    // quiet at first and at the end, so that some leases are abandoned and expire with no fault at all
    scenario.log("no faults for " + QUIET_SECONDS + " s");
    scenario.hold(QUIET_SECONDS * 1_000L, QUIET_SECONDS * 1_000L);

    MinorityFaults.run(scenario, NODES, FAULT_SECONDS, LAST_FAULT_SECONDS);
    scenario.log("no faults for " + QUIET_SECONDS + " s");
    scenario.hold(QUIET_SECONDS * 1_000L, QUIET_SECONDS * 1_000L);
    leases.stopAbandoners();
    writers.stop();
    scenario.log(writers.summary());
    scenario.log(leases.summary());

    scenario.verify(); // heals, settles, reads the counters from every node, checks linearizability
    leases.awaitAbandonedGone(Duration.ofSeconds(ABANDONED_MAX_TTL + 40));
    KvHttpClient http = new KvHttpClient(Duration.ofSeconds(5));
    Set<Long> keptIds = new HashSet<>(leases.keptIds());
    // grants never answered may have made leases too: nothing may change the store while the watchers are checked
    Poll.until("every lease but the kept ones to be gone (GET /v1/leases)", Duration.ofSeconds(ABANDONED_MAX_TTL + 40),
        () -> leaseIds(cluster, http).filter(keptIds::containsAll), () -> "leases: " + leaseIds(cluster, http)
            + ", kept: " + keptIds + "\n" + cluster.describe());
    watchers.verify(); // every revision once, in order, alike on every watcher; replays to the final state

    TimedHttp reader = new TimedHttp(Duration.ofSeconds(5));
    Map<String, FinalKey> finals = new TreeMap<>();
    for (String key : writers.keys()) {
      finals.put(key, finalRead(cluster, reader, key));
    }
    for (String key : leases.keptKeys()) {
      finals.put(key, finalRead(cluster, reader, key));
    }
    for (var lease : leases.abandoned()) {
      for (String key : lease.keys()) {
        finals.put(key, finalRead(cluster, reader, key));
      }
    }
    Map<Long, Boolean> leaseExists = new LinkedHashMap<>();
    for (long id : leases.keptIds()) {
      leaseExists.put(id, leaseExists(cluster, http, id));
    }
    for (var lease : leases.abandoned()) {
      leaseExists.put(lease.id(), leaseExists(cluster, http, lease.id()));
    }
    leases.stopKeepers(); // the kept leases' observation ends after the final reads
    leaders.close();

    LeaseIdempotencyChecker checker = new LeaseIdempotencyChecker();
    Report idempotency = checker.checkIdempotency(writers.writes(), writers.reads(), finals);
    Map<Long, String> data = new TreeMap<>();
    watchers.received().values().forEach(messages -> {
      for (Message m : messages) {
        if (m.kind() == Kind.CHANGE) {
          data.putIfAbsent(m.revision(), m.data());
        }
      }
    });
    Observations observations = new Observations(
        LeaseIdempotencyChecker.eventsByKey(data, watchers.firstReceivedNanos()), leases.polls(), finals,
        leaseExists, leaders.terms(), nemesis.faultWindows());
    Report leaseReport = checker.checkLeases(leases.kept(), leases.abandoned(), observations, BOUNDS);
    long start = scenario.history().startNanos();
    scenario.log("leaders seen: " + leaders.terms().stream().map(t -> String.format(Locale.ROOT,
        "term %d %s %.1f-%.1f s", t.term(), t.node(), (t.firstSeenNanos() - start) / 1e9,
        (t.lastSeenNanos() - start) / 1e9)).collect(Collectors.joining(", ")));
    scenario.log("idempotency check:" + idempotency.describe());
    scenario.log("lease check:" + leaseReport.describe());

    assertTrue(leaders.anomalies().isEmpty(), "two leaders in one term: " + leaders.anomalies());
    assertTrue(idempotency.ok(), scenario.name() + " (seed " + scenario.seed() + "): retried writes were not"
        + " applied exactly once:" + idempotency.describe());
    assertTrue(leaseReport.ok(), scenario.name() + " (seed " + scenario.seed() + "): leases misbehaved:"
        + leaseReport.describe());
    // the checks above must not have been vacuous
    assertEquals(0, writers.unresolved(), "every logical write was answered 200 in the end"
        + " (else its version is only known to a range)");
    assertTrue(writers.writes().stream().anyMatch(w -> !w.duplicate().isEmpty()), "some write was sent twice");
    long renewedInTime = leases.kept().stream().filter(k -> LeaseIdempotencyChecker.longestGapNanos(k)
        <= TimeUnit.SECONDS.toNanos(k.ttlSeconds()) - BOUNDS.keptMarginNanos()).count();
    assertTrue(renewedInTime > 0, "no kept lease was renewed in time all along: nothing checked that renewed"
        + " leases keep their keys");
    long timed = leases.abandoned().stream().filter(a -> !a.uncertain() && !a.keys().isEmpty()).count();
    assertTrue(timed >= 5, "only " + timed + " abandoned leases had their expiry timed");
    assertTrue(nemesis.leaderLosses().size() > 0, "no fault took the leader away");
  }

  /** The ids of {@code GET /v1/leases} through the leader, if it answers. */
  private static Optional<Set<Long>> leaseIds(Cluster cluster, KvHttpClient http) {
    return cluster.leader().flatMap(leader -> {
      KvHttpClient.Reply reply = http.send(leader, "GET", "/v1/leases", null);
      if (reply.status() != 200) {
        return Optional.empty();
      }
      return reply.json().map(j -> {
        Set<Long> ids = new HashSet<>();
        j.path("leases").forEach(l -> ids.add(l.path("id").asLong()));
        return ids;
      });
    });
  }

  /** Whether {@code GET /v1/leases/{id}} finds the lease (linearizable), asked until answered 200 or 404. */
  private static boolean leaseExists(Cluster cluster, KvHttpClient http, long id) {
    return Poll.until("GET /v1/leases/" + id + " answered", Duration.ofSeconds(30), () -> cluster.leader().flatMap(l -> {
      int status = http.send(l, "GET", "/v1/leases/" + id, null).status();
      return status == 200 ? Optional.of(true) : status == 404 ? Optional.of(false) : Optional.empty();
    }), cluster::describe);
  }

  /** A linearizable read of {@code key} with its revisions and version, asked until answered 200 or 404. */
  private static FinalKey finalRead(Cluster cluster, TimedHttp http, String key) {
    return Poll.until("a final read of " + key, Duration.ofSeconds(30), () -> cluster.leader().flatMap(l -> {
      TimedHttp.Reply reply = http.send(l, "GET", "/v1/kv/" + key, null);
      if (reply.status() == 404 && "not_found".equals(reply.errorCode())) {
        return Optional.of(FinalKey.absent(key));
      }
      if (reply.status() != 200) {
        return Optional.empty();
      }
      return Optional.of(new FinalKey(key, true, header(reply, "X-Version"), header(reply, "X-Create-Revision"),
          header(reply, "X-Mod-Revision"), reply.answer().body()));
    }), cluster::describe);
  }

  private static long header(TimedHttp.Reply reply, String name) {
    return reply.header(name).map(Long::parseLong).orElse(-1L);
  }
}
