package raftkv.node;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.raft.StateMachine;
import raftkv.raft.StateMachine.Entry;
import raftkv.raft.StateMachine.Result;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Raft sees the KV store only through bytes: commands in, replies and query answers out. */
class KvStateMachineTest {

  @TempDir
  Path tmp;

  private final List<StateMachine> opened = new ArrayList<>();

  @AfterEach
  void closeAll() {
    opened.forEach(StateMachine::close);
  }

  private KvStateMachine open(String name) {
    KvStateMachine machine = KvStateMachine.open(tmp.resolve(name));
    opened.add(machine);
    return machine;
  }

  @Test
  void commands_apply_and_queries_answer_through_bytes() {
    KvStateMachine machine = open("sm");
    List<Result> results = machine.apply(List.of(
        new Entry(1, 1, KvCodec.encode(KvCommand.Put.of("a", bytes("1")))),
        new Entry(2, 1, KvCodec.encode(KvCommand.Put.of("a", bytes("2"))))));
    assertEquals(new KvResult.PutDone(1, null), KvCodec.decodeResult(results.get(0).reply()));
    assertEquals(new KvResult.PutDone(2, 1L), KvCodec.decodeResult(results.get(1).reply()));
    assertNull(results.get(0).error());
    assertEquals(2, machine.appliedIndex());
    assertEquals(1, machine.appliedTerm());

    KvResult.GetDone get = (KvResult.GetDone) KvCodec.decodeResult(
        machine.query(KvCodec.encode(new KvQuery.Get("a"))));
    KeyValue kv = get.kv();
    assertArrayEquals(bytes("2"), kv.value());
    assertEquals(2, kv.version());
    assertEquals(2, machine.db().revision());
    assertThrows(IllegalArgumentException.class, () -> machine.query(new byte[] {1, 9}));
  }

  @Test
  void no_op_entries_advance_the_applied_index_and_reply_nothing() {
    KvStateMachine machine = open("sm");
    List<Result> results = machine.apply(List.of(new Entry(1, 3, null), new Entry(2, 3, null)));
    assertEquals(List.of(Result.ok(null), Result.ok(null)), results);
    assertEquals(2, machine.appliedIndex());
    assertEquals(3, machine.appliedTerm());
    assertEquals(0, machine.db().revision());
  }

  @Test
  void an_undecodable_command_is_refused_and_changes_nothing() {
    KvStateMachine machine = open("sm");
    List<Result> results = machine.apply(List.of(
        new Entry(1, 1, KvCodec.encode(KvCommand.Put.of("a", bytes("1")))),
        new Entry(2, 1, new byte[] {1, 1, 5, 'a'}),
        new Entry(3, 1, new byte[] {7}),
        new Entry(4, 1, KvCodec.encode(KvCommand.Put.of("b", bytes("1"))))));
    assertNull(results.get(1).reply());
    assertNotNull(results.get(1).error());
    assertTrue(results.get(1).error().contains("truncated"), results.get(1).error());
    assertNotNull(results.get(2).error());
    assertEquals(new KvResult.PutDone(2, null), KvCodec.decodeResult(results.get(3).reply()));
    assertEquals(4, machine.appliedIndex());
    assertEquals(2, machine.db().keyCount());
  }

  @Test
  void entries_that_do_not_follow_on_are_a_bug_and_apply_nothing() {
    KvStateMachine machine = open("sm");
    machine.apply(List.of(new Entry(1, 1, null)));
    assertThrows(IllegalStateException.class, () -> machine.apply(List.of(new Entry(3, 1, null))));
    assertThrows(IllegalStateException.class, () -> machine.apply(List.of(new Entry(1, 1, null))));
    assertThrows(IllegalStateException.class,
        () -> machine.apply(List.of(new Entry(2, 1, null), new Entry(4, 1, null))));
    assertEquals(1, machine.appliedIndex());
    assertEquals(List.of(), machine.apply(List.of()));
  }

  @Test
  void a_snapshot_restores_into_another_machine_and_the_state_survives_a_restart() throws IOException {
    KvStateMachine machine = open("sm");
    machine.apply(List.of(
        new Entry(1, 1, KvCodec.encode(KvCommand.Put.of("x", bytes("1")))),
        new Entry(2, 2, KvCodec.encode(KvCommand.Put.of("y", bytes("2"))))));
    assertEquals(2, machine.sync());
    assertTrue(machine.sizeBytes() > 0);
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    try (StateMachine.Snapshot snapshot = machine.snapshot()) {
      assertEquals(2, snapshot.index());
      assertEquals(2, snapshot.term());
      snapshot.writeTo(stream);
    }

    KvStateMachine other = open("other");
    other.restore(new ByteArrayInputStream(stream.toByteArray()));
    assertEquals(2, other.appliedIndex());
    assertEquals(2, other.appliedTerm());
    KvResult.RangeDone all = (KvResult.RangeDone) KvCodec.decodeResult(
        other.query(KvCodec.encode(new KvQuery.Range("", null, 0))));
    assertEquals(2, all.kvs().size());
    assertThrows(IllegalArgumentException.class, () -> other.restore(new ByteArrayInputStream(new byte[] {1, 2})));
    assertEquals(2, other.appliedIndex());

    other.close();
    opened.remove(other);
    KvStateMachine reopened = open("other");
    assertEquals(2, reopened.appliedIndex());
    assertInstanceOf(KvResult.GetDone.class,
        KvCodec.decodeResult(reopened.query(KvCodec.encode(new KvQuery.Get("y")))));
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
