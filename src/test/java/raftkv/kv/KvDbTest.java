package raftkv.kv;

import org.fusesource.leveldbjni.JniDBFactory;
import org.iq80.leveldb.DB;
import org.iq80.leveldb.Options;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static raftkv.testutil.RecordAssertions.assertFieldsEqual;

/**
 * KvDb must be KvStore on disk: the same results for the same commands, whatever the batching,
 * plus what only a disk store has (an applied index that survives a restart, views that stream
 * while apply goes on, restore that keeps the old state on a bad stream).
 */
class KvDbTest {

  private static final String GRINNING = "\uD83D\uDE00"; // U+1F600, after U+FFFD in byte order
  private static final String[] KEYS = {
      "a", "a/", "a/b", "a/b/c", "a/c", "ab", "b", "b/x", "\u00e9", "\u00e9/1", "\u4e2d", "\u4e2d\u6587",
      "\uFFFD", GRINNING, GRINNING + "/x", "z", "z\u0000", "zz"};
  private static final String[] PREFIXES = {"a", "a/", "a/b", "b", "\u00e9", "\u4e2d", GRINNING, "z", "q", ""};

  @TempDir
  Path tmp;

  private final List<KvDb> opened = new ArrayList<>();

  @AfterEach
  void closeAll() {
    opened.forEach(KvDb::close);
  }

  private KvDb open(Path dir) {
    KvDb db = KvDb.open(dir);
    opened.add(db);
    return db;
  }

  // ---------------------------------------------------------------- the same as KvStore

  @ParameterizedTest
  @ValueSource(longs = {20261202, 1, 77})
  void random_commands_in_random_batches_give_the_same_results_and_content_as_kv_store(long seed) {
    Random random = new Random(seed);
    KvDb db = open(tmp.resolve("db"));
    KvStore store = new KvStore();
    long index = 0;
    int applied = 0;
    while (applied < 4000) {
      int size = random.nextInt(10) == 0 ? 0 : 1 + random.nextInt(random.nextBoolean() ? 5 : 60);
      KvDb.Batch batch = db.batch();
      for (int i = 0; i < size; i++, applied++) {
        KvCommand command = randomCommand(random, store);
        KvResult expected = store.apply(command);
        KvResult actual = batch.apply(command);
        assertFieldsEqual(expected, actual, "command " + applied + " " + command);
        assertEquals(store.revision(), batch.revision(), "revision after command " + applied);
      }
      index++;
      batch.commit(index, 1 + index / 100);
      assertEquals(index, db.appliedIndex());
      assertEquals(store.revision(), db.revision());
      assertEquals(store.size(), db.keyCount());
      for (int q = 0; q < 5; q++) {
        KvQuery query = randomQuery(random);
        assertFieldsEqual(store.query(query), db.query(query), "query " + query);
      }
    }
    assertSameContent(store, db);
    assertTrue(store.size() > 3, "the workload leaves some keys: " + store.size());
  }

  @Test
  void a_txn_reads_its_own_and_the_batchs_earlier_writes_and_a_prefix_delete_covers_pending_keys() {
    KvDb db = open(tmp.resolve("db"));
    KvStore store = new KvStore();
    KvDb.Batch first = db.batch();
    both(store, first, put("a/1", "committed"));
    first.commit(1, 1);
    KvDb.Batch batch = db.batch();
    both(store, batch, put("a/2", "pending"));
    both(store, batch, new KvCommand.Txn(
        List.of(new Compare("a/2", Compare.Target.VALUE, Compare.Op.EQUAL, 0, bytes("pending"))),
        List.of(new TxnOp.Put("a/3", bytes("in txn"), 0), new TxnOp.Get("a/3"), new TxnOp.Get("a/2"),
            new TxnOp.Delete("a/", true), new TxnOp.Get("a/1"), new TxnOp.Put("a/1", bytes("again"), 0),
            new TxnOp.Get("a/1")),
        List.of()));
    KvResult deleted = both(store, batch, new KvCommand.Delete("a", true, null));
    assertEquals(new KvResult.DeleteDone(4, 1), deleted);
    batch.commit(2, 1);
    assertSameContent(store, db);
    assertEquals(0, db.keyCount());
  }

  @Test
  void committed_state_and_the_applied_index_survive_close_and_reopen() {
    Path dir = tmp.resolve("db");
    KvDb db = open(dir);
    assertEquals(0, db.appliedIndex());
    KvStore store = new KvStore();
    KvDb.Batch batch = db.batch();
    both(store, batch, put("x", "1"));
    both(store, batch, put(GRINNING, "2"));
    both(store, batch, put("x", "3"));
    batch.commit(17, 4);
    db.batch().commit(18, 5); // a no-op entry still moves the index
    assertEquals(18, db.sync());
    db.close();

    KvDb reopened = open(dir);
    assertEquals(18, reopened.appliedIndex());
    assertEquals(5, reopened.appliedTerm());
    assertEquals(3, reopened.revision());
    assertEquals(2, reopened.keyCount());
    assertSameContent(store, reopened);
    assertTrue(reopened.diskBytes() > 0);
  }

  @Test
  void a_batch_not_committed_leaves_nothing_and_a_committed_one_cannot_commit_again() {
    KvDb db = open(tmp.resolve("db"));
    KvDb.Batch dropped = db.batch();
    dropped.apply(put("gone", "1"));
    KvDb.Batch batch = db.batch();
    batch.apply(put("kept", "1"));
    batch.commit(1, 1);
    assertThrows(IllegalStateException.class, () -> batch.commit(2, 1));
    assertThrows(IllegalStateException.class, () -> dropped.commit(2, 1));
    assertEquals(new KvResult.GetDone(1, null), db.query(new KvQuery.Get("gone")));
    assertThrows(IllegalArgumentException.class, () -> db.batch().commit(0, 1));
  }

  @Test
  void a_command_that_throws_inside_a_batch_leaves_no_trace() {
    KvDb db = open(tmp.resolve("db"));
    KvStore store = new KvStore();
    KvDb.Batch setup = db.batch();
    both(store, setup, put("p/1", "1"));
    both(store, setup, put("p/2", "2"));
    setup.commit(1, 1);

    KvDb.Batch batch = db.batch();
    both(store, batch, put("p/3", "3"));
    List<TxnOp> badOps = new ArrayList<>();
    badOps.add(new TxnOp.Put("p/4", bytes("4"), 0));
    badOps.add(new TxnOp.Delete("p/", true));
    badOps.add(new TxnOp.Put("q", bytes("q"), 0));
    badOps.add(null);
    KvCommand bad = new KvCommand.Txn(List.of(), badOps, List.of());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> batch.apply(bad));
    assertTrue(e.getMessage().contains("unknown txn op"), e.getMessage());
    assertEquals(store.revision(), batch.revision());
    // the batch goes on as if the bad command never came
    both(store, batch, new KvCommand.Txn(List.of(), List.of(new TxnOp.Get("p/3"), new TxnOp.Get("p/4"),
        new TxnOp.Get("q")), List.of()));
    both(store, batch, new KvCommand.Delete("p/", true, null));
    batch.commit(2, 1);
    assertSameContent(store, db);
  }

  // ---------------------------------------------------------------- views and restore

  @Test
  void a_view_written_while_batches_commit_restores_exactly_the_state_at_its_index() throws Exception {
    Random random = new Random(5);
    KvDb db = open(tmp.resolve("db"));
    List<List<KvCommand>> log = new ArrayList<>();
    KvStore shadow = new KvStore();
    for (int i = 0; i < 200; i++) {
      log.add(applyRandomBatch(random, db, shadow, log.size() + 1));
    }
    KvDb.View view = db.view();
    long viewIndex = view.index();
    assertEquals(200, viewIndex);
    for (int i = 0; i < 50; i++) { // commits after the view was taken, before it is written
      log.add(applyRandomBatch(random, db, shadow, log.size() + 1));
    }
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    OutputStream slow = new OutputStream() {
      @Override
      public void write(int b) {
        stream.write(b);
      }

      @Override
      public void write(byte[] b, int off, int len) {
        sleep(20);
        stream.write(b, off, len);
      }
    };
    CompletableFuture<Void> writing = CompletableFuture.runAsync(() -> {
      try (view) {
        view.writeTo(slow);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    for (int i = 0; i < 100; i++) { // and while it is written
      log.add(applyRandomBatch(random, db, shadow, log.size() + 1));
    }
    writing.get(30, TimeUnit.SECONDS);

    KvStore atView = replay(log.subList(0, (int) viewIndex));
    // into the same database, which has moved on
    db.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertEquals(viewIndex, db.appliedIndex());
    assertEquals(atView.revision(), db.revision());
    assertSameContent(atView, db);
    // and into a new one elsewhere
    KvDb other = open(tmp.resolve("other"));
    other.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertSameContent(atView, other);
    // both go on from there
    KvDb.Batch batch = db.batch();
    assertFieldsEqual(atView.apply(put("after", "restore")), batch.apply(put("after", "restore")), "put");
    batch.commit(viewIndex + 1, 99);
    db.close();
    KvDb reopened = open(tmp.resolve("db"));
    assertEquals(viewIndex + 1, reopened.appliedIndex());
    assertSameContent(atView, reopened);
    assertFalse(Files.exists(tmp.resolve("db.restoring")));
    assertFalse(Files.exists(tmp.resolve("db.old")));
  }

  @Test
  void restore_reads_exactly_its_stream_so_a_trailer_may_follow() throws IOException {
    KvDb db = open(tmp.resolve("db"));
    applyRandomBatch(new Random(1), db, new KvStore(), 1);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (KvDb.View view = db.view()) {
      view.writeTo(bytes);
    }
    bytes.write(new byte[] {1, 2, 3});
    InputStream in = new ByteArrayInputStream(bytes.toByteArray());
    open(tmp.resolve("copy")).restore(in);
    assertEquals(3, in.available());
  }

  @Test
  void a_truncated_or_corrupt_stream_is_refused_and_the_database_stays_as_it_was() throws IOException {
    Random random = new Random(9);
    KvDb db = open(tmp.resolve("db"));
    KvStore shadow = new KvStore();
    for (int i = 1; i <= 20; i++) {
      applyRandomBatch(random, db, shadow, i);
    }
    byte[] good;
    try (KvDb.View view = db.view()) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      view.writeTo(out);
      good = out.toByteArray();
    }
    // a different state to restore over
    KvDb.Batch batch = db.batch();
    shadow.apply(put("only/here", "x"));
    batch.apply(put("only/here", "x"));
    batch.commit(21, 3);

    List<byte[]> bad = new ArrayList<>();
    for (int n : new int[] {0, 3, 8, 20, 40, good.length / 2, good.length - 4, good.length - 1}) {
      bad.add(Arrays.copyOf(good, n));
    }
    bad.add(flip(good, 0)); // magic
    bad.add(flip(good, 7)); // format
    bad.add(flip(good, 32)); // the high byte of the key count
    bad.add(flip(good, 39)); // the low byte of the key count
    bad.add(flip(good, FIRST_KEY)); // the first key's length
    bad.add(flip(good, good.length - 1)); // the end marker
    bad.add(withKeyOutOfOrder(good));
    for (byte[] stream : bad) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> db.restore(new ByteArrayInputStream(stream)), "a stream of " + stream.length + " bytes");
      assertFalse(e.getMessage().contains("\n"), e.getMessage());
      assertEquals(21, db.appliedIndex());
      assertSameContent(shadow, db);
      assertFalse(Files.exists(tmp.resolve("db.restoring")));
    }
    // still open and usable
    KvDb.Batch next = db.batch();
    next.apply(put("still", "works"));
    next.commit(22, 3);
    assertEquals(22, db.appliedIndex());
  }

  @Test
  void a_huge_length_prefix_in_a_stream_is_truncation_not_out_of_memory() throws IOException {
    KvDb db = open(tmp.resolve("db"));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    java.io.DataOutputStream data = new java.io.DataOutputStream(out);
    data.writeInt(KvDb.STREAM_MAGIC);
    data.writeInt(KvDb.STREAM_FORMAT);
    data.writeLong(5);
    data.writeLong(1);
    data.writeLong(1);
    data.writeLong(1);
    data.write(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x07, 'a', 'b'});
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> db.restore(new ByteArrayInputStream(out.toByteArray())));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    assertEquals(0, db.appliedIndex());
  }

  @Test
  void an_empty_database_streams_and_restores() throws IOException {
    KvDb db = open(tmp.resolve("db"));
    db.batch().commit(3, 2);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (KvDb.View view = db.view()) {
      view.writeTo(out);
    }
    assertEquals(FIRST_KEY + 4, out.size());
    KvDb copy = open(tmp.resolve("copy"));
    copy.restore(new ByteArrayInputStream(out.toByteArray()));
    assertEquals(3, copy.appliedIndex());
    assertEquals(2, copy.appliedTerm());
  }

  @Test
  void a_crash_inside_the_swap_is_finished_on_open_or_rolled_back() throws IOException {
    Path dir = tmp.resolve("db");
    KvDb db = KvDb.open(dir);
    KvDb.Batch batch = db.batch();
    batch.apply(put("old", "1"));
    batch.commit(5, 1);
    db.close();

    // a source of a restore stream at index 9
    KvDb source = open(tmp.resolve("source"));
    KvDb.Batch sourceBatch = source.batch();
    sourceBatch.apply(put("new", "2"));
    sourceBatch.commit(9, 2);
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    try (KvDb.View view = source.view()) {
      view.writeTo(stream);
    }

    // crashed after dir -> .old, with a complete .restoring: the restore is finished
    KvDb restoring = KvDb.open(tmp.resolve("db.restoring"));
    restoring.restore(new ByteArrayInputStream(stream.toByteArray()));
    restoring.close();
    Files.move(dir, tmp.resolve("db.old"));
    KvDb finished = KvDb.open(dir);
    assertEquals(9, finished.appliedIndex());
    assertEquals(new KvResult.GetDone(1, null), finished.query(new KvQuery.Get("old")));
    assertFalse(Files.exists(tmp.resolve("db.old")));
    assertFalse(Files.exists(tmp.resolve("db.restoring")));
    finished.close();

    // crashed after dir -> .old without a complete .restoring: the old state comes back
    Files.move(dir, tmp.resolve("db.old"));
    Files.createDirectories(tmp.resolve("db.restoring"));
    Files.writeString(tmp.resolve("db.restoring").resolve("000003.log"), "half");
    KvDb rolledBack = open(dir);
    assertEquals(9, rolledBack.appliedIndex());
    assertFalse(Files.exists(tmp.resolve("db.restoring")));
  }

  @Test
  void restore_asks_an_open_view_to_stop_and_waits_for_it() throws Exception {
    KvDb db = open(tmp.resolve("db"));
    KvDb.Batch batch = db.batch();
    for (int i = 0; i < 3000; i++) { // a few hundred KiB: the view's buffer fills many times
      batch.apply(KvCommand.Put.of("k" + i, new byte[100]));
    }
    batch.commit(1, 1);
    KvDb source = open(tmp.resolve("source"));
    source.batch().commit(7, 2);
    ByteArrayOutputStream small = new ByteArrayOutputStream();
    try (KvDb.View view = source.view()) {
      view.writeTo(small);
    }

    KvDb.View view = db.view();
    CountDownLatch writing = new CountDownLatch(1);
    CountDownLatch goOn = new CountDownLatch(1);
    OutputStream stalling = new OutputStream() {
      @Override
      public void write(int b) {}

      @Override
      public void write(byte[] b, int off, int len) {
        writing.countDown();
        await(goOn);
      }
    };
    CompletableFuture<Throwable> writer = CompletableFuture.supplyAsync(() -> {
      try (view) {
        view.writeTo(stalling);
        return null;
      } catch (IOException e) {
        return e;
      }
    });
    assertTrue(writing.await(10, TimeUnit.SECONDS));
    CompletableFuture.runAsync(() -> {
      // the restore has built its database: it now waits for the view
      while (!Files.exists(tmp.resolve("db.restoring").resolve("CURRENT"))) {
        sleep(5);
      }
      sleep(500);
      goOn.countDown();
    });
    db.restore(new ByteArrayInputStream(small.toByteArray()));
    assertEquals(7, db.appliedIndex());
    assertEquals(0, db.keyCount());
    Throwable stopped = writer.get(10, TimeUnit.SECONDS);
    assertInstanceOf(IOException.class, stopped);
    assertTrue(stopped.getMessage().contains("restore"), stopped.getMessage());
  }

  // ---------------------------------------------------------------- what is not a KV database

  @Test
  void a_directory_holding_another_leveldb_is_refused_in_one_line() throws IOException {
    Path dir = tmp.resolve("foreign");
    try (DB other = JniDBFactory.factory.open(dir.toFile(), new Options().createIfMissing(true))) {
      other.put(bytes("some"), bytes("thing"));
    }
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> open(dir));
    assertOneLineNaming(e, dir);
    assertTrue(e.getMessage().contains("not a raftkv KV database"), e.getMessage());
  }

  @Test
  void a_leveldb_whose_meta_record_is_foreign_is_refused() throws IOException {
    Path dir = tmp.resolve("foreign-meta");
    try (DB other = JniDBFactory.factory.open(dir.toFile(), new Options().createIfMissing(true))) {
      other.put(new byte[] {'m'}, bytes("not our meta record at all, longer than forty bytes"));
    }
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> open(dir));
    assertOneLineNaming(e, dir);
  }

  @Test
  void a_directory_of_garbage_files_is_refused_in_one_line() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("garbage"));
    Files.writeString(dir.resolve("notes.txt"), "hello\nworld\n");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> open(dir));
    assertOneLineNaming(e, dir);
    assertFalse(Files.exists(dir.resolve("CURRENT")), "no database was created beside the files");

    Path corrupt = tmp.resolve("corrupt");
    KvDb.open(corrupt).close();
    Files.writeString(corrupt.resolve("CURRENT"), "MANIFEST-999999\n");
    IllegalStateException c = assertThrows(IllegalStateException.class, () -> open(corrupt));
    assertOneLineNaming(c, corrupt);
  }

  @Test
  void a_database_open_twice_is_refused_in_one_line() {
    Path dir = tmp.resolve("db");
    open(dir);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> open(dir));
    assertOneLineNaming(e, dir);
  }

  @Test
  void an_empty_existing_directory_becomes_a_new_database() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("empty"));
    KvDb db = open(dir);
    assertEquals(0, db.appliedIndex());
    assertEquals(new KvResult.RangeDone(0, List.of(), false), db.query(new KvQuery.Range("", null, 0)));
  }

  // ---------------------------------------------------------------- helpers

  private static void assertOneLineNaming(IllegalStateException e, Path dir) {
    String message = e.getMessage();
    assertFalse(message.contains("\n") || message.contains("\r"), message);
    assertTrue(message.contains(dir.toAbsolutePath().normalize().toString()), message);
  }

  private static KvResult both(KvStore store, KvDb.Batch batch, KvCommand command) {
    KvResult expected = store.apply(command);
    KvResult actual = batch.apply(command);
    assertFieldsEqual(expected, actual, command.toString());
    return actual;
  }

  /** Everything in the store equals everything in the database, key by key, and the revision. */
  private static void assertSameContent(KvStore store, KvDb db) {
    KvQuery all = new KvQuery.Range("", null, 0);
    KvResult.RangeDone expected = (KvResult.RangeDone) store.query(all);
    KvResult.RangeDone actual = (KvResult.RangeDone) db.query(all);
    assertFieldsEqual(expected, actual, "content");
    assertEquals(store.size(), db.keyCount());
    assertArrayEquals(KvCodec.encode(expected), KvCodec.encode(actual));
  }

  private static KvStore replay(List<List<KvCommand>> log) {
    KvStore store = new KvStore();
    log.forEach(batch -> batch.forEach(store::apply));
    return store;
  }

  private static List<KvCommand> applyRandomBatch(Random random, KvDb db, KvStore shadow, long index) {
    List<KvCommand> commands = new ArrayList<>();
    KvDb.Batch batch = db.batch();
    for (int i = random.nextInt(20); i > 0; i--) {
      KvCommand command = randomCommand(random, shadow);
      shadow.apply(command);
      batch.apply(command);
      commands.add(command);
    }
    batch.commit(index, 1);
    return commands;
  }

  private static KvCommand randomCommand(Random random, KvStore store) {
    int kind = random.nextInt(100);
    if (kind < 3) {
      // leases 1 and 2 come and go: a revoke deletes its keys at one revision, puts under a lease that is gone are refused
      long lease = 1 + random.nextInt(2);
      return kind == 0 ? new KvCommand.LeaseRevoke(lease, 0) : new KvCommand.LeaseGrant(lease, 10);
    }
    if (kind < 45) {
      Long ifMod = random.nextInt(6) == 0 ? modRevisionGuess(random, store) : null;
      return new KvCommand.Put(key(random), value(random), random.nextInt(3), ifMod, random.nextInt(10) == 0);
    } else if (kind < 60) {
      Long ifMod = random.nextInt(4) == 0 ? modRevisionGuess(random, store) : null;
      return new KvCommand.Delete(key(random), false, ifMod);
    } else if (kind < 65) {
      return new KvCommand.Delete(prefix(random), true, null);
    } else if (kind < 68) {
      // fenced writes: the lock's holder is the lowest create revision under "<lock>/" (API.md §3)
      String lock = LOCKS[random.nextInt(LOCKS.length)];
      long token = random.nextBoolean() ? holder(store, lock) : 1 + random.nextInt(4);
      KvCommand inner = random.nextBoolean() ? new KvCommand.Put(key(random), value(random), 0, null, false)
          : random.nextBoolean() ? new KvCommand.Delete(key(random), false, null)
          : new KvCommand.Txn(List.of(), ops(random), List.of());
      return new KvCommand.Fenced(lock, Math.max(1, token), inner);
    }
    List<Compare> compares = new ArrayList<>();
    for (int i = random.nextInt(3); i > 0; i--) {
      Compare.Target target = Compare.Target.values()[random.nextInt(Compare.Target.values().length)];
      String key = target == Compare.Target.LOCK ? LOCKS[random.nextInt(LOCKS.length)] : key(random);
      long number = target == Compare.Target.LOCK && random.nextBoolean() ? holder(store, key) : random.nextInt(4);
      compares.add(new Compare(key, target, Compare.Op.values()[random.nextInt(4)],
          target == Compare.Target.VALUE ? 0 : number,
          target == Compare.Target.VALUE && random.nextBoolean() ? value(random) : null));
    }
    return new KvCommand.Txn(compares, ops(random), ops(random));
  }

  /** Lock names whose "<name>/" prefixes hold some of KEYS. */
  private static final String[] LOCKS = {"a", "a/b", "b", "\u00e9", GRINNING, "q"};

  /** The fencing token of {@code lock} in the model: the lowest create revision under "<lock>/", 0 for none. */
  private static long holder(KvStore store, String lock) {
    KvResult.RangeDone range = (KvResult.RangeDone) store.query(new KvQuery.Range(lock + "/", null, 0));
    return range.kvs().stream().mapToLong(KeyValue::createRevision).min().orElse(0);
  }

  private static Long modRevisionGuess(Random random, KvStore store) {
    if (random.nextBoolean()) {
      return 0L;
    }
    KvResult.GetDone get = (KvResult.GetDone) store.query(new KvQuery.Get(key(random)));
    return get.kv() == null ? (long) random.nextInt(3) : get.kv().modRevision();
  }

  private static List<TxnOp> ops(Random random) {
    List<TxnOp> ops = new ArrayList<>();
    for (int i = random.nextInt(5); i > 0; i--) {
      int kind = random.nextInt(10);
      String key = key(random);
      ops.add(kind < 4 ? new TxnOp.Put(key, value(random), random.nextInt(2))
          : kind < 7 ? new TxnOp.Get(key)
          : kind < 9 ? new TxnOp.Delete(key, false)
          : new TxnOp.Delete(prefix(random), true));
      if (kind < 4 && random.nextBoolean()) {
        ops.add(new TxnOp.Get(key)); // a get after a put of the same key
      }
    }
    return ops;
  }

  private static KvQuery randomQuery(Random random) {
    if (random.nextBoolean()) {
      return new KvQuery.Get(key(random));
    }
    String prefix = random.nextInt(4) == 0 ? null : prefix(random);
    String after = random.nextBoolean() ? null : (random.nextBoolean() ? key(random) : prefix(random));
    return new KvQuery.Range(prefix, after, random.nextInt(4));
  }

  private static String key(Random random) {
    return KEYS[random.nextInt(KEYS.length)];
  }

  private static String prefix(Random random) {
    // rarely the empty prefix, which deletes everything
    String prefix = PREFIXES[random.nextInt(PREFIXES.length)];
    return prefix.isEmpty() && random.nextInt(5) != 0 ? "a/b" : prefix;
  }

  private static byte[] value(Random random) {
    byte[] value = new byte[random.nextInt(4) == 0 ? random.nextInt(3000) : random.nextInt(12)];
    random.nextBytes(value);
    return value;
  }

  private static KvCommand put(String key, String value) {
    return KvCommand.Put.of(key, bytes(value));
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] flip(byte[] bytes, int at) {
    byte[] flipped = bytes.clone();
    flipped[at] ^= 0x10;
    return flipped;
  }

  /** Offset of the first key of a stream: after magic, format, index, term, revision and key count. */
  /** Magic, format; index, term, revision, key count, time, idempotency records, their sequence, leases. */
  private static final int FIRST_KEY = 4 + 4 + 8 * 8;

  /** The stream with its first two keys (with their value records) swapped. */
  private static byte[] withKeyOutOfOrder(byte[] good) {
    int second = skipKey(good, FIRST_KEY);
    int end = skipKey(good, second);
    byte[] swapped = good.clone();
    System.arraycopy(good, second, swapped, FIRST_KEY, end - second);
    System.arraycopy(good, FIRST_KEY, swapped, FIRST_KEY + end - second, second - FIRST_KEY);
    return swapped;
  }

  /** The offset after the key and value record at {@code at}. */
  private static int skipKey(byte[] stream, int at) {
    for (int field = 0; field < 2; field++) {
      int length = 0;
      for (int shift = 0; ; shift += 7) {
        int b = stream[at++] & 0xFF;
        length |= (b & 0x7F) << shift;
        if (b < 0x80) {
          break;
        }
      }
      at += length;
    }
    return at;
  }

  private static void await(CountDownLatch latch) {
    try {
      if (!latch.await(30, TimeUnit.SECONDS)) {
        throw new AssertionError("timed out");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
