package raftkv.recipes;

import akka.actor.ClassicActorSystemProvider;
import akka.actor.Cancellable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import scala.concurrent.ExecutionContextExecutor;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Service discovery on any {@link RaftKv}: an instance registers its address under {@code
 * services/<service>/<instanceId>}, on a lease it keeps alive in the background, so that the entry
 * goes when the instance does (within the TTL plus an election timeout); clients discover the
 * instances of a service, or follow them as they come and go.
 *
 * <pre>{@code
 * ServiceRegistry registry = new ServiceRegistry(kv, system);
 * ServiceRegistry.Registration me = registry.register("billing", "b-1", bytes("10.0.0.7:8080"), Duration.ofSeconds(10))
 *     .toCompletableFuture().join();
 * Map<String, byte[]> now = registry.discover("billing").toCompletableFuture().join();   // instance id -> address
 * registry.follow("billing", instances -> balancer.update(instances));
 * me.close();                                                                         // deregisters at once
 * }</pre>
 *
 * A registration whose lease is lost (the instance could not reach the cluster for a TTL) registers
 * again under a new lease, with backoff, until it is closed. {@link #close()} closes every
 * registration and follower this registry made; it starts no thread.
 */
public final class ServiceRegistry implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ServiceRegistry.class);
  /** Where services live: {@code services/<service>/<instanceId>}. */
  public static final String ROOT = "services/";

  private final RaftKv kv;
  private final ClassicActorSystemProvider system;
  private final ExecutionContextExecutor executor;
  // guarded by this
  private final List<AutoCloseable> open = new ArrayList<>();
  private boolean closed;

  public ServiceRegistry(RaftKv kv, ClassicActorSystemProvider system) {
    this.kv = Objects.requireNonNull(kv, "kv");
    this.system = Objects.requireNonNull(system, "system");
    this.executor = system.classicSystem().dispatcher();
  }

  /** The prefix of {@code service}'s instances: {@code services/<service>/}. */
  public static String prefix(String service) {
    return ROOT + segment("service", service) + "/";
  }

  private static String segment(String what, String s) {
    Objects.requireNonNull(s, what);
    if (s.isEmpty() || s.indexOf('/') >= 0) {
      throw new IllegalArgumentException(what + " must be non-empty and without '/': " + s);
    }
    return s;
  }

  /**
   * One instance's entry, kept alive until {@link #close()}: {@code key()} and the lease it is on
   * now ({@code lease()}, which changes when it had to register again).
   */
  public final class Registration implements AutoCloseable {
    private final String key;
    private final byte[] address;
    private final LeaseSettings settings;
    private final Backoff backoff = Backoff.standard();
    // guarded by this
    private KeptLease lease;
    private Cancellable retry;
    private boolean closed;

    private Registration(String key, byte[] address, LeaseSettings settings) {
      this.key = key;
      this.address = address;
      this.settings = settings;
    }

    public String key() {
      return key;
    }

    public synchronized long lease() {
      return lease == null ? 0 : lease.id();
    }

    /** Grants a lease and puts the entry under it; completes once it is there. */
    private CompletionStage<Registration> put() {
      CompletableFuture<KeptLease> granted = KeptLease.grant(kv, system, settings, this::lost).toCompletableFuture();
      return granted.thenCompose(l -> {
        synchronized (this) {
          if (closed) {
            return l.revoke().thenApply(v -> this);
          }
          lease = l;
        }
        return Completions.on(executor, kv.write(new KvCommand.Put(key, address, l.id(), null, false))).thenApply(r -> {
          if (!(r instanceof KvResult.PutDone)) {
            l.stop();
            throw new RaftKvException(RaftKvException.Kind.NOT_FOUND, "could not register " + key + ": " + r);
          }
          synchronized (this) {
            backoff.reset();
          }
          return this;
        }).whenComplete((r, failure) -> {
          if (failure != null) {
            l.revoke();
          }
        });
      });
    }

    private void lost(String reason) {
      log.warn("registration {} lost ({}); registering again", key, reason);
      again();
    }

    private synchronized void again() {
      if (closed) {
        return;
      }
      retry = system.classicSystem().scheduler().scheduleOnce(backoff.next(), () -> put().whenComplete((r, failure) -> {
        if (failure != null) {
          log.warn("could not register {} again: {}", key, failure.toString());
          again();
        }
      }), executor);
    }

    /** Deregisters: revokes the lease, which deletes the entry; completes once done. */
    public CompletionStage<Void> closeAsync() {
      KeptLease l;
      synchronized (this) {
        closed = true;
        if (retry != null) {
          retry.cancel();
        }
        l = lease;
      }
      synchronized (ServiceRegistry.this) {
        open.remove(this);
      }
      return l == null ? CompletableFuture.completedFuture(null) : l.revoke();
    }

    @Override
    public void close() {
      await(closeAsync());
    }
  }

  /**
   * Registers {@code instanceId} of {@code service} with {@code address} on a new lease of {@code
   * ttl}, renewed every third of it; completes once the entry is written (an entry of the same
   * instance is replaced).
   */
  public CompletionStage<Registration> register(String service, String instanceId, byte[] address, Duration ttl) {
    String key = prefix(service) + segment("instanceId", instanceId);
    Registration registration = new Registration(key, Objects.requireNonNull(address, "address").clone(), LeaseSettings.of(ttl));
    synchronized (this) {
      if (closed) {
        return CompletableFuture.failedFuture(new IllegalStateException("the registry is closed"));
      }
      open.add(registration);
    }
    return registration.put().whenComplete((r, failure) -> {
      if (failure != null) {
        registration.closeAsync();
      }
    });
  }

  /** The instances of {@code service} now (a linearizable read): instance id to address. */
  public CompletionStage<Map<String, byte[]>> discover(String service) {
    String prefix = prefix(service);
    return Completions.on(executor, kv.read(new KvQuery.Range(prefix, null, 0), RaftKv.Consistency.LINEARIZABLE))
        .thenApply(r -> {
          java.util.TreeMap<String, byte[]> all = new java.util.TreeMap<>();
          ((KvResult.RangeDone) r).kvs().forEach(e -> all.put(e.key(), e.value()));
          return ConfigWatcher.relative(prefix, all);
        });
  }

  /**
   * Follows the instances of {@code service}: {@code listener} gets instance id to address after
   * the first load and after each change. Returns the (started) watcher; close it, or this registry,
   * to stop.
   */
  public ConfigWatcher follow(String service, Consumer<Map<String, byte[]>> listener) {
    String prefix = prefix(service);
    ConfigWatcher watcher = new ConfigWatcher(kv, system, prefix)
        .addListener(snapshot -> listener.accept(ConfigWatcher.relative(prefix, snapshot.values())));
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException("the registry is closed");
      }
      open.add(watcher);
    }
    watcher.start();
    return watcher;
  }

  /** Closes every registration (revoking their leases) and follower this registry made. */
  public CompletionStage<Void> closeAsync() {
    List<AutoCloseable> all;
    synchronized (this) {
      closed = true;
      all = new ArrayList<>(open);
      open.clear();
    }
    List<CompletableFuture<Void>> done = new ArrayList<>();
    for (AutoCloseable c : all) {
      if (c instanceof Registration r) {
        done.add(r.closeAsync().toCompletableFuture());
      } else if (c instanceof ConfigWatcher w) {
        w.close();
      }
    }
    return CompletableFuture.allOf(done.toArray(CompletableFuture[]::new));
  }

  @Override
  public void close() {
    await(closeAsync());
  }

  private static void await(CompletionStage<Void> stage) {
    try {
      stage.toCompletableFuture().get(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      // logged by the revoke; the lease expires by itself
    }
  }
}
