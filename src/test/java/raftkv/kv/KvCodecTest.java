package raftkv.kv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static raftkv.testutil.RecordAssertions.assertFieldsEqual;

/**
 * The codec carries commands in the Raft log and replies back to proposers: every shape must come
 * back field for field, and no bytes, however damaged, may make a decoder throw anything but an
 * IllegalArgumentException (a follower must refuse a bad entry, not crash on it).
 */
class KvCodecTest {

  private static final String GRINNING = "\uD83D\uDE00";
  private static final String LONE_HIGH = "a\uD800b";
  private static final String LONE_LOW = "\uDC00";
  private static final byte[] BINARY = {0, 1, (byte) 0x80, (byte) 0xFF, 'x'};

  static List<KvCommand> commands() {
    List<KvCommand> commands = new ArrayList<>();
    commands.add(KvCommand.Put.of("a", "1".getBytes()));
    commands.add(new KvCommand.Put("config/" + GRINNING, BINARY, 42, 7L, false));
    commands.add(new KvCommand.Put(LONE_HIGH, new byte[0], -1, 0L, true));
    commands.add(new KvCommand.Put("nul\u0000key" + LONE_LOW, new byte[70_000], Long.MAX_VALUE, Long.MIN_VALUE, true));
    commands.add(KvCommand.Delete.of("a"));
    commands.add(new KvCommand.Delete("prefix/", true, null));
    commands.add(new KvCommand.Delete("\u00e9\u4e2d", false, 3L));
    commands.add(new KvCommand.Txn(List.of(), List.of(), List.of()));
    List<Compare> compares = new ArrayList<>();
    for (Compare.Target target : Compare.Target.values()) {
      for (Compare.Op op : Compare.Op.values()) {
        compares.add(new Compare("k-" + target + LONE_LOW, target, op, -42, target == Compare.Target.VALUE ? BINARY : null));
      }
    }
    commands.add(new KvCommand.Txn(compares,
        List.of(new TxnOp.Put("x", BINARY, 5), new TxnOp.Get("x"), new TxnOp.Delete("x", false), new TxnOp.Delete("", true)),
        List.of(new TxnOp.Get(GRINNING))));
    return commands;
  }

  static List<KvQuery> queries() {
    return List.of(
        new KvQuery.Get("a"),
        new KvQuery.Get(LONE_HIGH + GRINNING),
        new KvQuery.Range(null, null, 0),
        new KvQuery.Range("", "b", 10),
        new KvQuery.Range("p/", null, Integer.MAX_VALUE),
        new KvQuery.Range("p/", "p/" + LONE_LOW, -1));
  }

  static List<KvResult> results() {
    KeyValue kv = new KeyValue("config/" + GRINNING, BINARY, 3, 7, 2, 99);
    KeyValue nullValue = new KeyValue(LONE_HIGH, null, 1, 1, 1, 0);
    return List.of(
        new KvResult.PutDone(1, null),
        new KvResult.PutDone(Long.MAX_VALUE, 7L),
        new KvResult.DeleteDone(5, 0),
        new KvResult.DeleteDone(6, 1234),
        new KvResult.PreconditionFailed(0),
        new KvResult.PreconditionFailed(77),
        new KvResult.GetDone(0, null),
        new KvResult.GetDone(9, kv),
        new KvResult.GetDone(9, nullValue),
        new KvResult.RangeDone(3, List.of(), false),
        new KvResult.RangeDone(3, List.of(kv, nullValue, new KeyValue("", new byte[0], 1, 2, 3, -4)), true),
        new KvResult.TxnDone(false, 4, List.of()),
        new KvResult.TxnDone(true, 8, List.of(
            new KvResult.PutDone(8, null), new KvResult.GetDone(8, kv), new KvResult.GetDone(8, null),
            new KvResult.DeleteDone(8, 2))));
  }

  @ParameterizedTest
  @MethodSource("commands")
  void every_command_shape_round_trips_and_its_size_is_exact(KvCommand command) {
    byte[] bytes = KvCodec.encode(command);
    assertEquals(KvCodec.VERSION, bytes[0]);
    assertEquals(bytes.length, KvCodec.commandBytes(command));
    assertFieldsEqual(command, KvCodec.decodeCommand(bytes), "command");
  }

  @ParameterizedTest
  @MethodSource("queries")
  void every_query_shape_round_trips(KvQuery query) {
    byte[] bytes = KvCodec.encode(query);
    assertEquals(KvCodec.VERSION, bytes[0]);
    assertFieldsEqual(query, KvCodec.decodeQuery(bytes), "query");
  }

  @ParameterizedTest
  @MethodSource("results")
  void every_result_shape_round_trips(KvResult result) {
    byte[] bytes = KvCodec.encode(result);
    assertEquals(KvCodec.VERSION, bytes[0]);
    assertFieldsEqual(result, KvCodec.decodeResult(bytes), "result");
  }

  @Test
  void unpaired_surrogates_and_nul_come_back_as_the_same_string() {
    String key = "\uDBFF" + LONE_LOW + "\u0000" + GRINNING + "\uD800";
    KvCommand.Put put = (KvCommand.Put) KvCodec.decodeCommand(KvCodec.encode(KvCommand.Put.of(key, BINARY)));
    assertEquals(key, put.key());
  }

  @Test
  void a_command_keeps_the_raft_serializer_layout_after_the_version_byte() {
    // PUT, key "k" (length 1), value {7} (length 1), lease 2, no ifModRevision, ifAbsent true
    byte[] expected = {1, 1, 1, 'k', 1, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
    assertEquals(Arrays.toString(expected),
        Arrays.toString(KvCodec.encode(new KvCommand.Put("k", new byte[] {7}, 2, null, true))));
  }

  @Test
  void every_truncation_of_every_shape_is_refused_with_an_illegal_argument() {
    for (KvCommand command : commands()) {
      byte[] bytes = KvCodec.encode(command);
      for (int n = 0; n < bytes.length; n += Math.max(1, bytes.length / 500)) {
        byte[] cut = Arrays.copyOf(bytes, n);
        assertRefused(() -> KvCodec.decodeCommand(cut));
      }
    }
    for (KvQuery query : queries()) {
      byte[] bytes = KvCodec.encode(query);
      for (int n = 0; n < bytes.length; n++) {
        byte[] cut = Arrays.copyOf(bytes, n);
        assertRefused(() -> KvCodec.decodeQuery(cut));
      }
    }
    for (KvResult result : results()) {
      byte[] bytes = KvCodec.encode(result);
      for (int n = 0; n < bytes.length; n++) {
        byte[] cut = Arrays.copyOf(bytes, n);
        assertRefused(() -> KvCodec.decodeResult(cut));
      }
    }
  }

  @Test
  void trailing_bytes_are_refused() {
    byte[] command = KvCodec.encode(KvCommand.Delete.of("a"));
    String message = assertRefused(() -> KvCodec.decodeCommand(Arrays.copyOf(command, command.length + 1)));
    assertTrue(message.contains("follow its end"), message);
    byte[] query = KvCodec.encode(new KvQuery.Get("a"));
    assertRefused(() -> KvCodec.decodeQuery(Arrays.copyOf(query, query.length + 3)));
    byte[] result = KvCodec.encode(new KvResult.GetDone(1, null));
    assertRefused(() -> KvCodec.decodeResult(Arrays.copyOf(result, result.length + 1)));
  }

  @Test
  void null_empty_and_foreign_versions_are_refused() {
    assertRefused(() -> KvCodec.decodeCommand(null));
    assertRefused(() -> KvCodec.decodeQuery(new byte[0]));
    byte[] bytes = KvCodec.encode(KvCommand.Delete.of("a"));
    bytes[0] = 2;
    String message = assertRefused(() -> KvCodec.decodeCommand(bytes));
    assertTrue(message.contains("version 2"), message);
  }

  @Test
  void a_huge_length_or_count_prefix_is_refused_without_allocating_it() {
    // PUT, key length 2^31-1 (varint FF FF FF FF 07), then nothing
    byte[] hugeKey = {1, 1, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x07};
    assertTrue(assertRefused(() -> KvCodec.decodeCommand(hugeKey)).contains("truncated"));
    // TXN with 2^31-1 compares
    byte[] hugeCount = {1, 3, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x07, 0};
    assertTrue(assertRefused(() -> KvCodec.decodeCommand(hugeCount)).contains("count"));
    // a varint of more than 31 bits
    byte[] tooWide = {1, 1, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0x8F, 0};
    assertRefused(() -> KvCodec.decodeCommand(tooWide));
    // RangeDone with 2^28 key-values
    byte[] hugeRange = {1, 6, 0, 0, 0, 0, 0, 0, 0, 1, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0x01};
    assertRefused(() -> KvCodec.decodeResult(hugeRange));
  }

  @Test
  void bad_kinds_booleans_enum_names_and_strings_are_refused() {
    assertTrue(assertRefused(() -> KvCodec.decodeCommand(new byte[] {1, 9})).contains("unknown command kind 9"));
    assertRefused(() -> KvCodec.decodeQuery(new byte[] {1, 3, 1, 'a'}));
    assertRefused(() -> KvCodec.decodeResult(new byte[] {1, 0}));
    // Delete "a" with prefix byte 2
    assertTrue(assertRefused(() -> KvCodec.decodeCommand(new byte[] {1, 2, 1, 'a', 2, 0})).contains("boolean"));
    // a string byte 0xF0 (modified UTF-8 never writes 4-byte forms)
    assertRefused(() -> KvCodec.decodeCommand(new byte[] {1, 2, 1, (byte) 0xF0, 0, 0}));
    // a two-byte character cut by the string's length
    assertRefused(() -> KvCodec.decodeCommand(new byte[] {1, 2, 1, (byte) 0xC3, (byte) 0xA9, 0, 0}));
    // a compare whose target is not a Target
    KvCommand.Txn txn = new KvCommand.Txn(
        List.of(new Compare("k", Compare.Target.LEASE, Compare.Op.LESS, 1, null)), List.of(), List.of());
    byte[] bytes = KvCodec.encode(txn);
    String encoded = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
    int at = encoded.indexOf("LEASE");
    bytes[at] = 'X';
    String message = assertRefused(() -> KvCodec.decodeCommand(bytes));
    assertTrue(message.contains("XEASE"), message);
  }

  @Test
  void results_nested_without_end_are_refused_not_a_stack_overflow() {
    byte[] bytes = new byte[1 + 11 * 10_000];
    bytes[0] = 1;
    for (int i = 0; i < 10_000; i++) {
      int at = 1 + 11 * i;
      bytes[at] = 3; // TxnDone
      bytes[at + 1] = 1; // succeeded
      bytes[at + 10] = 1; // one result, the next TxnDone
    }
    assertRefused(() -> KvCodec.decodeResult(bytes));
  }

  @Test
  void random_bytes_and_random_bit_flips_give_only_illegal_arguments_or_a_value() {
    Random random = new Random(7);
    List<byte[]> encodings = new ArrayList<>();
    commands().forEach(c -> encodings.add(KvCodec.encode(c)));
    queries().forEach(q -> encodings.add(KvCodec.encode(q)));
    results().forEach(r -> encodings.add(KvCodec.encode(r)));
    for (int round = 0; round < 20_000; round++) {
      byte[] bytes;
      if (round % 2 == 0) {
        bytes = new byte[random.nextInt(40)];
        random.nextBytes(bytes);
        if (bytes.length > 0) {
          bytes[0] = 1;
        }
      } else {
        byte[] original = encodings.get(random.nextInt(encodings.size()));
        bytes = original.length > 10_000 ? Arrays.copyOf(original, 200) : original.clone();
        int flips = 1 + random.nextInt(3);
        for (int f = 0; f < flips; f++) {
          int bit = random.nextInt(bytes.length * 8);
          bytes[bit / 8] ^= (byte) (1 << (bit % 8));
        }
      }
      decodeAllWays(bytes);
    }
  }

  @Test
  void command_bytes_is_exact_for_random_commands() {
    Random random = new Random(11);
    for (int i = 0; i < 2_000; i++) {
      KvCommand command = randomCommand(random);
      assertEquals(KvCodec.encode(command).length, KvCodec.commandBytes(command));
    }
  }

  private static KvCommand randomCommand(Random random) {
    return switch (random.nextInt(3)) {
      case 0 -> new KvCommand.Put(randomString(random), randomBytes(random), random.nextLong(),
          random.nextBoolean() ? null : random.nextLong(), random.nextBoolean());
      case 1 -> new KvCommand.Delete(randomString(random), random.nextBoolean(), random.nextBoolean() ? null : 5L);
      default -> {
        List<Compare> compares = new ArrayList<>();
        for (int i = random.nextInt(4); i > 0; i--) {
          compares.add(new Compare(randomString(random), Compare.Target.values()[random.nextInt(5)],
              Compare.Op.values()[random.nextInt(4)], random.nextLong(), random.nextBoolean() ? null : randomBytes(random)));
        }
        List<TxnOp> ops = new ArrayList<>();
        for (int i = random.nextInt(5); i > 0; i--) {
          ops.add(switch (random.nextInt(3)) {
            case 0 -> new TxnOp.Put(randomString(random), randomBytes(random), random.nextLong());
            case 1 -> new TxnOp.Get(randomString(random));
            default -> new TxnOp.Delete(randomString(random), random.nextBoolean());
          });
        }
        yield new KvCommand.Txn(compares, ops, List.copyOf(ops.subList(0, ops.size() / 2)));
      }
    };
  }

  private static String randomString(Random random) {
    StringBuilder s = new StringBuilder();
    for (int i = random.nextInt(300); i > 0; i--) {
      s.append((char) (random.nextBoolean() ? random.nextInt(0x80) : random.nextInt(0x10000)));
    }
    return s.toString();
  }

  private static byte[] randomBytes(Random random) {
    byte[] bytes = new byte[random.nextInt(200)];
    random.nextBytes(bytes);
    return bytes;
  }

  private static void decodeAllWays(byte[] bytes) {
    for (int way = 0; way < 3; way++) {
      try {
        switch (way) {
          case 0 -> KvCodec.decodeCommand(bytes);
          case 1 -> KvCodec.decodeQuery(bytes);
          default -> KvCodec.decodeResult(bytes);
        }
      } catch (IllegalArgumentException e) {
        assertOneLine(e.getMessage());
      }
    }
  }

  private static String assertRefused(org.junit.jupiter.api.function.Executable decode) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, decode);
    assertOneLine(e.getMessage());
    return e.getMessage();
  }

  private static void assertOneLine(String message) {
    assertFalse(message == null || message.isBlank(), "a reason");
    assertFalse(message.contains("\n") || message.contains("\r"), message);
  }
}
