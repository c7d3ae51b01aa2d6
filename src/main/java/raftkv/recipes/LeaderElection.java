package raftkv.recipes;

import akka.NotUsed;
import akka.actor.ClassicActorSystemProvider;
import akka.stream.KillSwitches;
import akka.stream.SharedKillSwitch;
import akka.stream.javadsl.Source;
import raftkv.client.RaftKv;

import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A leader election on any {@link RaftKv}, on the same queue as a lock ({@link LockQueue}; API.md
 * §4, "Elections"): candidates campaign in FIFO order, the first leads, with its value for all to
 * read. Each {@link #campaign()} grants a lease of its own, kept alive in the background while
 * campaigning and leading; leadership is lost when that lease is, or when the candidate's key is
 * deleted, and the {@link #onLost} listeners are told.
 *
 * <pre>{@code
 * LeaderElection election = new LeaderElection(kv, system, "elections/primary", bytes("10.0.0.7:9000"),
 *     LeaseSettings.of(Duration.ofSeconds(10)));
 * election.onLost(reason -> stepDown());
 * election.campaign().thenAccept(leadership -> becomePrimary());
 * election.observe().runForeach(o -> log.info("leader now {}", o.leader()), system);
 * }</pre>
 *
 * {@link #close()} resigns, revokes the lease it granted and ends the streams {@link #observe()}
 * handed out. It starts no thread.
 */
public final class LeaderElection implements AutoCloseable {

  /** This client's leadership: its key and the revision its leadership started with (its create revision). */
  public record Leadership(String key, long leaderRevision) {}

  /** A leader as anyone sees it: its key, value, the revision it leads since, and its lease. */
  public record Leader(String key, byte[] value, long leaderRevision, long lease) {
    static Leader of(LockQueue.Waiter waiter) {
      return new Leader(waiter.key(), waiter.value(), waiter.token(), waiter.lease());
    }
  }

  /** One observation: at {@code revision}, who leads (empty: nobody). */
  public record Observation(long revision, Optional<Leader> leader) {}

  private final String name;
  private final LeaseSettings settings;
  private final Contender contender;
  private final SharedKillSwitch streams;
  // guarded by this
  private byte[] value;

  /** A candidate for {@code name} with {@code value} (the election's keys are those under {@code name + "/"}). */
  public LeaderElection(RaftKv kv, ClassicActorSystemProvider system, String name, byte[] value, LeaseSettings settings) {
    this.name = Objects.requireNonNull(name, "name");
    this.value = Objects.requireNonNull(value, "value").clone();
    this.settings = Objects.requireNonNull(settings, "settings");
    this.contender = new Contender(Objects.requireNonNull(kv, "kv"), Objects.requireNonNull(system, "system"), name, settings);
    this.streams = KillSwitches.shared("election-" + name);
  }

  public String name() {
    return name;
  }

  /**
   * Campaigns with this candidate's value and completes once it leads, waiting up to the settings'
   * {@code maxWait}: LOCK_TIMEOUT then (its key removed), NOT_FOUND when its lease was lost while
   * waiting, IllegalStateException when it campaigns or leads already.
   */
  public CompletionStage<Leadership> campaign() {
    byte[] v;
    synchronized (this) {
      v = value;
    }
    return contender.acquire(v, settings.maxWait()).thenApply(w -> new Leadership(w.key(), w.token()));
  }

  /** This client's leadership now; empty when it does not lead. */
  public Optional<Leadership> leadership() {
    return contender.held().map(w -> new Leadership(w.key(), w.token()));
  }

  /**
   * Replaces the leader's value, only while this candidate leads (PRECONDITION_FAILED otherwise,
   * and nothing changes); a later campaign of this candidate uses the new value.
   */
  public CompletionStage<Leadership> proclaim(byte[] newValue) {
    byte[] v = Objects.requireNonNull(newValue, "newValue").clone();
    return contender.proclaim(v).thenApply(w -> {
      synchronized (this) {
        value = v;
      }
      return new Leadership(w.key(), w.token());
    });
  }

  /** Gives up leading (or campaigning): the lease is revoked and the key deleted; the next candidate leads. */
  public CompletionStage<Void> resign() {
    return contender.release();
  }

  /** The leader now (a linearizable read), whoever it is; empty when nobody leads. */
  public CompletionStage<Optional<Leader>> leader() {
    return contender.queue().holder(name).thenApply(holder -> holder.map(Leader::of));
  }

  /**
   * The leaders as they change: first the one at the time of the call, then one element per
   * revision that changed the leader or its value. The stream completes when its watch fell behind
   * the history's compaction (observe again), and when this election is closed.
   */
  public Source<Observation, NotUsed> observe() {
    return Source.completionStageSource(contender.queue().observe(name))
        .map(o -> new Observation(o.revision(), o.holder().map(Leader::of)))
        .via(streams.flow())
        .mapMaterializedValue(m -> NotUsed.getInstance());
  }

  /** Calls {@code listener} with the reason when this client's leadership is lost (not when it resigns). */
  public LeaderElection onLost(Consumer<String> listener) {
    contender.onLost(Objects.requireNonNull(listener, "listener"));
    return this;
  }

  /** For tests: stops renewing the lease without revoking it, as a paused client would. */
  void suspendKeepAlive() {
    contender.suspendKeepAlive();
  }

  /** Resigns, ends the observe streams and refuses later campaigns; completes once the lease is revoked. */
  public CompletionStage<Void> closeAsync() {
    streams.shutdown();
    return contender.close();
  }

  /** {@link #closeAsync()}, waiting up to 10 s for the revoke. */
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
