package raftkv.kv;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.LongFunction;

/**
 * The key-value state machine: the keys, their etcd-style bookkeeping (API.md §2) and the store
 * revision. It is applied from the Raft log on every node, so it is deterministic: two stores fed
 * the same commands in the same order are {@linkplain #sameContent equal}, and so are their
 * {@linkplain #snapshot snapshots}, byte for byte.
 *
 * <p>Every change bumps the store revision by one; a command that changes nothing (a failed
 * precondition, a delete that finds no key, a transaction whose branch only reads) leaves it as it
 * is. Keys are kept in the byte order of their UTF-8 encoding ({@link #KEY_ORDER}).
 *
 * <p>Not thread-safe: one owner applies commands and answers queries. The store keeps the value
 * arrays of the commands it applies and hands them out in its results without copying them;
 * neither side may modify them afterwards.
 *
 * <p>The store does not validate its input: KvLimits (client) does that before a command is
 * proposed to the log.
 */
public final class KvStore {

  /**
   * The order of keys: the byte order of their UTF-8 encoding, which is the order of their Unicode
   * code points. {@link String#compareTo} compares UTF-16 code units instead and puts U+E000..U+FFFF
   * after the supplementary characters; this comparator does not.
   */
  public static final Comparator<String> KEY_ORDER = KvStore::compareKeys;

  /** First int of a snapshot: "RKVS". */
  static final int SNAPSHOT_MAGIC = 0x524B5653;

  /** The snapshot layout that {@link #snapshot()} writes and {@link #restore} reads. */
  static final int SNAPSHOT_FORMAT = 1;

  private final TreeMap<String, KeyValue> entries = new TreeMap<>(KEY_ORDER);
  private long revision;
  /** Idempotency records (never evicted here: the reference model keeps them all). */
  private final java.util.HashMap<String, Object[]> idempotency = new java.util.HashMap<>();
  /** Leases by id: their granted TTL. */
  private final TreeMap<Long, Long> leases = new TreeMap<>();

  /** An empty store at revision 0. */
  public KvStore() {}

  /** The store revision: the revision of the latest change, 0 when nothing ever changed. */
  public long revision() {
    return revision;
  }

  /** The number of keys. */
  public int size() {
    return entries.size();
  }

  /**
   * Applies one command from the log.
   *
   * @return a {@link KvResult.PutDone}, {@link KvResult.DeleteDone} or {@link KvResult.TxnDone};
   *     or a {@link KvResult.PreconditionFailed} when a Put or Delete precondition does not hold,
   *     in which case nothing changed
   */
  public KvResult apply(KvCommand command) {
    Objects.requireNonNull(command, "command");
    if (command instanceof KvCommand.Put put) {
      return put(put);
    } else if (command instanceof KvCommand.Delete delete) {
      return delete(delete);
    } else if (command instanceof KvCommand.Txn txn) {
      return txn(txn);
    } else if (command instanceof KvCommand.LeaseGrant grant) {
      if (grant.id() <= 0 || grant.ttlSeconds() <= 0) {
        throw new IllegalArgumentException("a lease grant needs a positive id and TTL, not " + grant);
      }
      if (leases.containsKey(grant.id())) {
        return new KvResult.LeaseExists(grant.id());
      }
      leases.put(grant.id(), grant.ttlSeconds());
      return new KvResult.LeaseGranted(grant.id(), grant.ttlSeconds());
    } else if (command instanceof KvCommand.LeaseCheckpoint checkpoint) {
      return leases.containsKey(checkpoint.id()) ? new KvResult.LeaseCheckpointed(checkpoint.id())
          : new KvResult.LeaseNotFound(checkpoint.id());
    } else if (command instanceof KvCommand.LeaseRevoke revoke) {
      if (leases.remove(revoke.id()) == null) {
        return new KvResult.LeaseNotFound(revoke.id());
      }
      List<String> attached = entries.values().stream().filter(kv -> kv.lease() == revoke.id()).map(KeyValue::key).toList();
      attached.forEach(entries::remove);
      if (!attached.isEmpty()) {
        revision++;
      }
      return new KvResult.LeaseRevoked(revision, attached.size());
    } else if (command instanceof KvCommand.Fenced fenced) {
      long holder = lockHolder(fenced.lock());
      return holder != 0 && holder == fenced.token() ? apply(fenced.command())
          : new KvResult.FenceFailed(fenced.lock(), holder);
    } else if (command instanceof KvCommand.Idempotent idem) {
      Object[] record = idempotency.get(idem.key());
      if (record != null) {
        return java.util.Arrays.equals((byte[]) record[0], idem.fingerprint())
            ? new KvResult.Replayed((KvResult) record[1]) : new KvResult.IdempotencyKeyReused(idem.key());
      }
      if (idem.command() instanceof KvCommand.Idempotent) {
        throw new IllegalArgumentException("an idempotent command cannot hold another");
      }
      KvResult result = apply(idem.command());
      idempotency.put(idem.key(), new Object[] {idem.fingerprint().clone(), result});
      return result;
    }
    throw new IllegalArgumentException("unknown command " + command.getClass().getName());
  }

  /**
   * Answers a read from the current state; it changes nothing.
   *
   * @return a {@link KvResult.GetDone} or a {@link KvResult.RangeDone}, at the current revision
   */
  public KvResult query(KvQuery query) {
    Objects.requireNonNull(query, "query");
    if (query instanceof KvQuery.Get get) {
      return new KvResult.GetDone(revision, entries.get(get.key()));
    } else if (query instanceof KvQuery.Range range) {
      return range(range);
    } else if (query instanceof KvQuery.LeaseGet get) {
      Long ttl = leases.get(get.id());
      return ttl == null ? new KvResult.LeaseNotFound(get.id()) : new KvResult.LeaseInfo(get.id(), ttl, -1,
          entries.values().stream().filter(kv -> kv.lease() == get.id()).map(KeyValue::key).toList());
    } else if (query instanceof KvQuery.LeaseList) {
      return new KvResult.Leases(leases.entrySet().stream()
          .map(e -> new KvResult.LeaseInfo(e.getKey(), e.getValue(), -1, List.of())).toList());
    } else if (query instanceof KvQuery.LeaseKeepAlive keep) {
      Long ttl = leases.get(keep.id());
      return ttl == null ? new KvResult.LeaseNotFound(keep.id()) : new KvResult.LeaseKeptAlive(keep.id(), ttl);
    }
    throw new IllegalArgumentException("unknown query " + query.getClass().getName());
  }

  private KvResult put(KvCommand.Put put) {
    if (put.lease() != 0 && !leases.containsKey(put.lease())) {
      return new KvResult.LeaseNotFound(put.lease());
    }
    KeyValue current = entries.get(put.key());
    long currentModRevision = current == null ? 0 : current.modRevision();
    boolean modRevisionMismatch =
        put.ifModRevision() != null && put.ifModRevision() != currentModRevision;
    if (modRevisionMismatch || (put.ifAbsent() && current != null)) {
      return new KvResult.PreconditionFailed(currentModRevision);
    }
    revision++;
    write(put.key(), put.value(), put.lease(), revision);
    return new KvResult.PutDone(revision, current == null ? null : current.modRevision());
  }

  private KvResult delete(KvCommand.Delete delete) {
    if (delete.prefix()) {
      // ifModRevision has no meaning for a prefix (KvCommand.Delete); KvLimits rejects the mix.
      long deleted = removePrefix(delete.key());
      if (deleted > 0) {
        revision++;
      }
      return new KvResult.DeleteDone(revision, deleted);
    }
    KeyValue current = entries.get(delete.key());
    long currentModRevision = current == null ? 0 : current.modRevision();
    if (delete.ifModRevision() != null && delete.ifModRevision() != currentModRevision) {
      return new KvResult.PreconditionFailed(currentModRevision);
    }
    if (current == null) {
      return new KvResult.DeleteDone(revision, 0);
    }
    entries.remove(delete.key());
    revision++;
    return new KvResult.DeleteDone(revision, 1);
  }

  private KvResult txn(KvCommand.Txn txn) {
    boolean succeeded = true;
    for (Compare compare : orEmpty(txn.compare())) {
      if (!holds(compare)) {
        succeeded = false;
        break;
      }
    }
    List<TxnOp> ops = orEmpty(succeeded ? txn.success() : txn.failure());
    for (TxnOp op : ops) {
      if (op instanceof TxnOp.Put put && put.lease() != 0 && !leases.containsKey(put.lease())) {
        return new KvResult.LeaseNotFound(put.lease());
      }
    }
    // Every write of the branch carries the next revision; it becomes the store revision only if
    // the branch changed something. Results wait for that answer.
    long next = revision + 1;
    boolean changed = false;
    List<LongFunction<KvResult>> results = new ArrayList<>(ops.size());
    for (TxnOp op : ops) {
      if (op instanceof TxnOp.Put put) {
        KeyValue previous = write(put.key(), put.value(), put.lease(), next);
        Long prevModRevision = previous == null ? null : previous.modRevision();
        changed = true;
        results.add(rev -> new KvResult.PutDone(rev, prevModRevision));
      } else if (op instanceof TxnOp.Get get) {
        KeyValue kv = entries.get(get.key());
        results.add(rev -> new KvResult.GetDone(rev, kv));
      } else if (op instanceof TxnOp.Delete delete) {
        long deleted = delete.prefix()
            ? removePrefix(delete.key())
            : (entries.remove(delete.key()) == null ? 0 : 1);
        changed |= deleted > 0;
        results.add(rev -> new KvResult.DeleteDone(rev, deleted));
      } else {
        throw new IllegalArgumentException("unknown txn op " + op.getClass().getName());
      }
    }
    if (changed) {
      revision = next;
    }
    List<KvResult> done = new ArrayList<>(results.size());
    for (LongFunction<KvResult> result : results) {
      done.add(result.apply(revision));
    }
    return new KvResult.TxnDone(succeeded, revision, List.copyOf(done));
  }

  private boolean holds(Compare compare) {
    KeyValue kv = entries.get(compare.key());
    int order;
    if (compare.target() == Compare.Target.LOCK) {
      order = Long.compare(lockHolder(compare.key()), compare.number());
    } else if (compare.target() == Compare.Target.VALUE) {
      order = compareValues(kv == null ? null : kv.value(), compare.value());
    } else {
      long actual = kv == null ? 0 : switch (compare.target()) {
        case VERSION -> kv.version();
        case CREATE_REVISION -> kv.createRevision();
        case MOD_REVISION -> kv.modRevision();
        case LEASE -> kv.lease();
        case VALUE, LOCK -> throw new AssertionError("handled above");
      };
      order = Long.compare(actual, compare.number());
    }
    return switch (compare.op()) {
      case EQUAL -> order == 0;
      case NOT_EQUAL -> order != 0;
      case LESS -> order < 0;
      case GREATER -> order > 0;
    };
  }

  /** The fencing token of {@code lock}: the lowest create revision under {@code lock + "/"}, 0 when none. */
  private long lockHolder(String lock) {
    String prefix = lock + "/";
    long lowest = 0;
    for (KeyValue kv : entries.tailMap(prefix, true).values()) {
      if (!kv.key().startsWith(prefix)) {
        break;
      }
      lowest = lowest == 0 ? kv.createRevision() : Math.min(lowest, kv.createRevision());
    }
    return lowest;
  }

  /** Null (a missing key) sorts before every array; arrays compare as unsigned bytes. */
  private static int compareValues(byte[] a, byte[] b) {
    if (a == null || b == null) {
      return a == b ? 0 : (a == null ? -1 : 1);
    }
    return Arrays.compareUnsigned(a, b);
  }

  /** Puts {@code value} under {@code key} at {@code rev}; returns the entry it replaced, if any. */
  private KeyValue write(String key, byte[] value, long lease, long rev) {
    KeyValue[] previous = new KeyValue[1];
    // one walk down the tree (TreeMap.compute), not a get and a put
    entries.compute(key, (k, old) -> {
      previous[0] = old;
      return old == null
          ? new KeyValue(k, value, rev, rev, 1, lease)
          : new KeyValue(k, value, old.createRevision(), rev, old.version() + 1, lease);
    });
    return previous[0];
  }

  /** Removes every key starting with {@code prefix}; returns how many went. */
  private long removePrefix(String prefix) {
    long removed = 0;
    Iterator<String> keys = entries.tailMap(prefix, true).keySet().iterator();
    while (keys.hasNext() && keys.next().startsWith(prefix)) {
      keys.remove();
      removed++;
    }
    return removed;
  }

  private KvResult range(KvQuery.Range range) {
    String prefix = range.prefix() == null ? "" : range.prefix();
    String after = range.after();
    // Keys with a prefix are one contiguous run of the order, starting at the prefix itself.
    NavigableMap<String, KeyValue> from = after != null && KEY_ORDER.compare(after, prefix) >= 0
        ? entries.tailMap(after, false)
        : entries.tailMap(prefix, true);
    int limit = range.limit();
    List<KeyValue> kvs = new ArrayList<>();
    boolean more = false;
    for (KeyValue kv : from.values()) {
      if (!kv.key().startsWith(prefix)) {
        break;
      }
      if (limit > 0 && kvs.size() == limit) {
        more = true;
        break;
      }
      kvs.add(kv);
    }
    return new KvResult.RangeDone(revision, List.copyOf(kvs), more);
  }

  /**
   * Whether both stores hold the same revision and the same keys with equal values and
   * bookkeeping. (Records compare arrays by identity, so {@link KeyValue#equals} cannot tell.)
   */
  public boolean sameContent(KvStore other) {
    if (other == this) {
      return true;
    }
    if (other == null || revision != other.revision || entries.size() != other.entries.size()) {
      return false;
    }
    Iterator<KeyValue> theirs = other.entries.values().iterator();
    for (KeyValue mine : entries.values()) {
      if (!sameKeyValue(mine, theirs.next())) {
        return false;
      }
    }
    return true;
  }

  private static boolean sameKeyValue(KeyValue a, KeyValue b) {
    return a.key().equals(b.key())
        && Arrays.equals(a.value(), b.value())
        && a.createRevision() == b.createRevision()
        && a.modRevision() == b.modRevision()
        && a.version() == b.version()
        && a.lease() == b.lease();
  }

  /**
   * The whole state as bytes: magic ({@code "RKVS"}), format version, revision, key count, then
   * per key in key order its key (length + UTF-8), value (length + bytes, -1 for null),
   * createRevision, modRevision, version and lease. Equal stores give equal bytes.
   */
  public byte[] snapshot() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(SNAPSHOT_MAGIC);
      out.writeInt(SNAPSHOT_FORMAT);
      out.writeLong(revision);
      out.writeInt(entries.size());
      for (KeyValue kv : entries.values()) {
        byte[] key = encodeKey(kv.key());
        out.writeInt(key.length);
        out.write(key);
        if (kv.value() == null) {
          out.writeInt(-1);
        } else {
          out.writeInt(kv.value().length);
          out.write(kv.value());
        }
        out.writeLong(kv.createRevision());
        out.writeLong(kv.modRevision());
        out.writeLong(kv.version());
        out.writeLong(kv.lease());
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot happen: writing to memory failed", e);
    }
    return bytes.toByteArray();
  }

  /**
   * Rebuilds a store from {@link #snapshot()} bytes.
   *
   * @throws IllegalArgumentException with a one-line reason when the bytes are not a snapshot of a
   *     format this build reads, are truncated, or are inconsistent
   */
  public static KvStore restore(byte[] bytes) {
    Objects.requireNonNull(bytes, "bytes");
    ByteArrayInputStream source = new ByteArrayInputStream(bytes);
    DataInputStream in = new DataInputStream(source);
    try {
      int magic = in.readInt();
      if (magic != SNAPSHOT_MAGIC) {
        throw new IllegalArgumentException(String.format(
            "not a raftkv snapshot: magic is 0x%08x, expected 0x%08x", magic, SNAPSHOT_MAGIC));
      }
      int format = in.readInt();
      if (format != SNAPSHOT_FORMAT) {
        throw new IllegalArgumentException(
            "snapshot format " + format + " is not supported, this build reads format " + SNAPSHOT_FORMAT);
      }
      KvStore store = new KvStore();
      store.revision = in.readLong();
      int count = in.readInt();
      if (store.revision < 0 || count < 0) {
        throw new IllegalArgumentException(
            "snapshot is corrupt: revision " + store.revision + ", key count " + count);
      }
      String previousKey = null;
      for (int i = 0; i < count; i++) {
        String key = decodeKey(readBytes(in, source, in.readInt()));
        if (previousKey != null && KEY_ORDER.compare(previousKey, key) >= 0) {
          throw new IllegalArgumentException("snapshot is corrupt: keys are not in order at key " + i);
        }
        int valueLength = in.readInt();
        byte[] value = valueLength == -1 ? null : readBytes(in, source, valueLength);
        store.entries.put(key, new KeyValue(key, value, in.readLong(), in.readLong(), in.readLong(), in.readLong()));
        previousKey = key;
      }
      if (source.available() > 0) {
        throw new IllegalArgumentException(
            "snapshot is corrupt: " + source.available() + " bytes follow the last key");
      }
      return store;
    } catch (EOFException e) {
      throw new IllegalArgumentException("snapshot is truncated", e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot happen: reading from memory failed", e);
    }
  }

  private static byte[] readBytes(DataInputStream in, ByteArrayInputStream source, int length)
      throws IOException {
    if (length < 0 || length > source.available()) {
      throw new IllegalArgumentException(
          "snapshot is corrupt: a length of " + length + " exceeds the bytes left");
    }
    byte[] bytes = new byte[length];
    in.readFully(bytes);
    return bytes;
  }

  private static int compareKeys(String a, String b) {
    int common = Math.min(a.length(), b.length());
    for (int i = 0; i < common; i++) {
      char x = a.charAt(i);
      char y = b.charAt(i);
      if (x != y) {
        return Integer.compare(codePointRank(x), codePointRank(y));
      }
    }
    return Integer.compare(a.length(), b.length());
  }

  /**
   * Ranks UTF-16 code units so that comparing ranks at the first difference orders strings by
   * code point: surrogates (which only start supplementary characters) move above U+E000..U+FFFF.
   */
  private static int codePointRank(char c) {
    if (c < Character.MIN_SURROGATE) {
      return c;
    }
    return Character.isSurrogate(c) ? c + 0x2000 : c - 0x800;
  }

  /** The number of bytes of the UTF-8 encoding of {@code s} (an unpaired surrogate counts 3). */
  static int utf8Length(String s) {
    int length = 0;
    for (int i = 0; i < s.length(); ) {
      int codePoint = s.codePointAt(i);
      length += utf8Length(codePoint);
      i += Character.charCount(codePoint);
    }
    return length;
  }

  private static int utf8Length(int codePoint) {
    if (codePoint < 0x80) {
      return 1;
    } else if (codePoint < 0x800) {
      return 2;
    } else if (codePoint < 0x10000) {
      return 3;
    }
    return 4;
  }

  /** UTF-8, an unpaired surrogate as its own three-byte sequence: KvDb's key encoding. */
  private static byte[] encodeKey(String key) {
    return KvDb.encodeKey(key, 0);
  }

  private static String decodeKey(byte[] bytes) {
    try {
      return KvDb.decodeKey(bytes, 0);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("snapshot is corrupt: " + e.getMessage());
    }
  }

  @Override
  public String toString() {
    return "KvStore[revision=" + revision + ", keys=" + entries.size() + "]";
  }

  private static <T> List<T> orEmpty(List<T> list) {
    return list == null ? List.of() : list;
  }
}
