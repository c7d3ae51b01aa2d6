package raftkv.history;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/** The set workload's final read against the adds the clients attempted. */
class SetCheckerTest {

  private final SetChecker checker = new SetChecker();
  private int index;

  private Op add(String element, Outcome outcome) {
    int i = index++;
    return new Op(i, i % 5, "set/" + element, Kind.WRITE, element, null, outcome, null, i * 10L,
        i * 10L + 5);
  }

  @Test
  void everyAcknowledgedAddPresentIsOk() {
    // given acknowledged, failed and unknown adds, and a read with the acknowledged ones
    List<Op> adds = List.of(add("e1", Outcome.OK), add("e2", Outcome.OK),
        add("e3", Outcome.FAIL), add("e4", Outcome.UNKNOWN), add("e5", Outcome.UNKNOWN));

    // when: one unknown add took effect, the other did not
    SetCheckResult result = checker.check(adds, List.of("e1", "e2", "e4"));

    // then
    assertTrue(result.ok(), result.toString());
    assertEquals(5, result.attempted());
    assertEquals(2, result.acknowledged());
    assertEquals(1, result.failed());
    assertEquals(2, result.unknown());
    assertEquals(1, result.recoveredUnknowns());
    assertEquals(1, result.unrecoveredUnknowns());
  }

  @Test
  void acknowledgedAddMissingFromTheFinalReadIsLost() {
    // given two acknowledged adds
    List<Op> adds = List.of(add("e1", Outcome.OK), add("e2", Outcome.OK));

    // when the final read has only one
    SetCheckResult result = checker.check(adds, List.of("e2"));

    // then
    assertFalse(result.ok());
    assertEquals(Set.of("e1"), result.lost());
    assertTrue(result.toString().contains("1 lost (acknowledged, missing from the final read): e1"),
        result.toString());
  }

  @Test
  void elementNobodyAddedIsAPhantom() {
    // given one add
    List<Op> adds = List.of(add("e1", Outcome.OK));

    // when the final read has an element never attempted
    SetCheckResult result = checker.check(adds, List.of("e1", "e9"));

    // then
    assertFalse(result.ok());
    assertEquals(Set.of("e9"), result.phantoms());
    assertTrue(result.lost().isEmpty());
  }

  @Test
  void elementWhoseAddDefinitelyFailedButAppearsIsRevived() {
    // given an add refused with 503 (not applied)
    List<Op> adds = List.of(add("e1", Outcome.FAIL));

    // when it is in the final read anyway
    SetCheckResult result = checker.check(adds, List.of("e1"));

    // then
    assertFalse(result.ok());
    assertEquals(Set.of("e1"), result.revived());
  }

  @Test
  void retriedAddCountsAsAcknowledgedIfAnyAttemptWasOk() {
    // given an add that timed out, retried with success
    List<Op> adds = List.of(add("e1", Outcome.UNKNOWN), add("e1", Outcome.OK));

    // when it is missing
    SetCheckResult result = checker.check(adds, List.of());

    // then it is lost
    assertEquals(Set.of("e1"), result.lost());
    assertEquals(1, result.attempted());
  }

  @Test
  void elementReadTwiceIsDuplicated() {
    List<Op> adds = List.of(add("e1", Outcome.OK));

    SetCheckResult result = checker.check(adds, List.of("e1", "e1"));

    assertFalse(result.ok());
    assertEquals(Set.of("e1"), result.duplicated());
  }

  @Test
  void readIsNotAnAdd() {
    Op read = new Op(0, 1, "set", Kind.READ, null, null, Outcome.OK, null, 0, 1);

    assertThrows(IllegalArgumentException.class, () -> checker.check(List.of(read), List.of()));
  }
}
