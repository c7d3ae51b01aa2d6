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
    CONFLICT
  }

  private final Kind kind;

  public RaftKvException(Kind kind, String message) {
    super(message, null, false, false);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
