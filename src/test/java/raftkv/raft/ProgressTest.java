package raftkv.raft;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A leader's view of one follower: the three states and their transitions (after etcd's progress.go). */
class ProgressTest {

  @Test
  void aNewFollowerIsProbedAndMovesToReplicateOnItsFirstSuccess() {
    Progress p = new Progress(11, 0);
    assertEquals(Progress.State.PROBE, p.state);
    assertTrue(p.acknowledged(10));
    p.becomeReplicate();
    assertEquals(Progress.State.REPLICATE, p.state);
    assertEquals(10, p.matchIndex);
    assertEquals(11, p.nextIndex);
  }

  @Test
  void anAcknowledgementNeverMovesMatchBackNorNextBelowIt() {
    Progress p = new Progress(11, 0);
    p.acknowledged(10);
    p.nextIndex = 50; // pipelined ahead
    assertFalse(p.acknowledged(7), "a late reply about less");
    assertEquals(10, p.matchIndex);
    assertEquals(50, p.nextIndex, "what is in flight stays in flight");
  }

  @Test
  void aRejectProbesFromTheHintButNeverBelowWhatMatched() {
    Progress p = new Progress(11, 0);
    p.acknowledged(10);
    p.becomeReplicate();
    p.becomeProbe(4);
    assertEquals(Progress.State.PROBE, p.state);
    assertEquals(11, p.nextIndex, "entries up to matchIndex are known to match");
    p.becomeProbe(30);
    assertEquals(30, p.nextIndex);
  }

  @Test
  void aSnapshotTransferHasOneFileAndAnOffsetAndEndsInProbeAfterIt() {
    Progress p = new Progress(5, 0);
    p.becomeSnapshot();
    assertEquals(Progress.State.SNAPSHOT, p.state);
    assertFalse(p.transferring(), "waiting for a file or a slot");
    p.startTransfer(Path.of("s.snap"), 900, 3);
    assertTrue(p.transferring());
    assertEquals(0, p.offset);
    p.offset = 4096;
    p.chunkInFlight = true;
    // installed: the follower's log continues after the snapshot
    p.acknowledged(900);
    p.becomeProbe(901);
    assertEquals(Progress.State.PROBE, p.state);
    assertFalse(p.transferring());
    assertFalse(p.chunkInFlight);
    assertEquals(900, p.matchIndex);
    assertEquals(901, p.nextIndex);
  }

  @Test
  void startingAgainForgetsTheTransferInFlight() {
    Progress p = new Progress(5, 0);
    p.becomeSnapshot();
    p.startTransfer(Path.of("a.snap"), 900, 3);
    p.offset = 8192;
    p.becomeSnapshot(); // a failed read: a new file will be asked for
    assertFalse(p.transferring());
    assertEquals(0, p.offset);
    assertEquals(0, p.snapshotIndex);
  }
}
