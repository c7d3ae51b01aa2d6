package raftkv.raft;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Majorities (§5.2) and commitment (§5.3, §5.4.2). */
class QuorumTest {

  @Test
  void section5_2_aMajorityOfOneThreeFourAndFiveVoters() {
    assertEquals(1, Quorum.majority(1));
    assertEquals(2, Quorum.majority(3));
    assertEquals(3, Quorum.majority(4));
    assertEquals(3, Quorum.majority(5));
  }

  @Test
  void section5_3_anEntryIsCommittedOnceAMajorityStoresIt() {
    RaftLog log = RaftLogTest.logOfTerms(2, 2, 2, 2);
    assertEquals(3, Quorum.commitIndex(new long[] {4, 3, 1}, 0, 2, log));
    assertEquals(2, Quorum.commitIndex(new long[] {4, 2, 2, 1, 0}, 0, 2, log));
  }

  @Test
  void section5_4_2_anEntryOfAnEarlierTermIsNeverCommittedByCounting() {
    // Figure 8: the leader of term 4 has replicated index 2 (term 2) to a majority; it must not commit it
    RaftLog log = RaftLogTest.logOfTerms(1, 2, 4);
    assertEquals(1, Quorum.commitIndex(new long[] {3, 2, 2, 1, 1}, 1, 4, log));
  }

  @Test
  void section5_4_2_committingAnEntryOfTheCurrentTermCommitsEveryEarlierOne() {
    RaftLog log = RaftLogTest.logOfTerms(1, 2, 4);
    assertEquals(3, Quorum.commitIndex(new long[] {3, 3, 3, 1, 1}, 1, 4, log));
  }

  @Test
  void theCommitIndexNeverMovesBack() {
    RaftLog log = RaftLogTest.logOfTerms(1, 1, 1);
    assertEquals(3, Quorum.commitIndex(new long[] {1, 1, 0}, 3, 1, log));
  }

  @Test
  void readIndexConfirmationIsTheRoundThatAMajorityAnswered() {
    // the leader counts itself as having answered every round
    assertEquals(7, Quorum.agreed(new long[] {Long.MAX_VALUE, 7, 3}));
    assertEquals(7, Quorum.agreed(new long[] {Long.MAX_VALUE, 7, 3, 2, 9}));
  }
}
