package raftkv.recipes;

import akka.actor.Cancellable;
import akka.actor.ClassicActorSystemProvider;
import akka.actor.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import scala.concurrent.ExecutionContextExecutor;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/**
 * A lease a recipe granted and keeps alive in the background, on the actor system's scheduler:
 * renewed every {@code keepAliveEvery}; reported lost (once) when a keepalive answers NOT_FOUND (it
 * expired or was revoked), or when no keepalive sent within the last TTL succeeded (the client
 * cannot reach the cluster: by then the lease may well have expired, so a holder must stop acting
 * on it). {@link #revoke()} ends it.
 */
final class KeptLease {
  private static final Logger log = LoggerFactory.getLogger(KeptLease.class);
  /** How soon a keepalive that failed (UNAVAILABLE, TIMEOUT) is tried again, at most. */
  private static final Duration RETRY = Duration.ofMillis(200);

  private final RaftKv kv;
  private final Scheduler scheduler;
  private final ExecutionContextExecutor executor;
  private final long id;
  private final long ttlSeconds;
  private final Duration every;
  private final Consumer<String> onLost;

  // guarded by this
  private boolean stopped;
  private Cancellable renewal;
  private Cancellable deadline;

  private KeptLease(RaftKv kv, ClassicActorSystemProvider system, long id, long ttlSeconds, Duration every,
                    Consumer<String> onLost) {
    this.kv = kv;
    this.scheduler = system.classicSystem().scheduler();
    this.executor = system.classicSystem().dispatcher();
    this.id = id;
    this.ttlSeconds = ttlSeconds;
    this.every = every;
    this.onLost = onLost;
  }

  /**
   * Grants a lease as {@code settings} say and starts keeping it alive; {@code onLost} is told why
   * once it is lost, on the system's dispatcher.
   */
  static CompletionStage<KeptLease> grant(RaftKv kv, ClassicActorSystemProvider system, LeaseSettings settings,
                                          Consumer<String> onLost) {
    long sent = System.nanoTime();
    ExecutionContextExecutor executor = system.classicSystem().dispatcher();
    return Completions.on(executor, kv.grantLease(settings.ttlSeconds())).thenApply(granted -> {
      KeptLease lease = new KeptLease(kv, system, granted.id(), granted.ttlSeconds(), settings.keepAliveEvery(), onLost);
      lease.start(sent);
      return lease;
    });
  }

  long id() {
    return id;
  }

  long ttlSeconds() {
    return ttlSeconds;
  }

  private synchronized void start(long renewedAt) {
    scheduleRenewal(every);
    moveDeadline(renewedAt);
  }

  private synchronized void scheduleRenewal(Duration delay) {
    if (!stopped) {
      renewal = scheduler.scheduleOnce(delay, this::renew, executor);
    }
  }

  /** The lease counts as lost a TTL after {@code renewedAt} (when the last successful keepalive was sent). */
  private synchronized void moveDeadline(long renewedAt) {
    if (stopped) {
      return;
    }
    if (deadline != null) {
      deadline.cancel();
    }
    long left = renewedAt + Duration.ofSeconds(ttlSeconds).toNanos() - System.nanoTime();
    deadline = scheduler.scheduleOnce(Duration.ofNanos(Math.max(0, left)),
        () -> lost("lease " + Long.toHexString(id) + " was not renewed within its TTL of " + ttlSeconds
            + " s (the cluster could not be reached)"), executor);
  }

  private void renew() {
    synchronized (this) {
      if (stopped) {
        return;
      }
    }
    long sent = System.nanoTime();
    Completions.on(executor, kv.keepAliveLease(id)).whenComplete((ttl, failure) -> {
      if (failure == null) {
        moveDeadline(sent);
        scheduleRenewal(every);
      } else if (Completions.is(failure, RaftKvException.Kind.NOT_FOUND)) {
        lost("lease " + Long.toHexString(id) + " is gone (it expired or was revoked)");
      } else {
        log.debug("keepalive of lease {} failed, trying again: {}", Long.toHexString(id), failure.toString());
        scheduleRenewal(every.compareTo(RETRY) < 0 ? every : RETRY);
      }
    });
  }

  private void lost(String reason) {
    synchronized (this) {
      if (stopped) {
        return;
      }
      stopTimers();
    }
    log.info("{}", reason);
    onLost.accept(reason);
  }

  /** Stops renewing (and watching the deadline), without revoking: the lease expires by itself. */
  synchronized void stop() {
    stopTimers();
  }

  private void stopTimers() {
    stopped = true;
    if (renewal != null) {
      renewal.cancel();
    }
    if (deadline != null) {
      deadline.cancel();
    }
  }

  /** Stops renewing and revokes the lease (deleting its keys); a lease already gone is fine. */
  CompletionStage<Void> revoke() {
    stop();
    return revoke(kv, scheduler, executor, id, 3);
  }

  /** Revokes lease {@code id}, trying {@code attempts} times in all when the cluster is unavailable. */
  static CompletionStage<Void> revoke(RaftKv kv, Scheduler scheduler, ExecutionContextExecutor executor, long id,
                                      int attempts) {
    return Completions.on(executor, kv.revokeLease(id)).handle((revoked, failure) -> {
      if (failure == null || Completions.is(failure, RaftKvException.Kind.NOT_FOUND)) {
        return CompletableFuture.<Void>completedFuture(null);
      }
      if (attempts <= 1) {
        log.warn("could not revoke lease {} (it expires by itself): {}", Long.toHexString(id), failure.toString());
        return CompletableFuture.<Void>failedFuture(failure);
      }
      CompletableFuture<Void> again = new CompletableFuture<>();
      scheduler.scheduleOnce(RETRY, () -> revoke(kv, scheduler, executor, id, attempts - 1).whenComplete((v, f) -> {
        if (f != null) {
          again.completeExceptionally(f);
        } else {
          again.complete(null);
        }
      }), executor);
      return again;
    }).thenCompose(stage -> stage);
  }
}
