package raftkv.kv;

import raftkv.CborSerializable;

/**
 * One comparison of a transaction (API.md §3). A missing key compares as version 0,
 * createRevision 0, modRevision 0, lease 0 and value null.
 *
 * @param target which attribute of the key is compared
 * @param op     how it is compared
 * @param number the operand for VERSION, CREATE_REVISION, MOD_REVISION and LEASE
 * @param value  the operand for VALUE (null compares equal only to a missing key)
 */
public record Compare(String key, Target target, Op op, long number, byte[] value) implements CborSerializable {

  public enum Target { VALUE, VERSION, CREATE_REVISION, MOD_REVISION, LEASE }

  public enum Op { EQUAL, NOT_EQUAL, LESS, GREATER }
}
