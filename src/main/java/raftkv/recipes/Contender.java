package raftkv.recipes;

import akka.actor.ClassicActorSystemProvider;
import akka.stream.KillSwitches;
import akka.stream.SharedKillSwitch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import scala.concurrent.ExecutionContextExecutor;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * One client's place in the {@link LockQueue} of a name, what a {@link DistributedLock} and a {@link
 * LeaderElection} share: each {@link #acquire} grants a lease of its own ({@link KeptLease}, kept
 * alive while waiting and holding), joins the queue with it and, once first, guards the waiter key
 * ({@link KeyGuard}). The hold is lost when the lease is or the key goes; then the lease is revoked
 * (if it still exists) and every {@code onLost} listener is told why. {@link #release()} revokes the
 * lease, which deletes the waiter key at one revision.
 */
final class Contender {
  private static final Logger log = LoggerFactory.getLogger(Contender.class);

  private final RaftKv kv;
  private final ClassicActorSystemProvider system;
  private final ExecutionContextExecutor executor;
  private final LockQueue queue;
  private final String name;
  private final LeaseSettings settings;
  private final List<Consumer<String>> lostListeners = new CopyOnWriteArrayList<>();

  /** One acquisition: from the lease's grant to its release or loss. Fields guarded by the Contender. */
  private static final class Attempt {
    final CompletableFuture<LockQueue.Waiter> result = new CompletableFuture<>();
    /** Aborts the queue's watch while this attempt waits, when it ends early. */
    final SharedKillSwitch stop = KillSwitches.shared("contender");
    KeptLease lease;
    LockQueue.Waiter held;
    KeyGuard guard;
    boolean over;
  }

  // guarded by this
  private Attempt attempt;
  private boolean closed;

  Contender(RaftKv kv, ClassicActorSystemProvider system, String name, LeaseSettings settings) {
    this.kv = kv;
    this.system = system;
    this.executor = system.classicSystem().dispatcher();
    this.queue = LockQueue.create(kv, system);
    this.name = name;
    this.settings = settings;
  }

  LockQueue queue() {
    return queue;
  }

  void onLost(Consumer<String> listener) {
    lostListeners.add(listener);
  }

  /**
   * Joins the queue with {@code value} under a new lease and completes once first, within {@code
   * wait}; fails with LOCK_TIMEOUT when not first in time (nothing is left behind), NOT_FOUND when
   * the lease was lost while waiting, IllegalStateException when this contender holds or waits
   * already, or was closed.
   */
  CompletionStage<LockQueue.Waiter> acquire(byte[] value, Duration wait) {
    Attempt a = new Attempt();
    synchronized (this) {
      if (closed) {
        return CompletableFuture.failedFuture(new IllegalStateException("'" + name + "' is closed"));
      }
      if (attempt != null) {
        return CompletableFuture.failedFuture(new IllegalStateException("'" + name + "' is held or being acquired already"));
      }
      attempt = a;
    }
    KeptLease.grant(kv, system, settings, reason -> lost(a, reason)).thenCompose(lease -> {
      synchronized (this) {
        a.lease = lease;
        if (a.over) {
          throw new IllegalStateException("'" + name + "' was released while it was being acquired");
        }
      }
      return Completions.on(executor, LockQueue.create(kv, system, a.stop).acquire(name, lease.id(), value, wait));
    }).whenComplete((waiter, failure) -> {
      if (failure != null) {
        end(a, Completions.unwrap(failure));
        return;
      }
      synchronized (this) {
        if (a.over) {
          a.result.completeExceptionally(new IllegalStateException("'" + name + "' was released while it was being acquired"));
          return;
        }
        a.held = waiter;
        a.guard = KeyGuard.start(kv, system, waiter.key(), waiter.token(), reason -> lost(a, reason));
      }
      log.debug("'{}' acquired: key {}, token {}", name, waiter.key(), waiter.token());
      a.result.complete(waiter);
    });
    return a.result;
  }

  /** What this contender holds now. */
  synchronized Optional<LockQueue.Waiter> held() {
    return attempt == null ? Optional.empty() : Optional.ofNullable(attempt.held);
  }

  /** Replaces the held waiter's value while it is first (an election's proclaim). */
  CompletionStage<LockQueue.Waiter> proclaim(byte[] value) {
    Attempt a;
    synchronized (this) {
      a = attempt;
      if (a == null || a.held == null) {
        return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.PRECONDITION_FAILED,
            "'" + name + "' is not held by this client"));
      }
    }
    return Completions.on(executor, queue.proclaim(name, a.held.key(), value)).thenApply(waiter -> {
      synchronized (this) {
        if (attempt == a) {
          a.held = waiter;
        }
      }
      return waiter;
    });
  }

  /**
   * Gives the place up: stops guarding, fails a pending acquisition, and revokes the lease (which
   * deletes the waiter key). Completes once revoked; done at once when nothing is held.
   */
  CompletionStage<Void> release() {
    Attempt a;
    synchronized (this) {
      a = attempt;
      if (a == null) {
        return CompletableFuture.completedFuture(null);
      }
    }
    return end(a, new IllegalStateException("'" + name + "' was released while it was being acquired"));
  }

  /**
   * Ends {@code a}: stops its guard and keepalives, fails its acquisition with {@code pending} if
   * that is still under way, revokes its lease if granted.
   */
  private CompletionStage<Void> end(Attempt a, Throwable pending) {
    KeptLease lease;
    synchronized (this) {
      if (attempt == a) {
        attempt = null;
      }
      a.over = true;
      if (a.guard != null) {
        a.guard.stop();
      }
      lease = a.lease;
    }
    a.result.completeExceptionally(pending);
    a.stop.abort(pending); // a wait still under way ends now, not at its deadline
    return lease == null ? CompletableFuture.completedFuture(null) : lease.revoke();
  }

  private void lost(Attempt a, String reason) {
    boolean wasHeld;
    synchronized (this) {
      if (a.over) {
        return;
      }
      wasHeld = a.held != null;
    }
    // the lease may still exist (the key was deleted by someone else): give it up
    end(a, new RaftKvException(RaftKvException.Kind.NOT_FOUND, "'" + name + "' was not acquired: " + reason));
    if (wasHeld) {
      log.warn("'{}' was lost: {}", name, reason);
      for (Consumer<String> listener : lostListeners) {
        executor.execute(() -> listener.accept(reason));
      }
    }
  }

  /** For tests: the client stops renewing its lease, as if paused, without revoking it. */
  synchronized void suspendKeepAlive() {
    if (attempt != null && attempt.lease != null) {
      attempt.lease.stop();
    }
  }

  /** Releases what is held and refuses any later acquisition. */
  CompletionStage<Void> close() {
    synchronized (this) {
      closed = true;
    }
    return release();
  }
}
