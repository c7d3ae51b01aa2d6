package raftkv.kv;

import raftkv.CborSerializable;

/** A key with its value and the etcd-style bookkeeping of API.md §2. */
public record KeyValue(String key, byte[] value, long createRevision, long modRevision, long version, long lease)
    implements CborSerializable {}
