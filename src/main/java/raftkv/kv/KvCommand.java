package raftkv.kv;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import raftkv.CborSerializable;

import java.util.List;

/**
 * A change to the key-value state machine. Commands are written into the Raft log, so they must be
 * deterministic: applying the same sequence of commands to two empty stores gives equal stores.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "t")
@JsonSubTypes({
    @JsonSubTypes.Type(value = KvCommand.Put.class, name = "put"),
    @JsonSubTypes.Type(value = KvCommand.Delete.class, name = "del"),
    @JsonSubTypes.Type(value = KvCommand.Txn.class, name = "txn"),
    @JsonSubTypes.Type(value = KvCommand.Idempotent.class, name = "idem"),
    @JsonSubTypes.Type(value = KvCommand.Fenced.class, name = "fenced"),
    @JsonSubTypes.Type(value = KvCommand.LeaseGrant.class, name = "lgrant"),
    @JsonSubTypes.Type(value = KvCommand.LeaseRevoke.class, name = "lrevoke"),
    @JsonSubTypes.Type(value = KvCommand.LeaseCheckpoint.class, name = "lcheck")})
public sealed interface KvCommand extends CborSerializable {

  /**
   * Puts {@code value} under {@code key}. {@code lease} is 0 for none.
   * {@code ifModRevision}: when not null, apply only if the key's current modRevision equals it
   * (0 means "the key must be absent"); {@code ifAbsent}: apply only when the key does not exist.
   * A failed precondition yields {@link KvResult.PreconditionFailed} and changes nothing.
   */
  record Put(String key, byte[] value, long lease, Long ifModRevision, boolean ifAbsent) implements KvCommand {
    public static Put of(String key, byte[] value) {
      return new Put(key, value, 0L, null, false);
    }
  }

  /**
   * Deletes {@code key}, or every key starting with {@code key} when {@code prefix} is true.
   * {@code ifModRevision} as for Put (only meaningful without prefix).
   */
  record Delete(String key, boolean prefix, Long ifModRevision) implements KvCommand {
    public static Delete of(String key) {
      return new Delete(key, false, null);
    }
  }

  /** All compares true: apply {@code success}, else {@code failure}; atomically, one revision. */
  record Txn(List<Compare> compare, List<TxnOp> success, List<TxnOp> failure) implements KvCommand {}

  /**
   * {@code command} under a client's idempotency key (API.md §3): applied at most once per key.
   * When the state machine already holds a record of {@code key} with the same {@code
   * fingerprint} (a digest of the request), it answers {@link KvResult.Replayed} with the first
   * result and changes nothing; with another fingerprint, {@link KvResult.IdempotencyKeyReused}.
   * Records are kept for at least the configured retention, by the time stamped into entries.
   */
  record Idempotent(String key, byte[] fingerprint, KvCommand command) implements KvCommand {}

  /**
   * {@code command} (a Put, a Delete or a Txn) applied only while {@code token} is the fencing
   * token of lock {@code lock} (API.md §3, "Fenced writes"): the create revision of the holder,
   * which is the key with the lowest create revision under {@code lock + "/"}. Otherwise {@link
   * KvResult.FenceFailed} with the holder's token (0 when nobody holds it), and nothing changes.
   */
  record Fenced(String lock, long token, KvCommand command) implements KvCommand {}

  /**
   * Grants lease {@code id} (positive, chosen by the proposer) for {@code ttlSeconds}: {@link
   * KvResult.LeaseGranted}, or {@link KvResult.LeaseExists} when the id is taken. A grant makes no
   * revision.
   */
  record LeaseGrant(long id, long ttlSeconds) implements KvCommand {}

  /**
   * Revokes lease {@code id}, deleting every key attached to it at one revision. {@code
   * expiryTerm} is 0 for a client's revoke; for an expiry it is the term of the leader that saw the
   * lease expire, and the revoke is ignored ({@link KvResult.LeaseNotFound}) when the lease was
   * granted or checkpointed in a later term (the premise is stale, DESIGN.md §5).
   */
  record LeaseRevoke(long id, long expiryTerm) implements KvCommand {}

  /**
   * The leader's record of lease {@code id}'s remaining time, so that a new leader does not give a
   * long lease its whole TTL again. {@code term} is the proposer's.
   */
  record LeaseCheckpoint(long id, long remainingMillis, long term) implements KvCommand {}
}
