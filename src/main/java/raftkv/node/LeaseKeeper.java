package raftkv.node;

import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvResult;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.function.LongSupplier;

/**
 * Lease expiry, on the leader only (API.md §4, DESIGN.md §5). The state machine knows which leases
 * exist; this knows when each expires, on a monotonic clock, and acts by proposing entries:
 * a revoke carrying the leader's term when a lease's time is up, and a checkpoint of the remaining
 * time of long leases, so that leader changes cannot extend them for ever.
 *
 * <ul>
 *   <li>Becoming leader (told by the state machine once this leader's no-op is applied), it gives
 *       every lease its remaining time (the checkpointed one, else its whole TTL) plus one election
 *       timeout: the old leader may have renewed it just before it lost touch.
 *   <li>A keepalive (a linearizable read, so only a leader that confirmed its leadership gets it)
 *       sets the deadline to now + TTL. A lease whose revoke is on its way answers not found.
 *   <li>A follower keeps nothing: {@link #keepAlive} answers unavailable, and the read is retried.
 * </ul>
 *
 * <p>Threading: the applier's thread calls {@link #leadership}, {@link #changed}, {@link #keepAlive}
 * and {@link #remainingMillis}; a timer calls {@link #tick}. One lock guards it.
 */
public final class LeaseKeeper {

  /** The settings of {@code raftkv.lease}, and the election timeout. */
  public record Settings(Duration electionTimeout, Duration checkpointInterval) {}

  /** Proposes a command through this node (its Raft leader). */
  public interface Proposer {
    CompletionStage<KvResult> propose(KvCommand command);
  }

  private static final class Tracked {
    final long ttlSeconds;
    long deadline;
    long lastCheckpoint;
    boolean revoking;
    boolean checkpointed;

    Tracked(long ttlSeconds, long deadline, long now, boolean checkpointed) {
      this.ttlSeconds = ttlSeconds;
      this.deadline = deadline;
      this.lastCheckpoint = now;
      this.checkpointed = checkpointed;
    }
  }

  private final Settings settings;
  private final Proposer proposer;
  private final LongSupplier nanos;
  private boolean leader;
  private long term;
  private final Map<Long, Tracked> leases = new HashMap<>();

  public LeaseKeeper(Settings settings, Proposer proposer, LongSupplier nanos) {
    this.settings = settings;
    this.proposer = proposer;
    this.nanos = nanos;
  }

  /** This node leads {@code term} (its no-op applied), with these leases; or it stopped leading. */
  public synchronized void leadership(long term, boolean leader, List<KvDb.Lease> current) {
    leases.clear();
    this.leader = leader;
    this.term = term;
    if (!leader) {
      return;
    }
    long now = nanos.getAsLong();
    long extra = settings.electionTimeout().toNanos();
    for (KvDb.Lease lease : current) {
      long remaining = lease.remainingMillis() >= 0 ? lease.remainingMillis() * 1_000_000L : lease.ttlSeconds() * 1_000_000_000L;
      leases.put(lease.id(), new Tracked(lease.ttlSeconds(), now + remaining + extra, now, lease.remainingMillis() >= 0));
    }
  }

  /** What the state machine applied to leases. */
  public synchronized void changed(List<KvDb.LeaseChange> changes) {
    if (!leader) {
      return;
    }
    long now = nanos.getAsLong();
    for (KvDb.LeaseChange change : changes) {
      if (change.revoked()) {
        leases.remove(change.id());
      } else {
        Tracked t = leases.get(change.id());
        if (t == null) { // granted: it lives its TTL from now
          leases.put(change.id(), new Tracked(change.lease().ttlSeconds(),
              now + change.lease().ttlSeconds() * 1_000_000_000L, now, false));
        } else {
          t.checkpointed = change.lease().remainingMillis() >= 0;
        }
      }
    }
  }

  /** Renews {@code lease} (which the state machine holds) for its TTL from now. */
  public KvResult keepAlive(KvDb.Lease lease) {
    boolean resetCheckpoint;
    long ttl;
    long proposerTerm;
    synchronized (this) {
      if (!leader) {
        return new KvResult.Unavailable("this node is not the leader that keeps leases; retry");
      }
      Tracked t = leases.get(lease.id());
      if (t == null || t.revoking) {
        return new KvResult.LeaseNotFound(lease.id()); // expired: its revoke is on its way
      }
      long now = nanos.getAsLong();
      t.deadline = now + t.ttlSeconds * 1_000_000_000L;
      resetCheckpoint = t.checkpointed;
      t.checkpointed = false;
      t.lastCheckpoint = now;
      ttl = t.ttlSeconds;
      proposerTerm = term;
    }
    if (resetCheckpoint) {
      // a later leader must not hold it to the shorter time checkpointed before this renewal
      proposer.propose(new KvCommand.LeaseCheckpoint(lease.id(), -1, proposerTerm));
    }
    return new KvResult.LeaseKeptAlive(lease.id(), ttl);
  }

  /** The time {@code id} has left as this leader sees it, -1 when this node is not the leader or does not track it. */
  public synchronized long remainingMillis(long id) {
    Tracked t = leader ? leases.get(id) : null;
    return t == null ? -1 : Math.max(0, (t.deadline - nanos.getAsLong()) / 1_000_000L);
  }

  /** How many leases this leader tracks (0 on a follower). */
  public synchronized int tracked() {
    return leases.size();
  }

  /** Proposes the revokes of leases whose time is up and the checkpoints that are due. */
  public void tick() {
    List<KvCommand> proposals = new ArrayList<>();
    synchronized (this) {
      if (!leader) {
        return;
      }
      long now = nanos.getAsLong();
      long interval = settings.checkpointInterval().toNanos();
      for (Map.Entry<Long, Tracked> e : leases.entrySet()) {
        Tracked t = e.getValue();
        if (t.revoking) {
          continue;
        }
        if (now - t.deadline >= 0) {
          t.revoking = true;
          proposals.add(new KvCommand.LeaseRevoke(e.getKey(), term));
        } else if (t.ttlSeconds * 1_000_000_000L > interval && now - t.lastCheckpoint >= interval) {
          t.lastCheckpoint = now;
          t.checkpointed = true;
          proposals.add(new KvCommand.LeaseCheckpoint(e.getKey(), (t.deadline - now) / 1_000_000L, term));
        }
      }
    }
    for (KvCommand command : proposals) {
      proposer.propose(command).whenComplete((result, failure) -> {
        if (failure != null && command instanceof KvCommand.LeaseRevoke revoke) {
          retryLater(revoke.id());
        }
      });
    }
  }

  /** A revoke that failed (this leader lost its place, or the proposal timed out): the next tick tries again. */
  private synchronized void retryLater(long id) {
    Tracked t = leases.get(id);
    if (t != null) {
      t.revoking = false;
    }
  }
}
