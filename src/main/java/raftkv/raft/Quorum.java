package raftkv.raft;

import java.util.Arrays;

/** Majority arithmetic of §5.2 and §5.4.2, kept apart from the actors so that it is tested alone. */
public final class Quorum {
  private Quorum() {}

  /** Votes (or acknowledgements) needed among {@code voters}. */
  public static int majority(int voters) {
    return voters / 2 + 1;
  }

  /**
   * The highest value that a majority has reached: with one value per voter, sorted descending,
   * the value at position majority-1. Used for match indices (commit) and read confirmations.
   */
  public static long agreed(long[] perVoter) {
    long[] sorted = perVoter.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length - majority(sorted.length)];
  }

  /**
   * §5.3/§5.4.2: the new commit index, given each voter's match index (the leader's own durable
   * index included). Only an entry of the leader's current term is committed by counting;
   * earlier entries become committed with it.
   */
  public static long commitIndex(long[] matchIndex, long currentCommit, long currentTerm, RaftLog log) {
    long n = agreed(matchIndex);
    if (n > currentCommit && log.termAt(n) == currentTerm) {
      return n;
    }
    return currentCommit;
  }
}
