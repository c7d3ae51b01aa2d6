package raftkv.client;

/** A failed request, with the kind that tells the client what happened to it (API.md §6). */
public final class RaftKvException extends RuntimeException {

  public enum Kind {
    /** Malformed input; nothing was applied. */
    BAD_REQUEST,
    /** Key or value over the configured limit; nothing was applied. */
    TOO_LARGE,
    /** No leader known, or it cannot be reached: the request was not applied. */
    UNAVAILABLE,
    /** Proposed but not known to be committed in time: the outcome is unknown. */
    TIMEOUT,
    /** The member (or key) named does not exist; nothing changed. */
    NOT_FOUND,
    /** Refused in the cluster's present state (API.md §6: a membership change while another is pending, a learner not caught up); nothing changed. */
    CONFLICT,
    /** A watch asked for revisions that compaction removed from the history: see {@link #compactRevision()}. */
    COMPACTED,
    /** A condition of the request did not hold (a lock or election key that does not lead, a fence); nothing changed. */
    PRECONDITION_FAILED,
    /** A lock or an election was not won in time; the caller's waiter key was removed. */
    LOCK_TIMEOUT,
    /** The Idempotency-Key was used before with a different request; nothing was applied. */
    IDEMPOTENCY_KEY_REUSED
  }

  private final Kind kind;
  private final long compactRevision;

  public RaftKvException(Kind kind, String message) {
    this(kind, message, 0);
  }

  private RaftKvException(Kind kind, String message, long compactRevision) {
    super(message, null, false, false);
    this.kind = kind;
    this.compactRevision = compactRevision;
  }

  /** A watch from a revision the history no longer holds: the newest revision gone is {@code compactRevision}. */
  public static RaftKvException compacted(long compactRevision, long fromRevision) {
    return new RaftKvException(Kind.COMPACTED, "revision " + fromRevision + " is compacted: the history starts after "
        + "revision " + compactRevision + "; read the current state and watch from its revision + 1", compactRevision);
  }

  public Kind kind() {
    return kind;
  }

  /** For {@link Kind#COMPACTED}: the newest revision that compaction removed. */
  public long compactRevision() {
    return compactRevision;
  }
}
