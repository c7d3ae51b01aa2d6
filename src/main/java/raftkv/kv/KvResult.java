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
    @JsonSubTypes.Type(value = KvResult.FenceFailed.class, name = "fence"),
    @JsonSubTypes.Type(value = KvResult.GetDone.class, name = "get"),
    @JsonSubTypes.Type(value = KvResult.RangeDone.class, name = "range"),
    @JsonSubTypes.Type(value = KvResult.HistoryDone.class, name = "history"),
    @JsonSubTypes.Type(value = KvResult.Replayed.class, name = "replayed"),
    @JsonSubTypes.Type(value = KvResult.IdempotencyKeyReused.class, name = "reused"),
    @JsonSubTypes.Type(value = KvResult.LeaseGranted.class, name = "lgranted"),
    @JsonSubTypes.Type(value = KvResult.LeaseExists.class, name = "lexists"),
    @JsonSubTypes.Type(value = KvResult.LeaseNotFound.class, name = "lnotfound"),
    @JsonSubTypes.Type(value = KvResult.LeaseRevoked.class, name = "lrevoked"),
    @JsonSubTypes.Type(value = KvResult.LeaseCheckpointed.class, name = "lchecked"),
    @JsonSubTypes.Type(value = KvResult.LeaseInfo.class, name = "linfo"),
    @JsonSubTypes.Type(value = KvResult.Leases.class, name = "leases"),
    @JsonSubTypes.Type(value = KvResult.LeaseKeptAlive.class, name = "lkept"),
    @JsonSubTypes.Type(value = KvResult.Unavailable.class, name = "unavailable")})
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

  /**
   * A {@link KvCommand.Fenced} command's token no longer holds lock {@code lock}; nothing changed.
   * {@code holderToken} is the current holder's token, 0 when nobody holds the lock.
   */
  record FenceFailed(String lock, long holderToken) implements KvResult {}

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

  /** The node cannot answer now (not the leader, or not yet ready); nothing changed: retry. */
  record Unavailable(String reason) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Unavailable {}
  }

  /** Lease {@code id} was granted for {@code ttlSeconds}. */
  record LeaseGranted(long id, long ttlSeconds) implements KvResult {}

  /** A grant named a lease id that exists; nothing changed. */
  record LeaseExists(long id) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseExists {}
  }

  /** The lease does not exist (never granted, revoked or expired); nothing was applied. */
  record LeaseNotFound(long id) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseNotFound {}
  }

  /** The lease is gone with its keys: {@code deleted} of them, at {@code revision} (unchanged when none). */
  record LeaseRevoked(long revision, long deleted) implements KvResult {}

  /** A checkpoint was recorded (or ignored as stale). */
  record LeaseCheckpointed(long id) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseCheckpointed {}
  }

  /**
   * A lease: its granted TTL, the remaining time as the leader knows it ({@code remainingMillis}, -1
   * when not asked of the leader), and its keys in key order.
   */
  record LeaseInfo(long id, long ttlSeconds, long remainingMillis, List<String> keys) implements KvResult {}

  /** Every lease's id and granted TTL, by id. */
  record Leases(List<LeaseInfo> leases) implements KvResult {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Leases {}
  }

  /** The lease was renewed: it lives another {@code ttlSeconds} from now. */
  record LeaseKeptAlive(long id, long ttlSeconds) implements KvResult {}

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
