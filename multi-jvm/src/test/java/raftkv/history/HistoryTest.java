package raftkv.history;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/** The recorder the client threads share. */
class HistoryTest {

  @Test
  void recordsInvocationsAndCompletionsWithTheClockTimes() {
    // given a history on a clock that ticks 10 ns per reading
    AtomicLong clock = new AtomicLong(1000);
    History history = new History(() -> clock.getAndAdd(10));

    // when a client reads, writes and times out
    History.Invocation write = history.invokeWrite(1, "x", "a");
    history.complete(write, Outcome.OK);
    History.Invocation read = history.invokeRead(1, "x");
    history.complete(read, Outcome.OK, "a");
    History.Invocation cas = history.invokeCas(2, "y", "a", "b");
    history.complete(cas, Outcome.UNKNOWN, "ignored");
    history.nemesis("kill n2");

    // then
    List<Op> ops = history.ops();
    assertEquals(1000, history.startNanos());
    assertEquals(new Op(0, 1, "x", Kind.WRITE, "a", null, Outcome.OK, null, 1010, 1020),
        ops.get(0));
    assertEquals("a", ops.get(1).output());
    assertEquals(null, ops.get(2).output());
    assertEquals(Op.NEVER, ops.get(2).effectDeadlineNanos());
    assertEquals(List.of(ops.get(2)), history.ops("y"));
    assertEquals(Set.of("x", "y"), history.keys());
    assertEquals("kill n2", history.nemesisEvents().get(0).description());
    assertTrue(history.describe().contains("nemesis: kill n2"), history.describe());
  }

  @Test
  void completingTwiceIsRefused() {
    History history = new History();
    History.Invocation write = history.invokeWrite(1, "x", "a");
    history.complete(write, Outcome.OK);

    assertThrows(IllegalStateException.class, () -> history.complete(write, Outcome.FAIL));
  }

  @Test
  void manyClientThreadsRecordEveryOperationOnce() throws InterruptedException {
    // given 16 threads, each recording 500 writes
    History history = new History();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 16; t++) {
      int process = t;
      threads.add(new Thread(() -> {
        for (int i = 0; i < 500; i++) {
          History.Invocation call = history.invokeWrite(process, "k" + (i % 3), process + "-" + i);
          history.complete(call, Outcome.OK);
        }
      }));
    }

    // when
    threads.forEach(Thread::start);
    for (Thread thread : threads) {
      thread.join();
    }

    // then every op is there once, completed, with a distinct index
    List<Op> ops = history.ops();
    assertEquals(8000, ops.size());
    Set<String> values = new HashSet<>();
    for (int i = 0; i < ops.size(); i++) {
      assertEquals(i, ops.get(i).index());
      assertEquals(Outcome.OK, ops.get(i).outcome());
      values.add(ops.get(i).value());
    }
    assertEquals(8000, values.size());
  }
}
