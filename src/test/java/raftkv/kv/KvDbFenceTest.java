package raftkv.kv;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Fenced writes in the state machine (API.md §3): a write under {@code If-Fence: lock=token}, or a
 * txn compare on target lock, holds only while {@code token} is the create revision of the lowest
 * key under {@code lock/}. Checked on the LevelDB store (one command per batch, and several in one
 * batch, where the waiters are pending writes) and on the reference model, which must agree.
 */
class KvDbFenceTest {
  @TempDir
  Path tmp;

  private final List<KvDb> opened = new ArrayList<>();
  private long index;

  @AfterEach
  void closeAll() {
    opened.forEach(KvDb::close);
  }

  private KvDb open(String name) {
    KvDb db = KvDb.open(tmp.resolve(name));
    opened.add(db);
    return db;
  }

  private KvResult apply(KvDb db, KvCommand command) {
    KvDb.Batch batch = db.batch();
    KvResult result = batch.apply(command, 1_000, 1);
    batch.commit(++index, 1, 1_000);
    return result;
  }

  private static KvCommand put(String key, String value) {
    return new KvCommand.Put(key, value.getBytes(StandardCharsets.UTF_8), 0, null, false);
  }

  private static KvCommand fenced(long token, KvCommand command) {
    return new KvCommand.Fenced("lock", token, command);
  }

  private static KvCommand.Txn lockCompare(Compare.Op op, long token, KvCommand.Put then) {
    return new KvCommand.Txn(List.of(new Compare("lock", Compare.Target.LOCK, op, token, null)),
        List.of(new TxnOp.Put(then.key(), then.value(), 0)), List.of());
  }

  /** The scenario, against any store: returns what it observed, so that both stores can be compared. */
  private static List<KvResult> scenario(Function<KvCommand, KvResult> store) {
    List<KvResult> seen = new ArrayList<>();
    // nobody holds: every token fails, and the holder is 0
    seen.add(store.apply(fenced(1, put("counter", "0"))));
    assertEquals(new KvResult.FenceFailed("lock", 0), seen.get(0));
    long first = ((KvResult.PutDone) store.apply(put("lock/a", ""))).revision();
    long second = ((KvResult.PutDone) store.apply(put("lock/b", ""))).revision();
    store.apply(put("locks-other/x", "")); // a sibling name is not a waiter of "lock"
    store.apply(put("lock", "")); // nor is the name itself
    // the holder is the lowest create revision, whatever the key order
    seen.add(store.apply(fenced(first, put("counter", "1"))));
    assertInstanceOf(KvResult.PutDone.class, seen.get(seen.size() - 1));
    seen.add(store.apply(fenced(second, put("counter", "stale"))));
    assertEquals(new KvResult.FenceFailed("lock", first), seen.get(seen.size() - 1));
    // rewriting the holder's key keeps its create revision, so its token holds on
    store.apply(put("lock/a", "again"));
    seen.add(store.apply(fenced(first, new KvCommand.Delete("gone", false, null))));
    assertInstanceOf(KvResult.DeleteDone.class, seen.get(seen.size() - 1));
    // txn compares on the lock
    seen.add(store.apply(lockCompare(Compare.Op.EQUAL, first, new KvCommand.Put("t1", new byte[] {1}, 0, null, false))));
    assertEquals(true, ((KvResult.TxnDone) seen.get(seen.size() - 1)).succeeded());
    seen.add(store.apply(lockCompare(Compare.Op.EQUAL, second, new KvCommand.Put("t2", new byte[] {2}, 0, null, false))));
    assertEquals(false, ((KvResult.TxnDone) seen.get(seen.size() - 1)).succeeded());
    // the holder releases: the next waiter holds, the old token is refused for ever
    store.apply(new KvCommand.Delete("lock/a", false, null));
    seen.add(store.apply(fenced(first, put("counter", "late write of the old holder"))));
    assertEquals(new KvResult.FenceFailed("lock", second), seen.get(seen.size() - 1));
    seen.add(store.apply(fenced(second, new KvCommand.Txn(List.of(), List.of(new TxnOp.Put("counter", new byte[] {2}, 0)), List.of()))));
    assertEquals(true, ((KvResult.TxnDone) seen.get(seen.size() - 1)).succeeded());
    // a new waiter under the old key name comes after: the old token does not come back
    long third = ((KvResult.PutDone) store.apply(put("lock/a", ""))).revision();
    seen.add(store.apply(fenced(first, put("counter", "x"))));
    assertEquals(new KvResult.FenceFailed("lock", second), seen.get(seen.size() - 1));
    store.apply(new KvCommand.Delete("lock/", true, null));
    seen.add(store.apply(fenced(third, put("counter", "y"))));
    assertEquals(new KvResult.FenceFailed("lock", 0), seen.get(seen.size() - 1));
    // a fenced write under an idempotency key: the refusal is what a retry gets again
    long fourth = ((KvResult.PutDone) store.apply(put("lock/c", ""))).revision();
    KvCommand idem = new KvCommand.Idempotent("k1", new byte[] {9}, fenced(fourth, put("counter", "z")));
    seen.add(store.apply(idem));
    seen.add(store.apply(new KvCommand.Delete("lock/c", false, null)));
    seen.add(store.apply(idem));
    assertInstanceOf(KvResult.Replayed.class, seen.get(seen.size() - 1));
    return seen;
  }

  @Test
  void only_the_holders_token_passes_the_fence_on_the_store_and_the_model_alike() {
    KvDb db = open("db");
    List<KvResult> onDb = scenario(command -> apply(db, command));
    KvStore model = new KvStore();
    List<KvResult> onModel = scenario(model::apply);
    assertEquals(onModel.size(), onDb.size());
    for (int i = 0; i < onDb.size(); i++) {
      assertEquals(String.valueOf(onModel.get(i)), String.valueOf(onDb.get(i)), "result " + i);
    }
    KvResult.GetDone counter = (KvResult.GetDone) db.query(new KvQuery.Get("counter"));
    assertArrayEquals("z".getBytes(StandardCharsets.UTF_8), counter.kv().value());
  }

  @Test
  void in_one_batch_the_fence_sees_the_batchs_own_waiters_and_deletions() {
    KvDb db = open("db");
    long before = ((KvResult.PutDone) apply(db, put("lock/z", ""))).revision(); // on disk
    KvDb.Batch batch = db.batch();
    KvResult a = batch.apply(put("lock/a", ""), 1_000, 1); // pending, later than lock/z
    assertEquals(new KvResult.FenceFailed("lock", before), batch.apply(fenced(((KvResult.PutDone) a).revision(), put("c", "1")), 1_000, 1));
    batch.apply(new KvCommand.Delete("lock/z", false, null), 1_000, 1); // a pending delete of the holder
    KvResult ok = batch.apply(fenced(((KvResult.PutDone) a).revision(), put("c", "2")), 1_000, 1);
    assertInstanceOf(KvResult.PutDone.class, ok);
    assertEquals(new KvResult.FenceFailed("lock", ((KvResult.PutDone) a).revision()), batch.apply(fenced(before, put("c", "3")), 1_000, 1));
    batch.commit(++index, 1, 1_000);
    KvResult.GetDone c = (KvResult.GetDone) db.query(new KvQuery.Get("c"));
    assertArrayEquals("2".getBytes(StandardCharsets.UTF_8), c.kv().value());
  }

  @Test
  void a_token_of_zero_never_passes_even_when_nobody_holds() {
    KvDb db = open("db");
    assertEquals(new KvResult.FenceFailed("lock", 0), apply(db, fenced(0, put("c", "1"))));
    assertNull(((KvResult.GetDone) db.query(new KvQuery.Get("c"))).kv());
  }

  @Test
  void fenced_commands_and_their_refusal_survive_the_codec() {
    KvCommand command = new KvCommand.Idempotent("k", new byte[] {1, 2},
        new KvCommand.Fenced("locks/ü", 42, new KvCommand.Txn(
            List.of(new Compare("locks/ü", Compare.Target.LOCK, Compare.Op.EQUAL, 42, null)),
            List.of(new TxnOp.Delete("x", true)), List.of())));
    byte[] bytes = KvCodec.encode(command);
    assertEquals(bytes.length, KvCodec.commandBytes(command));
    KvCommand.Idempotent back = (KvCommand.Idempotent) KvCodec.decodeCommand(bytes);
    assertEquals("k", back.key());
    assertArrayEquals(new byte[] {1, 2}, back.fingerprint());
    assertEquals(((KvCommand.Idempotent) command).command(), back.command()); // records of strings, longs and lists
    KvResult refused = new KvResult.FenceFailed("locks/ü", 7);
    assertEquals(refused, KvCodec.decodeResult(KvCodec.encode(refused)));
    // a fenced command holds only a put, a delete or a txn
    byte[] nested = KvCodec.encode(new KvCommand.Fenced("l", 1, new KvCommand.Put("a", new byte[0], 0, null, false)));
    nested[1 + 1 + 2 + 8] = 5; // after version, FENCED, "l" and the token: the inner kind, now LEASE_GRANT
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> KvCodec.decodeCommand(nested));
  }
}
