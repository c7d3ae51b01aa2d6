package raftkv.recipes;

import akka.NotUsed;
import akka.actor.ClassicActorSystemProvider;
import akka.stream.Materializer;
import akka.stream.SharedKillSwitch;
import akka.stream.javadsl.Sink;
import akka.stream.javadsl.Source;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Compare;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.function.UnaryOperator;

/**
 * The FIFO queue of waiters under a lock's or an election's name (API.md §4), built on {@link
 * RaftKv} alone, so that it works the same on an embedded node and on a remote client.
 *
 * <p>A waiter is the key {@code <name>/<lease id in hex>} attached to the caller's lease, so a
 * retry with the same lease finds its place again, and the waiter dies with the lease. The waiter
 * with the lowest create revision holds the lock (leads the election) — any key under {@code
 * <name>/} counts, as the store counts it for fenced writes; its create revision is the
 * fencing token, which grows with every new holder because revisions never repeat. A waiter watches
 * only its predecessor, the waiter just before it, and looks again when that one is deleted: no
 * herd of watchers wakes up on every release. The store checks fenced writes against the same
 * rule ({@link KvCommand.Fenced}, {@link Compare.Target#LOCK}).
 */
public final class LockQueue {

  /** A waiter: its key, its create revision (the fencing token once it holds), its lease and value. */
  public record Waiter(String key, long token, long lease, byte[] value) {}

  private final RaftKv kv;
  private final Materializer materializer;
  /** Aborts the watches of waiters (null: none): an acquisition waiting then fails with its reason. */
  private final SharedKillSwitch stop;

  private LockQueue(RaftKv kv, Materializer materializer, SharedKillSwitch stop) {
    this.kv = kv;
    this.materializer = materializer;
    this.stop = stop;
  }

  /** A queue over {@code kv}, running its watches on {@code system}. */
  public static LockQueue create(RaftKv kv, ClassicActorSystemProvider system) {
    return new LockQueue(Objects.requireNonNull(kv, "kv"), Materializer.matFromSystem(system), null);
  }

  /**
   * As {@link #create(RaftKv, ClassicActorSystemProvider)}, with the watches of waiting acquisitions
   * going through {@code stop}: aborting it fails them at once (with the abort's cause) instead of
   * letting them wait out their time.
   */
  public static LockQueue create(RaftKv kv, ClassicActorSystemProvider system, SharedKillSwitch stop) {
    return new LockQueue(Objects.requireNonNull(kv, "kv"), Materializer.matFromSystem(system), Objects.requireNonNull(stop, "stop"));
  }

  /** The waiter key of {@code lease} under {@code name}: {@code <name>/<lease in hex>}, as etcd names it. */
  public static String waiterKey(String name, long lease) {
    return name + "/" + Long.toHexString(lease);
  }

  /** Whether {@code key} is a waiter key of {@code name}: directly under {@code <name>/}, nothing else. */
  public static boolean isWaiterKey(String name, String key) {
    String prefix = name + "/";
    return key.startsWith(prefix) && key.length() > prefix.length() && key.indexOf('/', prefix.length()) < 0;
  }

  /**
   * Joins the queue of {@code name} with {@code lease} (or finds this lease's place when it waits
   * already) and completes once it is first, within {@code wait} (zero: only if it is first now).
   * {@code value} is the waiter key's value: the candidate's value of an election, empty for a lock.
   * Fails with NOT_FOUND when the lease does not exist or the waiter key was deleted while waiting
   * (its lease expired); LOCK_TIMEOUT when it was not first in time, after its key was deleted, so
   * that a caller told "timeout" never holds the lock; UNAVAILABLE or TIMEOUT as any write.
   */
  public CompletionStage<Waiter> acquire(String name, long lease, byte[] value, Duration wait) {
    return acquire(name, lease, value, wait, UnaryOperator.identity());
  }

  /**
   * As {@link #acquire(String, long, byte[], Duration)}, writing the command that joins the queue
   * through {@code wrap} (an idempotency key: a retry replays the join and waits on).
   */
  public CompletionStage<Waiter> acquire(String name, long lease, byte[] value, Duration wait,
                                         UnaryOperator<KvCommand> wrap) {
    String key = waiterKey(name, lease);
    long deadline = System.nanoTime() + Math.max(0, wait.toNanos());
    KvCommand.Txn join = new KvCommand.Txn(
        List.of(new Compare(key, Compare.Target.CREATE_REVISION, Compare.Op.EQUAL, 0, null)),
        List.of(new TxnOp.Put(key, value == null ? new byte[0] : value, lease), new TxnOp.Get(key)),
        List.of(new TxnOp.Get(key)));
    return kv.write(wrap.apply(join)).thenApply(LockQueue::firstResult).thenCompose(result -> {
      if (result instanceof KvResult.LeaseNotFound) {
        throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "lease " + lease + " does not exist (never granted, revoked,"
            + " or expired); nothing was applied");
      }
      KvResult.TxnDone done = (KvResult.TxnDone) result;
      KvResult.GetDone got = (KvResult.GetDone) done.results().get(done.results().size() - 1);
      KeyValue mine = got.kv();
      if (mine == null) { // deleted between the txn's compare and now: impossible in one txn, but say so
        throw new RaftKvException(RaftKvException.Kind.CONFLICT, "the waiter key " + key + " vanished as it was made");
      }
      if (mine.lease() != lease) {
        throw new RaftKvException(RaftKvException.Kind.CONFLICT, "key " + key + " exists without lease " + lease
            + ": it is not a waiter of this lease");
      }
      return awaitTurn(name, new Waiter(key, mine.createRevision(), lease, mine.value()), deadline, done.revision());
    });
  }

  /**
   * The keys under {@code name/} as of a revision of at least {@code atLeast}: a local
   * (serializable) read when this node has got that far, else a linearizable one (0: always).
   *
   * <p>Why a local read may decide that a waiter holds the lock: the waiter's key was made at
   * revision T (its token) and no key can be made later with a create revision below T, so when a
   * committed state at a revision at or after the waiter's own shows no key below T, none will
   * ever come back: from then on the waiter is the lowest key — the holder, by the store's own rule
   * for fenced writes — for as long as its key lives. A stale local state can only show more
   * predecessors, which makes the waiter wait for their deletions, never hold too early.
   */
  private CompletionStage<KvResult.RangeDone> queueAt(String name, long atLeast) {
    KvQuery.Range range = new KvQuery.Range(name + "/", null, 0);
    if (atLeast <= 0) {
      return kv.read(range, RaftKv.Consistency.LINEARIZABLE).thenApply(r -> (KvResult.RangeDone) r);
    }
    return kv.read(range, RaftKv.Consistency.SERIALIZABLE).thenCompose(r -> {
      KvResult.RangeDone local = (KvResult.RangeDone) r;
      return local.revision() >= atLeast ? CompletableFuture.completedFuture(local)
          : kv.read(range, RaftKv.Consistency.LINEARIZABLE).thenApply(l -> (KvResult.RangeDone) l);
    });
  }

  /**
   * Checks the queue as of revision {@code atLeast} or later; first: done; else waits for its
   * predecessor's deletion and checks again.
   */
  private CompletionStage<Waiter> awaitTurn(String name, Waiter me, long deadline, long atLeast) {
    return queueAt(name, atLeast).thenCompose(range -> {
      KeyValue predecessor = null;
      boolean present = false;
      for (KeyValue kv : range.kvs()) {
        if (kv.key().equals(me.key()) && kv.createRevision() == me.token()) {
          present = true;
        } else if (kv.createRevision() < me.token()
            && (predecessor == null || kv.createRevision() > predecessor.createRevision())) {
          predecessor = kv;
        }
      }
      if (!present) {
        throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "the waiter key " + me.key() + " was deleted while it"
            + " waited (its lease expired or was revoked, or the key was deleted)");
      }
      if (predecessor == null) {
        return CompletableFuture.completedFuture(me);
      }
      long remaining = deadline - System.nanoTime();
      if (remaining <= 0) {
        return giveUp(name, me);
      }
      String before = predecessor.key();
      return kv.watch(WatchRequest.key(before).from(range.revision() + 1))
          .thenCompose(source -> (stop == null ? source : source.via(stop.flow()))
              .filter(message -> message instanceof WatchMessage.Compacted || deletes(message, before))
              .take(1)
              .completionTimeout(Duration.ofNanos(remaining))
              .runWith(Sink.headOption(), materializer))
          .handle((gone, failure) -> {
            Throwable cause = failure == null ? null : unwrap(failure);
            if (cause == null) { // the predecessor went at that revision (a compacted watch: look linearizably)
              return gone.filter(m -> m instanceof WatchMessage.Change).map(WatchMessage::revision).orElse(0L);
            } else if (cause instanceof RaftKvException e && e.kind() == RaftKvException.Kind.COMPACTED) {
              return 0L; // the watch cannot tell: look again, linearizably
            } else if (cause instanceof TimeoutException) {
              return -1L;
            }
            throw failure instanceof CompletionException c ? c : new CompletionException(failure);
          })
          .thenCompose(seen -> seen >= 0 ? awaitTurn(name, me, deadline, seen) : giveUp(name, me));
    });
  }

  private static boolean deletes(WatchMessage message, String key) {
    if (message instanceof WatchMessage.Change change) {
      for (Event event : change.events().events()) {
        if (event.type() == Event.Type.DELETE && event.kv().key().equals(key)) {
          return true;
        }
      }
    }
    return false;
  }

  /** Deletes the waiter's key (if it is still this waiter's) and fails with LOCK_TIMEOUT once that is done. */
  private CompletionStage<Waiter> giveUp(String name, Waiter me) {
    KvCommand.Txn withdraw = new KvCommand.Txn(
        List.of(new Compare(me.key(), Compare.Target.CREATE_REVISION, Compare.Op.EQUAL, me.token(), null)),
        List.of(new TxnOp.Delete(me.key(), false)), List.of());
    return kv.write(withdraw).thenApply(result -> {
      throw new RaftKvException(RaftKvException.Kind.LOCK_TIMEOUT, "'" + name + "' was not acquired in time; the waiter key "
          + me.key() + " was removed");
    });
  }

  /**
   * Deletes {@code key} if it holds {@code name} now (and, when {@code token} is not 0, holds it
   * with that token): a release or a resignation. Completes with the revision of the delete. Fails
   * with BAD_REQUEST for a key that is no waiter key of {@code name}, NOT_FOUND when the key is gone,
   * PRECONDITION_FAILED when it does not hold (a stale retry never releases a later holder).
   */
  public CompletionStage<Long> release(String name, String key, long token) {
    return release(name, key, token, UnaryOperator.identity());
  }

  /** As {@link #release(String, String, long)}, writing the release through {@code wrap}. */
  public CompletionStage<Long> release(String name, String key, long token, UnaryOperator<KvCommand> wrap) {
    if (!isWaiterKey(name, key)) {
      return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.BAD_REQUEST, "key " + shorten(key)
          + " is not a waiter key of '" + shorten(name) + "' (" + shorten(name) + "/<lease id in hex>)"));
    }
    return current(key, token, RaftKv.Consistency.SERIALIZABLE)
        .thenCompose(createRevision -> releaseAt(name, key, createRevision, wrap))
        .exceptionallyCompose(failure -> {
          // a local read may have named an older key of the same name: ask the leader, once
          Throwable cause = unwrap(failure);
          if (token == 0 && cause instanceof RaftKvException e && e.kind() == RaftKvException.Kind.PRECONDITION_FAILED) {
            return current(key, 0, RaftKv.Consistency.LINEARIZABLE).thenCompose(cr -> releaseAt(name, key, cr, wrap));
          }
          return CompletableFuture.failedFuture(cause);
        });
  }

  private CompletionStage<Long> releaseAt(String name, String key, long createRevision, UnaryOperator<KvCommand> wrap) {
    {
      KvCommand.Txn release = new KvCommand.Txn(
          List.of(new Compare(key, Compare.Target.CREATE_REVISION, Compare.Op.EQUAL, createRevision, null),
              new Compare(name, Compare.Target.LOCK, Compare.Op.EQUAL, createRevision, null)),
          List.of(new TxnOp.Delete(key, false)), List.of());
      return kv.write(wrap.apply(release)).thenApply(LockQueue::firstResult).thenApply(result -> {
        KvResult.TxnDone done = (KvResult.TxnDone) result;
        if (done.succeeded() && ((KvResult.DeleteDone) done.results().get(0)).deleted() == 1) {
          return done.revision();
        } else if (createRevision == 0 || done.succeeded()) {
          throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "key " + shorten(key) + " does not exist: nothing to release");
        }
        throw notHolder(name, key);
      });
    }
  }

  /**
   * Replaces the value of {@code key}, only while it leads {@code name} (an election's proclaim),
   * keeping its lease. Completes with the waiter as it is now; fails as {@link #release}.
   */
  public CompletionStage<Waiter> proclaim(String name, String key, byte[] value) {
    return proclaim(name, key, value, UnaryOperator.identity());
  }

  /** As {@link #proclaim(String, String, byte[])}, writing the new value through {@code wrap}. */
  public CompletionStage<Waiter> proclaim(String name, String key, byte[] value, UnaryOperator<KvCommand> wrap) {
    if (!isWaiterKey(name, key)) {
      return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.BAD_REQUEST, "key " + shorten(key)
          + " is not a candidate key of '" + shorten(name) + "' (" + shorten(name) + "/<lease id in hex>)"));
    }
    return kv.read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE).thenCompose(read -> {
      KeyValue now = ((KvResult.GetDone) read).kv();
      if (now == null) {
        throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "key " + shorten(key) + " does not exist");
      }
      KvCommand.Txn proclaim = new KvCommand.Txn(
          List.of(new Compare(key, Compare.Target.CREATE_REVISION, Compare.Op.EQUAL, now.createRevision(), null),
              new Compare(name, Compare.Target.LOCK, Compare.Op.EQUAL, now.createRevision(), null)),
          List.of(new TxnOp.Put(key, value, now.lease())), List.of());
      return kv.write(wrap.apply(proclaim)).thenApply(LockQueue::firstResult).thenApply(result -> {
        if (result instanceof KvResult.LeaseNotFound) {
          throw notHolder(name, key);
        }
        KvResult.TxnDone done = (KvResult.TxnDone) result;
        if (!done.succeeded()) {
          throw notHolder(name, key);
        }
        return new Waiter(key, now.createRevision(), now.lease(), value);
      });
    });
  }

  /**
   * The create revision of {@code key} (0 when absent; the release then finds nothing to delete,
   * and through an idempotency key a retry of a release that went through gets the first answer).
   * A local read is enough to name it: the release's compares decide on the leader, so a stale one
   * only fails the release (and {@link #release} asks again linearizably); absent locally, the
   * leader is asked before saying so.
   */
  private CompletionStage<Long> current(String key, long token, RaftKv.Consistency consistency) {
    if (token > 0) {
      return CompletableFuture.completedFuture(token);
    }
    return kv.read(new KvQuery.Get(key), consistency).thenCompose(local -> {
      KeyValue here = ((KvResult.GetDone) local).kv();
      if (here != null) {
        return CompletableFuture.completedFuture(here.createRevision());
      }
      return kv.read(new KvQuery.Get(key), RaftKv.Consistency.LINEARIZABLE).thenApply(read -> {
        KeyValue now = ((KvResult.GetDone) read).kv();
        return now == null ? 0L : now.createRevision();
      });
    });
  }

  /** A write's own result: the first one for a replayed idempotent retry. */
  private static KvResult firstResult(KvResult result) {
    if (result instanceof KvResult.Replayed replayed) {
      if (replayed.first() == null) {
        throw new RaftKvException(RaftKvException.Kind.CONFLICT, "a request with this Idempotency-Key was applied before;"
            + " its answer was not kept");
      }
      return replayed.first();
    } else if (result instanceof KvResult.IdempotencyKeyReused) {
      throw new RaftKvException(RaftKvException.Kind.IDEMPOTENCY_KEY_REUSED, "the Idempotency-Key was used before with a"
          + " different request (method, path, query, preconditions or body); nothing was applied");
    }
    return result;
  }

  private static RaftKvException notHolder(String name, String key) {
    return new RaftKvException(RaftKvException.Kind.PRECONDITION_FAILED, "key " + shorten(key) + " does not hold '"
        + shorten(name) + "' (any more); nothing changed");
  }

  /** The holder of {@code name} now (a linearizable read), or empty when nobody waits. */
  public CompletionStage<Optional<Waiter>> holder(String name) {
    return kv.read(new KvQuery.Range(name + "/", null, 0), RaftKv.Consistency.LINEARIZABLE)
        .thenApply(result -> Optional.ofNullable(first(name, ((KvResult.RangeDone) result).kvs())));
  }

  private static Waiter first(String name, Iterable<KeyValue> kvs) {
    KeyValue first = null;
    for (KeyValue kv : kvs) {
      if (first == null || kv.createRevision() < first.createRevision()) {
        first = kv;
      }
    }
    return first == null ? null : new Waiter(first.key(), first.createRevision(), first.lease(), first.value());
  }

  /**
   * The holders of {@code name} as they change (an election's observe): the one at the time of the
   * call (or an empty Optional when nobody holds), then one element per revision that changed the
   * holder or its value, with that revision. The stream ends (completes) when the watch fell behind
   * compaction; the caller observes again.
   */
  public CompletionStage<Source<Observed, NotUsed>> observe(String name) {
    return kv.read(new KvQuery.Range(name + "/", null, 0), RaftKv.Consistency.LINEARIZABLE).thenCompose(result -> {
      KvResult.RangeDone range = (KvResult.RangeDone) result;
      Waiter initial = first(name, range.kvs());
      return kv.watch(WatchRequest.prefix(name + "/").from(range.revision() + 1)).thenApply(source -> {
        Source<Observed, NotUsed> changes = source
            .takeWhile(message -> !(message instanceof WatchMessage.Compacted))
            .statefulMapConcat(() -> {
              TreeMap<String, KeyValue> waiters = new TreeMap<>();
              for (KeyValue kv : range.kvs()) {
                waiters.put(kv.key(), kv);
              }
              Waiter[] last = {initial};
              return message -> {
                if (!(message instanceof WatchMessage.Change change)) {
                  return List.of();
                }
                for (Event event : change.events().events()) {
                  if (event.type() == Event.Type.DELETE) {
                    waiters.remove(event.kv().key());
                  } else {
                    waiters.put(event.kv().key(), event.kv());
                  }
                }
                Waiter now = first(name, waiters.values());
                if (same(now, last[0])) {
                  return List.of();
                }
                last[0] = now;
                return List.of(new Observed(change.revision(), Optional.ofNullable(now)));
              };
            });
        return Source.single(new Observed(range.revision(), Optional.ofNullable(initial))).concat(changes);
      });
    });
  }

  /** One observation: at {@code revision}, the holder (empty: nobody holds). */
  public record Observed(long revision, Optional<Waiter> holder) {}

  private static boolean same(Waiter a, Waiter b) {
    if (a == null || b == null) {
      return a == b;
    }
    return a.key().equals(b.key()) && a.token() == b.token() && Arrays.equals(a.value(), b.value());
  }

  private static Throwable unwrap(Throwable failure) {
    Throwable cause = failure;
    while (cause instanceof CompletionException && cause.getCause() != null) {
      cause = cause.getCause();
    }
    return cause;
  }

  private static String shorten(String s) {
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }

}
