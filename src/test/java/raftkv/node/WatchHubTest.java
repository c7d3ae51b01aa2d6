package raftkv.node;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import akka.stream.javadsl.SinkQueueWithCancel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;
import raftkv.raft.StateMachine.Entry;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The watch hub over a real state machine (no Raft, no HTTP): live delivery, a slow watcher served
 * from the history without loss, compaction before and during a watch, a snapshot that replaces the
 * state, filtering by key and prefix, progress, and buffers that stay bounded.
 */
class WatchHubTest {
  private static final ActorTestKit testKit = ActorTestKit.create("WatchHubTest", com.typesafe.config.ConfigFactory.parseString("akka.actor.provider = local")
      .withFallback(com.typesafe.config.ConfigFactory.load()));

  @TempDir
  Path tmp;

  private final List<KvStateMachine> opened = new ArrayList<>();
  /** Timers the test fires by hand. */
  private final List<Runnable> timers = new ArrayList<>();
  private long index;

  @AfterEach
  void closeAll() {
    opened.forEach(KvStateMachine::close);
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private record Setup(WatchHub hub, KvStateMachine machine) {}

  private Setup setup(String name, KvDb.Retention retention, int bufferRevisions) {
    KvStateMachine[] machine = new KvStateMachine[1];
    WatchHub hub = new WatchHub(new WatchHub.Settings(bufferRevisions, 1 << 20, Duration.ofSeconds(10), 7),
        // the applier's thread does both in a node: here a lock keeps reads and applies apart
        query -> CompletableFuture.supplyAsync(() -> {
          synchronized (machine[0]) {
            return machine[0].db().query(query);
          }
        }),
        (delay, task) -> {
          timers.add(task);
          return () -> timers.remove(task);
        });
    machine[0] = KvStateMachine.open(tmp.resolve(name), retention, hub, null);
    opened.add(machine[0]);
    return new Setup(hub, machine[0]);
  }

  private void apply(KvStateMachine machine, KvCommand... commands) {
    List<Entry> entries = new ArrayList<>();
    for (KvCommand c : commands) {
      entries.add(new Entry(++index, 1, 1_000, KvCodec.encode(c)));
    }
    synchronized (machine) {
      machine.apply(entries);
    }
  }

  private static KvCommand put(String key, String value) {
    return KvCommand.Put.of(key, value.getBytes(StandardCharsets.UTF_8));
  }

  private SinkQueueWithCancel<WatchMessage> watch(WatchHub hub, WatchRequest request) throws Exception {
    return hub.watch(request).toCompletableFuture().get(5, TimeUnit.SECONDS)
        .runWith(Sink.queue(), testKit.system());
  }

  private static WatchMessage pull(SinkQueueWithCancel<WatchMessage> queue) throws Exception {
    Optional<WatchMessage> m = queue.pull().toCompletableFuture().get(5, TimeUnit.SECONDS);
    assertTrue(m.isPresent(), "the stream ended early");
    return m.get();
  }

  private static long changeRevision(WatchMessage m) {
    return assertInstanceOf(WatchMessage.Change.class, m).revision();
  }

  @Test
  void history_reads_that_fail_are_retried_and_at_most_a_few_run_at_once() throws Exception {
    KvStateMachine[] machine = new KvStateMachine[1];
    java.util.concurrent.atomic.AtomicInteger failuresLeft = new java.util.concurrent.atomic.AtomicInteger(3);
    java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger mostInFlight = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicBoolean hold = new java.util.concurrent.atomic.AtomicBoolean(true);
    WatchHub hub = new WatchHub(new WatchHub.Settings(4, 1 << 20, Duration.ofSeconds(10), 7),
        query -> {
          mostInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
          CompletableFuture<KvResult> answer = new CompletableFuture<>();
          if (failuresLeft.getAndDecrement() > 0) { // an overloaded node: "could not answer in time"
            inFlight.decrementAndGet();
            answer.completeExceptionally(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "too slow"));
            return answer;
          }
          Runnable serve = () -> {
            KvResult r;
            synchronized (machine[0]) {
              r = machine[0].db().query(query);
            }
            inFlight.decrementAndGet(); // before the hub hears of it and starts the next read
            answer.complete(r);
          };
          if (hold.get()) { // answered when the test lets them go
            heldServes.add(serve);
          } else {
            serve.run();
          }
          return answer;
        },
        (delay, task) -> {
          timers.add(task);
          return () -> timers.remove(task);
        });
    machine[0] = KvStateMachine.open(tmp.resolve("sm"), KvDb.Retention.DEFAULT, hub, null);
    opened.add(machine[0]);
    for (int i = 0; i < 20; i++) {
      apply(machine[0], put("k/" + i, "v" + i));
    }
    List<SinkQueueWithCancel<WatchMessage>> queues = new ArrayList<>();
    List<CompletableFuture<Optional<WatchMessage>>> firsts = new ArrayList<>();
    for (int w = 0; w < 10; w++) { // ten watchers from revision 1: all read the history
      SinkQueueWithCancel<WatchMessage> q = watch(hub, WatchRequest.prefix("k/").from(1));
      queues.add(q);
      firsts.add(q.pull().toCompletableFuture());
    }
    // three reads failed: their watchers wait for a timer, none failed
    await(() -> timers.size() == 3);
    assertTrue(firsts.stream().noneMatch(CompletableFuture::isCompletedExceptionally));
    assertTrue(mostInFlight.get() <= WatchHub.MAX_HISTORY_READS, "reads at once: " + mostInFlight.get());
    List<Runnable> due = new ArrayList<>(timers);
    timers.clear();
    due.forEach(Runnable::run);
    hold.set(false);
    for (int round = 0; round < 20 && !heldServes.isEmpty(); round++) {
      List<Runnable> serves = new ArrayList<>(heldServes);
      heldServes.clear();
      serves.forEach(Runnable::run);
    }
    for (int w = 0; w < 10; w++) {
      assertEquals(1, changeRevision(firsts.get(w).get(5, TimeUnit.SECONDS).orElseThrow()));
      for (long rev = 2; rev <= 20; rev++) {
        assertEquals(rev, changeRevision(pull(queues.get(w))), "watcher " + w);
      }
    }
    assertTrue(mostInFlight.get() <= WatchHub.MAX_HISTORY_READS, "reads at once: " + mostInFlight.get());
  }

  private final List<Runnable> heldServes = new java.util.concurrent.CopyOnWriteArrayList<>();

  private static void await(java.util.function.BooleanSupplier condition) {
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(5)).until(condition::getAsBoolean);
  }

  @Test
  void a_watcher_that_takes_nothing_for_a_while_still_gets_every_revision_in_order_from_the_history() throws Exception {
    Setup s = setup("sm", KvDb.Retention.DEFAULT, 4);
    SinkQueueWithCancel<WatchMessage> queue = watch(s.hub(), WatchRequest.prefix("k/"));
    for (int i = 1; i <= 40; i++) {
      apply(s.machine(), put("k/" + (i % 3), "v" + i), put("other", "x" + i));
    }
    // the stream's own buffer takes a few; the hub's buffer holds at most 4: the rest come from the history
    for (long want = 1; want <= 79; want += 2) {
      WatchMessage m = pull(queue);
      assertEquals(want, changeRevision(m));
      Event e = ((WatchMessage.Change) m).events().events().get(0);
      assertEquals("v" + (want + 1) / 2, new String(e.kv().value(), StandardCharsets.UTF_8));
      assertNull(e.prevKv(), "no prevKv unless asked for");
    }
    // caught up: live again, the next change arrives as it is made
    CompletableFuture<Optional<WatchMessage>> next = queue.pull().toCompletableFuture();
    apply(s.machine(), put("k/9", "late"));
    assertEquals(81, changeRevision(next.get(5, TimeUnit.SECONDS).orElseThrow()));
    queue.cancel();
  }

  @Test
  void a_watch_from_a_compacted_revision_fails_and_one_that_falls_behind_compaction_ends_with_compacted() throws Exception {
    Setup s = setup("sm", new KvDb.Retention(10, 0), 4);
    for (int i = 1; i <= 5; i++) {
      apply(s.machine(), put("k", "v" + i));
    }
    SinkQueueWithCancel<WatchMessage> queue = watch(s.hub(), WatchRequest.key("k").from(2));
    assertEquals(2, changeRevision(pull(queue)));
    for (int i = 6; i <= 40; i++) {
      apply(s.machine(), put("k", "v" + i));
    }
    assertEquals(30, s.machine().db().compactRevision());
    // what was already handed to the stream arrives; then the history no longer has the rest
    WatchMessage m = pull(queue);
    long last = 2;
    while (m instanceof WatchMessage.Change c) {
      assertEquals(last + 1, c.revision());
      last = c.revision();
      m = pull(queue);
    }
    // the watcher fell behind when compaction had passed the revision it needed next
    WatchMessage.Compacted compacted = assertInstanceOf(WatchMessage.Compacted.class, m);
    assertTrue(compacted.compactRevision() > last && compacted.compactRevision() <= 30, compacted.toString());
    assertEquals(Optional.empty(), queue.pull().toCompletableFuture().get(5, TimeUnit.SECONDS));

    ExecutionException failed = assertThrows(ExecutionException.class,
        () -> s.hub().watch(WatchRequest.key("k").from(30)).toCompletableFuture().get(5, TimeUnit.SECONDS));
    RaftKvException e = assertInstanceOf(RaftKvException.class, failed.getCause());
    assertEquals(RaftKvException.Kind.COMPACTED, e.kind());
    assertEquals(30, e.compactRevision());
    SinkQueueWithCancel<WatchMessage> fromKept = watch(s.hub(), WatchRequest.key("k").from(31));
    assertEquals(31, changeRevision(pull(fromKept)));
    fromKept.cancel();
  }

  @Test
  void a_snapshot_that_replaces_the_state_ends_live_watches_with_compacted_and_new_ones_start_after_it() throws Exception {
    Setup ahead = setup("ahead", KvDb.Retention.DEFAULT, 16);
    for (int i = 1; i <= 10; i++) {
      apply(ahead.machine(), put("k", "v" + i));
    }
    ByteArrayOutputStream snapshot = new ByteArrayOutputStream();
    try (var view = ahead.machine().snapshot()) {
      view.writeTo(snapshot);
    }
    long saved = index;
    index = 0;
    Setup behind = setup("behind", KvDb.Retention.DEFAULT, 16);
    apply(behind.machine(), put("k", "v1"), put("k", "v2"));
    SinkQueueWithCancel<WatchMessage> queue = watch(behind.hub(), WatchRequest.key("k"));
    behind.machine().restore(new ByteArrayInputStream(snapshot.toByteArray()));
    index = saved;
    assertEquals(new WatchMessage.Compacted(10), pull(queue));
    SinkQueueWithCancel<WatchMessage> after = watch(behind.hub(), WatchRequest.key("k"));
    apply(behind.machine(), put("k", "v11"));
    assertEquals(11, changeRevision(pull(after)));
    after.cancel();
  }

  @Test
  void watchers_get_only_their_keys_and_a_transaction_arrives_as_one_message_with_prev_kv_when_asked() throws Exception {
    Setup s = setup("sm", KvDb.Retention.DEFAULT, 16);
    apply(s.machine(), put("a", "0"));
    SinkQueueWithCancel<WatchMessage> exact = watch(s.hub(), WatchRequest.key("a").withPrevKv());
    SinkQueueWithCancel<WatchMessage> prefix = watch(s.hub(), WatchRequest.prefix("b/"));
    SinkQueueWithCancel<WatchMessage> all = watch(s.hub(), WatchRequest.prefix(""));
    apply(s.machine(), new KvCommand.Txn(List.of(), List.of(
        new TxnOp.Put("a", "1".getBytes(StandardCharsets.UTF_8), 0),
        new TxnOp.Put("b/1", "2".getBytes(StandardCharsets.UTF_8), 0),
        new TxnOp.Put("b/2", "3".getBytes(StandardCharsets.UTF_8), 0),
        new TxnOp.Put("c", "4".getBytes(StandardCharsets.UTF_8), 0)), List.of()));
    apply(s.machine(), put("c", "5"), KvCommand.Delete.of("a"));
    WatchMessage.Change a = (WatchMessage.Change) pull(exact);
    assertEquals(2, a.revision());
    assertEquals(List.of("a"), a.events().events().stream().map(e -> e.kv().key()).toList());
    assertEquals("0", new String(a.events().events().get(0).prevKv().value(), StandardCharsets.UTF_8));
    WatchMessage.Change aDeleted = (WatchMessage.Change) pull(exact);
    assertEquals(4, aDeleted.revision());
    assertEquals(Event.Type.DELETE, aDeleted.events().events().get(0).type());
    WatchMessage.Change b = (WatchMessage.Change) pull(prefix);
    assertEquals(List.of("b/1", "b/2"), b.events().events().stream().map(e -> e.kv().key()).toList());
    WatchMessage.Change txn = (WatchMessage.Change) pull(all);
    assertEquals(4, txn.events().events().size());
    assertEquals(3, changeRevision(pull(all)));
    assertEquals(4, changeRevision(pull(all)));
    exact.cancel();
    prefix.cancel();
    all.cancel();
  }

  @Test
  void an_idle_caught_up_watcher_gets_progress_with_the_revision_it_is_caught_up_to() throws Exception {
    Setup s = setup("sm", KvDb.Retention.DEFAULT, 16);
    SinkQueueWithCancel<WatchMessage> queue = watch(s.hub(), WatchRequest.key("quiet"));
    CompletableFuture<Optional<WatchMessage>> next = queue.pull().toCompletableFuture();
    apply(s.machine(), put("noisy", "1"), put("noisy", "2"));
    awaitTimer();
    new ArrayList<>(timers).forEach(Runnable::run);
    assertEquals(new WatchMessage.Progress(2), next.get(5, TimeUnit.SECONDS).orElseThrow());
    queue.cancel();
  }

  @Test
  void a_closed_watch_leaves_nothing_behind() throws Exception {
    Setup s = setup("sm", KvDb.Retention.DEFAULT, 16);
    SinkQueueWithCancel<WatchMessage> queue = watch(s.hub(), WatchRequest.key("k"));
    apply(s.machine(), put("k", "1"));
    assertEquals(1, changeRevision(pull(queue)));
    assertEquals(1, s.hub().watchers());
    queue.cancel();
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> s.hub().watchers() == 0);
    apply(s.machine(), put("k", "2")); // nothing to deliver it to
    assertFalse(s.hub().watchers() > 0);
  }

  @Test
  void a_watch_before_the_state_machine_opened_is_unavailable() {
    WatchHub hub = new WatchHub(new WatchHub.Settings(4, 1024, Duration.ofSeconds(1), 10),
        q -> CompletableFuture.completedFuture(new KvResult.HistoryDone(0, 0, 0, List.of())), (d, t) -> () -> {});
    CompletionException e = assertThrows(CompletionException.class, () -> hub.watch(WatchRequest.key("k")).toCompletableFuture().join());
    assertEquals(RaftKvException.Kind.UNAVAILABLE, ((RaftKvException) e.getCause()).kind());
    assertNotNull(e.getCause().getMessage());
  }

  private void awaitTimer() {
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> !timers.isEmpty());
  }
}
