package raftkv.recipes;

import akka.Done;
import akka.actor.Cancellable;
import akka.actor.ClassicActorSystemProvider;
import akka.japi.Pair;
import akka.stream.KillSwitches;
import akka.stream.Materializer;
import akka.stream.UniqueKillSwitch;
import akka.stream.javadsl.Keep;
import akka.stream.javadsl.Sink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import scala.concurrent.ExecutionContextExecutor;

import java.time.Duration;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/**
 * Watches one key that a recipe holds (a lock's or a candidate's waiter key, made at {@code
 * createRevision}) and reports, once, when it is gone: deleted, or made anew (another create
 * revision). A put that keeps the create revision (a proclaim) is no loss. When the watch cannot
 * tell (compacted, failed, ended), it reads the key linearizably and watches again from there, with
 * bounded backoff; the stream is cancelled by {@link #stop()}.
 */
final class KeyGuard {
  private static final Logger log = LoggerFactory.getLogger(KeyGuard.class);

  private final RaftKv kv;
  private final Materializer materializer;
  private final akka.actor.Scheduler scheduler;
  private final ExecutionContextExecutor executor;
  private final String key;
  private final long createRevision;
  private final Consumer<String> onGone;

  // guarded by this
  private final Backoff backoff = Backoff.standard();
  private boolean stopped;
  private UniqueKillSwitch stream;
  private Cancellable timer;

  private KeyGuard(RaftKv kv, ClassicActorSystemProvider system, String key, long createRevision, Consumer<String> onGone) {
    this.kv = kv;
    this.materializer = Materializer.matFromSystem(system);
    this.scheduler = system.classicSystem().scheduler();
    this.executor = system.classicSystem().dispatcher();
    this.key = key;
    this.createRevision = createRevision;
    this.onGone = onGone;
  }

  /** Starts guarding {@code key}, made at {@code createRevision}; {@code onGone} is told why, once. */
  static KeyGuard start(RaftKv kv, ClassicActorSystemProvider system, String key, long createRevision,
                        Consumer<String> onGone) {
    KeyGuard guard = new KeyGuard(kv, system, key, createRevision, onGone);
    guard.watchFrom(createRevision + 1);
    return guard;
  }

  private void watchFrom(long revision) {
    Completions.on(executor, kv.watch(WatchRequest.key(key).from(revision))).whenComplete((source, failure) -> {
      if (failure != null) {
        log.debug("watch of {} from {} failed: {}", key, revision, failure.toString());
        retry();
        return;
      }
      synchronized (this) {
        if (stopped) {
          return;
        }
        Pair<UniqueKillSwitch, CompletionStage<Done>> running = source
            .viaMat(KillSwitches.single(), Keep.right())
            .toMat(Sink.foreach(this::onMessage), Keep.both())
            .run(materializer);
        UniqueKillSwitch mine = running.first();
        stream = mine;
        running.second().whenCompleteAsync((done, f) -> {
          synchronized (this) {
            if (stream == mine) { // ended by itself (not by retry() or stop()): look again
              stream = null;
              retry();
            }
          }
        }, executor);
      }
    });
  }

  private void onMessage(WatchMessage message) {
    if (message instanceof WatchMessage.Change change) {
      synchronized (this) {
        backoff.reset();
      }
      for (Event event : change.events().events()) {
        if (!event.kv().key().equals(key)) {
          continue;
        }
        if (event.type() == Event.Type.DELETE) {
          gone("key " + key + " was deleted at revision " + change.revision());
        } else if (event.kv().createRevision() != createRevision) {
          gone("key " + key + " was made anew at revision " + event.kv().createRevision());
        }
      }
    } else if (message instanceof WatchMessage.Compacted) {
      retry(); // the stream ends after it; retry() looks at the key itself
    }
  }

  /** Looks at the key after a backoff delay (the watch could not tell): gone, or watch again from the read. */
  private synchronized void retry() {
    if (stopped) {
      return;
    }
    if (stream != null) {
      stream.shutdown();
      stream = null;
    }
    if (timer != null) {
      timer.cancel();
    }
    timer = scheduler.scheduleOnce(backoff.next(), this::check, executor);
  }

  private void check() {
    synchronized (this) {
      if (stopped) {
        return;
      }
    }
    Completions.on(executor, kv.read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE)).whenComplete((result, failure) -> {
      if (failure != null || !(result instanceof KvResult.GetDone got)) {
        log.debug("cannot read {}: {}", key, failure != null ? failure.toString() : result);
        retry();
        return;
      }
      KeyValue now = got.kv();
      if (now == null) {
        gone("key " + key + " is gone (read at revision " + got.revision() + ")");
      } else if (now.createRevision() != createRevision) {
        gone("key " + key + " was made anew at revision " + now.createRevision());
      } else {
        watchFrom(got.revision() + 1);
      }
    });
  }

  private void gone(String reason) {
    synchronized (this) {
      if (stopped) {
        return;
      }
      stop();
    }
    onGone.accept(reason);
  }

  /** Cancels the watch and any timer; nothing is reported after this. */
  synchronized void stop() {
    stopped = true;
    if (stream != null) {
      stream.shutdown();
      stream = null;
    }
    if (timer != null) {
      timer.cancel();
    }
  }
}
