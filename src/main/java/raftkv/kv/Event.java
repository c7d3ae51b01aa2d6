package raftkv.kv;

/**
 * One change to one key at one revision, as a watch reports it (API.md §4, DESIGN.md §6). For a put
 * {@code kv} is the key as it is after the change; for a delete it is the key with {@code
 * modRevision} the deletion's revision and no value, createRevision or version, as etcd reports a
 * deletion. {@code prevKv} is the key as it was before the change, null when it did not exist.
 */
public record Event(Type type, KeyValue kv, KeyValue prevKv) {

  public enum Type { PUT, DELETE }

  /** The event without its {@code prevKv}: what a watch sends unless asked for the previous values. */
  public Event withoutPrevKv() {
    return prevKv == null ? this : new Event(type, kv, null);
  }
}
