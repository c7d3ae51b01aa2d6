package raftkv.kv;

import raftkv.CborSerializable;

/**
 * One comparison of a transaction (API.md §3). A missing key compares as version 0,
 * createRevision 0, modRevision 0, lease 0 and value null. LOCK compares the fencing token of the
 * lock named by {@code key} (the create revision of the lowest key under {@code key + "/"}; 0 when
 * nobody holds it) with {@code number} (API.md §3, "Fenced writes").
 *
 * @param target which attribute of the key is compared
 * @param op     how it is compared
 * @param number the operand for VERSION, CREATE_REVISION, MOD_REVISION, LEASE and LOCK
 * @param value  the operand for VALUE (null compares equal only to a missing key)
 */
public record Compare(String key, Target target, Op op, long number, byte[] value) implements CborSerializable {

  public enum Target { VALUE, VERSION, CREATE_REVISION, MOD_REVISION, LEASE, LOCK }

  public enum Op { EQUAL, NOT_EQUAL, LESS, GREATER }
}
