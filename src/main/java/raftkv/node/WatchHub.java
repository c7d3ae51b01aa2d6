package raftkv.node;

import akka.NotUsed;
import akka.stream.javadsl.Source;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Event;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.RevisionEvents;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Fans the state machine's changes out to the watchers of one node (DESIGN.md §6, API.md §4).
 *
 * <p>A watcher is <em>live</em> when it has been handed every revision up to the newest one
 * published: then the applier's thread, as it commits, puts the revisions that touch its keys into
 * the watcher's buffer (bounded in revisions and bytes). A watcher whose buffer is full, one that
 * starts from a past revision, and every watcher after a snapshot replaced the state are
 * <em>behind</em>: each reads the history ({@link KvQuery.History}, a local read on the applier) from
 * the first revision it lacks, a chunk at a time and only as fast as its consumer takes messages,
 * and turns live again once a read reaches the newest revision published. So a slow watcher is
 * neither dropped nor buffered without bound, and nothing is skipped: a revision the history no
 * longer holds ends the watch with {@link WatchMessage.Compacted}.
 *
 * <p>Threading: the {@link KvStateMachine.Changes} calls come from the applier's thread; {@link
 * #watch} and the streams' pulls from any thread. One lock guards it all; futures are completed
 * outside it.
 */
public final class WatchHub implements KvStateMachine.Changes {

  /** The settings of {@code raftkv.watch} (reference.conf). */
  public record Settings(int bufferRevisions, long bufferBytes, Duration progressInterval, int historyReadRevisions) {
    public static Settings fromConfig(com.typesafe.config.Config config) {
      com.typesafe.config.Config c = config.getConfig("raftkv.watch");
      Settings s = new Settings(c.getInt("buffer-revisions"), c.getMemorySize("buffer-bytes").toBytes(),
          c.getDuration("progress-interval"), c.getInt("history-read-revisions"));
      if (s.bufferRevisions < 1 || s.bufferBytes < 1 || s.progressInterval.isNegative() || s.progressInterval.isZero()
          || s.historyReadRevisions < 1) {
        throw new IllegalArgumentException("raftkv.watch: buffer-revisions, buffer-bytes, progress-interval and "
            + "history-read-revisions must be positive, not " + s);
      }
      return s;
    }
  }

  /** Reads the local history (the node's serializable read). */
  public interface History {
    CompletionStage<KvResult> read(KvQuery.History query);
  }

  /** Runs {@code task} after {@code delay}; the Runnable returned cancels it. */
  public interface Timers {
    Runnable schedule(Duration delay, Runnable task);
  }

  private final Settings settings;
  private final History history;
  private final Timers timers;

  /** The newest revision published to watchers (-1 before the state machine opened): live watchers have all up to it. */
  private long head = -1;
  private long compactRevision;
  private final HashMap<String, ArrayList<Watcher>> liveByKey = new HashMap<>();
  private final ArrayList<Watcher> livePrefixes = new ArrayList<>();
  private int watchers;
  /** Every open watch, live or not. */
  private final java.util.Set<Watcher> open = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
  private boolean stopped;

  public WatchHub(Settings settings, History history, Timers timers) {
    this.settings = settings;
    this.history = history;
    this.timers = timers;
  }

  /** How many watches are open on this node. */
  public synchronized int watchers() {
    return watchers;
  }

  /** The newest revision published to watchers, -1 before the state machine opened. */
  public synchronized long head() {
    return head;
  }

  // ---- the applier's side -----------------------------------------------------------------------

  @Override
  public void opened(long revision, long compact) {
    List<Runnable> after = new ArrayList<>();
    synchronized (this) {
      compactRevision = compact;
      if (head < 0) {
        head = revision;
      } else {
        // a new applier after a failure: what it applies again up to head was delivered already;
        // live watchers read the history from what they lack
        demoteAll(after);
        head = Math.max(head, revision);
      }
    }
    after.forEach(Runnable::run);
  }

  @Override
  public void restored(long revision, long compact) {
    List<Runnable> after = new ArrayList<>();
    synchronized (this) {
      compactRevision = compact;
      demoteAll(after); // the history before the snapshot is gone: each finds out what it lost
      head = Math.max(head, revision);
    }
    after.forEach(Runnable::run);
  }

  @Override
  public void committed(List<RevisionEvents> events, long revision, long compact) {
    List<Runnable> after = new ArrayList<>();
    synchronized (this) {
      compactRevision = compact;
      for (RevisionEvents re : events) {
        if (re.revision() <= head) {
          continue; // applied again after an applier restart: live watchers have it
        }
        publish(re, after);
        head = re.revision();
      }
      head = Math.max(head, revision);
    }
    after.forEach(Runnable::run);
  }

  /**
   * The messages of one revision that every watcher it matched whole receives: made once and
   * shared, with and without the previous values, so that a thousand watchers of one prefix cost
   * one message (and one encoding, HttpApi caches it by identity), not a thousand.
   */
  private static final class Shared {
    final RevisionEvents re;
    WatchMessage.Change withPrevKv;
    WatchMessage.Change withoutPrevKv;

    Shared(RevisionEvents re) {
      this.re = re;
    }

    WatchMessage.Change change(boolean prevKv) {
      if (prevKv) {
        if (withPrevKv == null) {
          withPrevKv = new WatchMessage.Change(re);
        }
        return withPrevKv;
      }
      if (withoutPrevKv == null) {
        withoutPrevKv = new WatchMessage.Change(withoutPrevKv(re));
      }
      return withoutPrevKv;
    }
  }

  private void publish(RevisionEvents re, List<Runnable> after) {
    List<Event> events = re.events();
    Shared shared = new Shared(re);
    if (events.size() == 1) { // the common case: one put or delete
      Event e = events.get(0);
      ArrayList<Watcher> exact = liveByKey.get(e.kv().key());
      if (exact != null) {
        for (Watcher w : new ArrayList<>(exact)) {
          w.offer(shared, after);
        }
      }
      for (Watcher w : new ArrayList<>(livePrefixes)) {
        if (e.kv().key().startsWith(w.request.key())) {
          w.offer(shared, after);
        }
      }
      return;
    }
    IdentityHashMap<Watcher, List<Event>> matched = new IdentityHashMap<>();
    List<Watcher> order = new ArrayList<>();
    for (Event e : events) {
      ArrayList<Watcher> exact = liveByKey.get(e.kv().key());
      if (exact != null) {
        for (Watcher w : exact) {
          add(matched, order, w, e);
        }
      }
      for (Watcher w : livePrefixes) {
        if (e.kv().key().startsWith(w.request.key())) {
          add(matched, order, w, e);
        }
      }
    }
    for (Watcher w : order) {
      List<Event> mine = matched.get(w);
      w.offer(mine.size() == events.size() ? shared : new Shared(new RevisionEvents(re.revision(), mine)), after);
    }
  }

  private static void add(Map<Watcher, List<Event>> matched, List<Watcher> order, Watcher w, Event e) {
    List<Event> list = matched.get(w);
    if (list == null) {
      list = new ArrayList<>();
      matched.put(w, list);
      order.add(w);
    }
    list.add(e);
  }

  private void demoteAll(List<Runnable> after) {
    List<Watcher> live = new ArrayList<>(livePrefixes);
    liveByKey.values().forEach(live::addAll);
    for (Watcher w : live) {
      w.demote(head + 1);
      w.wake(after);
    }
  }

  /**
   * The node stopped: every open watch fails (its stream ends with an error), so that a client
   * moves to another node instead of waiting for changes that will not come.
   */
  public void shutdown() {
    List<Watcher> all = new ArrayList<>();
    synchronized (this) {
      stopped = true;
      all.addAll(open);
    }
    for (Watcher w : all) {
      w.fail(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "the node stopped; resume the watch on another node"));
    }
  }

  // ---- the watchers' side -----------------------------------------------------------------------

  /**
   * Opens a watch: fails with COMPACTED when {@code request.fromRevision()} is no longer in the
   * history, UNAVAILABLE before the state machine has opened.
   */
  public CompletionStage<Source<WatchMessage, NotUsed>> watch(WatchRequest request) {
    Watcher w;
    synchronized (this) {
      if (stopped) {
        return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.UNAVAILABLE,
            "the node stopped"));
      }
      if (head < 0) {
        return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.UNAVAILABLE,
            "the node is starting: its state machine is not open yet"));
      }
      long from = request.fromRevision() > 0 ? request.fromRevision() : head + 1;
      if (from <= compactRevision) {
        return CompletableFuture.failedFuture(RaftKvException.compacted(compactRevision, from));
      }
      w = new Watcher(request, from);
      watchers++;
      open.add(w);
      if (from > head) {
        w.goLive(); // from a future revision: the live stream reaches it
      }
    }
    Watcher watcher = w;
    return CompletableFuture.completedFuture(Source.unfoldResourceAsync(
        () -> CompletableFuture.completedFuture(watcher),
        Watcher::next,
        x -> {
          x.close();
          return CompletableFuture.completedFuture(akka.Done.getInstance());
        }));
  }

  /** History reads in flight, at most {@link #MAX_HISTORY_READS}; the rest wait their turn in {@link #readQueue}. */
  private int readsInFlight;
  private final java.util.ArrayDeque<Runnable> readQueue = new java.util.ArrayDeque<>();

  /**
   * At most this many watchers read the history at once: hundreds that fell behind together would
   * otherwise queue hundreds of reads on the applier, each answered too late, all failing together.
   */
  static final int MAX_HISTORY_READS = 4;
  /** How long a watcher waits before it reads the history again after the node could not answer. */
  static final Duration HISTORY_RETRY = Duration.ofMillis(500);

  /**
   * Reads the history for {@code w}, queued behind the reads in flight (at most
   * {@link #MAX_HISTORY_READS}); when the node cannot answer (overloaded, or no state machine for a
   * moment), reads again after {@link #HISTORY_RETRY} for as long as the watch is open: a watcher
   * that is behind is slow, never dropped. Fails only once the watch is closed or the hub stopped.
   */
  private CompletableFuture<KvResult> readHistory(Watcher w, KvQuery.History query) {
    CompletableFuture<KvResult> result = new CompletableFuture<>();
    Runnable[] attempt = new Runnable[1];
    attempt[0] = () -> {
      CompletionStage<KvResult> read;
      try {
        read = history.read(query);
      } catch (RuntimeException e) {
        read = CompletableFuture.failedFuture(e);
      }
      read.whenComplete((r, e) -> {
        Runnable next;
        boolean retry = false;
        synchronized (WatchHub.this) {
          readsInFlight--;
          next = readQueue.poll();
          if (next != null) {
            readsInFlight++;
          }
          if (e != null) {
            retry = !stopped && !w.closed && w.failure == null;
          }
        }
        if (next != null) {
          next.run();
        }
        if (e == null) {
          result.complete(r);
        } else if (retry) {
          timers.schedule(HISTORY_RETRY, () -> startRead(attempt[0]));
        } else {
          result.completeExceptionally(e);
        }
      });
    };
    startRead(attempt[0]);
    return result;
  }

  private void startRead(Runnable attempt) {
    synchronized (this) {
      if (readsInFlight >= MAX_HISTORY_READS) {
        readQueue.add(attempt);
        return;
      }
      readsInFlight++;
    }
    attempt.run();
  }

  /** One open watch. Its fields are guarded by the hub's lock. */
  private final class Watcher {
    final WatchRequest request;
    /** The first revision this watcher has not been handed (queued or delivered). */
    long next;
    final ArrayDeque<WatchMessage> queue = new ArrayDeque<>();
    long queuedBytes;
    boolean live;
    boolean reading;
    boolean ended;
    boolean closed;
    Throwable failure;
    CompletableFuture<Optional<WatchMessage>> waiting;
    Runnable progressTimer;

    Watcher(WatchRequest request, long from) {
      this.request = request;
      this.next = from;
    }

    void goLive() {
      live = true;
      if (request.prefix()) {
        livePrefixes.add(this);
      } else {
        liveByKey.computeIfAbsent(request.key(), k -> new ArrayList<>(1)).add(this);
      }
    }

    /** Stops taking revisions from the applier: the history serves it from {@code from} on. */
    void demote(long from) {
      if (!live) {
        return;
      }
      live = false;
      if (request.prefix()) {
        livePrefixes.remove(this);
      } else {
        ArrayList<Watcher> list = liveByKey.get(request.key());
        if (list != null) {
          list.remove(this);
          if (list.isEmpty()) {
            liveByKey.remove(request.key());
          }
        }
      }
      next = Math.max(next, from);
    }

    /** A revision whose events (already filtered) touch this watcher's keys. */
    void offer(Shared shared, List<Runnable> after) {
      RevisionEvents re = shared.re;
      if (re.revision() < next) {
        return;
      }
      WatchMessage.Change change = shared.change(request.prevKv());
      if (waiting != null) {
        CompletableFuture<Optional<WatchMessage>> f = waiting;
        waiting = null;
        cancelProgress();
        next = re.revision() + 1;
        after.add(() -> f.complete(Optional.of(change)));
        return;
      }
      long bytes = bytes(re);
      if (queue.size() >= settings.bufferRevisions() || queuedBytes + bytes > settings.bufferBytes()) {
        demote(re.revision()); // full: this revision and the rest come from the history
        return;
      }
      queue.add(change);
      queuedBytes += bytes;
      next = re.revision() + 1;
    }

    /** Completes a pending pull with what there is now (after a demotion or a close). */
    void wake(List<Runnable> after) {
      if (waiting != null) {
        CompletableFuture<Optional<WatchMessage>> f = waiting;
        waiting = null;
        cancelProgress();
        after.add(() -> next().whenComplete((m, e) -> {
          if (e != null) {
            f.completeExceptionally(e);
          } else {
            f.complete(m);
          }
        }));
      }
    }

    /** The stream's pull: the next message, or empty when the watch is over. */
    CompletionStage<Optional<WatchMessage>> next() {
      KvQuery.History query;
      synchronized (WatchHub.this) {
        if (failure != null) {
          return CompletableFuture.failedFuture(failure);
        }
        if (closed) {
          return CompletableFuture.completedFuture(Optional.empty());
        }
        WatchMessage m = queue.poll();
        if (m != null) {
          if (m instanceof WatchMessage.Change c) {
            queuedBytes = Math.max(0, queuedBytes - bytes(c.events()));
          }
          return CompletableFuture.completedFuture(Optional.of(m));
        }
        if (ended) {
          return CompletableFuture.completedFuture(Optional.empty());
        }
        if (live) {
          CompletableFuture<Optional<WatchMessage>> f = new CompletableFuture<>();
          waiting = f;
          progressTimer = timers.schedule(settings.progressInterval(), () -> progress(f));
          return f;
        }
        if (reading) {
          return CompletableFuture.failedFuture(new IllegalStateException("a watcher was pulled twice at once"));
        }
        reading = true;
        query = new KvQuery.History(request.key(), request.prefix(), next, settings.historyReadRevisions());
      }
      return readHistory(this, query).thenCompose(result -> {
        synchronized (WatchHub.this) {
          reading = false;
          if (!(result instanceof KvResult.HistoryDone done)) {
            throw new IllegalStateException("a history read answered " + result);
          }
          caughtUp(done);
        }
        return next();
      }).whenComplete((m, e) -> {
        if (e != null) {
          synchronized (WatchHub.this) {
            reading = false;
          }
        }
      });
    }

    private void caughtUp(KvResult.HistoryDone done) {
      if (closed || live) {
        return;
      }
      if (next <= done.compactRevision()) {
        queue.add(new WatchMessage.Compacted(done.compactRevision()));
        ended = true;
        return;
      }
      for (RevisionEvents re : done.events()) {
        if (re.revision() >= next) {
          queue.add(new WatchMessage.Change(request.prevKv() ? re : withoutPrevKv(re)));
          queuedBytes += bytes(re);
        }
      }
      next = Math.max(next, done.scannedTo() + 1);
      if (next > head) {
        goLive();
      }
    }

    private void progress(CompletableFuture<Optional<WatchMessage>> f) {
      long at;
      synchronized (WatchHub.this) {
        if (waiting != f) {
          return;
        }
        waiting = null;
        progressTimer = null;
        at = head; // live with nothing queued: every revision up to head was handed over
      }
      f.complete(Optional.of(new WatchMessage.Progress(at)));
    }

    private void cancelProgress() {
      if (progressTimer != null) {
        progressTimer.run();
        progressTimer = null;
      }
    }

    void fail(Throwable cause) {
      CompletableFuture<Optional<WatchMessage>> f;
      synchronized (WatchHub.this) {
        if (closed) {
          return;
        }
        failure = cause;
        f = waiting;
        waiting = null;
        cancelProgress();
      }
      if (f != null) {
        f.completeExceptionally(cause);
      }
    }

    void close() {
      CompletableFuture<Optional<WatchMessage>> f;
      synchronized (WatchHub.this) {
        if (closed) {
          return;
        }
        closed = true;
        watchers--;
        open.remove(this);
        demote(next);
        queue.clear();
        queuedBytes = 0;
        f = waiting;
        waiting = null;
        cancelProgress();
      }
      if (f != null) {
        f.complete(Optional.empty());
      }
    }
  }

  private static RevisionEvents withoutPrevKv(RevisionEvents re) {
    for (Event e : re.events()) {
      if (e.prevKv() != null) {
        List<Event> stripped = new ArrayList<>(re.events().size());
        for (Event x : re.events()) {
          stripped.add(x.withoutPrevKv());
        }
        return new RevisionEvents(re.revision(), stripped);
      }
    }
    return re;
  }

  private static long bytes(RevisionEvents re) {
    long n = 0;
    for (Event e : re.events()) {
      n += raftkv.kv.KvDb.eventBytes(e);
    }
    return n;
  }
}
