package raftkv.kv;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvStoreTest {

  private static final String GRINNING = "\uD83D\uDE00"; // U+1F600, UTF-8 F0 9F 98 80
  private static final String REPLACEMENT = "\uFFFD"; // U+FFFD, UTF-8 EF BF BD

  private final KvStore store = new KvStore();

  // ---------------------------------------------------------------- revisions and versions

  @Nested
  class PutAndDelete {

    @Test
    void an_empty_store_is_at_revision_zero() {
      assertEquals(0, store.revision());
      assertEquals(0, store.size());
      assertEquals(new KvResult.GetDone(0, null), store.query(new KvQuery.Get("a")));
    }

    @Test
    void a_put_on_an_absent_key_creates_it_at_the_next_revision_with_version_one() {
      // when
      KvResult result = store.apply(KvCommand.Put.of("a", bytes("1")));
      // then
      assertEquals(new KvResult.PutDone(1, null), result);
      assertEquals(1, store.revision());
      assertKv(get("a"), "a", "1", 1, 1, 1);
    }

    @Test
    void a_put_on_an_existing_key_keeps_its_create_revision_and_counts_the_version() {
      // given
      put("other", "x");
      put("a", "1");
      // when
      KvResult second = store.apply(KvCommand.Put.of("a", bytes("2")));
      KvResult third = store.apply(KvCommand.Put.of("a", bytes("3")));
      // then
      assertEquals(new KvResult.PutDone(3, 2L), second);
      assertEquals(new KvResult.PutDone(4, 3L), third);
      assertKv(get("a"), "a", "3", 2, 4, 3);
    }

    @Test
    void every_change_bumps_the_store_revision_by_exactly_one() {
      for (int i = 1; i <= 10; i++) {
        put("k" + (i % 3), "v" + i);
        assertEquals(i, store.revision());
      }
      assertEquals(3, store.size());
    }

    @Test
    void a_delete_removes_the_key_at_the_next_revision() {
      // given
      put("a", "1");
      // when
      KvResult result = store.apply(KvCommand.Delete.of("a"));
      // then
      assertEquals(new KvResult.DeleteDone(2, 1), result);
      assertNull(get("a"));
      assertEquals(0, store.size());
      assertEquals(2, store.revision());
    }

    @Test
    void a_delete_of_an_absent_key_changes_nothing() {
      // given
      put("a", "1");
      // when
      KvResult result = store.apply(KvCommand.Delete.of("b"));
      // then
      assertEquals(new KvResult.DeleteDone(1, 0), result);
      assertEquals(1, store.revision());
    }

    @Test
    void a_put_after_a_delete_recreates_the_key_at_version_one() {
      // given
      put("a", "1");
      put("a", "2");
      store.apply(KvCommand.Delete.of("a"));
      // when
      KvResult result = store.apply(KvCommand.Put.of("a", bytes("3")));
      // then
      assertEquals(new KvResult.PutDone(4, null), result);
      assertKv(get("a"), "a", "3", 4, 4, 1);
    }

    @Test
    void the_lease_is_stored_as_given() {
      store.apply(new KvCommand.LeaseGrant(77, 10));
      store.apply(new KvCommand.Put("a", bytes("1"), 77L, null, false));
      assertEquals(77L, get("a").lease());
      put("a", "2");
      assertEquals(0L, get("a").lease());
    }

    @Test
    void a_compare_and_set_put_succeeds_when_the_mod_revision_matches() {
      // given
      put("a", "1");
      put("a", "2"); // modRevision 2
      // when
      KvResult result = store.apply(new KvCommand.Put("a", bytes("3"), 0, 2L, false));
      // then
      assertEquals(new KvResult.PutDone(3, 2L), result);
      assertKv(get("a"), "a", "3", 1, 3, 3);
    }

    @Test
    void a_compare_and_set_put_fails_with_the_current_mod_revision_and_changes_nothing() {
      // given
      put("a", "1");
      put("a", "2");
      // when
      KvResult result = store.apply(new KvCommand.Put("a", bytes("3"), 0, 1L, false));
      // then
      assertEquals(new KvResult.PreconditionFailed(2), result);
      assertEquals(2, store.revision());
      assertKv(get("a"), "a", "2", 1, 2, 2);
    }

    @Test
    void a_compare_and_set_put_on_an_absent_key_fails_with_mod_revision_zero() {
      KvResult result = store.apply(new KvCommand.Put("a", bytes("1"), 0, 5L, false));
      assertEquals(new KvResult.PreconditionFailed(0), result);
      assertEquals(0, store.revision());
      assertEquals(0, store.size());
    }

    @Test
    void an_expected_mod_revision_of_zero_means_the_key_must_be_absent() {
      // when the key is absent, the put goes through
      assertEquals(new KvResult.PutDone(1, null), store.apply(new KvCommand.Put("a", bytes("1"), 0, 0L, false)));
      // when it exists, it does not
      assertEquals(new KvResult.PreconditionFailed(1), store.apply(new KvCommand.Put("a", bytes("2"), 0, 0L, false)));
      assertEquals("1", text(get("a")));
    }

    @Test
    void a_create_only_put_succeeds_on_an_absent_key_and_fails_on_an_existing_one() {
      // when
      KvResult created = store.apply(new KvCommand.Put("a", bytes("1"), 0, null, true));
      KvResult refused = store.apply(new KvCommand.Put("a", bytes("2"), 0, null, true));
      // then
      assertEquals(new KvResult.PutDone(1, null), created);
      assertEquals(new KvResult.PreconditionFailed(1), refused);
      assertEquals(1, store.revision());
      assertKv(get("a"), "a", "1", 1, 1, 1);
    }

    @Test
    void a_compare_and_delete_succeeds_only_when_the_mod_revision_matches() {
      // given
      put("a", "1");
      put("b", "1");
      // when
      KvResult refused = store.apply(new KvCommand.Delete("a", false, 2L));
      KvResult deleted = store.apply(new KvCommand.Delete("a", false, 1L));
      // then
      assertEquals(new KvResult.PreconditionFailed(1), refused);
      assertEquals(new KvResult.DeleteDone(3, 1), deleted);
      assertNull(get("a"));
    }

    @Test
    void a_compare_and_delete_of_an_absent_key() {
      assertEquals(new KvResult.PreconditionFailed(0), store.apply(new KvCommand.Delete("a", false, 3L)));
      assertEquals(new KvResult.DeleteDone(0, 0), store.apply(new KvCommand.Delete("a", false, 0L)));
      assertEquals(0, store.revision());
    }

    @Test
    void a_delete_by_prefix_removes_every_matching_key_at_one_revision() {
      // given
      put("a", "x");
      put("app/1", "x");
      put("app/2", "x");
      put("app/3/deep", "x");
      put("apq", "x");
      put("b", "x");
      // when
      KvResult result = store.apply(new KvCommand.Delete("app/", true, null));
      // then
      assertEquals(new KvResult.DeleteDone(7, 3), result);
      assertEquals(List.of("a", "apq", "b"), keys(range("", null, 0)));
      assertEquals(7, store.revision());
    }

    @Test
    void a_delete_by_prefix_that_matches_nothing_changes_nothing() {
      put("a", "x");
      assertEquals(new KvResult.DeleteDone(1, 0), store.apply(new KvCommand.Delete("b", true, null)));
      assertEquals(1, store.revision());
    }

    @Test
    void a_delete_by_prefix_includes_the_key_equal_to_the_prefix() {
      put("app", "x");
      put("app/1", "x");
      put("ap", "x");
      assertEquals(new KvResult.DeleteDone(4, 2), store.apply(new KvCommand.Delete("app", true, null)));
      assertEquals(List.of("ap"), keys(range("", null, 0)));
    }
  }

  // ---------------------------------------------------------------- transactions

  @Nested
  class Transactions {

    /** Key "k": createRevision 2, modRevision 3, version 2, lease 5, value "b"; store at revision 3. */
    private void givenKeyK() {
      put("other", "x");
      put("k", "a");
      store.apply(new KvCommand.LeaseGrant(5, 10));
      store.apply(new KvCommand.Put("k", bytes("b"), 5L, null, false));
    }

    @ParameterizedTest(name = "{0} {1} {2} is {3}")
    @CsvSource({
        "VERSION, EQUAL, 2, true", "VERSION, EQUAL, 1, false", "VERSION, NOT_EQUAL, 1, true",
        "VERSION, NOT_EQUAL, 2, false", "VERSION, LESS, 3, true", "VERSION, LESS, 2, false",
        "VERSION, GREATER, 1, true", "VERSION, GREATER, 2, false",
        "CREATE_REVISION, EQUAL, 2, true", "CREATE_REVISION, NOT_EQUAL, 2, false",
        "CREATE_REVISION, LESS, 2, false", "CREATE_REVISION, GREATER, 1, true",
        "MOD_REVISION, EQUAL, 3, true", "MOD_REVISION, NOT_EQUAL, 3, false",
        "MOD_REVISION, LESS, 4, true", "MOD_REVISION, GREATER, 3, false",
        "LEASE, EQUAL, 5, true", "LEASE, NOT_EQUAL, 5, false", "LEASE, LESS, 6, true",
        "LEASE, GREATER, 4, true", "LEASE, GREATER, 5, false"})
    void a_number_compare_on_an_existing_key(Compare.Target target, Compare.Op op, long number, boolean holds) {
      givenKeyK();
      assertEquals(holds, compareHolds(new Compare("k", target, op, number, null)));
    }

    @ParameterizedTest(name = "value {0} \"{1}\" is {2}")
    @CsvSource({
        "EQUAL, b, true", "EQUAL, a, false", "NOT_EQUAL, a, true", "NOT_EQUAL, b, false",
        "LESS, c, true", "LESS, ba, true", "LESS, b, false", "LESS, a, false",
        "GREATER, a, true", "GREATER, '', true", "GREATER, b, false", "GREATER, ba, false"})
    void a_value_compare_on_an_existing_key(Compare.Op op, String operand, boolean holds) {
      givenKeyK();
      assertEquals(holds, compareHolds(new Compare("k", Compare.Target.VALUE, op, 0, bytes(operand))));
    }

    @ParameterizedTest(name = "value {0} null is {1}")
    @CsvSource({"EQUAL, false", "NOT_EQUAL, true", "LESS, false", "GREATER, true"})
    void an_existing_value_is_greater_than_null(Compare.Op op, boolean holds) {
      givenKeyK();
      assertEquals(holds, compareHolds(new Compare("k", Compare.Target.VALUE, op, 0, null)));
    }

    @Test
    void values_compare_as_unsigned_bytes() {
      store.apply(KvCommand.Put.of("k", new byte[] {(byte) 0x80}));
      assertTrue(compareHolds(new Compare("k", Compare.Target.VALUE, Compare.Op.GREATER, 0, new byte[] {0x7F})));
      assertTrue(compareHolds(new Compare("k", Compare.Target.VALUE, Compare.Op.LESS, 0, new byte[] {(byte) 0xFF})));
    }

    @ParameterizedTest(name = "missing key: {0} {1} {2} is {3}")
    @CsvSource({
        "VERSION, EQUAL, 0, true", "VERSION, GREATER, 0, false", "VERSION, LESS, 1, true",
        "CREATE_REVISION, EQUAL, 0, true", "MOD_REVISION, EQUAL, 0, true",
        "MOD_REVISION, NOT_EQUAL, 0, false", "LEASE, EQUAL, 0, true"})
    void a_missing_key_compares_as_zero(Compare.Target target, Compare.Op op, long number, boolean holds) {
      givenKeyK();
      assertEquals(holds, compareHolds(new Compare("missing", target, op, number, null)));
    }

    @Test
    void a_missing_key_has_a_null_value_below_every_array() {
      assertTrue(compareHolds(new Compare("missing", Compare.Target.VALUE, Compare.Op.EQUAL, 0, null)));
      assertTrue(compareHolds(new Compare("missing", Compare.Target.VALUE, Compare.Op.LESS, 0, new byte[0])));
      assertFalse(compareHolds(new Compare("missing", Compare.Target.VALUE, Compare.Op.EQUAL, 0, new byte[0])));
      assertTrue(compareHolds(new Compare("missing", Compare.Target.VALUE, Compare.Op.NOT_EQUAL, 0, new byte[0])));
    }

    @Test
    void all_compares_true_runs_the_success_branch() {
      // given
      givenKeyK();
      // when
      KvResult.TxnDone done = txn(
          List.of(new Compare("k", Compare.Target.VERSION, Compare.Op.EQUAL, 2, null),
              new Compare("k", Compare.Target.VALUE, Compare.Op.EQUAL, 0, bytes("b"))),
          List.of(new TxnOp.Put("s", bytes("yes"), 0)),
          List.of(new TxnOp.Put("f", bytes("no"), 0)));
      // then
      assertTrue(done.succeeded());
      assertEquals(List.of(new KvResult.PutDone(4, null)), done.results());
      assertEquals("yes", text(get("s")));
      assertNull(get("f"));
    }

    @Test
    void one_false_compare_runs_the_failure_branch() {
      // given
      givenKeyK();
      // when
      KvResult.TxnDone done = txn(
          List.of(new Compare("k", Compare.Target.VERSION, Compare.Op.EQUAL, 2, null),
              new Compare("k", Compare.Target.MOD_REVISION, Compare.Op.LESS, 3, null)),
          List.of(new TxnOp.Put("s", bytes("yes"), 0)),
          List.of(new TxnOp.Put("f", bytes("no"), 0), new TxnOp.Get("k")));
      // then
      assertFalse(done.succeeded());
      assertEquals(4, done.revision());
      assertEquals(new KvResult.PutDone(4, null), done.results().get(0));
      assertEquals("b", text(((KvResult.GetDone) done.results().get(1)).kv()));
      assertNull(get("s"));
      assertEquals("no", text(get("f")));
    }

    @Test
    void no_compares_means_success() {
      KvResult.TxnDone done = txn(List.of(), List.of(new TxnOp.Get("a")), List.of());
      assertTrue(done.succeeded());
      assertEquals(List.of(new KvResult.GetDone(0, null)), done.results());
    }

    @Test
    void all_writes_of_a_transaction_share_one_revision() {
      // given
      put("a", "0");
      put("gone/1", "0");
      put("gone/2", "0");
      store.apply(new KvCommand.LeaseGrant(9, 10));
      // when
      KvResult.TxnDone done = txn(List.of(),
          List.of(new TxnOp.Put("a", bytes("1"), 0), new TxnOp.Put("b", bytes("1"), 9),
              new TxnOp.Delete("gone/", true), new TxnOp.Delete("nothing", false)),
          List.of());
      // then
      assertEquals(4, store.revision());
      assertEquals(new KvResult.TxnDone(true, 4, List.of(
          new KvResult.PutDone(4, 1L), new KvResult.PutDone(4, null),
          new KvResult.DeleteDone(4, 2), new KvResult.DeleteDone(4, 0))), done);
      assertKv(get("a"), "a", "1", 1, 4, 2);
      assertKv(get("b"), "b", "1", 4, 4, 1);
      assertEquals(9, get("b").lease());
      assertEquals(List.of("a", "b"), keys(range("", null, 0)));
    }

    @Test
    void gets_inside_a_transaction_see_its_earlier_writes() {
      // given
      put("a", "old");
      // when
      KvResult.TxnDone done = txn(List.of(),
          List.of(new TxnOp.Get("a"), new TxnOp.Put("a", bytes("new"), 0), new TxnOp.Get("a"),
              new TxnOp.Delete("a", false), new TxnOp.Get("a")),
          List.of());
      // then
      List<KvResult> results = done.results();
      assertEquals(5, results.size());
      KeyValue before = ((KvResult.GetDone) results.get(0)).kv();
      KeyValue between = ((KvResult.GetDone) results.get(2)).kv();
      assertKv(before, "a", "old", 1, 1, 1);
      assertKv(between, "a", "new", 1, 2, 2);
      assertEquals(new KvResult.GetDone(2, null), results.get(4));
      assertEquals(new KvResult.DeleteDone(2, 1), results.get(3));
      assertNull(get("a"));
    }

    @Test
    void two_puts_to_one_key_in_a_transaction_both_count_in_its_version() {
      // given
      put("a", "1");
      // when
      KvResult.TxnDone done = txn(List.of(),
          List.of(new TxnOp.Put("a", bytes("2"), 0), new TxnOp.Put("a", bytes("3"), 0)), List.of());
      // then
      assertEquals(List.of(new KvResult.PutDone(2, 1L), new KvResult.PutDone(2, 2L)), done.results());
      assertKv(get("a"), "a", "3", 1, 2, 3);
    }

    @Test
    void a_delete_then_put_in_one_transaction_recreates_the_key() {
      put("a", "1");
      put("a", "2");
      txn(List.of(), List.of(new TxnOp.Delete("a", false), new TxnOp.Put("a", bytes("3"), 0)), List.of());
      assertKv(get("a"), "a", "3", 3, 3, 1);
    }

    @Test
    void a_branch_that_changes_nothing_keeps_the_revision() {
      // given
      put("a", "1");
      // when
      KvResult.TxnDone done = txn(
          List.of(new Compare("a", Compare.Target.VERSION, Compare.Op.EQUAL, 7, null)),
          List.of(new TxnOp.Put("a", bytes("never"), 0)),
          List.of(new TxnOp.Get("a"), new TxnOp.Delete("absent", false), new TxnOp.Delete("zz", true)));
      // then
      assertFalse(done.succeeded());
      assertEquals(1, done.revision());
      assertEquals(1, store.revision());
      assertEquals(new KvResult.GetDone(1, get("a")), done.results().get(0));
      assertEquals(new KvResult.DeleteDone(1, 0), done.results().get(1));
      assertEquals(new KvResult.DeleteDone(1, 0), done.results().get(2));
    }

    @Test
    void compares_see_the_state_before_the_transaction() {
      // given: a branch writes the key that the compare reads
      put("a", "1");
      Compare versionOne = new Compare("a", Compare.Target.VERSION, Compare.Op.EQUAL, 1, null);
      // when
      KvResult.TxnDone done = txn(List.of(versionOne, versionOne),
          List.of(new TxnOp.Put("a", bytes("2"), 0)), List.of());
      // then
      assertTrue(done.succeeded());
      assertEquals(2, get("a").version());
    }

    private boolean compareHolds(Compare compare) {
      long before = store.revision();
      KvResult.TxnDone done = txn(List.of(compare), List.of(), List.of());
      assertEquals(before, store.revision());
      return done.succeeded();
    }
  }

  // ---------------------------------------------------------------- queries

  @Nested
  class Ranges {

    private void givenKeys(String... keys) {
      for (String key : keys) {
        put(key, "v-" + key);
      }
    }

    @Test
    void a_range_returns_the_keys_under_a_prefix_in_order() {
      givenKeys("b/2", "a", "c", "b/1", "b/3", "b");
      KvResult.RangeDone done = range("b/", null, 0);
      assertEquals(List.of("b/1", "b/2", "b/3"), keys(done));
      assertFalse(done.more());
      assertEquals(6, done.revision());
      assertKv(done.kvs().get(0), "b/1", "v-b/1", 4, 4, 1);
    }

    @Test
    void an_empty_prefix_returns_every_key() {
      givenKeys("b", "a", "c");
      assertEquals(List.of("a", "b", "c"), keys(range("", null, 0)));
      assertEquals(List.of("a", "b", "c"), keys(range(null, null, 0)));
    }

    @Test
    void a_range_over_nothing_is_empty() {
      givenKeys("a");
      assertEquals(new KvResult.RangeDone(1, List.of(), false), store.query(new KvQuery.Range("b", null, 0)));
      assertEquals(new KvResult.RangeDone(0, List.of(), false), new KvStore().query(new KvQuery.Range("", null, 5)));
    }

    @Test
    void a_limit_cuts_the_range_and_more_says_so() {
      givenKeys("p/1", "p/2", "p/3", "p/4", "q");
      // when
      KvResult.RangeDone first = range("p/", null, 2);
      KvResult.RangeDone second = range("p/", "p/2", 2);
      KvResult.RangeDone third = range("p/", "p/4", 2);
      // then
      assertEquals(List.of("p/1", "p/2"), keys(first));
      assertTrue(first.more());
      assertEquals(List.of("p/3", "p/4"), keys(second));
      assertFalse(second.more(), "q does not match the prefix, so nothing more matched");
      assertEquals(List.of(), keys(third));
      assertFalse(third.more());
    }

    @Test
    void paging_with_after_visits_every_key_once() {
      List<String> all = new ArrayList<>();
      for (int i = 0; i < 23; i++) {
        all.add(String.format("k/%03d", i));
      }
      givenKeys(all.toArray(String[]::new));
      List<String> seen = new ArrayList<>();
      String after = null;
      boolean more = true;
      while (more) {
        KvResult.RangeDone page = range("k/", after, 5);
        seen.addAll(keys(page));
        after = seen.get(seen.size() - 1);
        more = page.more();
      }
      assertEquals(all, seen);
    }

    @Test
    void after_is_exclusive_even_when_the_key_is_absent() {
      givenKeys("a", "b", "d");
      assertEquals(List.of("d"), keys(range("", "c", 0)));
      assertEquals(List.of("d"), keys(range("", "b", 0)));
    }

    @Test
    void after_before_the_prefix_starts_at_the_prefix_and_after_beyond_it_gives_nothing() {
      givenKeys("a", "m/1", "m/2", "z");
      assertEquals(List.of("m/1", "m/2"), keys(range("m/", "a", 0)));
      assertEquals(List.of(), keys(range("m/", "n", 0)));
    }

    @Test
    void a_limit_equal_to_the_matches_has_no_more() {
      givenKeys("a", "b");
      KvResult.RangeDone done = range("", null, 2);
      assertEquals(List.of("a", "b"), keys(done));
      assertFalse(done.more());
    }

    @Test
    void keys_are_in_code_point_order_not_utf16_order() {
      // given: U+FFFD sorts before U+1F600 by code point (and UTF-8 bytes), after it in UTF-16
      assertTrue(GRINNING.compareTo(REPLACEMENT) < 0, "String.compareTo is UTF-16 order");
      givenKeys(GRINNING, REPLACEMENT, "z", "\uE000", "é");
      // then
      assertEquals(List.of("z", "é", "\uE000", REPLACEMENT, GRINNING), keys(range("", null, 0)));
      assertEquals(List.of(GRINNING), keys(range("", REPLACEMENT, 0)));
    }

    @Test
    void a_prefix_with_a_supplementary_character() {
      givenKeys(GRINNING + "a", REPLACEMENT + "x", GRINNING + "b", GRINNING, "\uD83D\uDE01");
      assertEquals(List.of(GRINNING, GRINNING + "a", GRINNING + "b"), keys(range(GRINNING, null, 0)));
      assertEquals(List.of(GRINNING + "b"), keys(range(GRINNING, GRINNING + "a", 0)));
    }

    @Test
    void key_order_matches_the_unsigned_byte_order_of_utf8() {
      // given: random keys over ASCII, 2- and 3-byte characters, and supplementary characters
      String[] pieces = {"a", "b", "/", "é", "\u07FF", "\u0800", "\uD7FF", "\uE000", "\uFFFF",
          GRINNING, "\uD800\uDC00", "\uDBFF\uDFFF"};
      Random random = new Random(7);
      List<String> keys = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        StringBuilder key = new StringBuilder();
        for (int n = 1 + random.nextInt(4); n > 0; n--) {
          key.append(pieces[random.nextInt(pieces.length)]);
        }
        keys.add(key.toString());
      }
      givenKeys(keys.toArray(String[]::new));
      // then
      List<String> byUtf8 = keys.stream().distinct()
          .sorted(Comparator.comparing((String k) -> k.getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned))
          .toList();
      assertEquals(byUtf8, keys(range("", null, 0)));
    }
  }

  // ---------------------------------------------------------------- snapshots

  @Nested
  class Snapshots {

    @Test
    void a_snapshot_restores_to_the_same_content() {
      // given
      put("a", "1");
      put("a", "2");
      store.apply(new KvCommand.LeaseGrant(42, 10));
      store.apply(new KvCommand.Put(GRINNING + "/k", new byte[] {0, (byte) 0xFF, 10}, 42L, null, false));
      put("gone", "x");
      store.apply(KvCommand.Delete.of("gone"));
      store.apply(KvCommand.Put.of("empty", new byte[0]));
      // when
      KvStore restored = KvStore.restore(store.snapshot());
      // then
      assertTrue(restored.sameContent(store));
      assertEquals(store.revision(), restored.revision());
      assertEquals(store.size(), restored.size());
      KeyValue kv = ((KvResult.GetDone) restored.query(new KvQuery.Get(GRINNING + "/k"))).kv();
      assertArrayEquals(new byte[] {0, (byte) 0xFF, 10}, kv.value());
      assertEquals(42L, kv.lease());
      // and both go on identically
      KvCommand next = KvCommand.Put.of("a", bytes("3"));
      assertEquals(store.apply(next), restored.apply(next));
      assertTrue(restored.sameContent(store));
    }

    @Test
    void an_empty_store_round_trips() {
      KvStore restored = KvStore.restore(new KvStore().snapshot());
      assertTrue(restored.sameContent(new KvStore()));
      assertEquals(0, restored.revision());
    }

    @Test
    void a_store_emptied_by_deletes_keeps_its_revision() {
      put("a", "1");
      store.apply(KvCommand.Delete.of("a"));
      KvStore restored = KvStore.restore(store.snapshot());
      assertEquals(2, restored.revision());
      assertEquals(0, restored.size());
      assertFalse(restored.sameContent(new KvStore()));
    }

    @Test
    void equal_stores_give_equal_snapshot_bytes() {
      KvStore other = new KvStore();
      for (String key : List.of("b", "a", "c")) {
        KvCommand put = KvCommand.Put.of(key, bytes(key));
        store.apply(put);
        other.apply(put);
      }
      assertArrayEquals(store.snapshot(), other.snapshot());
    }

    @Test
    void a_key_with_an_unpaired_surrogate_survives_a_snapshot() {
      String odd = "a\uD800b";
      put(odd, "x");
      KvStore restored = KvStore.restore(store.snapshot());
      assertTrue(restored.sameContent(store));
      assertEquals(odd, ((KvResult.GetDone) restored.query(new KvQuery.Get(odd))).kv().key());
    }

    @Test
    void restore_rejects_a_bad_magic() {
      byte[] bytes = store.snapshot();
      bytes[0] = 'X';
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvStore.restore(bytes));
      assertTrue(e.getMessage().contains("magic"), e.getMessage());
      assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void restore_rejects_an_unknown_format_version() {
      byte[] bytes = store.snapshot();
      bytes[7] = 99;
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvStore.restore(bytes));
      assertTrue(e.getMessage().contains("format 99"), e.getMessage());
      assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void restore_rejects_truncated_or_padded_bytes() {
      put("a", "hello");
      byte[] bytes = store.snapshot();
      for (int cut : new int[] {0, 3, 10, bytes.length - 1}) {
        byte[] truncated = Arrays.copyOf(bytes, cut);
        assertThrows(IllegalArgumentException.class, () -> KvStore.restore(truncated), "cut at " + cut);
      }
      byte[] padded = Arrays.copyOf(bytes, bytes.length + 1);
      assertThrows(IllegalArgumentException.class, () -> KvStore.restore(padded));
    }

    @Test
    void same_content_compares_values_and_bookkeeping() {
      KvStore a = new KvStore();
      KvStore b = new KvStore();
      a.apply(KvCommand.Put.of("k", bytes("1")));
      b.apply(KvCommand.Put.of("k", bytes("2")));
      assertFalse(a.sameContent(b));
      KvStore c = new KvStore();
      c.apply(new KvCommand.LeaseGrant(3, 10));
      c.apply(new KvCommand.Put("k", bytes("1"), 3L, null, false));
      assertFalse(a.sameContent(c), "the lease differs");
      KvStore d = new KvStore();
      d.apply(KvCommand.Put.of("k", bytes("1")));
      assertTrue(a.sameContent(d), "equal values in different arrays");
    }
  }

  // ---------------------------------------------------------------- determinism

  @Test
  void two_stores_fed_the_same_random_commands_are_equal() {
    // given
    Random random = new Random(20240501L);
    KvStore first = new KvStore();
    KvStore second = new KvStore();
    KvStore fromSnapshot = null;
    // when
    for (int i = 0; i < 3000; i++) {
      KvCommand command = randomCommand(random, first);
      KvResult a = first.apply(command);
      KvResult b = second.apply(command);
      // then: same results (values are the same arrays, so record equality works)
      assertEquals(a, b, "command " + i + ": " + command);
      if (fromSnapshot != null) {
        // its values are other arrays, so compare the kind of result only; content is checked below
        assertEquals(a.getClass(), fromSnapshot.apply(command).getClass(), "restored store, command " + i);
      }
      if (i == 1500) {
        fromSnapshot = KvStore.restore(first.snapshot());
      }
    }
    assertTrue(first.sameContent(second));
    assertTrue(first.sameContent(fromSnapshot));
    assertArrayEquals(first.snapshot(), second.snapshot());
    assertTrue(first.revision() > 1000, "the sequence made changes: " + first.revision());
    assertTrue(first.size() > 0);
  }

  private static final String[] KEYS = {"a", "a/1", "a/2", "a/2/x", "b", "b/1", GRINNING, REPLACEMENT, "é"};

  private static KvCommand randomCommand(Random random, KvStore current) {
    String key = KEYS[random.nextInt(KEYS.length)];
    switch (random.nextInt(6)) {
      case 0, 1:
        return KvCommand.Put.of(key, randomValue(random));
      case 2: {
        Long ifMod = random.nextBoolean() ? null : (long) random.nextInt((int) current.revision() + 2);
        return new KvCommand.Put(key, randomValue(random), random.nextInt(3), ifMod, random.nextInt(4) == 0);
      }
      case 3:
        return new KvCommand.Delete(key, random.nextInt(3) == 0,
            random.nextInt(3) == 0 ? (long) random.nextInt((int) current.revision() + 2) : null);
      default: {
        List<Compare> compares = new ArrayList<>();
        for (int n = random.nextInt(3); n > 0; n--) {
          Compare.Target target = Compare.Target.values()[random.nextInt(Compare.Target.values().length)];
          Compare.Op op = Compare.Op.values()[random.nextInt(Compare.Op.values().length)];
          compares.add(new Compare(KEYS[random.nextInt(KEYS.length)], target, op,
              random.nextInt((int) current.revision() + 2), random.nextBoolean() ? randomValue(random) : null));
        }
        return new KvCommand.Txn(compares, randomOps(random), randomOps(random));
      }
    }
  }

  private static List<TxnOp> randomOps(Random random) {
    List<TxnOp> ops = new ArrayList<>();
    for (int n = random.nextInt(4); n > 0; n--) {
      String key = KEYS[random.nextInt(KEYS.length)];
      switch (random.nextInt(3)) {
        case 0 -> ops.add(new TxnOp.Put(key, randomValue(random), random.nextInt(2)));
        case 1 -> ops.add(new TxnOp.Get(key));
        default -> ops.add(new TxnOp.Delete(key, random.nextBoolean()));
      }
    }
    return ops;
  }

  private static byte[] randomValue(Random random) {
    byte[] value = new byte[random.nextInt(3)];
    random.nextBytes(value);
    return value;
  }

  // ---------------------------------------------------------------- helpers

  private void put(String key, String value) {
    assertInstanceOf(KvResult.PutDone.class, store.apply(KvCommand.Put.of(key, bytes(value))));
  }

  private KeyValue get(String key) {
    return ((KvResult.GetDone) store.query(new KvQuery.Get(key))).kv();
  }

  private KvResult.RangeDone range(String prefix, String after, int limit) {
    return (KvResult.RangeDone) store.query(new KvQuery.Range(prefix, after, limit));
  }

  private KvResult.TxnDone txn(List<Compare> compare, List<TxnOp> success, List<TxnOp> failure) {
    return (KvResult.TxnDone) store.apply(new KvCommand.Txn(compare, success, failure));
  }

  private static List<String> keys(KvResult.RangeDone done) {
    return done.kvs().stream().map(KeyValue::key).toList();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(KeyValue kv) {
    return new String(kv.value(), StandardCharsets.UTF_8);
  }

  private static void assertKv(KeyValue kv, String key, String value, long createRevision, long modRevision,
      long version) {
    assertEquals(key, kv.key());
    assertEquals(value, text(kv));
    assertEquals(createRevision, kv.createRevision(), "createRevision");
    assertEquals(modRevision, kv.modRevision(), "modRevision");
    assertEquals(version, kv.version(), "version");
  }
}
