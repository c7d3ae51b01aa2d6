package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import raftkv.multijvm.LeaseIdempotencyChecker.AbandonedLease;
import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LeaseIdempotencyChecker.Bounds;
import raftkv.multijvm.LeaseIdempotencyChecker.CounterRead;
import raftkv.multijvm.LeaseIdempotencyChecker.FinalKey;
import raftkv.multijvm.LeaseIdempotencyChecker.KeptLease;
import raftkv.multijvm.LeaseIdempotencyChecker.KeyEvent;
import raftkv.multijvm.LeaseIdempotencyChecker.LeaderTerm;
import raftkv.multijvm.LeaseIdempotencyChecker.LogicalWrite;
import raftkv.multijvm.LeaseIdempotencyChecker.Observations;
import raftkv.multijvm.LeaseIdempotencyChecker.PollObservation;
import raftkv.multijvm.LeaseIdempotencyChecker.Renewal;
import raftkv.multijvm.LeaseIdempotencyChecker.Report;

/**
 * The {@link LeaseIdempotencyChecker} on made-up histories: correct ones pass, and each kind of
 * bug the fault scenario looks for is reported: a retried write applied twice, a duplicate not
 * replayed, a kept-alive key deleted, an abandoned key that outlived its bound, one deleted
 * before its TTL, keys of one lease deleted at two revisions.
 */
class LeaseIdempotencyCheckerTest {

  private static final long S = 1_000_000_000L;
  private static final long MS = 1_000_000L;
  private static final Bounds BOUNDS = new Bounds(500 * MS, 1_500 * MS, 3_500 * MS, S);

  private final LeaseIdempotencyChecker checker = new LeaseIdempotencyChecker();

  // ---- idempotency

  private static Answer ok(long at, long revision, boolean replayed) {
    return new Answer("n1", at, at + 10 * MS, 200, replayed, "{\"revision\":" + revision + ",\"prevModRevision\":null}",
        null, false);
  }

  private static Answer status(long at, int status) {
    return new Answer("n2", at, at + 10 * MS, status, false, "{\"error\":\"x\"}", null, false);
  }

  private static Answer timeout(long at) {
    return new Answer("n3", at, at + 3 * S, -1, false, null, "HttpTimeoutException: request timed out", false);
  }

  private static LogicalWrite write(int seq, List<Answer> attempts, List<Answer> duplicate, List<Answer> conflict) {
    return new LogicalWrite("c0", "counter-0", seq, "k" + seq, "c0-" + seq, attempts, duplicate, conflict);
  }

  private static FinalKey counter(long version, long modRevision, String value) {
    return new FinalKey("counter-0", true, version, 10, modRevision, value);
  }

  /** Three writes: one retried after a timeout and answered from its record, one sent again, one followed by another body. */
  private static List<LogicalWrite> threeWrites() {
    return List.of(
        write(0, List.of(ok(0, 10, false)), List.of(), List.of()),
        write(1, List.of(timeout(S), ok(5 * S, 11, true)), List.of(ok(6 * S, 11, true)), List.of()),
        write(2, List.of(status(7 * S, 503), ok(8 * S, 12, false)), List.of(), List.of(status(9 * S, 422))));
  }

  @Test
  void writesAppliedOnceEachPass() {
    Report report = checker.checkIdempotency(threeWrites(),
        List.of(new CounterRead("counter-0", 1, ok(S / 2, 10, false), 1, "c0-0")),
        Map.of("counter-0", counter(3, 12, "c0-2")));
    assertTrue(report.ok(), report.describe());
    assertTrue(report.figures().get(0).contains("1 were answered from the record"), report.describe());
  }

  @Test
  void aRetriedWriteAppliedTwiceIsReported() {
    // the timed-out first attempt of write 1 was applied, and so was its retry: version 4 for 3 writes
    Report report = checker.checkIdempotency(threeWrites(), List.of(), Map.of("counter-0", counter(4, 12, "c0-2")));
    assertEquals(1, report.problems().size(), report.describe());
    assertTrue(report.problems().get(0).contains("version 4 at the end, but 3 logical writes were acknowledged"),
        report.describe());
  }

  @Test
  void aReadSeeingAWriteTwiceIsReported() {
    Report report = checker.checkIdempotency(threeWrites(),
        List.of(new CounterRead("counter-0", 2, ok(6 * S, 11, false), 3, "c0-1")),
        Map.of("counter-0", counter(3, 12, "c0-2")));
    assertTrue(report.problems().stream().anyMatch(p -> p.contains("after 2 acknowledged writes saw version 3")),
        report.describe());
  }

  @Test
  void aDuplicateThatIsAppliedAgainOrAnsweredDifferentlyIsReported() {
    List<LogicalWrite> writes = new ArrayList<>(threeWrites());
    writes.set(1, write(1, List.of(ok(S, 11, false)), List.of(ok(2 * S, 12, false)), List.of()));
    writes.set(2, write(2, List.of(ok(3 * S, 13, false)), List.of(), List.of(ok(4 * S, 14, false))));
    Report report = checker.checkIdempotency(writes, List.of(), Map.of("counter-0", counter(5, 14, "c0-2-other")));
    String all = report.describe();
    assertTrue(all.contains("two different 200 answers under one Idempotency-Key"), all);
    assertTrue(all.contains("without Idempotent-Replayed: applied twice"), all);
    assertTrue(all.contains("another body under its used Idempotency-Key was answered 200"), all);
    assertTrue(all.contains("some write was applied more than once"), all);
  }

  @Test
  void aReplayAfterOnly503sAndALostWriteAreReported() {
    List<LogicalWrite> writes = List.of(
        write(0, List.of(status(0, 503), ok(S, 10, true)), List.of(), List.of()),
        write(1, List.of(ok(2 * S, 11, false)), List.of(), List.of()));
    Report report = checker.checkIdempotency(writes, List.of(), Map.of("counter-0", counter(1, 11, "c0-1")));
    String all = report.describe();
    assertTrue(all.contains("is a replay, but no earlier attempt can have been applied"), all);
    assertTrue(all.contains("some acknowledged write is lost"), all);
  }

  // ---- leases

  private static final long ID_KEPT = 11;
  private static final long ID_ABANDONED = 22;

  /** A lease of 8 s renewed every 2 s from 0 to 30 s, observation ending at 31 s. */
  private static KeptLease kept(long id, String key, long periodNanos) {
    List<Renewal> renewals = new ArrayList<>();
    for (long t = 0; t <= 30 * S; t += periodNanos) {
      renewals.add(new Renewal(t, t + 20 * MS));
    }
    return new KeptLease(id, 8, key, 5, renewals, 31 * S, null);
  }

  /** A lease of 6 s with keys a and b, last renewed at 10 s (answered at 10.05 s). */
  private static AbandonedLease abandoned() {
    return new AbandonedLease(ID_ABANDONED, 6, List.of("ab-a", "ab-b"), new Renewal(10 * S, 10 * S + 50 * MS), false,
        List.of());
  }

  private static Observations observations(Map<String, List<KeyEvent>> events, Map<String, FinalKey> finals,
      List<LeaderTerm> leaders, List<Nemesis.Window> faults) {
    Map<String, FinalKey> all = new HashMap<>(Map.of(
        "kept", new FinalKey("kept", true, 1, 5, 5, "kept"),
        "ab-a", FinalKey.absent("ab-a"),
        "ab-b", FinalKey.absent("ab-b")));
    all.putAll(finals);
    Map<Long, Boolean> exists = new LinkedHashMap<>();
    exists.put(ID_KEPT, true);
    exists.put(ID_ABANDONED, false);
    return new Observations(events, Map.of("ab-a", new PollObservation(15 * S, -1)), all, exists, leaders, faults);
  }

  private static Map<String, List<KeyEvent>> deletedAt(long revision, long seenNanos) {
    Map<String, List<KeyEvent>> events = new HashMap<>();
    events.put("kept", List.of(new KeyEvent(5, false, S)));
    events.put("ab-a", List.of(new KeyEvent(7, false, 9 * S), new KeyEvent(revision, true, seenNanos)));
    events.put("ab-b", List.of(new KeyEvent(8, false, 9 * S), new KeyEvent(revision, true, seenNanos)));
    return events;
  }

  private static final List<LeaderTerm> ONE_LEADER = List.of(new LeaderTerm(1, "n1", 0, 40 * S));

  @Test
  void leasesThatBehavePass() {
    Report report = checker.checkLeases(List.of(kept(ID_KEPT, "kept", 2 * S)), List.of(abandoned()),
        observations(deletedAt(30, 16 * S + 300 * MS), Map.of(), ONE_LEADER, List.of()), BOUNDS);
    assertTrue(report.ok(), report.describe());
    assertTrue(report.figures().get(0).contains("1 renewed in time all along (longest gap 2.02 s)"), report.describe());
    assertTrue(report.figures().get(1).contains("at most 0.25 s with no fault in the window (1)"), report.describe());
  }

  @Test
  void aKeptAliveKeyThatWasDeletedIsReported() {
    Map<String, List<KeyEvent>> events = deletedAt(30, 16 * S + 300 * MS);
    events.put("kept", List.of(new KeyEvent(5, false, S), new KeyEvent(20, true, 12 * S)));
    Report report = checker.checkLeases(List.of(kept(ID_KEPT, "kept", 2 * S)), List.of(abandoned()),
        observations(events, Map.of("kept", FinalKey.absent("kept")), ONE_LEADER, List.of()), BOUNDS);
    String all = report.describe();
    assertTrue(all.contains("renewed at most 2.02 s apart, yet its key was deleted at revision 20"), all);
    assertTrue(all.contains("yet its key is gone at the end"), all);
  }

  @Test
  void aKeyOfALeaseNotRenewedInTimeIsNotHeldToIt() {
    // renewed every 7.5 s: more than TTL - 1 s apart, so its deletion proves nothing
    Map<String, List<KeyEvent>> events = deletedAt(30, 16 * S + 300 * MS);
    events.put("kept", List.of(new KeyEvent(5, false, S), new KeyEvent(20, true, 12 * S)));
    Report report = checker.checkLeases(List.of(kept(ID_KEPT, "kept", 7_500 * MS)), List.of(abandoned()),
        observations(events, Map.of("kept", FinalKey.absent("kept")), ONE_LEADER, List.of()), BOUNDS);
    assertTrue(report.ok(), report.describe());
    assertTrue(report.figures().get(0).contains("not renewed in time"), report.describe());
  }

  @Test
  void anAbandonedKeyThatOutlivedItsBoundIsReported() {
    // TTL 6 s from 10.05 s: the deadline is 16.05 s; seen gone at 19 s, with no leader change
    Report late = checker.checkLeases(List.of(), List.of(abandoned()),
        observations(deletedAt(30, 19 * S), Map.of(), ONE_LEADER, List.of()), BOUNDS);
    assertTrue(late.describe().contains("its keys outlived their deadline: deletion seen 2.95 s past TTL"),
        late.describe());
    // a key never deleted at all
    Map<String, List<KeyEvent>> events = deletedAt(30, 16 * S);
    events.put("ab-b", List.of(new KeyEvent(8, false, 9 * S)));
    Report outlived = checker.checkLeases(List.of(), List.of(abandoned()),
        observations(events, Map.of("ab-b", new FinalKey("ab-b", true, 1, 8, 8, "ab-b")), ONE_LEADER, List.of()),
        BOUNDS);
    assertTrue(outlived.describe().contains("key ab-b outlived its lease: still there at the end"), outlived.describe());
    assertTrue(outlived.describe().contains("key ab-b deleted 0 times"), outlived.describe());
  }

  @Test
  void aNewLeaderMayGiveTheLeaseItsWholeTtlAgain() {
    // the leader changed at 15 s (seen then): the lease may live until 15 + 6 + 0.5 s, more than the
    // README's 6 + 0.5 s after its renewal plus the 0.5 s the election took
    List<LeaderTerm> leaders = List.of(new LeaderTerm(1, "n1", 0, 14_500 * MS), new LeaderTerm(2, "n2", 15 * S, 40 * S));
    Report report = checker.checkLeases(List.of(), List.of(abandoned()),
        observations(deletedAt(30, 22 * S), Map.of(), leaders, List.of(new Nemesis.Window(14 * S, 16 * S))), BOUNDS);
    assertTrue(report.ok(), report.describe());
    assertTrue(report.figures().get(2).contains("1 of 1"), "beyond the README's words: " + report.describe());
    // but not for ever
    Report late = checker.checkLeases(List.of(), List.of(abandoned()),
        observations(deletedAt(30, 26 * S), Map.of(), leaders, List.of(new Nemesis.Window(14 * S, 16 * S))), BOUNDS);
    assertTrue(late.describe().contains("past the latest deadline (a leader of term 2 took over"), late.describe());
  }

  @Test
  void anAbandonedLeaseDeletedEarlyOrAtTwoRevisionsIsReported() {
    Map<String, List<KeyEvent>> events = deletedAt(30, 14 * S);
    events.put("ab-b", List.of(new KeyEvent(8, false, 9 * S), new KeyEvent(31, true, 14 * S)));
    Report report = checker.checkLeases(List.of(), List.of(new AbandonedLease(ID_ABANDONED, 6, List.of("ab-a", "ab-b"),
        new Renewal(10 * S, 10 * S + 50 * MS), false, List.of(status(12 * S, 404)))),
        observations(events, Map.of(), ONE_LEADER, List.of()), BOUNDS);
    String all = report.describe();
    assertTrue(all.contains("deleted at revisions [30, 31], not at one revision"), all);
    assertTrue(all.contains("before its TTL"), all);
    assertTrue(all.contains("it expired before its TTL"), all);
  }
}
