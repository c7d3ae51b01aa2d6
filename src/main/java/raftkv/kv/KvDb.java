package raftkv.kv;

import org.fusesource.leveldbjni.JniDBFactory;
import org.iq80.leveldb.CompressionType;
import org.iq80.leveldb.DB;
import org.iq80.leveldb.DBIterator;
import org.iq80.leveldb.Options;
import org.iq80.leveldb.ReadOptions;
import org.iq80.leveldb.Snapshot;
import org.iq80.leveldb.WriteBatch;
import org.iq80.leveldb.WriteOptions;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * The key-value state machine on disk (DESIGN.md §3): the same keys, bookkeeping and revisions as
 * the in-memory reference {@link KvStore}, kept in a LevelDB of its own (not the Akka journal), so
 * the heap stays flat whatever the data size and a restart replays only the log after {@link
 * #appliedIndex()}.
 *
 * <p>Layout: every key is one LevelDB record under {@code 'k'} + its UTF-8 bytes (as {@link
 * KvStore} encodes keys, so LevelDB's bytewise order is {@link KvStore#KEY_ORDER}), holding a value
 * record (a null-value flag, createRevision, modRevision, version and lease as varints, then the
 * value's bytes). One meta record under {@code 'm'} holds a magic, the format, the applied index
 * and term, the store revision and the key count; it is written in the same atomic WriteBatch as
 * the changes it accounts for, so the database is always at the end of some applied entry.
 *
 * <p>Changes go through a {@link Batch}: commands applied to it read their own earlier writes from
 * an in-memory overlay, and {@link Batch#commit} writes them all with the meta record in one
 * unsynced write; {@link #sync()} makes everything committed durable (LevelDB's log is written in
 * order, so one synced write of the meta record flushes all before it).
 *
 * <p>Threading: one thread applies batches, answers {@link #query}s, syncs, restores and closes. A
 * {@link View} (a LevelDB snapshot) may be written on any thread while batches keep committing,
 * and the applied index, term, revision and key count may be read from any thread (for status).
 * Closing the database while views are open defers LevelDB's own close to the last view's
 * close, so a view never reads a closed database.
 *
 * <p>Keys are expected well-formed (KvLimits refuses unpaired surrogates). For one with an unpaired
 * surrogate the store still round-trips it, but orders it by its three-byte encoding, where the
 * in-memory store's comparator puts it elsewhere.
 */
public final class KvDb implements AutoCloseable {

  /** First int of the meta record: "RKVM". */
  static final int META_MAGIC = 0x524B564D;
  /** The layout of the records and of the meta record this build writes and reads. */
  static final int META_FORMAT = 2;
  /** Format 1 (before watches): no history, compact revision and time; read, and written as 2 from then on. */
  static final int META_FORMAT_1 = 1;
  /** First int of a {@link View#writeTo} stream: "RKVD". */
  static final int STREAM_MAGIC = 0x524B5644;
  /** Format 2 adds the time, the idempotency records and their sequence; format 1 is still read. */
  static final int STREAM_FORMAT = 2;
  static final int STREAM_FORMAT_1 = 1;
  /** The int after a stream's last key: "RKVE". */
  static final int STREAM_END = 0x524B5645;

  private static final byte DATA = 'k';
  /** History records: {@code 'h'} + the revision as 8 bytes big-endian. */
  private static final byte HISTORY = 'h';
  /** Idempotency records: {@code 'i'} + the client's key in UTF-8. */
  private static final byte IDEMPOTENCY = 'i';
  /** The idempotency records in the order they were made: {@code 'j'} + time + sequence (8 bytes each) → the key. */
  private static final byte IDEMPOTENCY_ORDER = 'j';
  private static final byte[] IDEMPOTENCY_START = {IDEMPOTENCY};
  private static final byte[] IDEMPOTENCY_ORDER_START = {IDEMPOTENCY_ORDER};
  /** Leases: {@code 'L'} + id (8 bytes) → granted TTL (s), term of the last grant or checkpoint, checkpointed remaining ms (-1: none). */
  private static final byte LEASE = 'L';
  /** The keys attached to a lease: {@code 'l'} + id (8 bytes) + the key's UTF-8 → nothing. */
  private static final byte LEASE_KEY = 'l';
  private static final int LEASE_RECORD_BYTES = 24;
  /** A first result larger than this is not kept: a retry learns it was applied, not what it answered. */
  public static final int MAX_KEPT_RESULT_BYTES = 256 * 1024;
  /** A commit deletes at most this many history records, so that a change of retention cannot make one huge write. */
  static final int MAX_COMPACT_STEP = 10_000;
  /** A history read collects at most about this many bytes of keys and values. */
  static final int MAX_HISTORY_READ_BYTES = 1 << 20;
  private static final byte[] META_KEY = {'m'};
  private static final byte[] DATA_START = {DATA};
  private static final int META_BYTES_1 = 4 + 4 + 4 * 8;
  private static final int META_BYTES = 4 + 4 + 9 * 8;

  private static final String RESTORING = ".restoring";
  private static final String OLD = ".old";

  /** How long a restore waits for views of the database it replaces to be closed. */
  private static final long VIEW_WAIT_MILLIS = 30_000;
  /** A restore writes its keys in WriteBatches of about this many bytes. */
  private static final int RESTORE_BATCH_BYTES = 1 << 20;

  private final Path dir;
  private final ReadOptions reads = new ReadOptions();
  private final WriteOptions unsynced = new WriteOptions().sync(false);
  private final WriteOptions synced = new WriteOptions().sync(true);

  private Handle handle;
  // volatile: status pages read them from other threads; only the owning thread writes them
  private volatile long appliedIndex;
  private volatile long appliedTerm;
  private volatile long revision;
  private volatile long keyCount;
  /** The newest revision no longer in the history: the history holds (compactRevision, revision]. */
  private volatile long compactRevision;
  /** The time stamped into the last entry applied (ms), never going back: what history retention counts from. */
  private long time;
  /** Idempotency records on disk (some may be past retention, awaiting deletion), and the last sequence given one. */
  private long idemCount;
  private long idemSeq;
  private long leaseCount;
  /** The time of the oldest idempotency record on disk, -1 when not known. */
  private long oldestIdemTime = -1;
  private final Retention retention;
  /** The time of history record {@code oldestTimeOf}, cached so that a commit does not read it again. */
  private long oldestTime;
  private long oldestTimeOf = -1;
  /** Counts commits and restores; a batch begun before either cannot commit after it. */
  private long generation;
  private boolean closed;

  private KvDb(Path dir, Handle handle, Meta meta, Retention retention) {
    this.dir = dir;
    this.handle = handle;
    this.retention = retention;
    adopt(meta);
  }

  /**
   * How much history of changes a database keeps for watches: a revision leaves the history once
   * more than {@code revisions} newer ones exist, or once it is older than {@code millis} by the
   * time stamped into the entries (0: no limit by time).
   */
  public record Retention(long revisions, long millis, long idempotencyMillis, long idempotencyRecords) {
    public static final Retention DEFAULT = new Retention(100_000, 3_600_000, 600_000, 100_000);

    public Retention {
      if (revisions < 1 || millis < 0) {
        throw new IllegalArgumentException("history retention needs at least 1 revision and a time of 0 or more, not "
            + revisions + " revisions and " + millis + " ms");
      }
      if (idempotencyMillis < 1 || idempotencyRecords < 1) {
        throw new IllegalArgumentException("idempotency retention needs a time and a count of at least 1, not "
            + idempotencyMillis + " ms and " + idempotencyRecords + " records");
      }
    }

    /** History retention as given, idempotency records as by default. */
    public Retention(long revisions, long millis) {
      this(revisions, millis, DEFAULT_IDEMPOTENCY_MILLIS, DEFAULT_IDEMPOTENCY_RECORDS);
    }

    private static final long DEFAULT_IDEMPOTENCY_MILLIS = 600_000;
    private static final long DEFAULT_IDEMPOTENCY_RECORDS = 100_000;
  }

  /**
   * Opens the KV database in {@code dir}, creating it when {@code dir} is absent or empty. First
   * finishes a {@link #restore} that a crash interrupted (see {@link #finishInterruptedRestore})
   * and removes what a restore leaves behind.
   *
   * @throws IllegalStateException with a one-line reason naming {@code dir} when it holds something
   *     other than a raftkv KV database (files that are no LevelDB, a LevelDB without or with a
   *     foreign meta record), a database LevelDB reports corrupt, or one in use
   */
  public static KvDb open(Path dir) {
    return open(dir, Retention.DEFAULT);
  }

  /** As {@link #open(Path)}, keeping history as {@code retention} says. */
  public static KvDb open(Path dir, Retention retention) {
    Path at = dir.toAbsolutePath().normalize();
    try {
      if (at.getParent() != null) {
        Files.createDirectories(at.getParent());
      }
      finishInterruptedRestore(at);
      Handle handle = new Handle(openLevelDb(at));
      try {
        return new KvDb(at, handle, readOrCreateMeta(at, handle.db), retention);
      } catch (RuntimeException e) {
        handle.release();
        throw e;
      }
    } catch (IOException e) {
      throw new IllegalStateException("KV database " + at + " cannot be opened: " + oneLine(e), e);
    }
  }

  /** The directory of the database. */
  public Path dir() {
    return dir;
  }

  /** The index of the last entry committed, 0 for a new database. */
  public long appliedIndex() {
    return appliedIndex;
  }

  /** The term of the entry at {@link #appliedIndex()}, 0 for a new database. */
  public long appliedTerm() {
    return appliedTerm;
  }

  /** The store revision as of the last commit, as {@link KvStore#revision()}. */
  public long revision() {
    return revision;
  }

  /** The number of keys as of the last commit. */
  public long keyCount() {
    return keyCount;
  }

  /**
   * The newest revision the history no longer holds: the changes of revisions after it, up to
   * {@link #revision()}, can be read with {@link KvQuery.History}.
   */
  public long compactRevision() {
    return compactRevision;
  }

  /**
   * The size of the database's files, for status and snapshot triggers: what the data costs on
   * disk, LevelDB's overhead and not yet compacted garbage included.
   */
  public long diskBytes() {
    long total = 0;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        try {
          total += Files.size(file);
        } catch (NoSuchFileException e) {
          // a compaction deleted it while we listed
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list KV database " + dir + ": " + oneLine(e), e);
    }
    return total;
  }

  /**
   * Starts a batch of commands against the committed state. One batch at a time: a batch begun
   * before another's commit (or a restore) refuses to commit.
   */
  public Batch batch() {
    checkOpen();
    return new Batch();
  }

  /**
   * Answers a read from the committed state, as {@link KvStore#query}: a Get gives a {@link
   * KvResult.GetDone}, a Range a {@link KvResult.RangeDone}, both at {@link #revision()}.
   */
  public KvResult query(KvQuery query) {
    Objects.requireNonNull(query, "query");
    checkOpen();
    if (query instanceof KvQuery.Get get) {
      byte[] record = handle.db.get(dataKey(get.key()), reads);
      return new KvResult.GetDone(revision, record == null ? null : storedRecord(get.key(), record, true));
    } else if (query instanceof KvQuery.Range range) {
      return range(range);
    } else if (query instanceof KvQuery.History history) {
      return history(history);
    } else if (query instanceof KvQuery.LeaseGet get) {
      Lease lease = storedLease(handle, get.id());
      return lease == null ? new KvResult.LeaseNotFound(get.id())
          : new KvResult.LeaseInfo(get.id(), lease.ttlSeconds(), -1, List.copyOf(leaseKeys(get.id())));
    } else if (query instanceof KvQuery.LeaseList) {
      return new KvResult.Leases(leases().stream()
          .map(l -> new KvResult.LeaseInfo(l.id(), l.ttlSeconds(), -1, List.of())).toList());
    }
    throw new IllegalArgumentException("unknown query " + query.getClass().getName());
  }

  private KvResult range(KvQuery.Range range) {
    byte[] prefix = dataKey(range.prefix() == null ? "" : range.prefix());
    byte[] from = prefix;
    boolean skipFrom = false;
    if (range.after() != null) {
      byte[] after = dataKey(range.after());
      if (Arrays.compareUnsigned(after, prefix) >= 0) {
        from = after;
        skipFrom = true;
      }
    }
    int limit = range.limit();
    List<KeyValue> kvs = new ArrayList<>(limit > 0 ? Math.min(limit, 256) : 16);
    boolean more = false;
    try (DBIterator it = handle.db.iterator(reads)) {
      it.seek(from);
      while (it.hasNext()) {
        Map.Entry<byte[], byte[]> entry = it.next();
        byte[] key = entry.getKey();
        if (skipFrom) {
          skipFrom = false;
          if (Arrays.equals(key, from)) {
            continue;
          }
        }
        if (!startsWith(key, prefix)) {
          break;
        }
        if (limit > 0 && kvs.size() == limit) {
          more = true;
          break;
        }
        kvs.add(storedRecord(storedKey(key), entry.getValue(), true));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
    }
    return new KvResult.RangeDone(revision, List.copyOf(kvs), more);
  }

  private KvResult history(KvQuery.History query) {
    long compact = compactRevision;
    long current = revision;
    long from = query.fromRevision();
    if (from <= compact) {
      return new KvResult.HistoryDone(compact, compact, current, List.of());
    }
    if (from > current) {
      return new KvResult.HistoryDone(compact, current, current, List.of());
    }
    long to = Math.min(current, from + Math.max(1, query.maxRevisions()) - 1);
    List<RevisionEvents> matched = new ArrayList<>();
    long bytes = 0;
    long expected = from;
    try (DBIterator it = handle.db.iterator(reads)) {
      it.seek(historyKey(from));
      while (expected <= to) {
        Map.Entry<byte[], byte[]> entry = it.hasNext() ? it.next() : null;
        if (entry == null || entry.getKey().length != 9 || entry.getKey()[0] != HISTORY
            || ByteBuffer.wrap(entry.getKey(), 1, 8).getLong() != expected) {
          throw new IllegalStateException("KV database " + dir + " is corrupt: the history of revision " + expected
              + " is missing (it should hold " + compact + " < revision <= " + current + ")");
        }
        List<Event> events;
        try {
          events = KvCodec.decodeHistoryRecord(entry.getValue());
        } catch (IllegalArgumentException e) {
          throw new IllegalStateException("KV database " + dir + " is corrupt at the history of revision " + expected
              + ": " + e.getMessage());
        }
        List<Event> chosen = null;
        for (Event event : events) {
          String key = event.kv().key();
          if (query.prefix() ? key.startsWith(query.key()) : key.equals(query.key())) {
            if (chosen == null) {
              chosen = new ArrayList<>(events.size());
            }
            chosen.add(event);
            bytes += eventBytes(event);
          }
        }
        if (chosen != null) {
          matched.add(new RevisionEvents(expected, chosen));
        }
        expected++;
        if (bytes >= MAX_HISTORY_READ_BYTES) {
          break;
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
    }
    return new KvResult.HistoryDone(compact, expected - 1, current, List.copyOf(matched));
  }

  /** About what an event costs in memory: its key and values. */
  public static long eventBytes(Event event) {
    long n = 64L + 2L * event.kv().key().length();
    if (event.kv().value() != null) {
      n += event.kv().value().length;
    }
    if (event.prevKv() != null && event.prevKv().value() != null) {
      n += event.prevKv().value().length;
    }
    return n;
  }

  private static byte[] historyKey(long revision) {
    return ByteBuffer.allocate(9).put(HISTORY).putLong(revision).array();
  }

  private static final byte[] NOTHING = new byte[0];

  private static byte[] leaseRecordKey(long id) {
    return ByteBuffer.allocate(9).put(LEASE).putLong(id).array();
  }

  private static byte[] leaseKeyPrefix(long id) {
    return ByteBuffer.allocate(9).put(LEASE_KEY).putLong(id).array();
  }

  private static byte[] leaseKeyKey(long id, String key) {
    byte[] k = encodeKey(key, 9);
    ByteBuffer.wrap(k).put(LEASE_KEY).putLong(id);
    return k;
  }

  private static byte[] leaseRecord(Lease lease) {
    return ByteBuffer.allocate(LEASE_RECORD_BYTES).putLong(lease.ttlSeconds()).putLong(lease.term())
        .putLong(lease.remainingMillis()).array();
  }

  private static Lease decodeLease(long id, byte[] record) {
    if (record.length != LEASE_RECORD_BYTES) {
      throw new IllegalArgumentException("a lease record of " + record.length + " bytes, expected " + LEASE_RECORD_BYTES);
    }
    ByteBuffer b = ByteBuffer.wrap(record);
    return new Lease(id, b.getLong(), b.getLong(), b.getLong());
  }

  private Lease storedLease(Handle h, long id) {
    byte[] record = h.db.get(leaseRecordKey(id), reads);
    if (record == null) {
      return null;
    }
    try {
      return decodeLease(id, record);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("KV database " + dir + " is corrupt at lease " + id + ": " + e.getMessage());
    }
  }

  /** Lease {@code id} as committed, null when absent. */
  public Lease lease(long id) {
    checkOpen();
    return storedLease(handle, id);
  }

  /** Every lease as committed, by id. */
  public List<Lease> leases() {
    checkOpen();
    List<Lease> all = new ArrayList<>();
    try (DBIterator it = handle.db.iterator(reads)) {
      it.seek(new byte[] {LEASE});
      while (it.hasNext()) {
        Map.Entry<byte[], byte[]> e = it.next();
        byte[] k = e.getKey();
        if (k.length != 9 || k[0] != LEASE) {
          break;
        }
        long id = ByteBuffer.wrap(k, 1, 8).getLong();
        try {
          all.add(decodeLease(id, e.getValue()));
        } catch (IllegalArgumentException ex) {
          throw new IllegalStateException("KV database " + dir + " is corrupt at lease " + id + ": " + ex.getMessage());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
    }
    return all;
  }

  /** The keys attached to lease {@code id}, in key order. */
  public List<String> leaseKeys(long id) {
    checkOpen();
    List<String> keys = new ArrayList<>();
    byte[] prefix = leaseKeyPrefix(id);
    try (DBIterator it = handle.db.iterator(reads)) {
      it.seek(prefix);
      while (it.hasNext()) {
        byte[] k = it.next().getKey();
        if (!startsWith(k, prefix)) {
          break;
        }
        keys.add(decodeKey(k, prefix.length));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
    }
    return keys;
  }

  private static byte[] idempotencyKey(String key) {
    byte[] k = encodeKey(key, 1);
    k[0] = IDEMPOTENCY;
    return k;
  }

  private static byte[] idempotencyOrderKey(long time, long seq) {
    return ByteBuffer.allocate(17).put(IDEMPOTENCY_ORDER).putLong(time).putLong(seq).array();
  }

  private IdempotencyRecord storedIdempotency(String key, byte[] stored) {
    try {
      return KvCodec.decodeIdempotencyRecord(stored);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("KV database " + dir + " is corrupt at the idempotency record of '" + key + "': "
          + e.getMessage());
    }
  }

  /** The number of idempotency records on disk, for tests and status. */
  public long idempotencyRecords() {
    return idemCount;
  }

  /**
   * Makes everything committed durable: one synced write of the meta record, which LevelDB's
   * sequential log writes after every earlier one. Returns the index it made durable.
   */
  public long sync() {
    checkOpen();
    handle.db.put(META_KEY, meta(new Meta(appliedIndex, appliedTerm, revision, keyCount, compactRevision, time, idemCount, idemSeq, leaseCount)), synced);
    return appliedIndex;
  }

  /**
   * Sets the applied index and term to {@code index} and {@code term}, keeping the data, revision
   * and key count (a synced write): a node seeded from a backup starts its new cluster's log after
   * {@code index}, with a term of its own.
   */
  public void rebase(long index, long term) {
    checkOpen();
    handle.db.put(META_KEY, meta(new Meta(index, term, revision, keyCount, compactRevision, time, idemCount, idemSeq, leaseCount)), synced);
    generation++;
    appliedIndex = index;
    appliedTerm = term;
  }

  /**
   * A consistent view of the committed state, cheap to take (a LevelDB snapshot): its {@link
   * View#writeTo} may run on another thread while batches keep committing. The caller closes it.
   */
  public View view() {
    checkOpen();
    if (!handle.acquire()) {
      throw new IllegalStateException("KV database " + dir + " is closed");
    }
    try {
      return new View(handle, handle.db.getSnapshot(), appliedIndex, appliedTerm, revision, keyCount, time, idemCount,
          idemSeq, leaseCount);
    } catch (RuntimeException e) {
      handle.release();
      throw e;
    }
  }

  /**
   * Replaces the whole state with a stream that {@link View#writeTo} wrote; afterwards the applied
   * index, term and revision are the stream's. Reads exactly the stream's bytes and no more, so a
   * trailer may follow it in {@code in} (which should be buffered).
   *
   * <p>The new database is built and validated in {@code <dir>.restoring}, synced and closed; only
   * then is the current one closed and the directories swapped ({@code dir} to {@code <dir>.old},
   * {@code .restoring} to {@code dir}, {@code .old} deleted) and the new one opened. Views of the
   * current database still open are told to stop writing ({@link View#writeTo} throws an
   * IOException) and waited for up to 30 s, until their owners close them.
   *
   * @throws IllegalArgumentException with a one-line reason when the bytes are not such a stream
   *     (wrong magic or format, keys out of order or malformed, a count that does not match, no end
   *     marker, truncated); the current database is untouched and stays open
   * @throws IOException when {@code in} fails, or the directories cannot be swapped (the database
   *     is then reopened as {@link #open} would, at the old or the new state)
   */
  public void restore(InputStream in) throws IOException {
    Objects.requireNonNull(in, "in");
    checkOpen();
    Path restoring = sibling(dir, RESTORING);
    deleteTree(restoring);
    Meta meta;
    try {
      meta = buildFromStream(in, restoring);
    } catch (IOException | RuntimeException | Error e) {
      deleteTreeQuietly(restoring);
      throw e;
    }
    Handle old = handle;
    old.retiring = true;
    if (!old.awaitOnlyOwner(VIEW_WAIT_MILLIS)) {
      old.retiring = false;
      deleteTreeQuietly(restoring);
      throw new IllegalStateException("KV database " + dir + " cannot be restored: a view of it stayed open "
          + VIEW_WAIT_MILLIS / 1000 + " s after being asked to stop");
    }
    closed = true;
    generation++;
    old.release();
    Path previous = sibling(dir, OLD);
    try {
      deleteTree(previous);
      Files.move(dir, previous, StandardCopyOption.ATOMIC_MOVE);
      Files.move(restoring, dir, StandardCopyOption.ATOMIC_MOVE);
      syncDirectory(dir.getParent());
      deleteTree(previous);
    } catch (IOException e) {
      reopen();
      throw new IOException("KV database " + dir + " could not be swapped for the restored one (now at index "
          + appliedIndex + "): " + oneLine(e), e);
    }
    reopen();
    if (appliedIndex != meta.index()) {
      throw new IllegalStateException("KV database " + dir + " reopened at index " + appliedIndex
          + " after restoring index " + meta.index());
    }
  }

  /** Opens {@code dir} again after a restore closed it, recovering as {@link #open} does. */
  private void reopen() throws IOException {
    finishInterruptedRestore(dir);
    Handle reopened = new Handle(openLevelDb(dir));
    try {
      adopt(readOrCreateMeta(dir, reopened.db));
    } catch (RuntimeException e) {
      reopened.release();
      throw e;
    }
    handle = reopened;
    closed = false;
  }

  /**
   * Closes the database. Views still open keep LevelDB open until the last one is closed; a batch
   * not committed is dropped.
   */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      generation++;
      handle.release();
    }
  }

  @Override
  public String toString() {
    return "KvDb[" + dir + ", index=" + appliedIndex + ", term=" + appliedTerm + ", revision=" + revision
        + ", keys=" + keyCount + "]";
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("KV database " + dir + " is closed");
    }
  }

  private void adopt(Meta meta) {
    appliedIndex = meta.index();
    appliedTerm = meta.term();
    revision = meta.revision();
    keyCount = meta.keyCount();
    compactRevision = meta.compactRevision();
    time = meta.time();
    idemCount = meta.idemCount();
    idemSeq = meta.idemSeq();
    leaseCount = meta.leaseCount();
    oldestTimeOf = -1;
    oldestIdemTime = -1;
  }

  // ---------------------------------------------------------------- batches

  /** A pending change of one key: {@code kv} null for a delete. */
  /**
   * A pending change of one key: {@code kv} null for a delete. {@code committedLease} is the lease
   * of the key as committed (0: none or absent), so that the commit can move its attachment.
   */
  private record Pending(byte[] dbKey, KeyValue kv, long committedLease) {}

  /** A lease as stored: granted TTL, the term of its last grant or checkpoint, the checkpointed remaining time or -1. */
  public record Lease(long id, long ttlSeconds, long term, long remainingMillis) {}

  /** A lease removed in a batch. */
  private static final Lease REVOKED = new Lease(0, 0, 0, 0);

  /** What a batch did to leases, for the leader's lease keeper: a grant, a revoke, a checkpoint. */
  public record LeaseChange(long id, Lease lease) {
    /** True for a revoke. */
    public boolean revoked() {
      return lease == null;
    }
  }

  /** What the overlay held for {@code key} before a command changed it (null: nothing). */
  private record Undo(String key, Pending previous) {}

  /** The events a batch made at one revision. */
  private record Made(long revision, ArrayList<Event> events) {}

  /**
   * A client's idempotency key's record: the request's fingerprint, the time and sequence of the
   * entry that made it, and the first result (null when it was too large to keep).
   */
  record IdempotencyRecord(byte[] fingerprint, long time, long seq, KvResult result) {}

  /**
   * Whether {@code record} still counts at an entry of time {@code now} after sequence {@code seq}
   * was given out: it is among the newest {@code idempotencyRecords} and not older than {@code
   * idempotencyMillis}. Only the log decides this (time and sequence are in it), so every node
   * answers a retry alike, whenever it deletes old records.
   */
  private boolean live(IdempotencyRecord record, long now, long seq) {
    return record.seq() > seq - retention.idempotencyRecords() && record.time() >= now - retention.idempotencyMillis();
  }

  /**
   * Commands applied against the committed state plus their own earlier writes, written by {@link
   * #commit} all at once with the meta record. Results are exactly {@link KvStore#apply}'s.
   */
  public final class Batch {
    private final Handle db = handle;
    private final long startGeneration = generation;
    private final HashMap<String, Pending> overlay = new HashMap<>();
    private final ArrayList<Undo> undo = new ArrayList<>();
    private long batchRevision = revision;
    private long batchKeyCount = keyCount;
    private final ArrayList<Made> made = new ArrayList<>();
    /** Idempotency records this batch made, by key. */
    private final HashMap<String, IdempotencyRecord> idemMade = new HashMap<>();
    /** Records on disk this batch replaced (past retention): their order entries go. */
    private final ArrayList<IdempotencyRecord> idemReplaced = new ArrayList<>();
    private long batchIdemSeq = idemSeq;
    private long batchLeaseCount = leaseCount;
    /** Leases this batch granted, changed or revoked ({@link #REVOKED}). */
    private final HashMap<Long, Lease> leaseOverlay = new HashMap<>();
    private final ArrayList<Object[]> leaseUndo = new ArrayList<>();
    private final ArrayList<LeaseChange> leaseChanges = new ArrayList<>();
    private long batchTerm;
    /** The time of the entry being applied: never before the database's. */
    private long batchTime = time;
    private List<RevisionEvents> committedEvents = List.of();
    private boolean done;

    private Batch() {}

    /** What this batch did to leases, in order (a grant, a checkpoint, or a revoke with a null lease). */
    public List<LeaseChange> leaseChanges() {
      return List.copyOf(leaseChanges);
    }

    /** The events of the revisions this batch made, in order; known once it is committed. */
    public List<RevisionEvents> events() {
      return committedEvents;
    }

    private void event(long rev, Event event) {
      Made last = made.isEmpty() ? null : made.get(made.size() - 1);
      if (last == null || last.revision() != rev) {
        last = new Made(rev, new ArrayList<>(2));
        made.add(last);
      }
      last.events().add(event);
    }

    /**
     * Applies one command, as {@link KvStore#apply}. A command that throws (an
     * IllegalArgumentException for an unknown command or op) leaves the batch as it was before it,
     * so the caller can skip it.
     */
    public KvResult apply(KvCommand command) {
      return apply(command, 0);
    }

    /**
     * As {@link #apply(KvCommand)}, for an entry stamped with {@code entryTime} (ms, 0 for none):
     * what idempotency records are kept by.
     */
    public KvResult apply(KvCommand command, long entryTime) {
      return apply(command, entryTime, 0);
    }

    /** As {@link #apply(KvCommand, long)}, for an entry of {@code entryTerm}: the term a lease grant records. */
    public KvResult apply(KvCommand command, long entryTime, long entryTerm) {
      Objects.requireNonNull(command, "command");
      checkUsable();
      batchTime = Math.max(batchTime, entryTime);
      batchTerm = Math.max(batchTerm, entryTerm);
      if (command instanceof KvCommand.Idempotent idem) {
        return idempotent(idem);
      }
      if (command instanceof KvCommand.Fenced fenced) {
        if (!KvCodec.fenceable(fenced.command())) {
          throw new IllegalArgumentException("a fenced command holds a put, a delete or a transaction");
        }
        long holder = lockHolder(fenced.lock());
        return holder != 0 && holder == fenced.token()
            ? apply(fenced.command(), entryTime, entryTerm) : new KvResult.FenceFailed(fenced.lock(), holder);
      }
      long revisionBefore = batchRevision;
      long keyCountBefore = batchKeyCount;
      int madeBefore = made.size();
      long leaseCountBefore = batchLeaseCount;
      int leaseChangesBefore = leaseChanges.size();
      leaseUndo.clear();
      int lastEventsBefore = made.isEmpty() ? 0 : made.get(made.size() - 1).events().size();
      undo.clear();
      try {
        if (command instanceof KvCommand.Put put) {
          return put(put);
        } else if (command instanceof KvCommand.Delete delete) {
          return delete(delete);
        } else if (command instanceof KvCommand.Txn txn) {
          return txn(txn);
        } else if (command instanceof KvCommand.LeaseGrant grant) {
          return grant(grant);
        } else if (command instanceof KvCommand.LeaseRevoke revoke) {
          return revoke(revoke);
        } else if (command instanceof KvCommand.LeaseCheckpoint checkpoint) {
          return checkpoint(checkpoint);
        }
        throw new IllegalArgumentException("unknown command " + command.getClass().getName());
      } catch (RuntimeException | Error e) {
        for (int i = leaseUndo.size() - 1; i >= 0; i--) {
          Object[] u = leaseUndo.get(i);
          if (u[1] == null) {
            leaseOverlay.remove((Long) u[0]);
          } else {
            leaseOverlay.put((Long) u[0], (Lease) u[1]);
          }
        }
        leaseUndo.clear();
        batchLeaseCount = leaseCountBefore;
        while (leaseChanges.size() > leaseChangesBefore) {
          leaseChanges.remove(leaseChanges.size() - 1);
        }
        for (int i = undo.size() - 1; i >= 0; i--) {
          Undo u = undo.get(i);
          if (u.previous() == null) {
            overlay.remove(u.key());
          } else {
            overlay.put(u.key(), u.previous());
          }
        }
        undo.clear();
        while (made.size() > madeBefore) {
          made.remove(made.size() - 1);
        }
        if (madeBefore > 0) {
          ArrayList<Event> last = made.get(madeBefore - 1).events();
          while (last.size() > lastEventsBefore) {
            last.remove(last.size() - 1);
          }
        }
        batchRevision = revisionBefore;
        batchKeyCount = keyCountBefore;
        throw e;
      }
    }

    /**
     * Writes every change of the batch and the meta record (this index and term, the revision and
     * key count after the batch) in one atomic, unsynced LevelDB write. A batch with no commands
     * still moves the applied index (a log entry that is no command). The batch is done after it.
     *
     * @throws IllegalArgumentException when {@code appliedIndex} is behind the database's
     * @throws IllegalStateException when the batch is done, or another batch committed (or a
     *     restore happened) since it began
     */
    public void commit(long appliedIndex, long appliedTerm) {
      commit(appliedIndex, appliedTerm, 0);
    }

    /**
     * As {@link #commit(long, long)}, with the time stamped into the last entry (milliseconds, 0 for
     * none): the history's records carry it and retention by time counts from it. The database's
     * time never goes back.
     */
    public void commit(long appliedIndex, long appliedTerm, long entryTime) {
      checkUsable();
      if (appliedIndex < KvDb.this.appliedIndex) {
        throw new IllegalArgumentException("cannot commit index " + appliedIndex + ": KV database " + dir
            + " is at index " + KvDb.this.appliedIndex);
      }
      long newTime = Math.max(batchTime, entryTime);
      long newCompact;
      long finalIdemCount;
      RevisionEvents[] events = new RevisionEvents[made.size()];
      try (WriteBatch writes = db.db.createWriteBatch()) {
        for (Map.Entry<String, Pending> e : overlay.entrySet()) {
          Pending pending = e.getValue();
          if (pending.kv() == null) {
            writes.delete(pending.dbKey());
          } else {
            writes.put(pending.dbKey(), record(pending.kv()));
          }
          long now = pending.kv() == null ? 0 : pending.kv().lease();
          if (now != pending.committedLease()) { // the key moves between leases
            if (pending.committedLease() != 0) {
              writes.delete(leaseKeyKey(pending.committedLease(), e.getKey()));
            }
            if (now != 0) {
              writes.put(leaseKeyKey(now, e.getKey()), NOTHING);
            }
          }
        }
        for (Map.Entry<Long, Lease> e : leaseOverlay.entrySet()) {
          if (e.getValue() == REVOKED) {
            writes.delete(leaseRecordKey(e.getKey()));
          } else {
            writes.put(leaseRecordKey(e.getKey()), leaseRecord(e.getValue()));
          }
        }
        for (int i = 0; i < events.length; i++) {
          Made m = made.get(i);
          events[i] = new RevisionEvents(m.revision(), m.events());
          writes.put(historyKey(m.revision()), KvCodec.encodeHistoryRecord(newTime, m.events()));
        }
        newCompact = compactTo(batchRevision, newTime);
        for (long r = compactRevision + 1; r <= newCompact; r++) {
          writes.delete(historyKey(r));
        }
        for (IdempotencyRecord replaced : idemReplaced) {
          writes.delete(idempotencyOrderKey(replaced.time(), replaced.seq()));
        }
        long newIdemCount = idemCount - idemReplaced.size();
        long evicted = evictIdempotency(writes, newTime, batchIdemSeq, newIdemCount);
        newIdemCount -= evicted;
        for (Map.Entry<String, IdempotencyRecord> e : idemMade.entrySet()) {
          IdempotencyRecord r = e.getValue();
          writes.put(idempotencyKey(e.getKey()), KvCodec.encodeIdempotencyRecord(r));
          writes.put(idempotencyOrderKey(r.time(), r.seq()), encodeKey(e.getKey(), 0));
          if (oldestIdemTime < 0 && newIdemCount == 0) {
            oldestIdemTime = r.time();
          }
        }
        newIdemCount += idemMade.size();
        writes.put(META_KEY, meta(new Meta(appliedIndex, appliedTerm, batchRevision, batchKeyCount, newCompact, newTime,
            newIdemCount, batchIdemSeq, batchLeaseCount)));
        finalIdemCount = newIdemCount;
        db.db.write(writes, unsynced);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot release a write batch of KV database " + dir, e);
      }
      done = true;
      generation++;
      KvDb.this.appliedIndex = appliedIndex;
      KvDb.this.appliedTerm = appliedTerm;
      revision = batchRevision;
      keyCount = batchKeyCount;
      compactRevision = newCompact;
      time = newTime;
      idemCount = finalIdemCount;
      idemSeq = batchIdemSeq;
      leaseCount = batchLeaseCount;
      committedEvents = List.of(events);
    }

    /**
     * The compact revision after this batch: past what {@link Retention} keeps by count, and past
     * the committed records older than its time, at most {@link #MAX_COMPACT_STEP} further.
     */
    private long compactTo(long newRevision, long now) {
      long target = Math.max(compactRevision, newRevision - retention.revisions());
      long limit = Math.min(newRevision, compactRevision + MAX_COMPACT_STEP);
      if (retention.millis() > 0 && now > retention.millis()) {
        long cutoff = now - retention.millis();
        long next = Math.max(target, compactRevision) + 1;
        // records of this batch are not written yet: only committed ones can be old
        while (next <= revision && next <= limit) {
          long t = recordTime(next);
          if (t >= cutoff) {
            break;
          }
          target = next++;
        }
      }
      return Math.min(target, limit);
    }

    /** The time of the committed history record of {@code rev} (cached for the oldest one). */
    private long recordTime(long rev) {
      if (oldestTimeOf == rev) {
        return oldestTime;
      }
      byte[] record = db.db.get(historyKey(rev), reads);
      if (record == null) {
        throw new IllegalStateException("KV database " + dir + " is corrupt: the history of revision " + rev
            + " is missing");
      }
      long t;
      try {
        t = KvCodec.historyRecordTime(record);
      } catch (IllegalArgumentException e) {
        throw new IllegalStateException("KV database " + dir + " is corrupt at the history of revision " + rev
            + ": " + e.getMessage());
      }
      oldestTime = t;
      oldestTimeOf = rev;
      return t;
    }

    /** The store revision the batch has reached. */
    public long revision() {
      return batchRevision;
    }

    private void checkUsable() {
      if (done) {
        throw new IllegalStateException("this batch of KV database " + dir + " is already committed");
      }
      if (closed || startGeneration != generation) {
        throw new IllegalStateException("KV database " + dir
            + " changed since this batch began (another batch committed, a restore, or a close)");
      }
    }

    private KvResult idempotent(KvCommand.Idempotent idem) {
      if (idem.command() instanceof KvCommand.Idempotent) {
        throw new IllegalArgumentException("an idempotent command cannot hold another");
      }
      IdempotencyRecord record = idemMade.get(idem.key());
      IdempotencyRecord stale = null;
      boolean onDisk = false;
      if (record == null) {
        byte[] stored = db.db.get(idempotencyKey(idem.key()), reads);
        if (stored != null) {
          record = storedIdempotency(idem.key(), stored);
          onDisk = true;
        }
      }
      if (record != null && !live(record, batchTime, batchIdemSeq)) {
        // past retention, whether or not it is deleted yet: as if absent, and replaced below
        stale = onDisk ? record : null;
        record = null;
      }
      if (record != null) {
        return Arrays.equals(record.fingerprint(), idem.fingerprint())
            ? new KvResult.Replayed(record.result()) : new KvResult.IdempotencyKeyReused(idem.key());
      }
      KvResult result = apply(idem.command(), batchTime);
      KvResult kept = KvCodec.encode(result).length <= MAX_KEPT_RESULT_BYTES ? result : null;
      idemMade.put(idem.key(), new IdempotencyRecord(idem.fingerprint().clone(), batchTime, ++batchIdemSeq, kept));
      if (stale != null) {
        idemReplaced.add(stale);
      }
      return result;
    }

    /**
     * Deletes idempotency records past retention, oldest first, at most {@link #MAX_COMPACT_STEP};
     * returns how many went. Only records already on disk: this batch's own are newer.
     */
    private long evictIdempotency(WriteBatch writes, long now, long seq, long count) {
      if (count == 0 || (oldestIdemTime >= 0 && oldestIdemTime >= now - retention.idempotencyMillis()
          && count <= retention.idempotencyRecords())) {
        return 0;
      }
      long evicted = 0;
      long steps = 0;
      long oldest = -1;
      try (DBIterator it = db.db.iterator(reads)) {
        it.seek(IDEMPOTENCY_ORDER_START);
        while (it.hasNext() && steps < MAX_COMPACT_STEP) {
          Map.Entry<byte[], byte[]> entry = it.next();
          byte[] orderKey = entry.getKey();
          if (orderKey.length != 17 || orderKey[0] != IDEMPOTENCY_ORDER) {
            break;
          }
          ByteBuffer b = ByteBuffer.wrap(orderKey, 1, 16);
          long t = b.getLong();
          long s = b.getLong();
          String key = decodeKey(entry.getValue(), 0);
          if (s > seq - retention.idempotencyRecords() && t >= now - retention.idempotencyMillis()) {
            oldest = t;
            break;
          }
          writes.delete(orderKey);
          steps++;
          if (idemMade.containsKey(key)) {
            continue; // a stale record this batch replaced (counted there); the new one stays
          }
          writes.delete(idempotencyKey(key));
          evicted++;
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
      }
      oldestIdemTime = oldest;
      return evicted;
    }

    private KvResult put(KvCommand.Put put) {
      if (put.lease() != 0 && lease(put.lease()) == null) {
        return new KvResult.LeaseNotFound(put.lease());
      }
      byte[] dbKey = dataKey(put.key());
      KeyValue current = current(put.key(), dbKey, true);
      long currentModRevision = current == null ? 0 : current.modRevision();
      boolean modRevisionMismatch = put.ifModRevision() != null && put.ifModRevision() != currentModRevision;
      if (modRevisionMismatch || (put.ifAbsent() && current != null)) {
        return new KvResult.PreconditionFailed(currentModRevision);
      }
      batchRevision++;
      event(batchRevision, new Event(Event.Type.PUT,
          write(put.key(), dbKey, put.value(), put.lease(), batchRevision, current), current));
      return new KvResult.PutDone(batchRevision, current == null ? null : current.modRevision());
    }

    private KvResult delete(KvCommand.Delete delete) {
      if (delete.prefix()) {
        // ifModRevision has no meaning for a prefix (KvCommand.Delete); KvLimits rejects the mix.
        long deleted = removePrefix(delete.key(), batchRevision + 1);
        if (deleted > 0) {
          batchRevision++;
        }
        return new KvResult.DeleteDone(batchRevision, deleted);
      }
      byte[] dbKey = dataKey(delete.key());
      KeyValue current = current(delete.key(), dbKey, true);
      long currentModRevision = current == null ? 0 : current.modRevision();
      if (delete.ifModRevision() != null && delete.ifModRevision() != currentModRevision) {
        return new KvResult.PreconditionFailed(currentModRevision);
      }
      if (current == null) {
        return new KvResult.DeleteDone(batchRevision, 0);
      }
      remove(delete.key(), dbKey, current);
      batchRevision++;
      event(batchRevision, deleted(current, batchRevision));
      return new KvResult.DeleteDone(batchRevision, 1);
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
        if (op instanceof TxnOp.Put put && put.lease() != 0 && lease(put.lease()) == null) {
          return new KvResult.LeaseNotFound(put.lease()); // nothing of the transaction is applied
        }
      }
      // Every write of the branch carries the next revision; it becomes the store revision only if
      // the branch changed something. Results are made at the next revision and remade if not.
      long next = batchRevision + 1;
      boolean changed = false;
      KvResult[] results = new KvResult[ops.size()];
      for (int i = 0; i < results.length; i++) {
        TxnOp op = ops.get(i);
        if (op instanceof TxnOp.Put put) {
          byte[] dbKey = dataKey(put.key());
          KeyValue current = current(put.key(), dbKey, true);
          event(next, new Event(Event.Type.PUT, write(put.key(), dbKey, put.value(), put.lease(), next, current), current));
          changed = true;
          results[i] = new KvResult.PutDone(next, current == null ? null : current.modRevision());
        } else if (op instanceof TxnOp.Get get) {
          results[i] = new KvResult.GetDone(next, current(get.key(), dataKey(get.key()), true));
        } else if (op instanceof TxnOp.Delete delete) {
          long deleted;
          if (delete.prefix()) {
            deleted = removePrefix(delete.key(), next);
          } else {
            byte[] dbKey = dataKey(delete.key());
            KeyValue current = current(delete.key(), dbKey, true);
            deleted = current == null ? 0 : 1;
            if (deleted == 1) {
              remove(delete.key(), dbKey, current);
              event(next, deleted(current, next));
            }
          }
          changed |= deleted > 0;
          results[i] = new KvResult.DeleteDone(next, deleted);
        } else {
          throw new IllegalArgumentException("unknown txn op " + (op == null ? "null" : op.getClass().getName()));
        }
      }
      if (changed) {
        batchRevision = next;
      } else {
        // only reads and deletes that found nothing: all at the unchanged revision
        for (int i = 0; i < results.length; i++) {
          if (results[i] instanceof KvResult.GetDone get) {
            results[i] = new KvResult.GetDone(batchRevision, get.kv());
          } else if (results[i] instanceof KvResult.DeleteDone delete) {
            results[i] = new KvResult.DeleteDone(batchRevision, delete.deleted());
          }
        }
      }
      return new KvResult.TxnDone(succeeded, batchRevision, List.of(results));
    }

    private boolean holds(Compare compare) {
      if (compare.target() == Compare.Target.LOCK) {
        return ordered(compare.op(), Long.compare(lockHolder(compare.key()), compare.number()));
      }
      boolean byValue = compare.target() == Compare.Target.VALUE;
      KeyValue kv = current(compare.key(), dataKey(compare.key()), byValue);
      int order;
      if (byValue) {
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
      return ordered(compare.op(), order);
    }

    private static boolean ordered(Compare.Op op, int order) {
      return switch (op) {
        case EQUAL -> order == 0;
        case NOT_EQUAL -> order != 0;
        case LESS -> order < 0;
        case GREATER -> order > 0;
      };
    }

    /**
     * The fencing token of lock {@code lock} as this batch sees it: the lowest create revision of
     * the keys under {@code lock + "/"} (its waiters; the first is the holder), 0 when there are
     * none. A scan of the lock's waiters, who are few: one per contender.
     */
    private long lockHolder(String lock) {
      String prefix = lock + "/";
      byte[] start = dataKey(prefix);
      long lowest = Long.MAX_VALUE;
      try (DBIterator it = db.db.iterator(reads)) {
        it.seek(start);
        while (it.hasNext()) {
          Map.Entry<byte[], byte[]> entry = it.next();
          if (!startsWith(entry.getKey(), start)) {
            break;
          }
          String key = storedKey(entry.getKey());
          if (!overlay.containsKey(key)) { // a pending write or delete decides below
            lowest = Math.min(lowest, storedRecord(key, entry.getValue(), false).createRevision());
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
      }
      for (Pending pending : overlay.values()) {
        if (pending.kv() != null && startsWith(pending.dbKey(), start)) {
          lowest = Math.min(lowest, pending.kv().createRevision());
        }
      }
      return lowest == Long.MAX_VALUE ? 0 : lowest;
    }

    /**
     * The key as this batch sees it: its own pending write, else the committed record. Without
     * {@code withValue} the value is left out (null): enough for the bookkeeping of a write.
     */
    private KeyValue current(String key, byte[] dbKey, boolean withValue) {
      Pending pending = overlay.get(key);
      if (pending != null) {
        return pending.kv();
      }
      byte[] record = db.db.get(dbKey, reads);
      return record == null ? null : storedRecord(key, record, withValue);
    }

    private KeyValue write(String key, byte[] dbKey, byte[] value, long lease, long rev, KeyValue current) {
      KeyValue kv = current == null
          ? new KeyValue(key, value, rev, rev, 1, lease)
          : new KeyValue(key, value, current.createRevision(), rev, current.version() + 1, lease);
      undo.add(new Undo(key, overlay.put(key, new Pending(dbKey, kv, committedLease(key, current)))));
      if (current == null) {
        batchKeyCount++;
      }
      return kv;
    }

    /** The committed lease of {@code key}, whose current state (this batch's or the committed one) is {@code current}. */
    private long committedLease(String key, KeyValue current) {
      Pending previous = overlay.get(key);
      return previous != null ? previous.committedLease() : current == null ? 0 : current.lease();
    }

    /** The event of deleting {@code previous} at {@code rev}. */
    private Event deleted(KeyValue previous, long rev) {
      return new Event(Event.Type.DELETE, new KeyValue(previous.key(), null, 0, rev, 0, 0), previous);
    }

    /** Deletes a key that exists (as this batch sees it). */
    private void remove(String key, byte[] dbKey, KeyValue current) {
      undo.add(new Undo(key, overlay.put(key, new Pending(dbKey, null, committedLease(key, current)))));
      batchKeyCount--;
    }

    /** The lease as this batch sees it, null when absent. */
    private Lease lease(long id) {
      Lease pending = leaseOverlay.get(id);
      if (pending != null) {
        return pending == REVOKED ? null : pending;
      }
      return storedLease(db, id);
    }

    private void setLease(long id, Lease lease) {
      leaseUndo.add(new Object[] {id, leaseOverlay.put(id, lease)});
    }

    private KvResult grant(KvCommand.LeaseGrant grant) {
      if (grant.id() <= 0 || grant.ttlSeconds() <= 0) {
        throw new IllegalArgumentException("a lease grant needs a positive id and TTL, not " + grant);
      }
      if (lease(grant.id()) != null) {
        return new KvResult.LeaseExists(grant.id());
      }
      Lease lease = new Lease(grant.id(), grant.ttlSeconds(), batchTerm, -1);
      setLease(grant.id(), lease);
      batchLeaseCount++;
      leaseChanges.add(new LeaseChange(grant.id(), lease));
      return new KvResult.LeaseGranted(grant.id(), grant.ttlSeconds());
    }

    private KvResult checkpoint(KvCommand.LeaseCheckpoint checkpoint) {
      Lease lease = lease(checkpoint.id());
      if (lease == null) {
        return new KvResult.LeaseNotFound(checkpoint.id());
      }
      if (checkpoint.term() >= lease.term()) {
        // a negative remaining time clears the checkpoint (a keepalive renewed the lease in full)
        Lease updated = new Lease(lease.id(), lease.ttlSeconds(), checkpoint.term(),
            checkpoint.remainingMillis() < 0 ? -1 : checkpoint.remainingMillis());
        setLease(lease.id(), updated);
        leaseChanges.add(new LeaseChange(lease.id(), updated));
      }
      return new KvResult.LeaseCheckpointed(checkpoint.id());
    }

    /** Revokes a lease: every key attached to it goes at one revision, in key order. */
    private KvResult revoke(KvCommand.LeaseRevoke revoke) {
      Lease lease = lease(revoke.id());
      if (lease == null || (revoke.expiryTerm() > 0 && revoke.expiryTerm() < lease.term())) {
        return new KvResult.LeaseNotFound(revoke.id()); // gone already, or an expiry whose premise is stale
      }
      java.util.TreeSet<String> candidates = new java.util.TreeSet<>(KvStore.KEY_ORDER);
      byte[] prefix = leaseKeyPrefix(revoke.id());
      try (DBIterator it = db.db.iterator(reads)) {
        it.seek(prefix);
        while (it.hasNext()) {
          byte[] k = it.next().getKey();
          if (!startsWith(k, prefix)) {
            break;
          }
          candidates.add(decodeKey(k, prefix.length));
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
      }
      for (Map.Entry<String, Pending> e : overlay.entrySet()) {
        if (e.getValue().kv() != null && e.getValue().kv().lease() == revoke.id()) {
          candidates.add(e.getKey());
        }
      }
      long rev = batchRevision + 1;
      long deleted = 0;
      for (String key : candidates) {
        byte[] dbKey = dataKey(key);
        KeyValue current = current(key, dbKey, true);
        if (current != null && current.lease() == revoke.id()) {
          remove(key, dbKey, current);
          event(rev, deleted(current, rev));
          deleted++;
        }
      }
      if (deleted > 0) {
        batchRevision = rev;
      }
      setLease(revoke.id(), REVOKED);
      batchLeaseCount--;
      leaseChanges.add(new LeaseChange(revoke.id(), null));
      return new KvResult.LeaseRevoked(batchRevision, deleted);
    }

    /**
     * Deletes every key starting with {@code prefix}, committed or pending, with events at {@code
     * rev} in key order; returns how many went.
     */
    private long removePrefix(String prefix, long rev) {
      byte[] start = dataKey(prefix);
      long removed = 0;
      ArrayList<Event> gone = new ArrayList<>();
      try (DBIterator it = db.db.iterator(reads)) {
        it.seek(start);
        while (it.hasNext()) {
          Map.Entry<byte[], byte[]> entry = it.next();
          byte[] dbKey = entry.getKey();
          if (!startsWith(dbKey, start)) {
            break;
          }
          String key = storedKey(dbKey);
          if (!overlay.containsKey(key)) { // a pending write or delete decides below
            KeyValue stored = storedRecord(key, entry.getValue(), true);
            gone.add(deleted(stored, rev));
            remove(key, dbKey, stored);
            removed++;
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot close an iterator of KV database " + dir, e);
      }
      for (Map.Entry<String, Pending> entry : overlay.entrySet()) {
        Pending pending = entry.getValue();
        if (pending.kv() != null && startsWith(pending.dbKey(), start)) {
          gone.add(deleted(pending.kv(), rev));
          undo.add(new Undo(entry.getKey(), pending));
          entry.setValue(new Pending(pending.dbKey(), null, pending.committedLease()));
          batchKeyCount--;
          removed++;
        }
      }
      gone.sort((a, b) -> KvStore.KEY_ORDER.compare(a.kv().key(), b.kv().key()));
      for (Event e : gone) {
        event(rev, e);
      }
      return removed;
    }
  }

  /** Null (a missing key) sorts before every array; arrays compare as unsigned bytes. */
  private static int compareValues(byte[] a, byte[] b) {
    if (a == null || b == null) {
      return a == b ? 0 : (a == null ? -1 : 1);
    }
    return Arrays.compareUnsigned(a, b);
  }

  private static <T> List<T> orEmpty(List<T> list) {
    return list == null ? List.of() : list;
  }

  // ---------------------------------------------------------------- views

  /**
   * The committed state at one index, read from a LevelDB snapshot: later commits do not show in
   * it. {@link #writeTo} may run on any thread; {@link #close} waits for a writeTo in progress.
   */
  public final class View implements AutoCloseable {
    private final Handle db;
    private final Snapshot snapshot;
    private final long index;
    private final long term;
    private final long revision;
    private final long keyCount;
    private boolean closed;

    private final long time;
    private final long idemCount;
    private final long idemSeq;
    private final long leaseCount;

    private View(Handle db, Snapshot snapshot, long index, long term, long revision, long keyCount, long time,
                 long idemCount, long idemSeq, long leaseCount) {
      this.leaseCount = leaseCount;
      this.time = time;
      this.idemCount = idemCount;
      this.idemSeq = idemSeq;
      this.db = db;
      this.snapshot = snapshot;
      this.index = index;
      this.term = term;
      this.revision = revision;
      this.keyCount = keyCount;
    }

    /** The applied index the view is at. */
    public long index() {
      return index;
    }

    /** The term of the entry at {@link #index()}. */
    public long term() {
      return term;
    }

    /** The store revision at {@link #index()}. */
    public long revision() {
      return revision;
    }

    /** The number of keys at {@link #index()}. */
    public long keyCount() {
      return keyCount;
    }

    /**
     * Writes the whole view, what {@link KvDb#restore} reads: the ints "RKVD" and format 1; the
     * applied index, term, revision and key count as longs; per key in key order its UTF-8 bytes and
     * its value record, each as a varint length and the bytes; the int "RKVE". No checksum: the
     * caller adds one. Flushes {@code out} and leaves it open.
     *
     * @throws IOException when {@code out} fails, LevelDB cannot read the snapshot, or a restore is
     *     replacing the database (the view should then be closed)
     */
    public synchronized void writeTo(OutputStream out) throws IOException {
      if (closed) {
        throw new IllegalStateException("this view of KV database " + dir + " is closed");
      }
      // never closed: the caller's stream stays open
      DataOutputStream data = new DataOutputStream(new BufferedOutputStream(out, 1 << 16));
      data.writeInt(STREAM_MAGIC);
      data.writeInt(STREAM_FORMAT);
      data.writeLong(index);
      data.writeLong(term);
      data.writeLong(revision);
      data.writeLong(keyCount);
      data.writeLong(time);
      data.writeLong(idemCount);
      data.writeLong(idemSeq);
      data.writeLong(leaseCount);
      long written = 0;
      ReadOptions options = new ReadOptions().snapshot(snapshot).fillCache(false).verifyChecksums(true);
      try (DBIterator it = db.db.iterator(options)) {
        it.seek(DATA_START);
        while (it.hasNext()) {
          Map.Entry<byte[], byte[]> entry = it.next();
          byte[] key = entry.getKey();
          if (key.length == 0 || key[0] != DATA) {
            break;
          }
          if (db.retiring) {
            throw new IOException("KV database " + dir + " is being replaced by a restore; close this view");
          }
          byte[] record = entry.getValue();
          varint(data, key.length - 1);
          data.write(key, 1, key.length - 1);
          varint(data, record.length);
          data.write(record);
          written++;
        }
      } catch (RuntimeException e) { // LevelDB's DBException: a corrupt file, say
        throw new IOException("cannot read KV database " + dir + ": " + oneLine(e), e);
      }
      if (written != keyCount) {
        throw new IOException("KV database " + dir + " holds " + written + " keys at index " + index
            + " but its meta record counts " + keyCount);
      }
      // the idempotency records: a retry is answered alike on a node restored from this
      long records = 0;
      try (DBIterator it = db.db.iterator(options)) {
        it.seek(IDEMPOTENCY_START);
        while (it.hasNext()) {
          Map.Entry<byte[], byte[]> entry = it.next();
          byte[] key = entry.getKey();
          if (key.length == 0 || key[0] != IDEMPOTENCY) {
            break;
          }
          varint(data, key.length - 1);
          data.write(key, 1, key.length - 1);
          varint(data, entry.getValue().length);
          data.write(entry.getValue());
          records++;
        }
      } catch (RuntimeException e) {
        throw new IOException("cannot read KV database " + dir + ": " + oneLine(e), e);
      }
      if (records != idemCount) {
        throw new IOException("KV database " + dir + " holds " + records + " idempotency records at index " + index
            + " but its meta record counts " + idemCount);
      }
      long leases = 0;
      try (DBIterator it = db.db.iterator(options)) {
        it.seek(new byte[] {LEASE});
        while (it.hasNext()) {
          Map.Entry<byte[], byte[]> entry = it.next();
          byte[] key = entry.getKey();
          if (key.length != 9 || key[0] != LEASE) {
            break;
          }
          data.write(key, 1, 8);
          data.write(entry.getValue());
          leases++;
        }
      } catch (RuntimeException e) {
        throw new IOException("cannot read KV database " + dir + ": " + oneLine(e), e);
      }
      if (leases != leaseCount) {
        throw new IOException("KV database " + dir + " holds " + leases + " leases at index " + index
            + " but its meta record counts " + leaseCount);
      }
      data.writeInt(STREAM_END);
      data.flush();
    }

    /** Releases the snapshot; idempotent. Waits for a {@link #writeTo} in progress on another thread. */
    @Override
    public synchronized void close() {
      if (closed) {
        return;
      }
      closed = true;
      try {
        snapshot.close();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot release a snapshot of KV database " + dir, e);
      } finally {
        db.release();
      }
    }

    @Override
    public String toString() {
      return "KvDb.View[" + dir + ", index=" + index + ", term=" + term + ", revision=" + revision + "]";
    }
  }

  private static void varint(DataOutputStream out, int v) throws IOException {
    while ((v & ~0x7F) != 0) {
      out.write((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    out.write(v);
  }

  // ---------------------------------------------------------------- restore

  /**
   * Reads a {@link View#writeTo} stream into a new database at {@code target}, checking it as it
   * goes, and writes its meta record last, synced: a {@code .restoring} database that holds a
   * meta record is complete.
   */
  private static Meta buildFromStream(InputStream in, Path target) throws IOException {
    DataInputStream data = new DataInputStream(in);
    try {
      int magic = data.readInt();
      if (magic != STREAM_MAGIC) {
        throw badStream(String.format("magic is 0x%08x, expected 0x%08x", magic, STREAM_MAGIC));
      }
      int format = data.readInt();
      if (format != STREAM_FORMAT && format != STREAM_FORMAT_1) {
        throw badStream("format " + format + " is not supported, this build reads formats " + STREAM_FORMAT_1
            + " and " + STREAM_FORMAT);
      }
      long index = data.readLong();
      long term = data.readLong();
      long revision = data.readLong();
      long keys = data.readLong();
      long time = format == STREAM_FORMAT ? data.readLong() : 0;
      long idemCount = format == STREAM_FORMAT ? data.readLong() : 0;
      long idemSeq = format == STREAM_FORMAT ? data.readLong() : 0;
      long leases = format == STREAM_FORMAT ? data.readLong() : 0;
      // a restored database keeps no history: it starts at the stream's revision
      Meta meta = new Meta(index, term, revision, keys, revision, time, idemCount, idemSeq, leases);
      if (time < 0 || idemCount < 0 || idemSeq < 0 || leases < 0) {
        throw badStream("the header has a negative field: " + meta);
      }
      if (meta.index() < 0 || meta.term() < 0 || meta.revision() < 0 || meta.keyCount() < 0) {
        throw badStream("the header has a negative field: " + meta);
      }
      try (DB db = JniDBFactory.factory.open(target.toFile(), options(true))) {
        WriteOptions unsynced = new WriteOptions().sync(false);
        WriteBatch batch = db.createWriteBatch();
        try {
          int batchBytes = 0;
          byte[] previous = null;
          for (long i = 0; i < meta.keyCount(); i++) {
            byte[] key = readBytes(data, readVarint(data));
            if (!Arrays.equals(encodeKey(decodeKey(key, 0), 0), key)) {
              throw badStream("key " + i + " is not UTF-8 as this store writes it");
            }
            if (previous != null && Arrays.compareUnsigned(previous, key) >= 0) {
              throw badStream("keys are not in strictly increasing order at key " + i);
            }
            byte[] record = readBytes(data, readVarint(data));
            checkRecord(record, meta.revision(), i);
            byte[] dbKey = new byte[key.length + 1];
            dbKey[0] = DATA;
            System.arraycopy(key, 0, dbKey, 1, key.length);
            batch.put(dbKey, record);
            batchBytes += dbKey.length + record.length;
            long lease = decodeRecord("", record, false).lease();
            if (lease != 0) { // the lease's index of its keys is rebuilt from the keys
              batch.put(leaseKeyKey(lease, decodeKey(key, 0)), NOTHING);
            }
            if (batchBytes >= RESTORE_BATCH_BYTES) {
              db.write(batch, unsynced);
              batch.close();
              batch = db.createWriteBatch();
              batchBytes = 0;
            }
            previous = key;
          }
          previous = null;
          for (long i = 0; i < meta.idemCount(); i++) {
            byte[] key = readBytes(data, readVarint(data));
            String decoded;
            try {
              decoded = decodeKey(key, 0);
            } catch (IllegalArgumentException e) {
              throw badStream("idempotency key " + i + " is not UTF-8");
            }
            if (previous != null && Arrays.compareUnsigned(previous, key) >= 0) {
              throw badStream("idempotency keys are not in strictly increasing order at " + i);
            }
            byte[] record = readBytes(data, readVarint(data));
            IdempotencyRecord r;
            try {
              r = KvCodec.decodeIdempotencyRecord(record);
            } catch (IllegalArgumentException e) {
              throw badStream("idempotency record " + i + " is corrupt: " + e.getMessage());
            }
            if (r.seq() < 1 || r.seq() > meta.idemSeq() || r.time() < 0 || r.time() > meta.time()) {
              throw badStream("idempotency record " + i + " has sequence " + r.seq() + " and time " + r.time()
                  + " past the header's " + meta.idemSeq() + " and " + meta.time());
            }
            batch.put(idempotencyKey(decoded), record);
            batch.put(idempotencyOrderKey(r.time(), r.seq()), key);
            previous = key;
          }
          long previousLease = 0;
          for (long i = 0; i < meta.leaseCount(); i++) {
            long id = data.readLong();
            byte[] record = readBytes(data, LEASE_RECORD_BYTES);
            if (id <= previousLease) {
              throw badStream("lease ids are not positive and strictly increasing at lease " + i);
            }
            Lease lease = decodeLease(id, record);
            if (lease.ttlSeconds() <= 0) {
              throw badStream("lease " + id + " has a TTL of " + lease.ttlSeconds());
            }
            batch.put(leaseRecordKey(id), record);
            previousLease = id;
          }
          int end = data.readInt();
          if (end != STREAM_END) {
            throw badStream(String.format("0x%08x follows key %d where the end marker belongs (more keys than the "
                + "header's %d, or corrupt)", end, meta.keyCount(), meta.keyCount()));
          }
          db.write(batch, unsynced);
        } finally {
          batch.close();
        }
        db.put(META_KEY, meta(meta), new WriteOptions().sync(true));
      }
      return meta;
    } catch (EOFException e) {
      throw badStream("the stream is truncated");
    }
  }

  private static IllegalArgumentException badStream(String reason) {
    return new IllegalArgumentException("not a KV database stream: " + reason);
  }

  private static int readVarint(DataInputStream in) throws IOException {
    int v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      int x = in.readUnsignedByte();
      if (shift == 28 && (x & 0xF8) != 0) {
        throw badStream("a length over 31 bits");
      }
      v |= (x & 0x7F) << shift;
      if ((x & 0x80) == 0) {
        return v;
      }
    }
    throw new AssertionError("the fifth byte ends every varint");
  }

  /**
   * Reads {@code length} bytes. Beyond 1 MiB the buffer grows as the bytes arrive, so a corrupt
   * length prefix ends in "truncated", not in an OutOfMemoryError.
   */
  private static byte[] readBytes(DataInputStream in, int length) throws IOException {
    if (length <= 1 << 20) {
      byte[] bytes = new byte[length];
      in.readFully(bytes);
      return bytes;
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 20);
    byte[] chunk = new byte[1 << 16];
    int left = length;
    while (left > 0) {
      int n = in.read(chunk, 0, Math.min(left, chunk.length));
      if (n < 0) {
        throw new EOFException();
      }
      bytes.write(chunk, 0, n);
      left -= n;
    }
    return bytes.toByteArray();
  }

  private static void checkRecord(byte[] record, long revision, long i) {
    KeyValue kv;
    try {
      kv = decodeRecord("", record, false);
    } catch (IllegalArgumentException e) {
      throw badStream("the value of key " + i + " is corrupt: " + e.getMessage());
    }
    if (kv.createRevision() < 1 || kv.createRevision() > kv.modRevision() || kv.modRevision() > revision
        || kv.version() < 1) {
      throw badStream("key " + i + " has createRevision " + kv.createRevision() + ", modRevision "
          + kv.modRevision() + " and version " + kv.version() + " at store revision " + revision);
    }
  }

  // ---------------------------------------------------------------- directories and the meta record

  /**
   * The meta record's fields: the applied index and term, store revision, key count, compact
   * revision and the time of the last entry applied.
   */
  private record Meta(long index, long term, long revision, long keyCount, long compactRevision, long time,
                      long idemCount, long idemSeq, long leaseCount) {}

  private static Options options(boolean create) {
    return new Options()
        .createIfMissing(create)
        .paranoidChecks(true)
        .compressionType(CompressionType.SNAPPY)
        .cacheSize(8L << 20)
        .writeBufferSize(4 << 20)
        .maxOpenFiles(256);
  }

  /**
   * Opens LevelDB in {@code dir}: created there only when {@code dir} is absent or empty, so a
   * directory of other files is refused rather than gaining a database beside them.
   */
  private static DB openLevelDb(Path dir) throws IOException {
    boolean create = !Files.exists(dir) || isEmptyDirectory(dir);
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new IllegalStateException("KV database " + dir + " is not a directory");
    }
    try {
      return JniDBFactory.factory.open(dir.toFile(), options(create));
    } catch (IOException | RuntimeException e) {
      String reason = oneLine(e);
      if (reason.contains("does not exist")) {
        reason = "it holds files but no LevelDB database (" + reason + ")";
      }
      throw new IllegalStateException("KV database " + dir + " cannot be opened: " + reason, e);
    }
  }

  /**
   * The meta record of a database just opened. A database with no record at all is new (LevelDB
   * creates its files before the first meta record is written, and a crash may fall in between):
   * it gets a meta record at index 0. One with keys but no meta record, or a foreign one, is
   * refused.
   */
  private static Meta readOrCreateMeta(Path dir, DB db) {
    byte[] record;
    try {
      record = db.get(META_KEY);
    } catch (RuntimeException e) {
      throw new IllegalStateException("KV database " + dir + " is unreadable: " + oneLine(e), e);
    }
    if (record == null) {
      boolean empty;
      try (DBIterator it = db.iterator()) {
        it.seekToFirst();
        empty = !it.hasNext();
      } catch (IOException | RuntimeException e) {
        throw new IllegalStateException("KV database " + dir + " is unreadable: " + oneLine(e), e);
      }
      if (!empty) {
        throw new IllegalStateException(
            "KV database " + dir + " is not a raftkv KV database: it is a LevelDB without a raftkv meta record");
      }
      Meta meta = new Meta(0, 0, 0, 0, 0, 0, 0, 0, 0);
      db.put(META_KEY, meta(meta), new WriteOptions().sync(true));
      return meta;
    }
    ByteBuffer b = ByteBuffer.wrap(record);
    if (record.length < 8 || b.getInt(0) != META_MAGIC) {
      throw new IllegalStateException("KV database " + dir + " is not a raftkv KV database: its meta record is foreign");
    }
    int format = b.getInt(4);
    if (format != META_FORMAT && format != META_FORMAT_1) {
      throw new IllegalStateException("KV database " + dir + " has format " + format
          + ", this build reads formats " + META_FORMAT_1 + " and " + META_FORMAT);
    }
    int expected = format == META_FORMAT ? META_BYTES : META_BYTES_1;
    if (record.length != expected) {
      throw new IllegalStateException("KV database " + dir + " is corrupt: its meta record has "
          + record.length + " bytes, expected " + expected);
    }
    // format 1 kept no history: it starts at the current revision
    Meta meta = format == META_FORMAT
        ? new Meta(b.getLong(8), b.getLong(16), b.getLong(24), b.getLong(32), b.getLong(40), b.getLong(48),
            b.getLong(56), b.getLong(64), b.getLong(72))
        : new Meta(b.getLong(8), b.getLong(16), b.getLong(24), b.getLong(32), b.getLong(24), 0, 0, 0, 0);
    if (meta.index() < 0 || meta.term() < 0 || meta.revision() < 0 || meta.keyCount() < 0
        || meta.compactRevision() < 0 || meta.compactRevision() > meta.revision() || meta.time() < 0
        || meta.idemCount() < 0 || meta.idemSeq() < 0 || meta.leaseCount() < 0) {
      throw new IllegalStateException("KV database " + dir + " is corrupt: its meta record says " + meta);
    }
    return meta;
  }

  private static byte[] meta(Meta m) {
    return ByteBuffer.allocate(META_BYTES)
        .putInt(META_MAGIC).putInt(META_FORMAT).putLong(m.index()).putLong(m.term()).putLong(m.revision())
        .putLong(m.keyCount()).putLong(m.compactRevision()).putLong(m.time()).putLong(m.idemCount()).putLong(m.idemSeq())
        .putLong(m.leaseCount()).array();
  }

  /**
   * Finishes or undoes a {@link #restore} that a crash interrupted, then removes its leftovers. A
   * restore renames {@code dir} to {@code .old} only after {@code .restoring} is complete, and a
   * complete {@code .restoring} is one holding a meta record (written last, synced). So: when
   * {@code dir} is missing and {@code .old} exists, the crash fell inside the swap; a {@code
   * .restoring} with a meta record then becomes {@code dir}, and otherwise (which a restore never
   * leaves) {@code .old} goes back. When {@code dir} exists, a {@code .restoring} is a restore that
   * never swapped, and a {@code .old} one that swapped but did not delete it: both are deleted.
   */
  static void finishInterruptedRestore(Path dir) throws IOException {
    Path restoring = sibling(dir, RESTORING);
    Path old = sibling(dir, OLD);
    if (!Files.exists(dir) && Files.isDirectory(old)) {
      if (Files.isDirectory(restoring) && holdsMeta(restoring)) {
        Files.move(restoring, dir, StandardCopyOption.ATOMIC_MOVE);
      } else {
        Files.move(old, dir, StandardCopyOption.ATOMIC_MOVE);
      }
      syncDirectory(dir.getParent());
    }
    deleteTree(restoring);
    deleteTree(old);
  }

  private static boolean holdsMeta(Path db) {
    try (DB opened = JniDBFactory.factory.open(db.toFile(), options(false))) {
      byte[] record = opened.get(META_KEY);
      return record != null && (record.length == META_BYTES || record.length == META_BYTES_1)
          && ByteBuffer.wrap(record).getInt() == META_MAGIC;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  private static Path sibling(Path dir, String suffix) {
    return dir.resolveSibling(dir.getFileName() + suffix);
  }

  private static boolean isEmptyDirectory(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return false;
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      return !entries.iterator().hasNext();
    }
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    }
  }

  private static void deleteTreeQuietly(Path root) {
    try {
      deleteTree(root);
    } catch (IOException e) {
      // the next open deletes it
    }
  }

  /** Makes renames in {@code dir} durable, where the platform allows opening a directory. */
  private static void syncDirectory(Path dir) {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException e) {
      // not every platform can fsync a directory
    }
  }

  private static String oneLine(Throwable e) {
    String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    return message.replaceAll("[\\r\\n]+", " ").trim();
  }

  // ---------------------------------------------------------------- keys and value records

  /** The LevelDB key of {@code key}: {@code 'k'} and its UTF-8 bytes. */
  private static byte[] dataKey(String key) {
    return encodeKey(key, 1);
  }

  /** The key of a LevelDB data key; a malformed one means the database is corrupt. */
  private String storedKey(byte[] dbKey) {
    try {
      return decodeKey(dbKey, 1);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("KV database " + dir + " is corrupt: " + e.getMessage());
    }
  }

  /** The KeyValue of a stored value record; a malformed one means the database is corrupt. */
  private KeyValue storedRecord(String key, byte[] record, boolean withValue) {
    try {
      return decodeRecord(key, record, withValue);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("KV database " + dir + " is corrupt at key '" + key + "': " + e.getMessage());
    }
  }

  private static boolean startsWith(byte[] bytes, byte[] prefix) {
    return bytes.length >= prefix.length
        && Arrays.equals(bytes, 0, prefix.length, prefix, 0, prefix.length);
  }

  /**
   * {@code skip} zero bytes then UTF-8 of {@code key}, an unpaired surrogate written as its own
   * three-byte sequence (as {@link KvStore}'s snapshot does), so that every Java string is a key.
   */
  static byte[] encodeKey(String key, int skip) {
    byte[] bytes = new byte[skip + KvStore.utf8Length(key)];
    if (skip > 0) {
      bytes[0] = DATA;
    }
    int at = skip;
    for (int i = 0; i < key.length(); ) {
      int cp = key.codePointAt(i);
      i += Character.charCount(cp);
      if (cp < 0x80) {
        bytes[at++] = (byte) cp;
      } else if (cp < 0x800) {
        bytes[at++] = (byte) (0xC0 | cp >> 6);
        bytes[at++] = (byte) (0x80 | cp & 0x3F);
      } else if (cp < 0x10000) {
        bytes[at++] = (byte) (0xE0 | cp >> 12);
        bytes[at++] = (byte) (0x80 | cp >> 6 & 0x3F);
        bytes[at++] = (byte) (0x80 | cp & 0x3F);
      } else {
        bytes[at++] = (byte) (0xF0 | cp >> 18);
        bytes[at++] = (byte) (0x80 | cp >> 12 & 0x3F);
        bytes[at++] = (byte) (0x80 | cp >> 6 & 0x3F);
        bytes[at++] = (byte) (0x80 | cp & 0x3F);
      }
    }
    return bytes;
  }

  /** Reads what {@link #encodeKey} wrote from {@code from} on; IllegalArgumentException when it is no such UTF-8. */
  static String decodeKey(byte[] bytes, int from) {
    StringBuilder key = new StringBuilder(bytes.length - from);
    for (int i = from; i < bytes.length; ) {
      int lead = bytes[i++] & 0xFF;
      if (lead < 0x80) {
        key.append((char) lead);
        continue;
      }
      int continuations;
      int cp;
      if ((lead & 0xE0) == 0xC0) {
        continuations = 1;
        cp = lead & 0x1F;
      } else if ((lead & 0xF0) == 0xE0) {
        continuations = 2;
        cp = lead & 0x0F;
      } else if ((lead & 0xF8) == 0xF0) {
        continuations = 3;
        cp = lead & 0x07;
      } else {
        throw new IllegalArgumentException("a key is not UTF-8");
      }
      for (int k = 0; k < continuations; k++) {
        if (i == bytes.length || (bytes[i] & 0xC0) != 0x80) {
          throw new IllegalArgumentException("a key is not UTF-8");
        }
        cp = cp << 6 | bytes[i++] & 0x3F;
      }
      if (cp > Character.MAX_CODE_POINT) {
        throw new IllegalArgumentException("a key is not UTF-8");
      }
      key.appendCodePoint(cp);
    }
    return key.toString();
  }

  /**
   * A value record: a flag byte (1: the value is null), createRevision, modRevision, version and
   * lease as unsigned LEB128 varints of their 64 bits, then the value's bytes to the end.
   */
  private static byte[] record(KeyValue kv) {
    byte[] value = kv.value();
    int length = 1 + varlongBytes(kv.createRevision()) + varlongBytes(kv.modRevision())
        + varlongBytes(kv.version()) + varlongBytes(kv.lease()) + (value == null ? 0 : value.length);
    byte[] record = new byte[length];
    record[0] = (byte) (value == null ? 1 : 0);
    int at = 1;
    at = putVarlong(record, at, kv.createRevision());
    at = putVarlong(record, at, kv.modRevision());
    at = putVarlong(record, at, kv.version());
    at = putVarlong(record, at, kv.lease());
    if (value != null) {
      System.arraycopy(value, 0, record, at, value.length);
    }
    return record;
  }

  private static KeyValue decodeRecord(String key, byte[] record, boolean withValue) {
    if (record.length < 5) {
      throw new IllegalArgumentException("a value record of " + record.length + " bytes is too short");
    }
    int flags = record[0];
    if (flags != 0 && flags != 1) {
      throw new IllegalArgumentException("a value record has flags " + flags);
    }
    long[] at = {1};
    long createRevision = getVarlong(record, at);
    long modRevision = getVarlong(record, at);
    long version = getVarlong(record, at);
    long lease = getVarlong(record, at);
    int valueStart = (int) at[0];
    if (flags == 1 && valueStart != record.length) {
      throw new IllegalArgumentException("a value record of a null value has " + (record.length - valueStart)
          + " bytes of value");
    }
    byte[] value = flags == 1 || !withValue ? null : Arrays.copyOfRange(record, valueStart, record.length);
    return new KeyValue(key, value, createRevision, modRevision, version, lease);
  }

  private static int varlongBytes(long v) {
    int n = 1;
    while ((v & ~0x7FL) != 0) {
      v >>>= 7;
      n++;
    }
    return n;
  }

  private static int putVarlong(byte[] into, int at, long v) {
    while ((v & ~0x7FL) != 0) {
      into[at++] = (byte) ((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    into[at++] = (byte) v;
    return at;
  }

  /** A varlong at {@code at[0]}, which it advances; IllegalArgumentException past the end or beyond 64 bits. */
  private static long getVarlong(byte[] from, long[] at) {
    int pos = (int) at[0];
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= from.length) {
        throw new IllegalArgumentException("a value record ends inside a number");
      }
      int x = from[pos++] & 0xFF;
      if (shift == 63 && (x & 0xFE) != 0) {
        throw new IllegalArgumentException("a value record holds a number over 64 bits");
      }
      v |= (long) (x & 0x7F) << shift;
      if ((x & 0x80) == 0) {
        at[0] = pos;
        return v;
      }
    }
    throw new AssertionError("the tenth byte ends every varlong");
  }

  // ---------------------------------------------------------------- the LevelDB handle

  /**
   * One open LevelDB and who uses it: the database itself and each open view. LevelDB is closed
   * when the last of them lets go, so a view on another thread never reads a closed database
   * (which would crash the JVM, not throw).
   */
  private static final class Handle {
    final DB db;
    private final AtomicInteger refs = new AtomicInteger(1);
    /** Set by a restore that waits to replace this database: views stop writing. */
    volatile boolean retiring;

    Handle(DB db) {
      this.db = db;
    }

    boolean acquire() {
      while (true) {
        int n = refs.get();
        if (n == 0) {
          return false;
        }
        if (refs.compareAndSet(n, n + 1)) {
          return true;
        }
      }
    }

    void release() {
      if (refs.decrementAndGet() == 0) {
        try {
          db.close();
        } catch (IOException e) {
          throw new UncheckedIOException("cannot close a KV database", e);
        }
      }
    }

    /** Waits until only the owner holds the handle (every view closed); false after {@code millis}. */
    boolean awaitOnlyOwner(long millis) {
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
      while (refs.get() > 1) {
        if (System.nanoTime() > deadline) {
          return false;
        }
        try {
          Thread.sleep(5);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
      return true;
    }
  }
}
