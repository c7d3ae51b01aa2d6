package raftkv.raft;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The configuration (DESIGN.md §7): who votes and who counts, learners in none of it; and how the
 * log keeps it — in effect on append, back to the one before when its entry is truncated, kept at
 * the compaction point, replaced by a snapshot's.
 */
class MembershipTest {

  static Membership.Member voter(String id, int port) {
    return new Membership.Member(id, "127.0.0.1", port, "127.0.0.1:" + (port + 1000), true);
  }

  static Membership.Member learner(String id, int port) {
    return new Membership.Member(id, "127.0.0.1", port, null, false);
  }

  static final Membership THREE = new Membership(List.of(voter("n1", 1), voter("n2", 2), voter("n3", 3)));

  @Nested
  class Quorums {
    @Test
    void learners_count_toward_no_quorum() {
      Membership m = THREE.with(learner("l1", 4)).with(learner("l2", 5));
      assertEquals(2, m.quorumSize(), "a majority of the three voters, whatever the learners");
      assertEquals(3, m.voterCount());
      assertEquals(List.of("n1", "n2", "n3"), m.voterIds());
      assertEquals(List.of("l1", "l2"), m.learners().stream().map(Membership.Member::id).toList());
      assertTrue(m.isMember("l1"));
      assertFalse(m.isVoter("l1"));
      assertTrue(m.isVoter("n2"));
    }

    @Test
    void a_promoted_learner_votes_and_the_quorum_grows_with_it() {
      Membership four = THREE.with(learner("n4", 4)).promoted("n4");
      assertTrue(four.isVoter("n4"));
      assertEquals(3, four.quorumSize(), "a majority of four");
      Membership five = four.with(voter("n5", 5));
      assertEquals(3, five.quorumSize(), "a majority of five");
      assertEquals(2, five.without("n4").without("n5").quorumSize());
    }

    @Test
    void removal_and_lookups_by_id_and_address() {
      Membership m = THREE.without("n2");
      assertFalse(m.isMember("n2"));
      assertEquals(2, m.voterCount());
      assertEquals(2, m.quorumSize(), "both of two");
      assertEquals("n3", THREE.memberAt("127.0.0.1:3").id());
      assertEquals(null, THREE.memberAt("127.0.0.1:9"));
      assertEquals(Membership.ofVoters(List.of(new Peer("a", "h", 1))).voterPeers(), List.of(new Peer("a", "h", 1)));
    }
  }

  @Nested
  class InTheLog {
    private RaftLog bootstrapped() {
      RaftLog log = new RaftLog();
      log.setBaseMembership(THREE);
      log.append(new LogEntry(1, 1, new LogEntry.NoOp(1)));
      return log;
    }

    @Test
    void a_configuration_takes_effect_when_its_entry_is_appended_not_when_committed() {
      RaftLog log = bootstrapped();
      Membership four = THREE.with(learner("n4", 4));
      // when
      log.append(new LogEntry(2, 1, new LogEntry.Config(four)));
      // then: nothing commits here; the log says it is in effect
      assertSame(four, log.membership());
      assertEquals(2, log.membershipIndex());
      assertEquals(THREE, log.membershipAt(1));
      assertEquals(four, log.membershipAt(5));
      assertEquals(2, log.firstConfigAfter(1));
      assertEquals(-1, log.firstConfigAfter(2));
    }

    @Test
    void a_truncated_configuration_falls_back_to_the_one_before() {
      RaftLog log = bootstrapped();
      Membership four = THREE.with(learner("n4", 4));
      Membership promoted = four.promoted("n4");
      log.append(new LogEntry(2, 1, new LogEntry.Config(four)));
      log.append(new LogEntry(3, 1, new LogEntry.Config(promoted)));
      assertSame(promoted, log.membership());
      // when: a new leader's entries replace index 3 on (merge truncates at the conflict)
      log.merge(List.of(new LogEntry(3, 2, new LogEntry.NoOp(2))));
      // then
      assertSame(four, log.membership(), "back to the configuration at index 2");
      assertEquals(2, log.membershipIndex());
      // when: and index 2 too
      log.truncateFrom(2);
      assertSame(THREE, log.membership(), "back to the bootstrap configuration");
      assertEquals(0, log.membershipIndex());
    }

    @Test
    void compaction_keeps_the_configuration_at_the_compaction_point() {
      RaftLog log = bootstrapped();
      Membership four = THREE.with(learner("n4", 4));
      Membership five = four.with(learner("n5", 5));
      log.append(new LogEntry(2, 1, new LogEntry.Config(four)));
      log.append(new LogEntry(3, 1, new LogEntry.NoOp(1)));
      log.append(new LogEntry(4, 1, new LogEntry.Config(five)));
      // when: compacted past the first configuration entry, not the second
      log.compactTo(3, 1);
      // then
      assertEquals(four, log.baseMembership());
      assertSame(five, log.membership());
      assertEquals(four, log.membershipAt(3));
      assertEquals(List.of(3L, 4L), List.copyOf(log.configHistory().keySet()));
      // and a copy (the journal's) says the same
      RaftLog copy = log.copy();
      assertEquals(five, copy.membership());
      assertEquals(four, copy.baseMembership());
      // when: compacted past everything
      log.compactTo(4, 1);
      assertEquals(five, log.baseMembership());
      assertEquals(five, log.membership());
    }

    @Test
    void a_snapshot_installed_over_the_log_brings_its_own_configuration() {
      RaftLog log = bootstrapped();
      log.append(new LogEntry(2, 1, new LogEntry.Config(THREE.with(learner("stale", 9))))); // never committed
      Membership snapshots = THREE.with(voter("n4", 4));
      // when: a snapshot at 7 (term 3) that this log does not hold
      log.compactTo(7, 3, snapshots);
      // then
      assertEquals(snapshots, log.membership());
      assertEquals(7, log.membershipIndex());
      assertEquals(-1, log.firstConfigAfter(0));
    }

    @Test
    void a_snapshot_the_log_holds_keeps_the_configurations_after_it() {
      RaftLog log = bootstrapped();
      Membership four = THREE.with(learner("n4", 4));
      log.append(new LogEntry(2, 1, new LogEntry.NoOp(1)));
      log.append(new LogEntry(3, 1, new LogEntry.Config(four)));
      // when
      log.compactTo(2, 1, THREE);
      // then
      assertEquals(THREE, log.baseMembership());
      assertSame(four, log.membership(), "the entry after the snapshot point still rules");
    }
  }
}
