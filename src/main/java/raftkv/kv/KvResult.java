package raftkv.kv;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import raftkv.CborSerializable;

import java.util.List;

/** The outcome of applying a {@link KvCommand} or answering a {@link KvQuery}. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "t")
@JsonSubTypes({
    @JsonSubTypes.Type(value = KvResult.PutDone.class, name = "put"),
    @JsonSubTypes.Type(value = KvResult.DeleteDone.class, name = "del"),
    @JsonSubTypes.Type(value = KvResult.TxnDone.class, name = "txn"),
    @JsonSubTypes.Type(value = KvResult.PreconditionFailed.class, name = "pre"),
    @JsonSubTypes.Type(value = KvResult.GetDone.class, name = "get"),
    @JsonSubTypes.Type(value = KvResult.RangeDone.class, name = "range"),
    @JsonSubTypes.Type(value = KvResult.HistoryDone.class, name = "history"),
    @JsonSubTypes.Type(value = KvResult.Replayed.class, name = "replayed"),
    @JsonSubTypes.Type(value = KvResult.IdempotencyKeyReused.class, name = "reused")})
public sealed interface KvResult extends CborSerializable {
  /** Store revision after the put; the key's previous modRevision, or null when it was absent. */
  record PutDone(long revision, Long prevModRevision) implements KvResult {}

  /** Store revision after the delete (unchanged when nothing was deleted) and how many keys went. */
  record DeleteDone(long revision, long deleted) implements KvResult {}

  /**
   * {@code results} has one entry per op of the branch taken, in order: a PutDone, a DeleteDone,
   * or a GetDone. All writes of one transaction share one revision.
   */
  record TxnDone(boolean succeeded, long revision, List<KvResult> results) implements KvResult {}

  /** A Put/Delete precondition failed; nothing changed. {@code currentModRevision} is 0 when absent. */
  record PreconditionFailed(long currentModRevision) implements KvResult {
    /** Jackson 2.11 cannot tell a one-component record's constructor from a delegating creator. */
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public PreconditionFailed {}
  }

  /** {@code kv} is null when the key is absent; {@code revision} is the store revision of the read. */
  record GetDone(long revision, KeyValue kv) implements KvResult {}

  record RangeDone(long revision, List<KeyValue> kvs, boolean more) implements KvResult {}

  /**
   * A retry of an {@link KvCommand.Idempotent} command that was applied before: {@code first} is
   * that first result, and nothing was applied now. {@code first} is null when the first result was
   * too large to keep (the command was applied; its answer is gone).
   */
  record Replayed(KvResult first) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Replayed {}
  }

  /** The idempotency key was used before with a different request; nothing was applied. */
  record IdempotencyKeyReused(String key) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public IdempotencyKeyReused {}
  }

  /**
   * An answer to {@link KvQuery.History}: the revisions that matched, in order, among those read,
   * which run from the query's {@code fromRevision} to {@code scannedTo} (the store revision when
   * the reading reached the end). {@code compactRevision} is the newest revision no longer kept: when
   * the query's {@code fromRevision} is not above it, nothing was read and {@code events} is empty.
   */
  record HistoryDone(long compactRevision, long scannedTo, long revision, List<RevisionEvents> events)
      implements KvResult {}
}
