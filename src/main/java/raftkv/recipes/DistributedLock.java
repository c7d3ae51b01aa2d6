package raftkv.recipes;

import akka.actor.ClassicActorSystemProvider;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A distributed lock with fencing, on any {@link RaftKv} (an embedded node or a remote client),
 * built on the {@link LockQueue} (FIFO among waiters, API.md §4).
 *
 * <p>Each {@link #lock()} grants a lease of its own and keeps it alive in the background (on the
 * actor system's scheduler) while waiting and while held. The lock is <em>lost</em> when the lease
 * is (a keepalive answers NOT_FOUND, or none succeeded within the TTL) or when its key is deleted
 * (the lock watches its own key); then every {@link #onLost} listener is told why. A holder that
 * may have been paused must not trust that it still holds: it writes through {@link
 * #fenced(KvCommand)}, which the store applies only while the lock's token still holds.
 *
 * <pre>{@code
 * try (DistributedLock lock = new DistributedLock(kv, system, "locks/jobs", LeaseSettings.of(Duration.ofSeconds(10)))) {
 *   lock.onLost(reason -> stopWorking());
 *   DistributedLock.Held held = lock.lock().toCompletableFuture().join();
 *   kv.write(lock.fenced(KvCommand.Put.of("jobs/state", bytes)));   // FenceFailed once the lock moved on
 *   lock.unlock().toCompletableFuture().join();
 * }
 * }</pre>
 *
 * One instance holds the lock at most once at a time; {@link #close()} releases it and revokes the
 * lease it granted. It starts no thread: timers run on the system's scheduler, watches on its
 * streams.
 */
public final class DistributedLock implements AutoCloseable {

  /** The lock as held: the waiter key, its fencing token (the key's create revision), the lease it lives on. */
  public record Held(String key, long fencingToken, long lease) {}

  private final String name;
  private final LeaseSettings settings;
  private final Contender contender;

  /** A lock named {@code name} (its waiters are the keys under {@code name + "/"}: keep other keys out of it). */
  public DistributedLock(RaftKv kv, ClassicActorSystemProvider system, String name, LeaseSettings settings) {
    this.name = Objects.requireNonNull(name, "name");
    this.settings = Objects.requireNonNull(settings, "settings");
    this.contender = new Contender(Objects.requireNonNull(kv, "kv"), Objects.requireNonNull(system, "system"), name, settings);
  }

  public String name() {
    return name;
  }

  /**
   * Acquires the lock, waiting as long as needed up to the settings' {@code maxWait}: fails with
   * LOCK_TIMEOUT then (and nothing of this client is left in the queue), NOT_FOUND when its lease
   * was lost while waiting, IllegalStateException when this instance holds or waits already.
   */
  public CompletionStage<Held> lock() {
    return contender.acquire(new byte[0], settings.maxWait()).thenApply(DistributedLock::held);
  }

  /** Acquires the lock if it can within {@code wait} (zero: only if free now); empty if not. */
  public CompletionStage<Optional<Held>> tryLock(Duration wait) {
    return contender.acquire(new byte[0], wait).handle((waiter, failure) -> {
      if (failure == null) {
        return Optional.of(held(waiter));
      } else if (Completions.is(failure, RaftKvException.Kind.LOCK_TIMEOUT)) {
        return Optional.empty();
      }
      throw Completions.unwrap(failure) instanceof RuntimeException e ? e : new IllegalStateException(failure);
    });
  }

  private static Held held(LockQueue.Waiter waiter) {
    return new Held(waiter.key(), waiter.token(), waiter.lease());
  }

  /** The lock as this instance holds it now; empty when it does not (any more). */
  public Optional<Held> held() {
    return contender.held().map(DistributedLock::held);
  }

  /**
   * {@code command} (a Put, a Delete or a Txn) as a fenced write: applied only while this hold's
   * token still holds the lock, else the result is a {@link raftkv.kv.KvResult.FenceFailed}.
   *
   * @throws IllegalStateException when this instance does not hold the lock
   */
  public KvCommand fenced(KvCommand command) {
    Held held = held().orElseThrow(() -> new IllegalStateException("lock '" + name + "' is not held"));
    return new KvCommand.Fenced(name, held.fencingToken(), command);
  }

  /** Calls {@code listener} with the reason when a hold of this lock is lost (not when it is released). */
  public DistributedLock onLost(Consumer<String> listener) {
    contender.onLost(Objects.requireNonNull(listener, "listener"));
    return this;
  }

  /**
   * Releases the lock (or gives up waiting for it): revokes the lease, which deletes the waiter
   * key. Completes once that is done; at once when nothing is held.
   */
  public CompletionStage<Void> unlock() {
    return contender.release();
  }

  /** For tests: stops renewing the lease without revoking it, as a paused client would. */
  void suspendKeepAlive() {
    contender.suspendKeepAlive();
  }

  /** Releases what is held and refuses later {@code lock()}s; completes once the lease is revoked. */
  public CompletionStage<Void> closeAsync() {
    return contender.close();
  }

  /** {@link #closeAsync()}, waiting up to 10 s for the revoke (a lease not revoked expires by itself). */
  @Override
  public void close() {
    try {
      closeAsync().toCompletableFuture().get(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      // logged by the revoke; the lease expires by itself
    }
  }
}
