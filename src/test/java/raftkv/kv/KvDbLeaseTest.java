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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Leases in the state machine (API.md §4): grants, keys attached and moved between leases, a revoke
 * that deletes every attached key at one revision (one watch message), an expiry whose premise is
 * stale ignored, checkpoints, and leases and their keys carried by snapshots.
 */
class KvDbLeaseTest {
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

  private KvResult apply(KvDb db, KvCommand command, long term) {
    KvDb.Batch batch = db.batch();
    KvResult result = batch.apply(command, 1_000, term);
    batch.commit(++index, term, 1_000);
    return result;
  }

  private static KvCommand put(String key, long lease) {
    return new KvCommand.Put(key, key.getBytes(StandardCharsets.UTF_8), lease, null, false);
  }

  @Test
  void a_revoke_deletes_every_key_of_the_lease_at_one_revision_and_nothing_else() {
    KvDb db = open("db");
    assertEquals(new KvResult.LeaseGranted(7, 10), apply(db, new KvCommand.LeaseGrant(7, 10), 1));
    assertEquals(new KvResult.LeaseExists(7), apply(db, new KvCommand.LeaseGrant(7, 20), 1));
    apply(db, new KvCommand.LeaseGrant(8, 10), 1);
    apply(db, put("svc/a", 7), 1);
    apply(db, put("svc/b", 7), 1);
    apply(db, put("svc/c", 8), 1);
    apply(db, put("svc/moved", 7), 1);
    apply(db, put("svc/moved", 8), 1); // moves to lease 8
    apply(db, put("plain", 0), 1);
    KvDb.Batch batch = db.batch(); // a key attached in the same batch as the revoke goes too
    batch.apply(put("svc/late", 7), 1_000, 1);
    KvResult revoked = batch.apply(new KvCommand.LeaseRevoke(7, 0), 1_000, 1);
    batch.commit(++index, 1, 1_000);
    assertEquals(new KvResult.LeaseRevoked(8, 3), revoked);
    List<RevisionEvents> history = ((KvResult.HistoryDone) db.query(new KvQuery.History("svc/", true, 8, 10))).events();
    assertEquals(1, history.size());
    assertEquals(List.of("svc/a", "svc/b", "svc/late"), history.get(0).events().stream().map(e -> e.kv().key()).toList());
    assertEquals(new KvResult.LeaseNotFound(7), db.query(new KvQuery.LeaseGet(7)));
    assertEquals(new KvResult.LeaseInfo(8, 10, -1, List.of("svc/c", "svc/moved")), db.query(new KvQuery.LeaseGet(8)));
    assertEquals(new KvResult.LeaseNotFound(7), apply(db, put("x", 7), 1), "a put under a revoked lease");
    assertEquals(new KvResult.LeaseNotFound(7), apply(db, new KvCommand.Txn(List.of(),
        List.of(new TxnOp.Put("y", new byte[0], 0), new TxnOp.Put("z", new byte[0], 7)), List.of()), 1));
    assertNull(((KvResult.GetDone) db.query(new KvQuery.Get("y"))).kv(), "nothing of the transaction applied");
    // deleting a key detaches it
    apply(db, KvCommand.Delete.of("svc/c"), 1);
    assertEquals(List.of("svc/moved"), db.leaseKeys(8));
  }

  @Test
  void an_expiry_decided_in_an_older_term_than_the_last_grant_or_checkpoint_is_ignored() {
    KvDb db = open("db");
    apply(db, new KvCommand.LeaseGrant(5, 60), 3);
    apply(db, put("k", 5), 3);
    assertEquals(new KvResult.LeaseNotFound(5), apply(db, new KvCommand.LeaseRevoke(5, 2), 3));
    assertEquals(List.of("k"), db.leaseKeys(5));
    apply(db, new KvCommand.LeaseCheckpoint(5, 12_000, 4), 4);
    assertEquals(new KvDb.Lease(5, 60, 4, 12_000), db.lease(5));
    apply(db, new KvCommand.LeaseCheckpoint(5, 99_000, 3), 4); // stale: ignored
    assertEquals(new KvDb.Lease(5, 60, 4, 12_000), db.lease(5));
    assertEquals(new KvResult.LeaseNotFound(5), apply(db, new KvCommand.LeaseRevoke(5, 3), 4));
    assertEquals(new KvResult.LeaseRevoked(2, 1), apply(db, new KvCommand.LeaseRevoke(5, 4), 4));
  }

  @Test
  void leases_and_their_keys_travel_in_a_snapshot() throws Exception {
    KvDb db = open("db");
    apply(db, new KvCommand.LeaseGrant(1, 10), 1);
    apply(db, new KvCommand.LeaseGrant(2, 20), 1);
    apply(db, put("a", 1), 1);
    apply(db, put("b", 2), 1);
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    try (KvDb.View view = db.view()) {
      view.writeTo(stream);
    }
    KvDb copy = open("copy");
    copy.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertEquals(List.of(new KvDb.Lease(1, 10, 1, -1), new KvDb.Lease(2, 20, 1, -1)), copy.leases());
    assertEquals(List.of("a"), copy.leaseKeys(1));
    assertEquals(new KvResult.LeaseRevoked(3, 1), apply(copy, new KvCommand.LeaseRevoke(2, 0), 1));
    assertNull(((KvResult.GetDone) copy.query(new KvQuery.Get("b"))).kv());
  }
}
