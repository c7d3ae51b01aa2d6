package raftkv.recipes;

import akka.Done;
import akka.actor.Cancellable;
import akka.actor.ClassicActorSystemProvider;
import akka.actor.Scheduler;
import akka.japi.Pair;
import akka.stream.KillSwitches;
import akka.stream.Materializer;
import akka.stream.UniqueKillSwitch;
import akka.stream.javadsl.Keep;
import akka.stream.javadsl.Sink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import scala.concurrent.ExecutionContextExecutor;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * A consistent, always current copy of the keys under a prefix, on any {@link RaftKv}.
 *
 * <p>{@link #start()} reads the prefix linearizably (at revision R), then watches it from R + 1.
 * The {@link Snapshot} (an immutable map and the revision it is consistent at) advances one
 * revision at a time, every key a transaction changed at once, and the listeners are called after
 * each revision that changed it, in revision order. When the watch cannot go on — the history it
 * needs was compacted (the watch fails with COMPACTED, or its stream ends with {@link
 * WatchMessage.Compacted}), it failed or ended — the watcher reloads: reads again and watches again,
 * after a backoff of 100 ms doubling up to 5 s; a reload that changed the map is one more
 * snapshot for the listeners. Nothing is skipped silently.
 *
 * <pre>{@code
 * ConfigWatcher config = new ConfigWatcher(kv, system, "config/app/");
 * config.addListener(s -> reconfigure(s.values()));
 * config.start().toCompletableFuture().join();
 * byte[] db = config.snapshot().values().get("config/app/db");
 * }</pre>
 *
 * {@link #close()} cancels the watch and the timers; it starts no thread.
 */
public final class ConfigWatcher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ConfigWatcher.class);

  /**
   * The keys under the prefix (whole keys, sorted) with their values, as they were at {@code
   * revision}. Immutable: do not change the arrays.
   */
  public record Snapshot(long revision, Map<String, byte[]> values) {
    public Snapshot {
      values = Collections.unmodifiableSortedMap(new TreeMap<>(values));
    }

    static final Snapshot EMPTY = new Snapshot(0, Map.of());
  }

  private final RaftKv kv;
  private final String prefix;
  private final Materializer materializer;
  private final Scheduler scheduler;
  private final ExecutionContextExecutor executor;
  private final List<Consumer<Snapshot>> listeners = new CopyOnWriteArrayList<>();
  private final CompletableFuture<Snapshot> started = new CompletableFuture<>();

  private volatile Snapshot snapshot = Snapshot.EMPTY;
  // guarded by this
  private final Backoff backoff = Backoff.standard();
  private boolean starting;
  private boolean closed;
  private boolean loaded;
  /** Counts loads: messages of an older load's watch are ignored. */
  private long generation;
  private UniqueKillSwitch stream;
  private Cancellable timer;
  private long reloads;

  /** A watcher of the keys under {@code prefix} (empty: every key); nothing happens before {@link #start()}. */
  public ConfigWatcher(RaftKv kv, ClassicActorSystemProvider system, String prefix) {
    this.kv = Objects.requireNonNull(kv, "kv");
    this.prefix = Objects.requireNonNull(prefix, "prefix");
    this.materializer = Materializer.matFromSystem(system);
    this.scheduler = system.classicSystem().scheduler();
    this.executor = system.classicSystem().dispatcher();
  }

  public String prefix() {
    return prefix;
  }

  /**
   * Calls {@code listener} with the new snapshot after each revision that changed it (and after a
   * reload that did), one call at a time, in revision order. Keep it short: the watch waits.
   */
  public ConfigWatcher addListener(Consumer<Snapshot> listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
    return this;
  }

  /**
   * Loads the prefix and starts following it; completes with the first snapshot. A read that fails
   * with UNAVAILABLE or TIMEOUT is tried again (with backoff) until it succeeds or the watcher is
   * closed; any other failure fails the stage. Calling it again returns the same stage.
   */
  public CompletionStage<Snapshot> start() {
    synchronized (this) {
      if (starting || closed) {
        return started;
      }
      starting = true;
    }
    load();
    return started;
  }

  /** The latest snapshot: empty at revision 0 before the first load. */
  public Snapshot snapshot() {
    return snapshot;
  }

  /**
   * How many times the watcher has loaded the prefix again (read done, snapshot updated) after its
   * watch could not go on: for tests and metrics.
   */
  public synchronized long reloads() {
    return reloads;
  }

  private void load() {
    long gen;
    synchronized (this) {
      if (closed) {
        return;
      }
      gen = ++generation;
    }
    Completions.on(executor, kv.read(new KvQuery.Range(prefix, null, 0), RaftKv.Consistency.LINEARIZABLE))
        .whenComplete((result, failure) -> {
          if (failure == null && result instanceof KvResult.RangeDone range) {
            loaded(gen, range);
          } else if (failure != null && !isLoaded() && !Completions.is(failure, RaftKvException.Kind.UNAVAILABLE)
              && !Completions.is(failure, RaftKvException.Kind.TIMEOUT)) {
            synchronized (this) {
              closed = true;
            }
            started.completeExceptionally(failure);
          } else {
            log.debug("cannot read {}: {}", prefix, failure != null ? failure.toString() : result);
            reloadLater(gen);
          }
        });
  }

  private synchronized boolean isLoaded() {
    return loaded;
  }

  private void loaded(long gen, KvResult.RangeDone range) {
    Snapshot now;
    boolean changed;
    synchronized (this) {
      if (closed || gen != generation) {
        return;
      }
      TreeMap<String, byte[]> values = new TreeMap<>();
      for (KeyValue kv : range.kvs()) {
        values.put(kv.key(), kv.value());
      }
      Snapshot before = snapshot;
      now = new Snapshot(range.revision(), values);
      changed = !loaded || !sameValues(before.values(), now.values());
      if (loaded) {
        reloads++;
      }
      loaded = true;
      snapshot = now;
      if (changed) {
        notifyListeners(now);
      }
    }
    started.complete(now);
    watchFrom(gen, range.revision() + 1);
  }

  private void watchFrom(long gen, long revision) {
    Completions.on(executor, kv.watch(WatchRequest.prefix(prefix).from(revision))).whenComplete((source, failure) -> {
      if (failure != null) {
        log.info("watch of {} from revision {} failed ({}), loading it again", prefix, revision, failure.getMessage());
        reloadLater(gen);
        return;
      }
      synchronized (this) {
        if (closed || gen != generation) {
          return;
        }
        Pair<UniqueKillSwitch, CompletionStage<Done>> running = source
            .viaMat(KillSwitches.single(), Keep.right())
            .toMat(Sink.foreach(message -> onMessage(gen, message)), Keep.both())
            .run(materializer);
        stream = running.first();
        running.second().whenCompleteAsync((done, f) -> {
          synchronized (this) {
            if (closed || gen != generation) {
              return; // ended by reloadLater() or close()
            }
          }
          log.info("watch of {} ended ({}), loading it again", prefix, f == null ? "completed" : f.toString());
          reloadLater(gen);
        }, executor);
      }
    });
  }

  private void onMessage(long gen, WatchMessage message) {
    synchronized (this) {
      if (closed || gen != generation) {
        return;
      }
      if (message instanceof WatchMessage.Change change) {
        backoff.reset();
        Snapshot before = snapshot;
        if (change.revision() <= before.revision()) {
          return;
        }
        TreeMap<String, byte[]> values = new TreeMap<>(before.values());
        for (Event event : change.events().events()) {
          if (!event.kv().key().startsWith(prefix)) {
            continue;
          }
          if (event.type() == Event.Type.DELETE) {
            values.remove(event.kv().key());
          } else {
            values.put(event.kv().key(), event.kv().value());
          }
        }
        Snapshot now = new Snapshot(change.revision(), values);
        snapshot = now;
        notifyListeners(now);
      } else if (message instanceof WatchMessage.Progress progress) {
        backoff.reset();
        Snapshot before = snapshot;
        if (progress.revision() > before.revision()) {
          snapshot = new Snapshot(progress.revision(), before.values()); // nothing changed up to it
        }
      } else if (message instanceof WatchMessage.Compacted compacted) {
        log.info("watch of {} fell behind compaction (revision {}), loading it again", prefix, compacted.compactRevision());
        reloadLater(gen);
      }
    }
  }

  /** Ends load {@code gen}'s watch and loads again after a backoff delay (once per load). */
  private synchronized void reloadLater(long gen) {
    if (closed || gen != generation) {
      return;
    }
    generation++; // whatever the old watch still says is ignored
    if (stream != null) {
      stream.shutdown();
      stream = null;
    }
    timer = scheduler.scheduleOnce(backoff.next(), this::load, executor);
  }

  private void notifyListeners(Snapshot now) {
    for (Consumer<Snapshot> listener : listeners) {
      try {
        listener.accept(now);
      } catch (RuntimeException e) {
        log.warn("a listener of {} failed at revision {}", prefix, now.revision(), e);
      }
    }
  }

  private static boolean sameValues(Map<String, byte[]> a, Map<String, byte[]> b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (Map.Entry<String, byte[]> e : a.entrySet()) {
      if (!java.util.Arrays.equals(e.getValue(), b.get(e.getKey()))) {
        return false;
      }
    }
    return true;
  }

  /** Cancels the watch and any timer; the snapshot stays as it was. */
  @Override
  public void close() {
    synchronized (this) {
      closed = true;
      generation++;
      if (stream != null) {
        stream.shutdown();
        stream = null;
      }
      if (timer != null) {
        timer.cancel();
      }
    }
    started.completeExceptionally(new IllegalStateException("the watcher of " + prefix + " was closed"));
  }

  /** The keys of {@code values} under {@code prefix}, without it. */
  static SortedMap<String, byte[]> relative(String prefix, Map<String, byte[]> values) {
    TreeMap<String, byte[]> out = new TreeMap<>();
    values.forEach((k, v) -> {
      if (k.startsWith(prefix)) {
        out.put(k.substring(prefix.length()), v);
      }
    });
    return Collections.unmodifiableSortedMap(out);
  }
}
