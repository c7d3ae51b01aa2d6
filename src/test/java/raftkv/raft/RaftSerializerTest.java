package raftkv.raft;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.actor.typed.javadsl.Adapter;
import akka.serialization.Serialization;
import akka.serialization.SerializationExtension;
import akka.serialization.Serializer;
import akka.serialization.Serializers;
import akka.serialization.jackson.JacksonCborSerializer;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import raftkv.kv.Compare;
import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.kv.TxnOp;
import raftkv.testutil.RecordAssertions;

import java.io.NotSerializableException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every Raft message between peers and every journal event goes through {@link RaftSerializer}
 * (bound in reference.conf) and comes back field for field; a damaged message is refused with a
 * NotSerializableException, never a wrong message; events that an older node wrote with Jackson
 * still read.
 */
class RaftSerializerTest {

  private static ActorTestKit testKit;
  private static Serialization serialization;

  @BeforeAll
  static void startSystem() {
    // reference.conf's bindings; serialization needs no remoting, so nothing binds a port
    testKit = ActorTestKit.create(ConfigFactory.parseString("akka.actor.provider = local"));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stopSystem() {
    testKit.shutdownTestKit();
  }

  static List<LogEntry> entries() {
    byte[] value = {0, 1, (byte) 0x80, (byte) 0xFF, 'x'};
    List<Compare> compares = new ArrayList<>();
    for (Compare.Target target : Compare.Target.values()) {
      for (Compare.Op op : Compare.Op.values()) {
        compares.add(new Compare("k-" + target, target, op, 42, target == Compare.Target.VALUE ? value : null));
      }
    }
    List<TxnOp> ops = List.of(new TxnOp.Put("p", value, 5), new TxnOp.Get("g"), new TxnOp.Delete("d/", true));
    String oddKey = "config/\uD83D\uDE00/\u00e9/\u0000/\uD800"; // astral, two-byte, NUL, unpaired surrogate
    return List.of(
        new LogEntry(1, 1, new LogEntry.NoOp(1)),
        new LogEntry(2, 1, new LogEntry.Command(KvCodec.encode(KvCommand.Put.of("a", value)))),
        new LogEntry(3, 1, new LogEntry.Command(KvCodec.encode(new KvCommand.Put(oddKey, new byte[0], 12, 0L, false)))),
        new LogEntry(4, 2, new LogEntry.Command(KvCodec.encode(new KvCommand.Put("a", new byte[300_000], 0, 17L, true)))),
        new LogEntry(5, 2, new LogEntry.Command(KvCodec.encode(KvCommand.Delete.of("a")))),
        new LogEntry(6, 2, new LogEntry.Command(KvCodec.encode(new KvCommand.Delete("a/", true, null)))),
        new LogEntry(7, 2, new LogEntry.Command(KvCodec.encode(new KvCommand.Delete("a", false, 8L)))),
        new LogEntry(8, 3, new LogEntry.Command(KvCodec.encode(new KvCommand.Txn(compares, ops, List.of(new TxnOp.Delete("x", false)))))),
        new LogEntry(9, 3, new LogEntry.Config(MEMBERS)),
        new LogEntry(10, 3, new LogEntry.Config(Membership.EMPTY)),
        new LogEntry(Long.MAX_VALUE, 3, new LogEntry.Command(KvCodec.encode(new KvCommand.Txn(List.of(), List.of(), List.of())))));
  }

  /** Voters and learners, with and without HTTP addresses, one with an odd id. */
  static final Membership MEMBERS = new Membership(List.of(
      new Membership.Member("n1", "127.0.0.1", 2552, "127.0.0.1:8080", true),
      new Membership.Member("n2", "::1", 65535, null, true),
      new Membership.Member("l\u00e9arner", "host.example", 1, "host.example:9", false)));

  static List<Object> messages() {
    List<LogEntry> entries = entries();
    return List.of(
        new RaftNode.AppendEntries(3, "n1", "127.0.0.1:8081", 0, 0, entries, 7, 99),
        new RaftNode.AppendEntries(3, "n1", null, 41, 2, List.of(), 40, Long.MAX_VALUE),
        new RaftNode.AppendEntries(3, "n1", null, 41, 2, List.of(), 40, 7, "127.0.0.1:2552"),
        new RaftNode.AppendReply(3, 3, "n2", "127.0.0.1:8082", true, 9, 0, 0, 0, 99),
        new RaftNode.AppendReply(4, 3, "n2", null, false, 0, 12, 5, -1, 100),
        new RaftNode.RequestVote(5, "n3", 12, 4),
        new RaftNode.RequestVote(5, "n3", 12, 4, true),
        new RaftNode.TimeoutNow(7, "n1"),
        new RaftJournal.Compacted(40, 3),
        new RaftJournal.Compacted(40, 3, MEMBERS),
        new RaftNode.VoteReply(5, "n1", true),
        new RaftNode.VoteReply(5, "n1", false),
        new RaftNode.PreVote(6, "n3", 12, 4, -7),
        new RaftNode.PreVoteReply(5, 6, "n2", false, Long.MAX_VALUE),
        new RaftJournal.EntriesAppended(1, entries),
        new RaftJournal.EntriesAppended(17, List.of()),
        new RaftJournal.TermAdvanced(9),
        new RaftJournal.VoteCast(9, "n2"),
        new RaftJournal.Bootstrapped(List.of(new Peer("n1", "127.0.0.1", 2552), new Peer("n2", "::1", 65535))));
  }

  @ParameterizedTest(name = "{index}: {0}")
  @MethodSource("messages")
  void a_raft_message_survives_the_raft_serializer(Object message) throws Exception {
    // given
    Serializer serializer = serialization.findSerializerFor(message);
    assertInstanceOf(RaftSerializer.class, serializer, "bound to the raft serializer");
    // when
    byte[] bytes = serialization.serialize(message).get();
    Object back = serialization.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, message)).get();
    // then
    RecordAssertions.assertFieldsEqual(message, back, message.getClass().getSimpleName());
  }

  @Test
  void a_cut_or_padded_message_is_refused_not_misread() {
    // given
    RaftSerializer serializer = new RaftSerializer(null);
    Object message = messages().get(0);
    byte[] bytes = serializer.toBinary(message);
    String manifest = serializer.manifest(message);
    // then: every truncation, a byte too many, a foreign version and a foreign manifest fail cleanly
    for (int cut = 0; cut < bytes.length; cut += 1 + cut / 16) {
      byte[] cutBytes = Arrays.copyOf(bytes, cut);
      assertThrows(NotSerializableException.class, () -> serializer.fromBinary(cutBytes, manifest), "cut at " + cut);
    }
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(Arrays.copyOf(bytes, bytes.length + 1), manifest));
    byte[] otherVersion = bytes.clone();
    otherVersion[0] = 99;
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(otherVersion, manifest));
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(bytes, "nope"));
  }

  @Test
  void a_damaged_string_or_length_is_refused_not_misread() {
    // given: a vote for a candidate whose id has a two-byte character, and a bare count
    RaftSerializer serializer = new RaftSerializer(null);
    byte[] vote = serializer.toBinary(new RaftJournal.VoteCast(9, "n\u00e9"));
    // the last byte is the continuation byte of \u00e9 (10xxxxxx): make it a lead byte
    byte[] badContinuation = vote.clone();
    badContinuation[badContinuation.length - 1] = (byte) 0xC3;
    // a vote whose id length is 1 padded out to five varint bytes, the last one with bit 32 set:
    // read without the check it would come back as the vote for "x"
    byte[] hugeLength = {1, 0, 0, 0, 0, 0, 0, 0, 9, (byte) 0x81, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0x10, 'x'};
    // then
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(badContinuation, "VC"));
    assertThrows(NotSerializableException.class, () -> serializer.fromBinary(hugeLength, "VC"));
  }

  @Test
  void an_event_written_with_jackson_by_an_older_node_still_reads() throws Exception {
    // given: an event as the Jackson CBOR serializer wrote it before this serializer existed
    Serializer jackson = serialization.serializerFor(LogEntry.class); // still bound to jackson-cbor
    assertInstanceOf(JacksonCborSerializer.class, jackson);
    // (Jackson cannot write an unpaired surrogate at all; the raft serializer can)
    List<LogEntry> entries = entries().stream().filter(e -> e.index() != 3).toList();
    Object event = new RaftJournal.EntriesAppended(1, entries);
    byte[] bytes = jackson.toBinary(event);
    String manifest = Serializers.manifestFor(jackson, event);
    // when: the journal replays it by the serializer id stored with it
    Object back = serialization.deserialize(bytes, jackson.identifier(), manifest).get();
    // then
    RecordAssertions.assertFieldsEqual(event, back, "EntriesAppended");
    assertEquals(entries.size(), ((RaftJournal.EntriesAppended) back).entries().size());
  }

  // ---- exact sizes (the bound that keeps every AppendEntries under the transport's frame)

  /** Keys of every kind of character: ASCII, two-byte, CJK (three bytes), emoji (a surrogate pair), NUL, unpaired surrogates. */
  static List<String> keys() {
    return List.of(
        "config/app/db",
        "caf\u00e9/\u00fc",
        "\u8a2d\u5b9a/\u30a2\u30d7\u30ea/\u30c7\u30fc\u30bf",
        "\uD83D\uDE00".repeat(256), // 256 emoji: 1,024 bytes of UTF-8, 1,536 on this wire
        "\u9375".repeat(341) + "k", // a 1,024-byte CJK key
        "nul\u0000nul",
        "\uD800lonely\uDC00\uDBFF");
  }

  static List<KvCommand> commands() {
    List<KvCommand> commands = new ArrayList<>();
    byte[] value = new byte[300];
    for (String key : keys()) {
      commands.add(KvCommand.Put.of(key, value));
      commands.add(new KvCommand.Put(key, new byte[0], 7, 0L, true));
      commands.add(new KvCommand.Put(key, new byte[200_000], 0, null, false));
      commands.add(KvCommand.Delete.of(key));
      commands.add(new KvCommand.Delete(key, true, null));
      commands.add(new KvCommand.Delete(key, false, 99L));
      List<Compare> compares = new ArrayList<>();
      for (Compare.Target target : Compare.Target.values()) {
        compares.add(new Compare(key, target, Compare.Op.LESS, 3, target == Compare.Target.VALUE ? value : null));
      }
      List<TxnOp> ops = new ArrayList<>();
      for (int i = 0; i < 130; i++) { // past one varint byte of count
        ops.add(i % 3 == 0 ? new TxnOp.Put(key, value, i) : i % 3 == 1 ? new TxnOp.Get(key) : new TxnOp.Delete(key, i % 2 == 0));
      }
      commands.add(new KvCommand.Txn(compares, ops, List.of(new TxnOp.Get(key))));
    }
    commands.add(new KvCommand.Txn(List.of(), List.of(), List.of()));
    return commands;
  }

  @Test
  void the_size_of_every_command_and_entry_is_exactly_what_the_encoder_writes() {
    RaftSerializer serializer = new RaftSerializer(null);
    for (KvCommand command : commands()) {
      // given: the command alone in a journal event (version, fromIndex, count of 1, the entry)
      LogEntry entry = new LogEntry(5, 2, new LogEntry.Command(KvCodec.encode(command)));
      int encoded = serializer.toBinary(new RaftJournal.EntriesAppended(5, List.of(entry))).length;
      // then
      String what = command.toString().substring(0, Math.min(80, command.toString().length()));
      assertEquals(encoded - 1 - 8 - 1, RaftSerializer.entryBytes(entry), what);
      assertEquals(encoded - 1 - 8 - 1, RaftSerializer.commandEntryBytes(KvCodec.commandBytes(command)), what);
    }
    LogEntry noOp = new LogEntry(1, 1, new LogEntry.NoOp(1));
    assertEquals(serializer.toBinary(new RaftJournal.EntriesAppended(1, List.of(noOp))).length - 10,
        RaftSerializer.entryBytes(noOp));
    for (Membership m : List.of(MEMBERS, Membership.EMPTY)) {
      LogEntry config = new LogEntry(1, 1, new LogEntry.Config(m));
      assertEquals(serializer.toBinary(new RaftJournal.EntriesAppended(1, List.of(config))).length - 10,
          RaftSerializer.entryBytes(config), "a configuration entry");
    }
  }

  @Test
  void the_journal_state_keeps_the_configuration_at_the_log_start_and_those_in_the_log() throws Exception {
    // given: a compacted log whose base has a learner, and a Config entry after it
    RaftLog log = new RaftLog(10, 2, MEMBERS);
    Membership next = MEMBERS.promoted("l\u00e9arner");
    log.append(new LogEntry(11, 2, new LogEntry.Config(next)));
    RaftJournal.Durable state = new RaftJournal.Durable(3, "n1", log);
    // when
    RaftSerializer serializer = new RaftSerializer(null);
    RaftJournal.Durable back = (RaftJournal.Durable) serializer.fromBinary(serializer.toBinary(state), "JS");
    // then
    assertEquals(MEMBERS, back.log.baseMembership());
    assertEquals(next, back.log.membership());
    assertEquals(11, back.log.membershipIndex());
    assertEquals(MEMBERS, back.log.membershipAt(10));
  }

  @Test
  void an_append_entries_is_never_larger_than_its_header_and_entries_say() {
    RaftSerializer serializer = new RaftSerializer(null);
    List<LogEntry> entries = new ArrayList<>();
    long sum = 0;
    long index = 1;
    for (int round = 0; round < 2; round++) { // up to 2 x 50 entries: one and two bytes of count
      for (KvCommand command : commands()) {
        LogEntry e = new LogEntry(index++, 1, new LogEntry.Command(KvCodec.encode(command)));
        entries.add(e);
        sum += RaftSerializer.entryBytes(e);
        for (String http : new String[] {null, "127.0.0.1:8081", "\u4e3b\u6a5f.example:8081"}) {
          // as it travels: in the envelope that tags it with the cluster id
          // with the leader's Raft address at its largest (a 253-character host of 3-byte characters)
          String address = "\u4e3b".repeat(253) + ":65535";
          int encoded = serializer.toBinary(new RaftNode.FromCluster(Long.MIN_VALUE, new RaftNode.AppendEntries(
              Long.MAX_VALUE, "n\u00e9", http, 1, 1, entries, 0, 1, address))).length;
          long bound = RaftSerializer.appendEntriesHeaderBytes("n\u00e9", http) + sum;
          assertTrue(encoded <= bound && encoded >= bound - 4, encoded + " bytes, bound " + bound);
        }
      }
    }
  }

  @Test
  void slices_of_a_log_of_multibyte_keys_never_make_a_message_over_max_bytes_per_append() {
    // given: a log of random commands over keys of every kind (a group commit of CJK-key txns among them)
    RaftSerializer serializer = new RaftSerializer(null);
    java.util.Random random = new java.util.Random(42);
    List<KvCommand> commands = commands();
    RaftLog log = new RaftLog();
    for (int i = 1; i <= 400; i++) {
      log.append(new LogEntry(i, 1 + i / 100, new LogEntry.Command(KvCodec.encode(commands.get(random.nextInt(commands.size()))))));
    }
    String leader = "n1";
    String http = "127.0.0.1:8081";
    for (int maxBytes : new int[] {256 * 1024, 300_000, 1536 * 1024}) {
      long budget = maxBytes - RaftSerializer.appendEntriesHeaderBytes(leader, http);
      long from = 1;
      int messages = 0;
      // when: the log is sent from the start, message after message
      while (from <= log.lastIndex()) {
        List<LogEntry> slice = log.slice(from, 1024, budget);
        int encoded = serializer.toBinary(new RaftNode.AppendEntries(9, leader, http, from - 1, 1, slice, 0, 1)).length;
        // then: each fits, and each carries as much as fits
        assertTrue(encoded <= maxBytes, "a message of " + encoded + " bytes, the bound is " + maxBytes);
        from += slice.size();
        if (from <= log.lastIndex()) {
          assertTrue(encoded + log.entryBytes(from) > maxBytes - 4, "the next entry would have fit");
        }
        messages++;
      }
      assertTrue(messages > 1, "a log of this size needs several messages");
    }
  }

  @Test
  void a_forwarded_proposal_costs_its_command_and_a_reply_path() throws Exception {
    // given: the largest kind of command, forwarded with a reply ref
    KvCommand command = new KvCommand.Put("\uD83D\uDE00".repeat(256), new byte[1024 * 1024], 0, null, false);
    akka.actor.typed.ActorRef<RaftNode.ClientReply> replyTo = testKit.<RaftNode.ClientReply>createTestProbe().ref();
    RaftNode.Propose propose = new RaftNode.Propose(KvCodec.encode(command), replyTo, 2);
    // when
    Serializer serializer = serialization.findSerializerFor(propose);
    assertInstanceOf(RaftSerializer.class, serializer, "bound to the raft serializer");
    byte[] bytes = serialization.serialize(propose).get();
    RaftNode.Propose back = (RaftNode.Propose) serialization.deserialize(bytes, serializer.identifier(),
        Serializers.manifestFor(serializer, propose)).get();
    // then
    assertTrue(bytes.length <= KvCodec.commandBytes(command) + 1024, bytes.length + " bytes");
    assertEquals(replyTo, back.replyTo());
    assertEquals(2, back.hops());
    RecordAssertions.assertFieldsEqual(command, KvCodec.decodeCommand(back.command()), "command");
  }
}
