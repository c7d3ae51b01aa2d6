package raftkv.raft;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The log, as the Raft paper's sections describe it. */
class RaftLogTest {

  static LogEntry entry(long index, long term) {
    return new LogEntry(index, term, new LogEntry.Command(MemoryStateMachine.put("k" + index, "v")));
  }

  /** A log with one entry per given term, starting at index 1. */
  static RaftLog logOfTerms(long... terms) {
    RaftLog log = new RaftLog();
    for (int i = 0; i < terms.length; i++) {
      log.append(entry(i + 1, terms[i]));
    }
    return log;
  }

  static List<LogEntry> entries(long firstIndex, long... terms) {
    List<LogEntry> list = new ArrayList<>();
    for (int i = 0; i < terms.length; i++) {
      list.add(entry(firstIndex + i, terms[i]));
    }
    return list;
  }

  @Nested
  class Section5_3_LogMatchingAndConsistencyCheck {
    @Test
    void anEmptyLogHasIndexZeroOfTermZero() {
      RaftLog log = new RaftLog();
      assertEquals(0, log.lastIndex());
      assertEquals(0, log.lastTerm());
      assertEquals(0, log.termAt(0));
      assertEquals(-1, log.termAt(1));
    }

    @Test
    void entriesAlreadyPresentWithTheSameTermAreKeptAndNothingIsWritten() {
      RaftLog log = logOfTerms(1, 1, 2);
      assertEquals(-1, log.merge(entries(2, 1, 2)));
      assertEquals(3, log.lastIndex());
    }

    @Test
    void aConflictingEntryAndEverythingAfterItIsReplaced() {
      RaftLog log = logOfTerms(1, 1, 2, 2, 2);
      long first = log.merge(entries(3, 3, 3));
      assertEquals(3, first);
      assertEquals(4, log.lastIndex());
      assertEquals(3, log.termAt(3));
      assertEquals(3, log.termAt(4));
    }

    @Test
    void aShorterResentMessageNeverTruncatesMatchingEntries() {
      // a delayed, older AppendEntries of the same leader must not cut entries that came after it
      RaftLog log = logOfTerms(1, 1, 1, 1);
      assertEquals(-1, log.merge(entries(2, 1)));
      assertEquals(4, log.lastIndex());
    }

    @Test
    void newEntriesAreAppendedAfterTheMatchingPrefix() {
      RaftLog log = logOfTerms(1, 1);
      assertEquals(3, log.merge(entries(2, 1, 2, 2)));
      assertEquals(4, log.lastIndex());
      assertEquals(2, log.lastTerm());
    }

    @Test
    void theConflictHintIsTheFirstIndexOfTheConflictingTerm() {
      RaftLog log = logOfTerms(1, 1, 4, 4, 4, 5);
      assertEquals(3, log.firstIndexOfTerm(5));
      assertEquals(1, log.firstIndexOfTerm(2));
      assertEquals(6, log.firstIndexOfTerm(6));
    }

    @Test
    void theLeaderSkipsToTheLastEntryItHasOfTheConflictingTerm() {
      RaftLog leader = logOfTerms(1, 1, 4, 4, 6, 6);
      assertEquals(4, leader.lastIndexOfTerm(4));
      assertEquals(-1, leader.lastIndexOfTerm(5));
      assertEquals(-1, leader.lastIndexOfTerm(7));
    }

    @Test
    void entriesMustBeAppendedInIndexOrder() {
      RaftLog log = logOfTerms(1);
      assertThrows(IllegalArgumentException.class, () -> log.append(entry(3, 1)));
    }
  }

  @Nested
  class Section5_4_1_ElectionRestriction {
    @Test
    void aCandidateWithAHigherLastTermIsUpToDate() {
      RaftLog voter = logOfTerms(1, 1, 2, 2, 2);
      assertTrue(voter.isUpToDate(3, 1));
    }

    @Test
    void aCandidateWithALowerLastTermIsNotUpToDateWhateverItsLength() {
      RaftLog voter = logOfTerms(1, 2);
      assertFalse(voter.isUpToDate(1, 100));
    }

    @Test
    void withEqualLastTermsTheLongerLogIsMoreUpToDate() {
      RaftLog voter = logOfTerms(1, 2, 2);
      assertTrue(voter.isUpToDate(2, 3));
      assertTrue(voter.isUpToDate(2, 4));
      assertFalse(voter.isUpToDate(2, 2));
    }
  }

  @Nested
  class Section7_LogStartsAfterASnapshot {
    @Test
    void indicesStayAbsoluteAfterTheSnapshot() {
      RaftLog log = new RaftLog(100, 3);
      log.append(entry(101, 3));
      log.append(entry(102, 4));
      assertEquals(101, log.firstIndex());
      assertEquals(102, log.lastIndex());
      assertEquals(3, log.termAt(100));
      assertEquals(-1, log.termAt(99));
      assertEquals(4, log.entry(102).term());
      assertThrows(IndexOutOfBoundsException.class, () -> log.entry(100));
    }

    @Test
    void entriesCoveredByTheSnapshotAreSkippedWhenMerging() {
      RaftLog log = new RaftLog(2, 1);
      assertEquals(3, log.merge(entries(1, 1, 1, 1)));
      assertEquals(3, log.lastIndex());
    }
  }

  @Test
  void sliceIsBoundedByCountAndByTheExactEncodedBytes() {
    RaftLog log = logOfTerms(1, 1, 1, 1, 1);
    int one = log.entryBytes(2);
    assertEquals(RaftSerializer.entryBytes(entry(2, 1)), one);
    assertEquals(2, log.slice(2, 2, Integer.MAX_VALUE).size());
    assertEquals(1, log.slice(2, 10, one).size());
    assertEquals(1, log.slice(2, 10, 2L * one - 1).size());
    assertEquals(2, log.slice(2, 10, 2L * one).size());
    assertEquals(4, log.slice(2, 10, Integer.MAX_VALUE).size());
    assertEquals(0, log.slice(6, 10, 100).size());
    assertEquals(4, log.tail(2).size());
  }

  @Test
  void anEntryThatNoMessageCouldCarryIsNeverSlicedIntoOne() {
    RaftLog log = logOfTerms(1, 1);
    assertThrows(IllegalStateException.class, () -> log.slice(1, 10, log.entryBytes(1) - 1));
  }

  @Test
  void entrySizesFollowTruncation() {
    RaftLog log = logOfTerms(1, 1, 1);
    log.truncateFrom(2);
    LogEntry big = new LogEntry(2, 2, new LogEntry.Command(new byte[1300]));
    log.append(big);
    assertEquals(RaftSerializer.entryBytes(big), log.entryBytes(2));
    assertEquals(RaftSerializer.entryBytes(big), log.largestEntryBytes());
    log.truncateFrom(2);
    assertEquals(log.entryBytes(1), log.largestEntryBytes(), "only what the log still holds counts");
  }

  // ---- compaction (a snapshot holds what the log drops) ---------------------------------------

  @Test
  void compactingKeepsWhatFollowsTheSnapshotPoint() {
    RaftLog log = logOfTerms(1, 1, 2, 2, 3);
    log.compactTo(3, 2);
    assertEquals(3, log.snapshotIndex());
    assertEquals(4, log.firstIndex());
    assertEquals(5, log.lastIndex());
    assertEquals(2, log.termAt(3), "the snapshot's own entry keeps its term for the consistency check");
    assertEquals(-1, log.termAt(2), "compacted entries are gone");
    assertEquals(3, log.termAt(5));
    assertEquals(log.entryBytes(5), RaftSerializer.entryBytes(log.entry(5)), "sizes move with their entries");
    assertThrows(IndexOutOfBoundsException.class, () -> log.slice(3, 10, Long.MAX_VALUE));
    assertEquals(List.of(log.entry(4), log.entry(5)), log.slice(4, 10, Long.MAX_VALUE));
  }

  @Test
  void aSnapshotThatTheLogDoesNotMatchReplacesTheWholeLog() {
    // dissertation §5.3: a follower keeps its log after the snapshot only when it holds the snapshot's last entry
    RaftLog log = logOfTerms(1, 1, 2, 2);
    log.compactTo(3, 3); // the leader's entry 3 is of term 3: this log diverged
    assertEquals(3, log.snapshotIndex());
    assertEquals(3, log.lastIndex(), "nothing of the diverged log is kept");
    assertEquals(3, log.lastTerm());
    RaftLog shorter = logOfTerms(1, 1);
    shorter.compactTo(10, 4); // beyond its end
    assertEquals(10, shorter.lastIndex());
    assertEquals(4, shorter.termAt(10));
    shorter.append(entry(11, 4));
    assertEquals(11, shorter.lastIndex());
  }

  @Test
  void compactingToOrBeforeTheStartChangesNothing() {
    RaftLog log = logOfTerms(1, 2, 3);
    log.compactTo(2, 2);
    log.compactTo(1, 1);
    log.compactTo(2, 99);
    assertEquals(2, log.snapshotIndex());
    assertEquals(3, log.lastIndex());
    RaftLog copy = log.copy();
    copy.append(entry(4, 3));
    assertEquals(3, log.lastIndex(), "a copy is independent");
    assertEquals(4, copy.lastIndex());
  }
}
