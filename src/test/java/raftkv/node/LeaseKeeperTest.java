package raftkv.node;

import org.junit.jupiter.api.Test;
import raftkv.kv.KvCommand;
import raftkv.kv.KvDb;
import raftkv.kv.KvResult;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The leader's lease expiry rules, on a clock the test moves: a lease expires its TTL after its
 * grant or last keepalive; a new leader adds one election timeout to what is left; a follower keeps
 * nothing; an expired lease answers not found while its revoke is on its way; long leases are
 * checkpointed, and a keepalive clears the checkpoint.
 */
class LeaseKeeperTest {
  private static final long SECOND = 1_000_000_000L;

  private long now = 1_000 * SECOND;
  private final List<KvCommand> proposed = new ArrayList<>();
  private CompletableFuture<KvResult> answer = CompletableFuture.completedFuture(new KvResult.LeaseRevoked(1, 0));
  private final LeaseKeeper keeper = new LeaseKeeper(new LeaseKeeper.Settings(Duration.ofSeconds(1), Duration.ofSeconds(60)),
      command -> {
        proposed.add(command);
        return answer;
      }, () -> now);

  private static KvDb.Lease lease(long id, long ttl) {
    return new KvDb.Lease(id, ttl, 1, -1);
  }

  private List<KvCommand> tick() {
    proposed.clear();
    keeper.tick();
    return List.copyOf(proposed);
  }

  @Test
  void a_lease_expires_its_ttl_after_its_grant_or_last_keepalive() {
    keeper.leadership(2, true, List.of());
    keeper.changed(List.of(new KvDb.LeaseChange(7, lease(7, 10))));
    now += 9 * SECOND;
    assertEquals(List.of(), tick());
    assertEquals(new KvResult.LeaseKeptAlive(7, 10), keeper.keepAlive(lease(7, 10)));
    now += 9 * SECOND;
    assertEquals(List.of(), tick(), "renewed: 10 s from the keepalive");
    assertEquals(1_000, keeper.remainingMillis(7));
    now += SECOND;
    assertEquals(List.of(new KvCommand.LeaseRevoke(7, 2)), tick(), "the revoke carries the leader's term");
    assertEquals(List.of(), tick(), "proposed once");
    assertEquals(new KvResult.LeaseNotFound(7), keeper.keepAlive(lease(7, 10)), "its revoke is on its way");
    keeper.changed(List.of(new KvDb.LeaseChange(7, null)));
    assertEquals(0, keeper.tracked());
  }

  @Test
  void a_new_leader_gives_every_lease_what_is_left_plus_an_election_timeout() {
    keeper.leadership(3, true, List.of(lease(1, 10), new KvDb.Lease(2, 600, 2, 30_000)));
    now += 10 * SECOND;
    assertEquals(List.of(), tick());
    now += SECOND;
    assertEquals(List.of(new KvCommand.LeaseRevoke(1, 3)), tick());
    now += 19 * SECOND; // lease 2's checkpoint said 30 s left: 30 + 1 from the election
    assertEquals(List.of(), tick());
    now += SECOND;
    assertEquals(List.of(new KvCommand.LeaseRevoke(2, 3)), tick());
  }

  @Test
  void a_follower_keeps_nothing_and_sends_keepalives_back() {
    keeper.leadership(4, false, List.of());
    KvResult r = keeper.keepAlive(lease(1, 10));
    assertInstanceOf(KvResult.Unavailable.class, r);
    assertEquals(-1, keeper.remainingMillis(1));
    now += 1_000 * SECOND;
    assertEquals(List.of(), tick());
    keeper.leadership(5, true, List.of(lease(1, 10)));
    keeper.leadership(5, false, List.of());
    now += 1_000 * SECOND;
    assertEquals(List.of(), tick(), "a leader that stepped down proposes no revoke");
  }

  @Test
  void a_revoke_that_fails_is_proposed_again_at_the_next_tick() {
    keeper.leadership(2, true, List.of(lease(9, 2)));
    answer = CompletableFuture.failedFuture(new RuntimeException("not committed"));
    now += 4 * SECOND;
    assertEquals(List.of(new KvCommand.LeaseRevoke(9, 2)), tick());
    answer = CompletableFuture.completedFuture(new KvResult.LeaseRevoked(1, 0));
    assertEquals(List.of(new KvCommand.LeaseRevoke(9, 2)), tick());
  }

  @Test
  void long_leases_are_checkpointed_and_a_keepalive_clears_the_checkpoint() {
    keeper.leadership(6, true, List.of(lease(1, 3_600), lease(2, 60)));
    now += 60 * SECOND + SECOND / 2;
    List<KvCommand> checkpoints = tick();
    assertEquals(1, checkpoints.size(), "only the lease longer than the interval: " + checkpoints);
    KvCommand.LeaseCheckpoint c = (KvCommand.LeaseCheckpoint) checkpoints.get(0);
    assertEquals(1, c.id());
    assertEquals(6, c.term());
    assertEquals(3_600_000 + 1_000 - 60_500, c.remainingMillis(), "the TTL and the election timeout, less the time gone");
    keeper.changed(List.of(new KvDb.LeaseChange(1, new KvDb.Lease(1, 3_600, 6, c.remainingMillis()))));
    proposed.clear();
    keeper.keepAlive(lease(1, 3_600));
    assertEquals(List.of(new KvCommand.LeaseCheckpoint(1, -1, 6)), proposed, "the renewal clears the shorter checkpoint");
  }
}
