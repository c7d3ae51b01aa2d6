package raftkv.kv;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import raftkv.CborSerializable;

/** A read of the state machine; it changes nothing. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "t")
@JsonSubTypes({
    @JsonSubTypes.Type(value = KvQuery.Get.class, name = "get"),
    @JsonSubTypes.Type(value = KvQuery.Range.class, name = "range"),
    @JsonSubTypes.Type(value = KvQuery.History.class, name = "history"),
    @JsonSubTypes.Type(value = KvQuery.LeaseGet.class, name = "lget"),
    @JsonSubTypes.Type(value = KvQuery.LeaseList.class, name = "llist"),
    @JsonSubTypes.Type(value = KvQuery.LeaseKeepAlive.class, name = "lkeep")})
public sealed interface KvQuery extends CborSerializable {
  record Get(String key) implements KvQuery {
    /** Jackson 2.11 cannot tell a one-component record's constructor from a delegating creator. */
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Get {}
  }

  /**
   * Keys starting with {@code prefix} (empty: all keys), in byte order of their UTF-8 encoding,
   * strictly after {@code after} when it is not null, at most {@code limit} of them (0: no limit).
   */
  record Range(String prefix, String after, int limit) implements KvQuery {}

  /**
   * The kept history of changes (for watches, DESIGN.md §6): the revisions from {@code
   * fromRevision} on whose events touch {@code key} (or, with {@code prefix}, a key starting with
   * it), reading at most {@code maxRevisions} revisions of history. Answered with a {@link
   * KvResult.HistoryDone}.
   */
  record History(String key, boolean prefix, long fromRevision, int maxRevisions) implements KvQuery {}

  /** Lease {@code id} with the keys attached to it: {@link KvResult.LeaseInfo} or {@link KvResult.LeaseNotFound}. */
  record LeaseGet(long id) implements KvQuery {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseGet {}
  }

  /** Every lease: {@link KvResult.Leases}. */
  record LeaseList(boolean all) implements KvQuery {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseList {}
  }

  /**
   * Renews lease {@code id} on the leader, which must have confirmed its leadership (a ReadIndex
   * read): {@link KvResult.LeaseKeptAlive} or {@link KvResult.LeaseNotFound}. It writes nothing to
   * the log; only the leader's lease keeper changes.
   */
  record LeaseKeepAlive(long id) implements KvQuery {
    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LeaseKeepAlive {}
  }
}
