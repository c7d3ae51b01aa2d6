package raftkv.cluster;

import akka.actor.typed.ActorSystem;
import akka.stream.javadsl.Sink;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.RevisionEvents;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.function.IntPredicate;

/**
 * A watcher of every key from revision 1 that records what it receives, as a client would: when its
 * stream ends (its node stopped, or it fell behind compaction) it resumes after the last revision
 * it has, on its own node when that is up, else on the next one (a client's Last-Event-ID).
 * {@link #check} then says whether what it received is the committed history: every revision from
 * 1 to the end, once, in order, with the events every other watcher saw, replaying to the final
 * state.
 */
final class WatchRecorder {
  private static final int MAX_RESUMES = 200;

  private final ActorSystem<?> materializer;
  private final IntFunction<RaftKv> nodes;
  private final IntPredicate isUp;
  private final int count;
  private final List<RevisionEvents> received = new ArrayList<>();
  private final List<String> log = new ArrayList<>();
  private int node;
  private int resumes;
  private boolean stopped;

  WatchRecorder(ActorSystem<?> materializer, IntFunction<RaftKv> nodes, IntPredicate isUp, int count, int firstNode) {
    this.materializer = materializer;
    this.nodes = nodes;
    this.isUp = isUp;
    this.count = count;
    this.node = firstNode;
    start(1);
  }

  synchronized long lastRevision() {
    return received.isEmpty() ? 0 : received.get(received.size() - 1).revision();
  }

  synchronized List<RevisionEvents> received() {
    return List.copyOf(received);
  }

  synchronized int resumes() {
    return resumes;
  }

  synchronized void stop() {
    stopped = true;
  }

  private void start(long from) {
    int at;
    synchronized (this) {
      if (stopped) {
        return;
      }
      at = node;
    }
    CompletableFuture<Void> done = new CompletableFuture<>();
    try {
      nodes.apply(at).watch(new WatchRequest("", true, from, false))
          .thenCompose(source -> source.runWith(Sink.foreach(this::take), materializer))
          .whenComplete((ok, failure) -> ended(at, failure));
    } catch (RuntimeException e) {
      ended(at, e);
    }
  }

  private void take(WatchMessage m) {
    synchronized (this) {
      if (m instanceof WatchMessage.Change c) {
        received.add(c.events());
      } else if (m instanceof WatchMessage.Compacted c) {
        log.add("node " + node + " compacted at " + c.compactRevision() + " after " + lastRevision());
        node = (node + 1) % count; // its history is gone: another node has it
      }
    }
  }

  private void ended(int at, Throwable failure) {
    long from;
    synchronized (this) {
      if (stopped || ++resumes > MAX_RESUMES) {
        return;
      }
      Throwable cause = failure instanceof java.util.concurrent.CompletionException && failure.getCause() != null
          ? failure.getCause() : failure;
      if (cause != null) {
        log.add("node " + at + ": " + cause);
        if (cause instanceof RaftKvException e && e.kind() == RaftKvException.Kind.COMPACTED) {
          node = (at + 1) % count;
        }
      }
      if (!isUp.test(node)) {
        for (int k = 1; k <= count; k++) {
          if (isUp.test((node + k) % count)) {
            node = (node + k) % count;
            break;
          }
        }
      }
      from = lastRevision() + 1;
    }
    // resume shortly: a restarting node may not serve yet
    CompletableFuture.runAsync(() -> start(from), CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS));
  }

  /**
   * What is wrong with what this watcher received, against the final state {@code finalKvs} at
   * {@code finalRevision} and another watcher's record {@code reference} (may be null); null
   * when nothing is.
   */
  static String check(List<RevisionEvents> got, long finalRevision, List<KeyValue> finalKvs,
                      List<RevisionEvents> reference) {
    TreeMap<String, String> replay = new TreeMap<>();
    for (int i = 0; i < got.size(); i++) {
      RevisionEvents re = got.get(i);
      if (re.revision() != i + 1) {
        return "revision " + re.revision() + " arrived where " + (i + 1) + " belongs"
            + (re.revision() <= i ? " (a duplicate or out of order)" : " (a gap)");
      }
      if (reference != null && i < reference.size() && !describe(reference.get(i)).equals(describe(re))) {
        return "revision " + re.revision() + " is " + describe(re) + " here but " + describe(reference.get(i)) + " elsewhere";
      }
      for (Event e : re.events()) {
        if (e.type() == Event.Type.PUT) {
          replay.put(e.kv().key(), new String(e.kv().value(), StandardCharsets.UTF_8));
        } else {
          replay.remove(e.kv().key());
        }
      }
    }
    if (got.size() != finalRevision) {
      return "received " + got.size() + " revisions, the store is at " + finalRevision;
    }
    TreeMap<String, String> expected = new TreeMap<>();
    for (KeyValue kv : finalKvs) {
      expected.put(kv.key(), new String(kv.value(), StandardCharsets.UTF_8));
    }
    if (!expected.equals(replay)) {
      for (Map.Entry<String, String> e : expected.entrySet()) {
        if (!e.getValue().equals(replay.get(e.getKey()))) {
          return "replaying the events gives " + e.getKey() + "=" + replay.get(e.getKey()) + ", the store has " + e.getValue();
        }
      }
      return "replaying the events gives keys the store does not have: " + replay.keySet().stream()
          .filter(k -> !expected.containsKey(k)).limit(5).toList();
    }
    return null;
  }

  private static String describe(RevisionEvents re) {
    StringBuilder s = new StringBuilder();
    for (Event e : re.events()) {
      s.append(e.type()).append(' ').append(e.kv().key()).append('@').append(e.kv().modRevision());
      if (e.kv().value() != null) {
        s.append('=').append(new String(e.kv().value(), StandardCharsets.UTF_8));
      }
      s.append(';');
    }
    return s.toString();
  }

  synchronized String log() {
    return String.join("\n", log);
  }
}
