package raftkv.kv;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The idempotency table of the state machine (API.md §3, DESIGN.md §5): a retry with the same key
 * and request is answered with the first result and applies nothing; another request under the
 * key is refused; records are kept by the time and sequence in the log, so every node answers
 * alike however it batches and whenever it deletes old records; snapshots carry them.
 */
class KvDbIdempotencyTest {
  private static final long MINUTE = 60_000;

  @TempDir
  Path tmp;

  private final List<KvDb> opened = new ArrayList<>();
  private long index;

  @AfterEach
  void closeAll() {
    opened.forEach(KvDb::close);
  }

  private KvDb open(String name, KvDb.Retention retention) {
    KvDb db = KvDb.open(tmp.resolve(name), retention);
    opened.add(db);
    return db;
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static KvCommand.Idempotent idem(String key, String request, KvCommand command) {
    return new KvCommand.Idempotent(key, bytes(request), command);
  }

  private KvResult apply(KvDb db, KvCommand command, long time) {
    KvDb.Batch batch = db.batch();
    KvResult result = batch.apply(command, time);
    batch.commit(++index, 1, time);
    return result;
  }

  @Test
  void a_retry_gets_the_first_result_and_applies_nothing_and_another_request_under_the_key_is_refused() {
    KvDb db = open("db", KvDb.Retention.DEFAULT);
    KvCommand put = KvCommand.Put.of("counter", bytes("x"));
    KvResult first = apply(db, idem("k1", "PUT counter x", put), 1_000);
    assertEquals(new KvResult.PutDone(1, null), first);
    assertEquals(new KvResult.Replayed(first), apply(db, idem("k1", "PUT counter x", put), 2_000));
    assertEquals(1, db.revision(), "the retry applied nothing");
    assertEquals(new KvResult.IdempotencyKeyReused("k1"), apply(db, idem("k1", "PUT counter y", put), 3_000));
    assertEquals(1, db.revision());
    // a failed precondition is an answer too: the retry gets the same 412, even once it would hold
    KvCommand cas = new KvCommand.Put("counter", bytes("z"), 0, 7L, false);
    KvResult refused = apply(db, idem("k2", "CAS", cas), 4_000);
    assertInstanceOf(KvResult.PreconditionFailed.class, refused);
    assertEquals(new KvResult.Replayed(refused), apply(db, idem("k2", "CAS", cas), 5_000));
    // within one batch, the second sees the first
    KvDb.Batch batch = db.batch();
    KvResult a = batch.apply(idem("k3", "PUT", put), 6_000);
    KvResult b = batch.apply(idem("k3", "PUT", put), 6_000);
    batch.commit(++index, 1, 6_000);
    assertEquals(new KvResult.Replayed(a), b);
    assertEquals(2, db.revision());
    assertEquals(3, db.idempotencyRecords());
  }

  @Test
  void a_command_that_fails_leaves_no_record_and_nesting_is_refused() {
    KvDb db = open("db", KvDb.Retention.DEFAULT);
    KvCommand bad = new KvCommand.Txn(List.of(), java.util.Arrays.asList(new TxnOp.Put("a", bytes("1"), 0), null), List.of());
    KvDb.Batch batch = db.batch();
    assertThrows(IllegalArgumentException.class, () -> batch.apply(idem("k", "bad", bad), 1_000));
    assertThrows(IllegalArgumentException.class, () -> batch.apply(idem("k", "nested", idem("k", "x", bad)), 1_000));
    KvResult ok = batch.apply(idem("k", "good", KvCommand.Put.of("a", bytes("1"))), 1_000);
    batch.commit(++index, 1, 1_000);
    assertEquals(new KvResult.PutDone(1, null), ok);
    assertEquals(1, db.idempotencyRecords());
  }

  @Test
  void a_record_counts_for_the_retention_time_by_the_log_and_the_key_can_then_be_used_again() {
    KvDb db = open("db", new KvDb.Retention(1000, 0, 10 * MINUTE, 1000));
    KvCommand put = KvCommand.Put.of("counter", bytes("x"));
    long t0 = 1_000_000;
    apply(db, idem("k", "r", put), t0);
    assertInstanceOf(KvResult.Replayed.class, apply(db, idem("k", "r", put), t0 + 10 * MINUTE));
    // a no-op entry much later deletes it
    apply(db, KvCommand.Delete.of("nothing"), t0 + 10 * MINUTE + 1);
    assertEquals(0, db.idempotencyRecords());
    assertEquals(new KvResult.PutDone(2, 1L), apply(db, idem("k", "r", put), t0 + 10 * MINUTE + 2));
    assertEquals(1, db.idempotencyRecords());
  }

  @Test
  void beyond_the_most_records_the_oldest_stop_counting_first() {
    KvDb db = open("db", new KvDb.Retention(1000, 0, 10 * MINUTE, 3));
    KvCommand put = KvCommand.Put.of("counter", bytes("x"));
    for (int i = 1; i <= 4; i++) {
      apply(db, idem("k" + i, "r", put), 1_000);
    }
    assertTrue(db.idempotencyRecords() <= 4, "the fourth record's commit may delete the first, or the next");
    assertEquals(new KvResult.PutDone(5, 4L), apply(db, idem("k1", "r", put), 1_000), "k1 no longer counts");
    assertInstanceOf(KvResult.Replayed.class, apply(db, idem("k4", "r", put), 1_000));
  }

  /**
   * The same entries, applied one per batch on one node and in random batches on another, with
   * retries, other requests under used keys, records past their time and past the count: the same
   * answers on both, whenever each deletes old records.
   */
  @Test
  void every_node_answers_alike_however_it_batches() {
    Random random = new Random(20261203);
    KvDb.Retention retention = new KvDb.Retention(1000, 0, 5_000, 20);
    KvDb one = open("one", retention);
    KvDb many = open("many", retention);
    List<KvCommand> commands = new ArrayList<>();
    List<Long> times = new ArrayList<>();
    long time = 1_000;
    for (int i = 0; i < 3000; i++) {
      time += random.nextInt(40);
      String key = "key" + random.nextInt(60);
      String request = random.nextInt(10) == 0 ? "other" : "same";
      commands.add(idem(key, request, KvCommand.Put.of("v" + random.nextInt(5), bytes(request))));
      times.add(random.nextInt(20) == 0 ? 0 : time); // now and then an entry with no time
    }
    List<KvResult> oneResults = new ArrayList<>();
    for (int i = 0; i < commands.size(); i++) {
      KvDb.Batch batch = one.batch();
      oneResults.add(batch.apply(commands.get(i), times.get(i)));
      batch.commit(i + 1, 1, times.get(i));
    }
    List<KvResult> manyResults = new ArrayList<>();
    int i = 0;
    while (i < commands.size()) {
      KvDb.Batch batch = many.batch();
      int n = 1 + random.nextInt(50);
      long last = 0;
      for (int k = 0; k < n && i < commands.size(); k++, i++) {
        manyResults.add(batch.apply(commands.get(i), times.get(i)));
        last = Math.max(last, times.get(i));
      }
      batch.commit(i, 1, last);
    }
    for (int k = 0; k < oneResults.size(); k++) {
      assertEquals(oneResults.get(k), manyResults.get(k), "entry " + k + " of " + commands.get(k));
    }
    assertEquals(one.revision(), many.revision());
    long replays = oneResults.stream().filter(r -> r instanceof KvResult.Replayed).count();
    long reused = oneResults.stream().filter(r -> r instanceof KvResult.IdempotencyKeyReused).count();
    assertTrue(replays > 100 && reused > 10, replays + " replays, " + reused + " refusals");
    assertTrue(one.idempotencyRecords() <= 20 + 1 && many.idempotencyRecords() <= 20 + 50);
  }

  @Test
  void the_records_survive_a_reopen_and_travel_in_a_snapshot() throws Exception {
    KvDb.Retention retention = KvDb.Retention.DEFAULT;
    KvDb db = KvDb.open(tmp.resolve("db"), retention);
    KvCommand put = KvCommand.Put.of("counter", bytes("x"));
    KvResult first;
    {
      KvDb.Batch batch = db.batch();
      first = batch.apply(idem("k", "r", put), 5_000);
      batch.commit(++index, 1, 5_000);
    }
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    try (KvDb.View view = db.view()) {
      view.writeTo(stream);
    }
    db.sync();
    db.close();
    KvDb again = open("db", retention);
    assertEquals(new KvResult.Replayed(first), apply(again, idem("k", "r", put), 6_000));
    KvDb restored = open("restored", retention);
    restored.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertEquals(1, restored.idempotencyRecords());
    assertEquals(new KvResult.Replayed(first), apply(restored, idem("k", "r", put), 6_000));
    assertEquals(new KvResult.IdempotencyKeyReused("k"), apply(restored, idem("k", "other", put), 6_000));
    assertNull(null);
  }
}
