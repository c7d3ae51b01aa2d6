package raftkv.raft;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The in-memory copy of the Raft log, with absolute indices. The log may start after a snapshot:
 * {@code snapshotIndex}/{@code snapshotTerm} describe the last entry that the snapshot replaced
 * (index 0, term 0 for a fresh log). Plain class, not thread-safe: owned by one actor.
 */
public final class RaftLog {
  private long snapshotIndex;
  private long snapshotTerm;
  private final ArrayList<LogEntry> entries = new ArrayList<>();
  /** The encoded size of each entry (RaftSerializer's format), at the same position as in {@code entries}. */
  private int[] sizes = new int[16];
  /** The configuration in effect at {@code snapshotIndex}: the bootstrap's, a compacted entry's, or a snapshot's. */
  private Membership baseMembership = Membership.EMPTY;
  /** The {@link LogEntry.Config} entries this log holds, by index. */
  private final java.util.TreeMap<Long, Membership> configs = new java.util.TreeMap<>();

  public RaftLog() {
    this(0, 0);
  }

  public RaftLog(long snapshotIndex, long snapshotTerm) {
    this(snapshotIndex, snapshotTerm, Membership.EMPTY);
  }

  public RaftLog(long snapshotIndex, long snapshotTerm, Membership baseMembership) {
    this.snapshotIndex = snapshotIndex;
    this.snapshotTerm = snapshotTerm;
    this.baseMembership = baseMembership;
  }

  // ---- the configuration (DESIGN.md §7): the last Config entry appended, else the base ----------

  /** The configuration in effect: that of the last {@link LogEntry.Config} entry in the log, else the base. */
  public Membership membership() {
    return configs.isEmpty() ? baseMembership : configs.lastEntry().getValue();
  }

  /** The index of the entry that holds the configuration in effect ({@link #snapshotIndex()} for the base). */
  public long membershipIndex() {
    return configs.isEmpty() ? snapshotIndex : configs.lastKey();
  }

  /** The configuration in effect at {@code index} (at or after the log's start). */
  public Membership membershipAt(long index) {
    java.util.Map.Entry<Long, Membership> e = configs.floorEntry(index);
    return e == null ? baseMembership : e.getValue();
  }

  /** The configuration at the log's start (what a compaction left, or the bootstrap's). */
  public Membership baseMembership() {
    return baseMembership;
  }

  /** Sets the configuration at the log's start: the bootstrap's, on a first start. */
  public void setBaseMembership(Membership membership) {
    this.baseMembership = membership;
  }

  /** The index of the first Config entry after {@code index}, or -1. */
  public long firstConfigAfter(long index) {
    Long k = configs.higherKey(index);
    return k == null ? -1 : k;
  }

  /**
   * Every configuration this log knows, by the index it took effect at: the base at {@link
   * #snapshotIndex()}, then each Config entry (for a snapshot written at an index of the caller's
   * choosing, which picks the one in effect there).
   */
  public java.util.NavigableMap<Long, Membership> configHistory() {
    java.util.TreeMap<Long, Membership> history = new java.util.TreeMap<>(configs);
    history.put(snapshotIndex, baseMembership);
    return java.util.Collections.unmodifiableNavigableMap(history);
  }

  public long snapshotIndex() {
    return snapshotIndex;
  }

  public long firstIndex() {
    return snapshotIndex + 1;
  }

  public long lastIndex() {
    return snapshotIndex + entries.size();
  }

  public long lastTerm() {
    return entries.isEmpty() ? snapshotTerm : entries.get(entries.size() - 1).term();
  }

  /** The term of the entry at {@code index}, or -1 when the log does not hold it (or no longer does). */
  public long termAt(long index) {
    if (index == snapshotIndex) {
      return snapshotTerm;
    }
    if (index < snapshotIndex || index > lastIndex()) {
      return -1;
    }
    return entries.get((int) (index - snapshotIndex - 1)).term();
  }

  public LogEntry entry(long index) {
    if (index <= snapshotIndex || index > lastIndex()) {
      throw new IndexOutOfBoundsException("log holds " + firstIndex() + ".." + lastIndex() + ", not " + index);
    }
    return entries.get((int) (index - snapshotIndex - 1));
  }

  /** Appends one entry, which must carry the next index. */
  public void append(LogEntry entry) {
    if (entry.index() != lastIndex() + 1) {
      throw new IllegalArgumentException("entry " + entry.index() + " does not follow " + lastIndex());
    }
    int size = RaftSerializer.entryBytes(entry);
    int at = entries.size();
    if (at == sizes.length) {
      sizes = Arrays.copyOf(sizes, at * 2);
    }
    sizes[at] = size;
    entries.add(entry);
    if (entry.payload() instanceof LogEntry.Config c) {
      configs.put(entry.index(), c.membership());
    }
  }

  /** The encoded size of the entry at {@code index}, as AppendEntries carries it. */
  public int entryBytes(long index) {
    if (index <= snapshotIndex || index > lastIndex()) {
      throw new IndexOutOfBoundsException("log holds " + firstIndex() + ".." + lastIndex() + ", not " + index);
    }
    return sizes[(int) (index - snapshotIndex - 1)];
  }

  /** The largest entry this log holds, in encoded bytes (0 when it holds none); a scan of the log. */
  public int largestEntryBytes() {
    int largest = 0;
    for (int i = 0; i < entries.size(); i++) {
      largest = Math.max(largest, sizes[i]);
    }
    return largest;
  }

  /**
   * Drops the entries up to {@code index}, which the state machine holds (of {@code term}): when
   * the log holds that entry with that term, what follows it stays (§5.3 of the dissertation: a
   * follower keeps the log after an installed snapshot); otherwise the whole log goes and it
   * continues after {@code index}. An index at or before the current start changes nothing.
   */
  public void compactTo(long index, long term) {
    compactTo(index, term, null);
  }

  /**
   * {@link #compactTo(long, long)}, with the configuration in effect at {@code index} (a received
   * snapshot's); null derives it from this log: the last configuration at or before {@code
   * index} (when the whole log goes, the one in effect now).
   */
  public void compactTo(long index, long term, Membership atIndex) {
    if (index <= snapshotIndex) {
      return;
    }
    Membership base = atIndex != null ? atIndex : membershipAt(Math.min(index, lastIndex()));
    baseMembership = base;
    if (index <= lastIndex() && termAt(index) == term) {
      configs.headMap(index, true).clear();
      int drop = (int) (index - snapshotIndex);
      entries.subList(0, drop).clear();
      System.arraycopy(sizes, drop, sizes, 0, entries.size());
    } else {
      entries.clear();
      configs.clear();
    }
    snapshotIndex = index;
    snapshotTerm = term;
  }

  /** The term of the entry the log starts after (that of {@link #snapshotIndex()}). */
  public long snapshotTerm() {
    return snapshotTerm;
  }

  /** An independent copy that shares the (immutable) entries. */
  public RaftLog copy() {
    RaftLog copy = new RaftLog(snapshotIndex, snapshotTerm, baseMembership);
    copy.entries.addAll(entries);
    copy.configs.putAll(configs);
    copy.sizes = Arrays.copyOf(sizes, Math.max(16, entries.size()));
    return copy;
  }

  /** Every entry the log holds, oldest first (for the journal's snapshot). */
  public List<LogEntry> entries() {
    return Collections.unmodifiableList(entries);
  }

  /** The encoded bytes of the entries after {@code index} (up to the end). */
  public long bytesAfter(long index) {
    long n = 0;
    for (int i = (int) Math.max(0, index - snapshotIndex); i < entries.size(); i++) {
      n += sizes[i];
    }
    return n;
  }

  /** Removes every entry at {@code index} and after. */
  public void truncateFrom(long index) {
    if (index <= snapshotIndex) {
      throw new IllegalArgumentException("cannot truncate at " + index + ", inside the snapshot up to " + snapshotIndex);
    }
    if (index <= lastIndex()) {
      entries.subList((int) (index - snapshotIndex - 1), entries.size()).clear();
      configs.tailMap(index, true).clear(); // the configuration falls back to the one before (DESIGN.md §7)
    }
  }

  /**
   * The follower's side of AppendEntries (§5.3), after the consistency check at the entry before
   * {@code incoming}: skips entries already present with the same term, truncates at the first
   * conflict, and appends the rest.
   *
   * @return the index of the first entry written (truncated or appended), or -1 when the log
   *     already held every incoming entry.
   */
  public long merge(List<LogEntry> incoming) {
    int i = 0;
    while (i < incoming.size()) {
      LogEntry e = incoming.get(i);
      if (e.index() <= snapshotIndex) {
        i++; // covered by the snapshot, hence committed and equal
        continue;
      }
      long have = termAt(e.index());
      if (have == -1) {
        break;
      }
      if (have != e.term()) {
        truncateFrom(e.index());
        break;
      }
      i++;
    }
    if (i == incoming.size()) {
      return -1;
    }
    long first = incoming.get(i).index();
    for (; i < incoming.size(); i++) {
      append(incoming.get(i));
    }
    return first;
  }

  /**
   * Entries from {@code from} on: as many as fit in {@code maxBytes} of their encoded size
   * ({@link #entryBytes}), at most {@code maxEntries}. Empty when the log ends before {@code
   * from}; throws when the first entry alone does not fit, since a message that carries it could
   * not be sent (the leader refuses such commands before they reach the log).
   */
  public List<LogEntry> slice(long from, int maxEntries, long maxBytes) {
    if (from > lastIndex()) {
      return List.of();
    }
    if (from <= snapshotIndex) {
      throw new IndexOutOfBoundsException("entry " + from + " is compacted into the snapshot");
    }
    int start = (int) (from - snapshotIndex - 1);
    int end = start;
    long bytes = 0;
    while (end < entries.size() && end - start < maxEntries && bytes + sizes[end] <= maxBytes) {
      bytes += sizes[end];
      end++;
    }
    if (end == start && maxEntries > 0) {
      throw new IllegalStateException("entry " + from + " is " + sizes[start] + " bytes encoded, more than the "
          + maxBytes + " bytes one message may carry");
    }
    return Collections.unmodifiableList(new ArrayList<>(entries.subList(start, end)));
  }

  /** Every entry from {@code from} to the end, whatever their size (for the journal's write). */
  public List<LogEntry> tail(long from) {
    if (from > lastIndex()) {
      return List.of();
    }
    if (from <= snapshotIndex) {
      throw new IndexOutOfBoundsException("entry " + from + " is compacted into the snapshot");
    }
    return Collections.unmodifiableList(new ArrayList<>(entries.subList((int) (from - snapshotIndex - 1), entries.size())));
  }

  /** The first index of the term of the entry at {@code index}: the conflict hint of §5.3. */
  public long firstIndexOfTerm(long index) {
    long term = termAt(index);
    long i = index;
    while (i - 1 > snapshotIndex && termAt(i - 1) == term) {
      i--;
    }
    return i;
  }

  /** The last index holding {@code term}, or -1 when the log has no entry of that term. */
  public long lastIndexOfTerm(long term) {
    for (long i = lastIndex(); i > snapshotIndex; i--) {
      long t = termAt(i);
      if (t == term) {
        return i;
      }
      if (t < term) {
        return -1;
      }
    }
    return -1;
  }

  /** §5.4.1: is a candidate's log (lastTerm, lastIndex) at least as up-to-date as this one? */
  public boolean isUpToDate(long candidateLastTerm, long candidateLastIndex) {
    long myTerm = lastTerm();
    return candidateLastTerm > myTerm || (candidateLastTerm == myTerm && candidateLastIndex >= lastIndex());
  }
}
