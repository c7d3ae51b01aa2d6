package raftkv.client;

/**
 * What to watch (API.md §4): {@code key}, or every key starting with it when {@code prefix} (an
 * empty prefix watches every key); from {@code fromRevision} on, inclusive (0: after the current
 * revision); with each event's previous key-value when {@code prevKv}.
 */
public record WatchRequest(String key, boolean prefix, long fromRevision, boolean prevKv) {
  public static WatchRequest key(String key) {
    return new WatchRequest(key, false, 0, false);
  }

  public static WatchRequest prefix(String prefix) {
    return new WatchRequest(prefix, true, 0, false);
  }

  public WatchRequest from(long revision) {
    return new WatchRequest(key, prefix, revision, prevKv);
  }

  public WatchRequest withPrevKv() {
    return new WatchRequest(key, prefix, fromRevision, true);
  }

  /** Whether {@code k} is one of the watched keys. */
  public boolean matches(String k) {
    return prefix ? k.startsWith(key) : k.equals(key);
  }
}
