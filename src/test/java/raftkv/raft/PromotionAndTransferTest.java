package raftkv.raft;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** When a learner may be promoted, and which voter a transfer without a target picks. */
class PromotionAndTransferTest {

  private static Progress replicating(long match) {
    Progress p = new Progress(match + 1, System.nanoTime());
    p.acknowledged(match);
    p.becomeReplicate();
    return p;
  }

  @Test
  void a_learner_is_promoted_only_within_the_lag_and_never_during_a_snapshot() {
    long last = 10_000;
    assertTrue(replicating(last).readyToPromote(last, 1000), "caught up");
    assertTrue(replicating(last - 1000).readyToPromote(last, 1000), "exactly at the allowed lag");
    assertFalse(replicating(last - 1001).readyToPromote(last, 1000), "one entry too far behind");
    Progress probing = new Progress(1, System.nanoTime());
    assertFalse(probing.readyToPromote(last, 1000), "a fresh learner whose log matches nothing yet");
    Progress snapshot = replicating(last);
    snapshot.becomeSnapshot();
    assertFalse(snapshot.readyToPromote(last, 1000), "a snapshot is on its way to it");
  }

  @Test
  void a_transfer_without_a_target_picks_the_most_up_to_date_voter_never_a_learner_or_itself() {
    Membership m = new Membership(List.of(
        new Membership.Member("n1", "h", 1, null, true),
        new Membership.Member("n2", "h", 2, null, true),
        new Membership.Member("n3", "h", 3, null, true),
        new Membership.Member("l1", "h", 4, null, false)));
    Map<String, Progress> progress = new LinkedHashMap<>();
    progress.put("n2", replicating(50));
    progress.put("n3", replicating(70));
    progress.put("l1", replicating(99));
    assertEquals("n3", Leader.mostUpToDateVoter(m, "n1", progress));
    progress.put("n2", replicating(70));
    assertEquals("n2", Leader.mostUpToDateVoter(m, "n1", progress), "a tie goes to the first in the configuration");
    assertNull(Leader.mostUpToDateVoter(new Membership(List.of(m.members().get(0), m.members().get(3))), "n1", progress),
        "no other voter");
  }
}
