package raftkv.client;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import raftkv.client.RaftKvException;
import raftkv.client.RaftKvException.Kind;
import raftkv.kv.Compare;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.TxnOp;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class KvLimitsTest {

  private final KvLimits limits = KvLimits.defaults();

  /** Small limits so that the tests stay readable: keys up to 8 bytes, values up to 4. */
  private final KvLimits small = new KvLimits(8, 4);

  @Test
  void the_defaults_are_those_of_the_api() {
    assertEquals(new KvLimits(1024, 1024 * 1024), KvLimits.defaults());
  }

  @Test
  void limits_must_allow_something() {
    assertThrows(IllegalArgumentException.class, () -> new KvLimits(0, 10));
    assertThrows(IllegalArgumentException.class, () -> new KvLimits(10, -1));
    assertThrows(IllegalArgumentException.class, () -> new KvLimits(10, 10, 0));
  }

  @Test
  void transactions_hold_128_compares_and_operations_by_default() {
    assertEquals(128, KvLimits.defaults().maxTxnOps());
    assertEquals(new KvLimits(1024, 1024 * 1024, 128), KvLimits.defaults());
    assertEquals(128, new KvLimits(8, 4).maxTxnOps());
  }

  // ---------------------------------------------------------------- put and delete

  @Test
  void a_valid_put_passes() {
    assertDoesNotThrow(() -> limits.validate(KvCommand.Put.of("config/app/db", new byte[10])));
    assertDoesNotThrow(() -> limits.validate(KvCommand.Put.of("k", new byte[0])));
    assertDoesNotThrow(() -> limits.validate(new KvCommand.Put("k", new byte[1], 5, 0L, true)));
  }

  @Test
  void a_put_needs_a_non_empty_key_and_a_value() {
    assertRejected(Kind.BAD_REQUEST, "key is empty", () -> limits.validate(KvCommand.Put.of("", new byte[1])));
    assertRejected(Kind.BAD_REQUEST, "key is missing", () -> limits.validate(KvCommand.Put.of(null, new byte[1])));
    assertRejected(Kind.BAD_REQUEST, "value is missing", () -> limits.validate(KvCommand.Put.of("k", null)));
  }

  @Test
  void a_key_over_the_limit_is_too_large() {
    // given a key of 2048 ASCII characters
    String key = "k".repeat(2048);
    // then
    assertRejected(Kind.TOO_LARGE, "key is 2048 bytes, the limit is 1024",
        () -> limits.validate(KvCommand.Put.of(key, new byte[1])));
    assertDoesNotThrow(() -> limits.validate(KvCommand.Put.of("k".repeat(1024), new byte[1])));
  }

  @Test
  void the_key_limit_counts_utf8_bytes_not_characters() {
    // é is 2 bytes, € is 3, U+1F600 is 4 (and 2 Java chars)
    assertDoesNotThrow(() -> small.validate(KvCommand.Put.of("éééé", new byte[0])));
    assertRejected(Kind.TOO_LARGE, "key is 9 bytes, the limit is 8",
        () -> small.validate(KvCommand.Put.of("€€€", new byte[0])));
    assertDoesNotThrow(() -> small.validate(KvCommand.Put.of("\uD83D\uDE00\uD83D\uDE00", new byte[0])));
    assertRejected(Kind.TOO_LARGE, "key is 12 bytes, the limit is 8",
        () -> small.validate(KvCommand.Put.of("\uD83D\uDE00".repeat(3), new byte[0])));
  }

  @Test
  void a_value_over_the_limit_is_too_large() {
    assertDoesNotThrow(() -> limits.validate(KvCommand.Put.of("k", new byte[1024 * 1024])));
    assertRejected(Kind.TOO_LARGE, "value is 1048577 bytes, the limit is 1048576",
        () -> limits.validate(KvCommand.Put.of("k", new byte[1024 * 1024 + 1])));
  }

  @Test
  void a_key_with_an_unpaired_surrogate_is_malformed() {
    RaftKvException e = assertThrows(RaftKvException.class,
        () -> limits.validate(KvCommand.Put.of("ab\uD800", new byte[0])));
    assertEquals(Kind.BAD_REQUEST, e.kind());
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(KvCommand.Put.of("\uDE00x", new byte[0])));
  }

  @Test
  void a_negative_expected_mod_revision_is_malformed() {
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Put("k", new byte[0], 0, -1L, false)));
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Delete("k", false, -1L)));
  }

  @Test
  void a_delete_needs_a_key_of_acceptable_size() {
    assertDoesNotThrow(() -> limits.validate(KvCommand.Delete.of("k")));
    assertDoesNotThrow(() -> limits.validate(new KvCommand.Delete("k/", true, null)));
    assertRejected(Kind.BAD_REQUEST, "key is empty", () -> limits.validate(KvCommand.Delete.of("")));
    assertRejected(Kind.BAD_REQUEST, "prefix is empty", () -> limits.validate(new KvCommand.Delete("", true, null)));
    assertRejected(Kind.TOO_LARGE, "key is 9 bytes, the limit is 8", () -> small.validate(KvCommand.Delete.of("123456789")));
  }

  @Test
  void a_delete_by_prefix_cannot_carry_a_mod_revision() {
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Delete("k/", true, 3L)));
  }

  // ---------------------------------------------------------------- transactions

  @Test
  void a_valid_transaction_passes() {
    KvCommand.Txn txn = new KvCommand.Txn(
        List.of(new Compare("k", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null),
            new Compare("k", Compare.Target.VALUE, Compare.Op.EQUAL, 0, null)),
        List.of(new TxnOp.Put("k", new byte[4], 0), new TxnOp.Get("k"), new TxnOp.Delete("k/", true)),
        List.of());
    assertDoesNotThrow(() -> small.validate(txn));
  }

  @Test
  void every_compare_of_a_transaction_is_checked() {
    assertRejected(Kind.BAD_REQUEST, "key of compare 2 is empty", () -> small.validate(txnWithCompares(
        new Compare("k", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null),
        new Compare("", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null))));
    assertRejected(Kind.BAD_REQUEST, "key of compare 1 is missing", () -> small.validate(txnWithCompares(
        new Compare(null, Compare.Target.VERSION, Compare.Op.EQUAL, 0, null))));
    assertRejected(Kind.TOO_LARGE, "key of compare 1 is 9 bytes, the limit is 8", () -> small.validate(txnWithCompares(
        new Compare("123456789", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null))));
    assertRejected(Kind.TOO_LARGE, "value of compare 1 is 5 bytes, the limit is 4", () -> small.validate(txnWithCompares(
        new Compare("k", Compare.Target.VALUE, Compare.Op.EQUAL, 0, new byte[5]))));
    assertRejected(Kind.BAD_REQUEST, null, () -> small.validate(txnWithCompares(
        new Compare("k", null, Compare.Op.EQUAL, 0, null))));
  }

  @Test
  void every_op_of_both_branches_is_checked() {
    assertRejected(Kind.TOO_LARGE, "value of success op 2 is 5 bytes, the limit is 4",
        () -> small.validate(new KvCommand.Txn(List.of(),
            List.of(new TxnOp.Get("k"), new TxnOp.Put("k", new byte[5], 0)), List.of())));
    assertRejected(Kind.TOO_LARGE, "key of failure op 1 is 9 bytes, the limit is 8",
        () -> small.validate(new KvCommand.Txn(List.of(), List.of(),
            List.of(new TxnOp.Delete("123456789", false)))));
    assertRejected(Kind.BAD_REQUEST, "key of failure op 1 is empty",
        () -> small.validate(new KvCommand.Txn(List.of(), List.of(), List.of(new TxnOp.Get("")))));
    assertRejected(Kind.BAD_REQUEST, "value of success op 1 is missing",
        () -> small.validate(new KvCommand.Txn(List.of(), List.of(new TxnOp.Put("k", null, 0)), List.of())));
    assertRejected(Kind.BAD_REQUEST, "prefix of success op 1 is empty",
        () -> small.validate(new KvCommand.Txn(List.of(), List.of(new TxnOp.Delete("", true)), List.of())));
  }

  @Test
  void a_transaction_needs_its_lists() {
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Txn(null, List.of(), List.of())));
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Txn(List.of(), null, List.of())));
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate(new KvCommand.Txn(List.of(), List.of(), null)));
  }

  @Test
  void a_transaction_of_exactly_max_txn_ops_passes_and_one_more_is_malformed() {
    assertDoesNotThrow(() -> limits.validate(new KvCommand.Txn(List.of(), gets(128), List.of())));
    assertRejected(Kind.BAD_REQUEST,
        "the transaction has 129 compares and operations, the limit is 128 (raftkv.limits.max-txn-ops)",
        () -> limits.validate(new KvCommand.Txn(List.of(), gets(129), List.of())));
    assertRejected(Kind.BAD_REQUEST,
        "the transaction has 130 compares and operations, the limit is 128 (raftkv.limits.max-txn-ops)",
        () -> limits.validate(new KvCommand.Txn(List.of(), gets(65), gets(65))));
  }

  @Test
  void compares_and_both_branches_count_together() {
    KvLimits three = new KvLimits(8, 4, 3);
    Compare compare = new Compare("k", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null);
    String four = "the transaction has 4 compares and operations, the limit is 3 (raftkv.limits.max-txn-ops)";
    assertDoesNotThrow(() -> three.validate(new KvCommand.Txn(List.of(compare), gets(1), gets(1))));
    assertDoesNotThrow(() -> three.validate(new KvCommand.Txn(Collections.nCopies(3, compare), List.of(), List.of())));
    assertRejected(Kind.BAD_REQUEST, four,
        () -> three.validate(new KvCommand.Txn(List.of(compare, compare), gets(1), gets(1))));
    assertRejected(Kind.BAD_REQUEST, four,
        () -> three.validate(new KvCommand.Txn(Collections.nCopies(4, compare), List.of(), List.of())));
  }

  @Test
  void the_count_is_checked_before_the_operations() {
    // given 129 operations, the first of them malformed
    List<TxnOp> ops = new ArrayList<>(gets(128));
    ops.add(0, new TxnOp.Get(""));
    // then the count is what is refused
    assertRejected(Kind.BAD_REQUEST,
        "the transaction has 129 compares and operations, the limit is 128 (raftkv.limits.max-txn-ops)",
        () -> limits.validate(new KvCommand.Txn(List.of(), ops, List.of())));
  }

  // ---------------------------------------------------------------- queries

  @Test
  void a_get_needs_a_key() {
    assertDoesNotThrow(() -> limits.validate(new KvQuery.Get("k")));
    assertRejected(Kind.BAD_REQUEST, "key is empty", () -> limits.validate(new KvQuery.Get("")));
    assertRejected(Kind.TOO_LARGE, "key is 9 bytes, the limit is 8", () -> small.validate(new KvQuery.Get("123456789")));
  }

  @Test
  void a_range_may_have_an_empty_prefix_but_not_a_negative_limit() {
    assertDoesNotThrow(() -> limits.validate(new KvQuery.Range("", null, 0)));
    assertDoesNotThrow(() -> limits.validate(new KvQuery.Range(null, null, 0)));
    assertDoesNotThrow(() -> limits.validate(new KvQuery.Range("a/", "a/b", 10)));
    assertRejected(Kind.BAD_REQUEST, "limit is -1, it must be 0 (no limit) or more",
        () -> limits.validate(new KvQuery.Range("", null, -1)));
    assertRejected(Kind.TOO_LARGE, "prefix is 9 bytes, the limit is 8",
        () -> small.validate(new KvQuery.Range("123456789", null, 0)));
  }

  @Test
  void a_missing_command_or_query_is_malformed() {
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate((KvCommand) null));
    assertRejected(Kind.BAD_REQUEST, null, () -> limits.validate((KvQuery) null));
  }

  // ---------------------------------------------------------------- helpers

  /** {@code n} gets of the key "k". */
  private static List<TxnOp> gets(int n) {
    return Collections.nCopies(n, new TxnOp.Get("k"));
  }

  private static KvCommand.Txn txnWithCompares(Compare... compares) {
    return new KvCommand.Txn(List.of(compares), List.of(), List.of());
  }

  /** Asserts the kind, that the message is one line, and when given, the exact message. */
  private static void assertRejected(Kind kind, String message, Executable validation) {
    RaftKvException e = assertThrows(RaftKvException.class, validation);
    assertEquals(kind, e.kind());
    assertFalse(e.getMessage().isBlank());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
    if (message != null) {
      assertEquals(message, e.getMessage());
    }
  }
}
