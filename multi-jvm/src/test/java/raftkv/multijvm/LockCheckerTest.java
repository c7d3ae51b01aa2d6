package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LeaseIdempotencyChecker.Report;
import raftkv.multijvm.LockChecker.Acquisition;
import raftkv.multijvm.LockChecker.FinalCounter;
import raftkv.multijvm.LockChecker.Increment;
import raftkv.multijvm.LockChecker.Outcome;
import raftkv.multijvm.LockChecker.Phases;
import raftkv.multijvm.LockChecker.StaleAttempt;

/**
 * The {@link LockChecker} on made-up histories: a correct one passes, and each bug the fault
 * scenario looks for is reported: a lost update (two holders' increments from one read), a double
 * apply (a retried increment applied twice), a stale-token write that succeeded (answered 200, or
 * answered 412 while its value got in), tokens going backwards (by value and in real time), an
 * If-Match refusal while the fence passed, and a phase with no progress.
 */
class LockCheckerTest {

  private static final long S = 1_000_000_000L;
  private static final long MS = 1_000_000L;
  /** Quiet 0-10 s, faults 10-20 s, quiet 20-30 s. */
  private static final Phases PHASES = new Phases(0, 10 * S, 20 * S, 30 * S);

  private final LockChecker checker = new LockChecker();

  private static Answer ok(long at, boolean replayed) {
    return new Answer("n1", at, at + 10 * MS, 200, replayed, "{\"revision\":1}", null, false);
  }

  private static Answer timeout(long at) {
    return new Answer("n2", at, at + 2 * S, -1, false, null, "HttpTimeoutException: request timed out", false);
  }

  private static Answer fenced(long at, long holder) {
    return new Answer("n3", at, at + 10 * MS, 412, false,
        "{\"error\":\"precondition_failed\",\"fencingToken\":" + holder + "}", null, false);
  }

  private static Answer matchFailed(long at) {
    return new Answer("n3", at, at + 10 * MS, 412, false,
        "{\"error\":\"precondition_failed\",\"modRevision\":99}", null, false);
  }

  private static Acquisition acquisition(String client, int seq, long token, long at) {
    return new Acquisition(client, seq, 100 + token, "counter-lock/" + Long.toHexString(100 + token), token, at,
        at + 50 * MS, at + 900 * MS, "released");
  }

  private static Increment acked(String client, int seq, long token, long value, long at) {
    return new Increment(client, seq, token, client + "/a" + seq + "/v" + value, value, value * 10,
        List.of(ok(at, false)), Outcome.ACKED, 0);
  }

  /**
   * Six holds, two in each phase, each incrementing once or twice: values 1..9, tokens growing;
   * one increment retried after a timeout and acknowledged by a replay; one paused client refused.
   */
  private static History good() {
    History h = new History();
    long[] starts = {1 * S, 5 * S, 11 * S, 15 * S, 21 * S, 25 * S};
    long value = 0;
    for (int k = 0; k < starts.length; k++) {
      String client = "c" + (k % 3);
      long token = 10 + 5L * k;
      h.acquisitions.add(acquisition(client, k, token, starts[k]));
      int count = k % 2 == 0 ? 2 : 1;
      long at = starts[k] + 100 * MS;
      for (int j = 0; j < count; j++) {
        value++;
        Increment increment = k == 2 && j == 0
            ? new Increment(client, k, token, "retried", value, value * 10, List.of(timeout(at), ok(at + 2 * S, true)),
                Outcome.ACKED, 0)
            : acked(client, k, token, value, at);
        h.increments.add(increment);
        at = increment.endNanos() + 100 * MS;
      }
    }
    h.stale.add(new StaleAttempt("c0", 2, 20, 17 * S, 25, "stale", value + 1, List.of(fenced(17 * S, 25)),
        Outcome.FENCED, 25));
    h.counter = new FinalCounter(value, value + 1, 500);
    return h;
  }

  /** A mutable history to spoil. */
  private static final class History {
    final List<Acquisition> acquisitions = new ArrayList<>();
    final List<Increment> increments = new ArrayList<>();
    final List<StaleAttempt> stale = new ArrayList<>();
    FinalCounter counter;

    long acked() {
      return increments.stream().filter(i -> i.outcome() == Outcome.ACKED).count();
    }
  }

  private Report check(History h) {
    return checker.check(h.acquisitions, h.increments, h.stale, h.counter, PHASES);
  }

  private static void assertReported(Report report, String words) {
    assertFalse(report.ok(), "not caught:" + report.describe());
    assertTrue(report.problems().stream().anyMatch(p -> p.contains(words)),
        "expected a problem with '" + words + "':" + report.describe());
  }

  @Test
  void aCorrectHistoryPasses() {
    Report report = check(good());
    assertTrue(report.ok(), report.describe());
    assertTrue(report.figures().get(0).contains("6 acquisitions"), report.describe());
    assertTrue(report.figures().get(0).contains("1 acknowledged by a replay"), report.describe());
    assertTrue(report.figures().get(1).contains("1 refused by the fence"), report.describe());
  }

  @Test
  void anUnresolvedIncrementMayHaveBeenAppliedOrNot() {
    for (boolean applied : new boolean[] {true, false}) {
      History h = good();
      long value = h.counter.value() + 1;
      h.increments.add(new Increment("c1", 5, 35, "lost-answer", value, 900, List.of(timeout(26 * S)),
          Outcome.UNRESOLVED, 0));
      if (applied) {
        h.counter = new FinalCounter(value, value + 1, 600);
      }
      Report report = check(h);
      assertTrue(report.ok(), "applied " + applied + ":" + report.describe());
    }
  }

  @Test
  void aLostUpdateIsCaught() {
    // two holders (the lock not exclusive, or the fence not checked) both read 3 and wrote 4: one
    // increment is lost, the final counter is one short
    History h = good();
    h.acquisitions.add(acquisition("c2", 9, 60, 26 * S));
    h.increments.add(acked("c2", 9, 60, 4, 26 * S + 100 * MS));
    Report report = check(h);
    assertReported(report, "lost update: the final counter is 9 but 10 increments were acknowledged");
    assertReported(report, "lost update: value 4 was acknowledged to 2 increments");
    assertReported(report, "tokens went backwards"); // token 60 at value 4, then 20 at value 5
  }

  @Test
  void aDoubleApplyIsCaught() {
    // a retried increment applied twice, the second time (If-Match not checked) writing 5 again, so
    // the next increment read 5 and wrote 6 while the client saw only one 200: the counter is one
    // ahead of the acknowledgements, version too
    History h = good();
    List<Increment> shifted = new ArrayList<>();
    for (Increment i : h.increments) {
      shifted.add(i.value() <= 4 ? i : new Increment(i.client(), i.acquisition(), i.token(), i.idempotencyKey(),
          i.value() + 1, i.readModRevision(), i.answers(), i.outcome(), i.holderToken()));
    }
    h.increments.clear();
    h.increments.addAll(shifted);
    h.stale.clear();
    h.counter = new FinalCounter(h.acked() + 1, h.acked() + 2, 500);
    Report report = check(h);
    assertReported(report, "double apply: the final counter is 10 but only 9 increments were acknowledged");
    assertReported(report, "value 5 is in the counter's history but no acknowledged or unresolved increment wrote it");
  }

  @Test
  void aDoubleApplyOfTheSameValueIsCaughtByTheVersion() {
    History h = good();
    h.counter = new FinalCounter(h.counter.value(), h.counter.version() + 1, 500);
    assertReported(check(h), "not one put per increment");
  }

  @Test
  void aStaleTokenWriteThatSucceededIsCaught() {
    History h = good();
    StaleAttempt refused = h.stale.get(0);
    h.stale.set(0, new StaleAttempt(refused.client(), refused.acquisition(), refused.token(), refused.movedOnNanos(),
        refused.holderSeen(), refused.idempotencyKey(), refused.value(), List.of(ok(17 * S, false)), Outcome.ACKED, 0));
    h.counter = new FinalCounter(h.counter.value() + 1, h.counter.version() + 1, 600);
    Report report = check(h);
    assertReported(report, "stale write applied: the c0 stale write of 10 under old token 20");
    assertReported(report, "stale write applied: value 10 is in the counter's history");
  }

  @Test
  void aStaleTokenWriteAnswered412ThatGotInIsCaught() {
    // the client was told 412 but the write was applied (value 10 in the history, no increment wrote it)
    History h = good();
    h.counter = new FinalCounter(h.counter.value() + 1, h.counter.version() + 1, 600);
    assertReported(check(h), "stale write applied: value 10 is in the counter's history, and the only write of it"
        + " was the c0 stale write");
  }

  @Test
  void aStaleTokenThatPassedTheFenceIsCaught() {
    History h = good();
    StaleAttempt refused = h.stale.get(0);
    h.stale.set(0, new StaleAttempt(refused.client(), refused.acquisition(), refused.token(), refused.movedOnNanos(),
        refused.holderSeen(), refused.idempotencyKey(), refused.value(), List.of(matchFailed(17 * S)),
        Outcome.MATCH_FAILED, 0));
    assertReported(check(h), "passed the fence");
  }

  @Test
  void tokensGoingBackwardsByValueAreCaught() {
    // the fourth hold (token 25, value 6) wrote with an older token than the third (token 20, values 4 and 5)
    // after it: swap their tokens in the increments and acquisitions
    History h = good();
    List<Increment> swapped = new ArrayList<>();
    for (Increment i : h.increments) {
      long token = i.token() == 20 ? 25 : i.token() == 25 ? 20 : i.token();
      swapped.add(new Increment(i.client(), i.acquisition(), token, i.idempotencyKey(), i.value(), i.readModRevision(),
          i.answers(), i.outcome(), i.holderToken()));
    }
    h.increments.clear();
    h.increments.addAll(swapped);
    List<Acquisition> acquisitions = new ArrayList<>();
    for (Acquisition a : h.acquisitions) {
      long token = a.token() == 20 ? 25 : a.token() == 25 ? 20 : a.token();
      acquisitions.add(new Acquisition(a.client(), a.seq(), a.lease(), a.key(), token, a.firstSendNanos(),
          a.ackNanos(), a.releaseNanos(), a.end()));
    }
    h.acquisitions.clear();
    h.acquisitions.addAll(acquisitions);
    Report report = check(h);
    assertReported(report, "tokens went backwards: value 6 was written under token 20 after value 5 under token 25");
    assertReported(report, "tokens went backwards: c0 acquisition #3 (token 20) was asked for");
  }

  @Test
  void aRepeatedTokenIsCaught() {
    History h = good();
    h.acquisitions.add(acquisition("c1", 7, 35, 28 * S));
    assertReported(check(h), "two acquisitions got token 35");
  }

  @Test
  void anIfMatchRefusalUnderAHeldTokenIsCaught() {
    History h = good();
    h.increments.add(new Increment("c1", 5, 35, "changed-under-me", 10, 77, List.of(matchFailed(26 * S)),
        Outcome.MATCH_FAILED, 0));
    assertReported(check(h), "was refused for its If-Match (mod revision 77) while its fence passed");
  }

  @Test
  void aPhaseWithoutProgressIsCaught() {
    History h = good();
    h.increments.removeIf(i -> i.endNanos() >= 10 * S && i.endNanos() < 20 * S);
    h.acquisitions.removeIf(a -> a.ackNanos() >= 10 * S && a.ackNanos() < 20 * S);
    // renumber the values so that only the liveness check fails
    List<Increment> renumbered = new ArrayList<>();
    long value = 0;
    for (Increment i : h.increments) {
      value++;
      renumbered.add(new Increment(i.client(), i.acquisition(), i.token(), i.idempotencyKey(), value,
          i.readModRevision(), i.answers(), i.outcome(), i.holderToken()));
    }
    h.increments.clear();
    h.increments.addAll(renumbered);
    h.stale.clear();
    h.counter = new FinalCounter(value, value + 1, 500);
    Report report = check(h);
    assertReported(report, "no progress in the fault phase: 0 acquisitions, 0 acknowledged increments");
    assertTrue(report.problems().size() == 1, report.describe());
  }
}
