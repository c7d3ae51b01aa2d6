package raftkv.history;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import raftkv.history.CheckResult.Verdict;
import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/** Hand-written histories the register checker must accept or reject, and one large generated one. */
class LinearizabilityCheckerTest {

  private final LinearizabilityChecker checker = new LinearizabilityChecker();

  private CheckResult check(ScriptedHistory history) {
    return checker.check(history.build(), "x");
  }

  // ---- histories that are linearizable

  @Test
  void sequentialHistoryIsLinearizable() {
    // given one client doing one thing after another
    ScriptedHistory h = new ScriptedHistory("x");
    h.readAbsent(1, 0, 1);
    h.write(1, "a", 2, 3);
    h.read(1, "a", 4, 5);
    h.cas(1, "a", "b", Outcome.OK, 6, 7);
    h.read(1, "b", 8, 9);
    h.write(1, "c", 10, 11);
    h.read(1, "c", 12, 13);

    // when / then
    CheckResult result = check(h);
    assertTrue(result.ok(), result.explanation());
    assertEquals(7, result.opsChecked());
  }

  @Test
  void concurrentWritesMayBeSeenInEitherOrderByOverlappingReads() {
    // given two long concurrent writes, and reads during them that see b, then a
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 100);
    h.write(2, "b", 10, 110);
    h.readAbsent(3, 1, 5);
    h.read(4, "b", 20, 30);
    h.read(5, "a", 40, 60);
    h.read(3, "a", 120, 130);

    // when / then: b took effect first, then a
    assertTrue(check(h).ok(), check(h).explanation());
  }

  @Test
  void concurrentWritesMayBeSeenInTheOtherOrderToo() {
    // given the same writes, with reads that see a, then b
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 100);
    h.write(2, "b", 10, 110);
    h.read(4, "a", 20, 30);
    h.read(5, "b", 40, 60);
    h.read(3, "b", 120, 130);

    // when / then
    assertTrue(check(h).ok(), check(h).explanation());
  }

  @Test
  void unknownWriteObservedLaterTookEffect() {
    // given a write that timed out, and a read long after that sees it
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", Outcome.UNKNOWN, 20, 30);
    h.read(3, "a", 40, 50);
    h.read(3, "b", 1000, 1010);

    // when / then: b took effect after the first read, long after its client gave up
    CheckResult result = check(h);
    assertTrue(result.ok(), result.explanation());
  }

  @Test
  void unknownWriteNeverObservedNeverTookEffect() {
    // given a write that timed out, and later reads that all see the value before it
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", Outcome.UNKNOWN, 20, 30);
    h.read(3, "a", 40, 50);
    h.read(4, "a", 60, 70);

    // when
    CheckResult result = check(h);

    // then: legal, and the unobserved write is not even searched
    assertTrue(result.ok(), result.explanation());
    assertEquals(3, result.opsChecked());
  }

  @Test
  void pendingOperationCountsAsUnknown() {
    // given a live history where one write never completes but is seen
    History history = new History();
    History.Invocation lost = history.invokeWrite(1, "x", "a");
    History.Invocation read = history.invokeRead(2, "x");
    history.complete(read, Outcome.OK, "a");

    // when / then
    CheckResult result = checker.check(history, "x");
    assertTrue(result.ok(), result.explanation());
    assertEquals(Outcome.UNKNOWN, history.ops().get(lost.index()).outcome());
  }

  @Test
  void casChainsFromConcurrentClientsAreLinearizable() {
    // given clients racing compare-and-sets; the losers got 412
    ScriptedHistory h = new ScriptedHistory("x");
    h.cas(1, null, "0", Outcome.OK, 0, 5); // create-only
    h.cas(2, null, "9", Outcome.FAIL, 1, 6); // 412: it existed already
    h.cas(1, "0", "1", Outcome.OK, 10, 30);
    h.cas(2, "0", "2", Outcome.FAIL, 12, 28); // lost the race: 412
    h.cas(3, "1", "2", Outcome.OK, 15, 40); // concurrent with the first, took effect after it
    h.cas(4, "2", "3", Outcome.UNKNOWN, 41, 50);
    h.read(1, "3", 60, 70);
    h.cas(2, "3", "4", Outcome.OK, 80, 90);
    h.read(3, "4", 95, 99);

    // when / then
    CheckResult result = check(h);
    assertTrue(result.ok(), result.explanation());
  }

  @Test
  void deleteThenReadSeesAbsent() {
    // given a write, a delete, and reads before and after
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.read(2, "a", 11, 12);
    h.delete(1, Outcome.OK, 20, 30);
    h.readAbsent(2, 25, 35); // concurrent with the delete
    h.readAbsent(2, 40, 50);

    // when / then
    assertTrue(check(h).ok(), check(h).explanation());
  }

  @Test
  void failedOperationsAndUnknownReadsAreIgnored() {
    // given a failed write nobody sees and a read that timed out
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", Outcome.FAIL, 20, 21); // 503
    h.unansweredRead(3, Outcome.UNKNOWN, 22, 500);
    h.read(4, "a", 30, 40);

    // when / then
    CheckResult result = check(h);
    assertTrue(result.ok(), result.explanation());
    assertEquals(2, result.opsChecked());
  }

  @Test
  void keysAreCheckedIndependently() {
    // given two keys, one of them with a stale read
    History history = History.of(0, List.of(
        new Op(0, 1, "good", Kind.WRITE, "a", null, Outcome.OK, null, 0, 10),
        new Op(1, 1, "bad", Kind.WRITE, "a", null, Outcome.OK, null, 0, 10),
        new Op(2, 1, "bad", Kind.WRITE, "b", null, Outcome.OK, null, 20, 30),
        new Op(3, 2, "good", Kind.READ, null, null, Outcome.OK, "a", 40, 50),
        new Op(4, 2, "bad", Kind.READ, null, null, Outcome.OK, "a", 40, 50)), List.of());

    // when
    CheckReport report = checker.check(history);

    // then
    assertFalse(report.ok(), report.describe());
    assertEquals(2, report.results().size());
    assertTrue(report.result("good").orElseThrow().ok());
    assertEquals(List.of("bad"), report.violations().stream().map(CheckResult::key).toList());
    assertTrue(report.describe().contains("key \"bad\": NOT LINEARIZABLE"), report.describe());
  }

  // ---- histories that are not linearizable

  @Test
  void staleReadAfterCompletedWriteIsAViolation() {
    // given a write of b that completed before a read began, and the read returning a
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.nemesis(15, "partition [n1] | [n2 n3]");
    h.write(2, "b", 20, 30);
    Op stale = h.read(3, "a", 40, 50);
    h.nemesis(5000, "heal");

    // when
    CheckResult result = check(h);

    // then: the read is named, with the write it missed and the partition before it
    assertEquals(Verdict.NOT_LINEARIZABLE, result.verdict(), result.explanation());
    assertSame(stale, result.failingOp());
    String text = result.explanation();
    assertTrue(text.contains("#2     p3 READ -> \"a\""), text);
    assertTrue(text.contains("last set by:\n      #1     p2 WRITE \"b\""), text);
    assertTrue(text.contains("which completed before #2 began"), text);
    assertTrue(text.contains("After #0 completed and before #2 began"), text);
    assertTrue(text.contains("partition [n1] | [n2 n3]"), text);
    assertFalse(text.contains("heal"), "events more than 1 s away are left out:\n" + text);
  }

  @Test
  void lostWriteIsAViolation() {
    // given an acknowledged write, and later reads that only ever see the value before it
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", 20, 30);
    Op firstMiss = h.read(3, "a", 40, 50);
    h.read(4, "a", 60, 70);
    h.read(3, "a", 80, 90);

    // when
    CheckResult result = check(h);

    // then: the first read that misses it is named
    assertTrue(result.violation(), result.explanation());
    assertSame(firstMiss, result.failingOp());
    assertTrue(result.explanation().contains("left the register at \"b\""),
        result.explanation());
  }

  @Test
  void casThatSucceededTwiceFromTheSameValueIsAViolation() {
    // given two acknowledged CAS from a, one after the other
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.cas(2, "a", "b", Outcome.OK, 20, 30);
    Op second = h.cas(3, "a", "c", Outcome.OK, 40, 50);

    // when
    CheckResult result = check(h);

    // then
    assertTrue(result.violation(), result.explanation());
    assertSame(second, result.failingOp());
    assertTrue(result.explanation().contains("#2     p3 CAS \"a\" -> \"c\""),
        result.explanation());
  }

  @Test
  void concurrentCasThatBothSucceededFromTheSameValueIsAViolation() {
    // given two overlapping CAS from a, both acknowledged, and nothing writing a again
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.cas(2, "a", "b", Outcome.OK, 20, 50);
    h.cas(3, "a", "c", Outcome.OK, 25, 45);

    // when / then
    assertTrue(check(h).violation(), check(h).explanation());
  }

  @Test
  void unknownWriteObservedThenUnobservedIsAViolation() {
    // given a timed-out write of b that one read sees, and a later read that sees a again
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", Outcome.UNKNOWN, 20, 30);
    h.read(3, "b", 40, 50);
    Op unseen = h.read(4, "a", 60, 70);

    // when
    CheckResult result = check(h);

    // then
    assertTrue(result.violation(), result.explanation());
    assertSame(unseen, result.failingOp());
    assertTrue(result.explanation().contains("#3     p4 READ -> \"a\""), result.explanation());
    assertTrue(result.explanation().contains("(UNKNOWN: this partial linearization assumed it took"),
        result.explanation());
  }

  @Test
  void readOfAValueNeverWrittenIsAViolation() {
    // given a read that returns a value no client wrote
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    Op phantom = h.read(2, "z", 20, 30);

    // when
    CheckResult result = check(h);

    // then
    assertTrue(result.violation(), result.explanation());
    assertSame(phantom, result.failingOp());
    assertTrue(result.explanation().contains("No operation on this key ever wrote \"z\""),
        result.explanation());
  }

  @Test
  void readOfAFailedWriteIsAViolation() {
    // given a write refused with 503, and a read that sees its value
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", Outcome.FAIL, 20, 21);
    Op impossible = h.read(3, "b", 30, 40);

    // when
    CheckResult result = check(h);

    // then: the failed write is shown as ignored
    assertTrue(result.violation(), result.explanation());
    assertSame(impossible, result.failingOp());
    assertTrue(result.explanation().contains("ignored: failed: did not happen"),
        result.explanation());
  }

  @Test
  void searchThatRunsOutOfBudgetIsInconclusiveNotOk() {
    // given a history that needs more than two configurations
    ScriptedHistory h = new ScriptedHistory("x");
    h.write(1, "a", 0, 10);
    h.write(2, "b", 0, 10);
    h.read(3, "a", 20, 30);
    h.read(4, "b", 40, 50);

    // when
    CheckResult result = new LinearizabilityChecker(2).check(h.build(), "x");

    // then
    assertEquals(Verdict.INCONCLUSIVE, result.verdict(), result.explanation());
    assertFalse(result.ok());
    assertTrue(result.explanation().contains("INCONCLUSIVE"), result.explanation());
  }

  // ---- against the obvious algorithm

  @Test
  void agreesWithBruteForceOnThousandsOfSmallRandomHistories() {
    // given small histories with repeated values, ties, failures, timeouts and corrupted reads
    SplittableRandom random = new SplittableRandom(2024);
    int violations = 0;
    for (int i = 0; i < 4000; i++) {
      List<Op> ops = RandomRegisterHistories.next(random, 12);

      // when
      boolean expected = BruteForceRegister.linearizable(ops);
      CheckResult result = checker.check(History.of(0, ops, List.of()), "x");

      // then: same verdict, and a violation names a read or CAS that cannot be linearized
      History history = History.of(0, ops, List.of());
      assertEquals(expected, result.ok(), () -> history.describe() + result.explanation());
      if (!expected) {
        violations++;
        Kind kind = result.failingOp().kind();
        assertTrue(kind == Kind.READ || kind == Kind.CAS, result.explanation());
      }
    }
    assertTrue(violations > 200, "violations: " + violations);
  }

  // ---- a large generated history

  @Test
  void threeThousandOpsFromTwentyClientsCheckWithinSeconds() {
    // given 3,000 ops of 20 clients against a real register, 10% of mutations (5% of ops) unknown
    History history = SimulatedRegisterClients.run(42, 20, 3000, "x", 0.10);
    long unknownWrites = history.ops().stream()
        .filter(op -> op.mutates() && op.outcome() == Outcome.UNKNOWN).count();
    assertTrue(unknownWrites >= 100, "unknown mutations: " + unknownWrites);

    // when
    long started = System.nanoTime();
    CheckResult result = assertTimeoutPreemptively(Duration.ofSeconds(20),
        () -> checker.check(history, "x"));
    long millis = (System.nanoTime() - started) / 1_000_000;

    // then
    System.out.printf("generated history, linearizable: %d ops, %d unknown mutations,"
            + " %d configurations, %d ms%n", history.ops().size(), unknownWrites,
        result.configurations(), millis);
    assertTrue(result.ok(), result.explanation());
  }

  @Test
  void threeThousandOpsWithOneStaleReadFailWithinSeconds() {
    // given the same history, with one read in the middle returning a value overwritten before it
    History history = SimulatedRegisterClients.run(42, 20, 3000, "x", 0.10);
    List<Op> ops = new ArrayList<>(history.ops());
    Op stale = staleReadInTheMiddle(ops);
    ops.set(stale.index(), stale);
    History corrupted = History.of(0, ops, history.nemesisEvents());

    // when
    long started = System.nanoTime();
    CheckResult result = assertTimeoutPreemptively(Duration.ofSeconds(20),
        () -> checker.check(corrupted, "x"));
    long millis = (System.nanoTime() - started) / 1_000_000;

    // then
    System.out.printf("generated history with a stale read: %d configurations, %d ms%n",
        result.configurations(), millis);
    assertTrue(result.violation(), result.explanation());
    assertEquals(stale.index(), result.failingOp().index(), result.explanation());
  }

  /**
   * An OK read R near the middle made to return the value of a write W1 such that a later write W2
   * began after W1 completed and completed before R began: with unique values R cannot see W1.
   */
  private static Op staleReadInTheMiddle(List<Op> ops) {
    List<Op> byInvoke = new ArrayList<>(ops);
    byInvoke.sort(java.util.Comparator.comparingLong(Op::invokeNanos));
    for (Op read : byInvoke.subList(byInvoke.size() / 2, byInvoke.size())) {
      if (read.kind() != Kind.READ || read.outcome() != Outcome.OK) {
        continue;
      }
      Op w2 = latestWriteCompletedBefore(ops, read.invokeNanos());
      Op w1 = w2 == null ? null : latestWriteCompletedBefore(ops, w2.invokeNanos());
      if (w1 != null && !w1.value().equals(read.output())) {
        return new Op(read.index(), read.process(), read.key(), Kind.READ, null, null, Outcome.OK,
            w1.value(), read.invokeNanos(), read.completeNanos());
      }
    }
    throw new AssertionError("no read to corrupt");
  }

  private static Op latestWriteCompletedBefore(List<Op> ops, long nanos) {
    Op latest = null;
    for (Op op : ops) {
      if (op.kind() == Kind.WRITE && op.outcome() == Outcome.OK && op.completeNanos() < nanos
          && (latest == null || op.completeNanos() > latest.completeNanos())) {
        latest = op;
      }
    }
    return latest;
  }
}
