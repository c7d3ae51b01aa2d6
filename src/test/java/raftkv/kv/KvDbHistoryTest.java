package raftkv.kv;

import org.fusesource.leveldbjni.JniDBFactory;
import org.iq80.leveldb.DB;
import org.iq80.leveldb.Options;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The history KvDb keeps for watches (DESIGN.md §6): every revision's events, in order, with their
 * previous values, enough to rebuild the store; compaction by count and by the time stamped into
 * entries; survives a reopen; a restore starts a new history.
 */
class KvDbHistoryTest {
  private static final String[] KEYS = {"a", "a/1", "a/2", "a/b/c", "b", "b/1", "c", "\u00e9"};

  @TempDir
  Path tmp;

  private final List<KvDb> opened = new ArrayList<>();

  @AfterEach
  void closeAll() {
    opened.forEach(KvDb::close);
  }

  private KvDb open(Path dir, KvDb.Retention retention) {
    KvDb db = KvDb.open(dir, retention);
    opened.add(db);
    return db;
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static KvCommand randomCommand(Random random) {
    String key = KEYS[random.nextInt(KEYS.length)];
    int kind = random.nextInt(10);
    if (kind < 5) {
      return KvCommand.Put.of(key, bytes("v" + random.nextInt(1000)));
    } else if (kind < 7) {
      return KvCommand.Delete.of(key);
    } else if (kind < 8) {
      return new KvCommand.Delete(key.substring(0, 1), true, null);
    }
    List<TxnOp> ops = new ArrayList<>();
    for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
      String k = KEYS[random.nextInt(KEYS.length)];
      int op = random.nextInt(4);
      ops.add(op == 0 ? new TxnOp.Get(k) : op == 1 ? new TxnOp.Delete(k, random.nextBoolean())
          : new TxnOp.Put(k, bytes("t" + random.nextInt(1000)), 0));
    }
    return new KvCommand.Txn(List.of(), ops, List.of());
  }

  /** Reads the whole history from {@code from} in chunks of {@code chunk} revisions. */
  private static List<RevisionEvents> history(KvDb db, String key, boolean prefix, long from, int chunk) {
    List<RevisionEvents> all = new ArrayList<>();
    long next = from;
    for (int guard = 0; next <= db.revision() && guard < 100_000; guard++) {
      KvResult.HistoryDone done = (KvResult.HistoryDone) db.query(new KvQuery.History(key, prefix, next, chunk));
      assertTrue(done.scannedTo() >= next, "a read makes progress");
      all.addAll(done.events());
      next = done.scannedTo() + 1;
    }
    return all;
  }

  @Test
  void the_history_replays_to_the_store_with_every_revision_and_previous_value() {
    Random random = new Random(20261203);
    KvDb db = open(tmp.resolve("db"), KvDb.Retention.DEFAULT);
    long index = 0;
    for (int batches = 0; batches < 300; batches++) {
      KvDb.Batch batch = db.batch();
      for (int i = 0, n = random.nextInt(6); i < n; i++) {
        batch.apply(randomCommand(random));
      }
      batch.commit(++index, 1, 1_000 + index);
    }
    assertEquals(0, db.compactRevision());
    List<RevisionEvents> all = history(db, "", true, 1, 37);
    assertEquals(db.revision(), all.size(), "one record per revision");
    TreeMap<String, KeyValue> replay = new TreeMap<>(KvStore.KEY_ORDER);
    long expected = 1;
    for (RevisionEvents re : all) {
      assertEquals(expected++, re.revision());
      assertTrue(!re.events().isEmpty());
      for (Event e : re.events()) {
        KeyValue before = replay.get(e.kv().key());
        assertSameKv(before, e.prevKv());
        if (e.type() == Event.Type.PUT) {
          assertEquals(re.revision(), e.kv().modRevision());
          replay.put(e.kv().key(), e.kv());
        } else {
          assertEquals(re.revision(), e.kv().modRevision());
          assertNull(e.kv().value());
          replay.remove(e.kv().key());
        }
      }
    }
    KvResult.RangeDone range = (KvResult.RangeDone) db.query(new KvQuery.Range("", null, 0));
    assertEquals(range.kvs().size(), replay.size());
    for (KeyValue kv : range.kvs()) {
      assertSameKv(kv, replay.get(kv.key()));
    }
    // a key's and a prefix's history are exactly the revisions that touched them
    for (String watched : new String[] {"a", "a/", "b/1", "\u00e9"}) {
      for (boolean prefix : new boolean[] {false, true}) {
        List<Long> want = new ArrayList<>();
        for (RevisionEvents re : all) {
          List<Event> mine = re.events().stream()
              .filter(e -> prefix ? e.kv().key().startsWith(watched) : e.kv().key().equals(watched)).toList();
          if (!mine.isEmpty()) {
            want.add(re.revision());
          }
        }
        List<Long> got = history(db, watched, prefix, 1, 11).stream().map(RevisionEvents::revision).toList();
        assertEquals(want, got, watched + (prefix ? "*" : ""));
      }
    }
  }

  private static void assertSameKv(KeyValue want, KeyValue got) {
    if (want == null || got == null) {
      assertEquals(want, got);
      return;
    }
    assertEquals(want.key(), got.key());
    assertArrayEquals(want.value(), got.value());
    assertEquals(want.createRevision(), got.createRevision());
    assertEquals(want.modRevision(), got.modRevision());
    assertEquals(want.version(), got.version());
  }

  @Test
  void a_transaction_and_a_prefix_delete_are_one_revision_with_events_in_order() {
    KvDb db = open(tmp.resolve("db"), KvDb.Retention.DEFAULT);
    KvDb.Batch batch = db.batch();
    batch.apply(KvCommand.Put.of("p/b", bytes("1")));
    batch.apply(KvCommand.Put.of("p/a", bytes("2")));
    batch.apply(new KvCommand.Txn(List.of(), List.of(new TxnOp.Put("x", bytes("3"), 0), new TxnOp.Get("x"),
        new TxnOp.Put("y", bytes("4"), 0)), List.of()));
    batch.commit(1, 1, 0);
    batch = db.batch();
    batch.apply(KvCommand.Put.of("p/c", bytes("5"))); // pending in the same batch as the delete
    batch.apply(new KvCommand.Delete("p/", true, null));
    batch.apply(KvCommand.Delete.of("nothing")); // no revision, no event
    batch.commit(2, 1, 0);
    List<RevisionEvents> all = history(db, "", true, 1, 100);
    assertEquals(List.of(1L, 2L, 3L, 4L, 5L), all.stream().map(RevisionEvents::revision).toList());
    assertEquals(List.of("x", "y"), all.get(2).events().stream().map(e -> e.kv().key()).toList());
    assertEquals(List.of("p/a", "p/b", "p/c"), all.get(4).events().stream().map(e -> e.kv().key()).toList());
    assertTrue(all.get(4).events().stream().allMatch(e -> e.type() == Event.Type.DELETE && e.prevKv() != null));
    assertArrayEquals(bytes("5"), all.get(4).events().get(2).prevKv().value());
  }

  @Test
  void a_failed_command_leaves_no_event() {
    KvDb db = open(tmp.resolve("db"), KvDb.Retention.DEFAULT);
    KvDb.Batch batch = db.batch();
    batch.apply(KvCommand.Put.of("a", bytes("1")));
    try {
      batch.apply(new KvCommand.Txn(List.of(), java.util.Arrays.asList(new TxnOp.Put("b", bytes("2"), 0), null), List.of()));
    } catch (IllegalArgumentException expected) {
      // the txn's put is undone, and so is its event
    }
    batch.commit(1, 1, 0);
    List<RevisionEvents> all = history(db, "", true, 1, 100);
    assertEquals(1, all.size());
    assertEquals("a", all.get(0).events().get(0).kv().key());
  }

  @Test
  void compaction_by_count_keeps_the_newest_revisions_and_answers_older_with_the_compact_revision() {
    KvDb db = open(tmp.resolve("db"), new KvDb.Retention(50, 0));
    for (int i = 1; i <= 200; i++) {
      KvDb.Batch batch = db.batch();
      batch.apply(KvCommand.Put.of("k" + (i % 7), bytes("v" + i)));
      batch.commit(i, 1, 0);
    }
    assertEquals(200, db.revision());
    assertEquals(150, db.compactRevision());
    KvResult.HistoryDone old = (KvResult.HistoryDone) db.query(new KvQuery.History("", true, 150, 1000));
    assertEquals(150, old.compactRevision());
    assertTrue(old.events().isEmpty());
    List<RevisionEvents> kept = history(db, "", true, 151, 1000);
    assertEquals(50, kept.size());
    assertEquals(151, kept.get(0).revision());
  }

  @Test
  void compaction_by_time_uses_the_time_stamped_into_entries_never_going_back() {
    KvDb db = open(tmp.resolve("db"), new KvDb.Retention(1_000_000, 10_000));
    for (int i = 1; i <= 20; i++) {
      KvDb.Batch batch = db.batch();
      batch.apply(KvCommand.Put.of("k", bytes("v" + i)));
      batch.commit(i, 1, 1_000_000 + i * 1_000L); // one a second
    }
    // revision r was stamped 1_000_000 + r s; at the last commit (t = 1_020_000) the cutoff is 1_010_000
    assertEquals(9, db.compactRevision());
    KvDb.Batch batch = db.batch();
    batch.apply(KvCommand.Put.of("k", bytes("late")));
    batch.commit(21, 1, 5_000); // a leader whose clock is behind: time does not go back
    assertEquals(9, db.compactRevision());
    batch = db.batch();
    batch.commit(22, 1, 2_000_000); // a no-op much later compacts everything before it
    assertEquals(21, db.compactRevision());
    assertEquals(21, db.revision());
  }

  @Test
  void history_survives_a_reopen_and_a_restore_starts_a_new_one() throws Exception {
    Path dir = tmp.resolve("db");
    KvDb db = KvDb.open(dir, new KvDb.Retention(5, 0));
    for (int i = 1; i <= 8; i++) {
      KvDb.Batch batch = db.batch();
      batch.apply(KvCommand.Put.of("k", bytes("v" + i)));
      batch.commit(i, 1, 0);
    }
    db.sync();
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    try (KvDb.View view = db.view()) {
      view.writeTo(stream);
    }
    db.close();
    KvDb again = open(dir, new KvDb.Retention(5, 0));
    assertEquals(3, again.compactRevision());
    assertEquals(5, history(again, "k", false, 4, 100).size());
    Path other = tmp.resolve("other");
    KvDb restored = open(other, KvDb.Retention.DEFAULT);
    restored.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertEquals(8, restored.revision());
    assertEquals(8, restored.compactRevision(), "a restored store has no history before its revision");
    KvDb.Batch batch = restored.batch();
    batch.apply(KvCommand.Put.of("k", bytes("after")));
    batch.commit(9, 1, 0);
    assertEquals(List.of(9L), history(restored, "k", false, 9, 100).stream().map(RevisionEvents::revision).toList());
  }

  @Test
  void a_database_of_format_1_opens_with_no_history_before_its_revision() throws Exception {
    Path dir = tmp.resolve("db");
    try (DB raw = JniDBFactory.factory.open(dir.toFile(), new Options().createIfMissing(true))) {
      raw.put(new byte[] {'m'}, ByteBuffer.allocate(40).putInt(KvDb.META_MAGIC).putInt(KvDb.META_FORMAT_1)
          .putLong(7).putLong(2).putLong(5).putLong(0).array());
    }
    KvDb db = open(dir, KvDb.Retention.DEFAULT);
    assertEquals(7, db.appliedIndex());
    assertEquals(5, db.revision());
    assertEquals(5, db.compactRevision());
    KvDb.Batch batch = db.batch();
    batch.apply(KvCommand.Put.of("k", bytes("v")));
    batch.commit(8, 2, 0);
    assertEquals(6, history(db, "", true, 6, 10).get(0).revision());
    assertTrue(Arrays.asList(KvDb.META_FORMAT, KvDb.META_FORMAT_1).contains(2));
  }
}
