package raftkv.node;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import raftkv.raft.Peer;
import raftkv.raft.RaftNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How a node starts on its data dir with --join (API.md §1): it bootstraps nothing and has no
 * cluster id until it adopts the leader's, which it then keeps; --join with --peers is refused on a
 * first start only.
 */
class DataDirJoinTest {
  private static final List<Peer> PEERS = List.of(
      new Peer("n1", "127.0.0.1", 2552), new Peer("n2", "127.0.0.1", 2553), new Peer("n3", "127.0.0.1", 2554));
  private static final Peer N4 = new Peer("n4", "127.0.0.1", 2555);
  private static final List<Peer> WITH_N4 = List.of(PEERS.get(0), PEERS.get(1), PEERS.get(2), N4);
  private static final long LEADERS_ID = 0x1234_5678_9abc_def0L;

  @TempDir
  Path tmp;

  private NodeSettings n4(Path dir, List<Peer> peers, List<Peer> join) {
    return new NodeSettings("n4", N4.host(), N4.port(), 8084, dir, peers, join);
  }

  /** A data dir of n4 claimed and (when {@code journal}) with the journal a start leaves. */
  private Path dir(String name, boolean journal) throws Exception {
    Path dir = tmp.resolve(name);
    DataDir.claim(dir, "n4");
    if (journal) {
      Files.createDirectories(dir.resolve("journal")); // the journal's files do not matter here
    }
    return dir;
  }

  @Test
  void aFirstStartWithJoinBootstrapsNothingAndWritesNoClusterId() throws Exception {
    Path dir = dir("n4", false);
    NodeSettings settings = n4(dir, List.of(), PEERS);
    DataDir.checkFirstStart(settings);
    DataDir.Start start = DataDir.start(settings, "raftkv");
    assertTrue(start.joining());
    assertEquals(List.of(), start.initialVoters());
    assertEquals(0, start.clusterId(), "no id until the leader's is adopted");
    assertEquals(PEERS, start.join().contacts());
    assertNotNull(start.join().storeClusterId());
    assertFalse(Files.exists(dir.resolve(DataDir.CLUSTER_ID_FILE)), "no bootstrap id derived");
    assertNull(DataDir.storedClusterId(dir));
    assertEquals("n1@127.0.0.1:2552,n2@127.0.0.1:2553,n3@127.0.0.1:2554\n",
        Files.readString(dir.resolve(DataDir.JOIN_FILE)));
  }

  @Test
  void theAdoptedIdIsStoredAndARestartReadsIt() throws Exception {
    Path dir = dir("n4", false);
    DataDir.Start first = DataDir.start(n4(dir, List.of(), PEERS), "raftkv");
    Files.createDirectories(dir.resolve("journal")); // the node ran
    first.join().storeClusterId().accept(LEADERS_ID); // the leader that added it replicated to it
    assertEquals(RaftNode.clusterIdText(LEADERS_ID) + "\n", Files.readString(dir.resolve(DataDir.CLUSTER_ID_FILE)));
    assertEquals(LEADERS_ID, DataDir.storedClusterId(dir));
    assertFalse(Files.exists(dir.resolve(DataDir.CLUSTER_ID_FILE + ".tmp")));

    DataDir.Start again = DataDir.start(n4(dir, List.of(), PEERS), "raftkv");
    assertEquals(LEADERS_ID, again.clusterId());
    assertEquals(List.of(), again.initialVoters());
    assertEquals(PEERS, again.join().contacts(), "the node still knows its contacts");
    assertNull(again.join().storeClusterId(), "nothing left to adopt");

    // restarted with --peers (and without --join): the dir joined, so --peers bootstraps nothing
    // and the kept id wins over one derived from --peers
    DataDir.Start withPeers = DataDir.start(n4(dir, WITH_N4, List.of()), "raftkv");
    assertEquals(LEADERS_ID, withPeers.clusterId());
    assertEquals(List.of(), withPeers.initialVoters());
    assertEquals(PEERS, withPeers.join().contacts(), "the contacts it joined through");
    assertNull(withPeers.join().storeClusterId());

    // with both flags on a restart: allowed, and still nothing bootstrapped
    NodeSettings both = n4(dir, WITH_N4, PEERS.subList(0, 1));
    DataDir.checkFirstStart(both);
    DataDir.Start withBoth = DataDir.start(both, "raftkv");
    assertEquals(LEADERS_ID, withBoth.clusterId());
    assertEquals(List.of(), withBoth.initialVoters());
    assertEquals(PEERS.subList(0, 1), withBoth.join().contacts(), "--join given again names the contacts");
  }

  @Test
  void aNodeThatStoppedBeforeItWasAddedStillJoinsAndDerivesNoId() throws Exception {
    Path dir = dir("n4", false);
    DataDir.start(n4(dir, List.of(), PEERS), "raftkv");
    Files.createDirectories(dir.resolve("journal")); // ran, waited, was stopped before any leader reached it

    for (NodeSettings restart : List.of(n4(dir, List.of(), PEERS), n4(dir, WITH_N4, PEERS), n4(dir, WITH_N4, List.of()))) {
      DataDir.checkFirstStart(restart);
      DataDir.Start start = DataDir.start(restart, "raftkv");
      assertTrue(start.joining(), restart.toString());
      assertEquals(0, start.clusterId());
      assertEquals(List.of(), start.initialVoters());
      assertEquals(PEERS, start.join().contacts());
      assertNotNull(start.join().storeClusterId(), "it still has to adopt the leader's id");
      assertFalse(Files.exists(dir.resolve(DataDir.CLUSTER_ID_FILE)), "no id derived from --peers");
    }
  }

  @Test
  void aJournalWithoutAnIdAndJoinGivenJoinsEvenWithoutTheJoinFile() throws Exception {
    Path dir = dir("n4", true);
    DataDir.Start start = DataDir.start(n4(dir, WITH_N4, PEERS), "raftkv");
    assertTrue(start.joining());
    assertEquals(0, start.clusterId());
    assertNotNull(start.join().storeClusterId());
    assertFalse(Files.exists(dir.resolve(DataDir.CLUSTER_ID_FILE)));
    assertTrue(Files.exists(dir.resolve(DataDir.JOIN_FILE)));
  }

  @Test
  void joinWithPeersIsRefusedOnAFirstStartOnly() throws Exception {
    Path fresh = dir("fresh", false);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> DataDir.checkFirstStart(n4(fresh, WITH_N4, PEERS)));
    assertTrue(e.getMessage().contains("--join") && e.getMessage().contains("--peers"), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
    DataDir.checkFirstStart(n4(fresh, List.of(), PEERS));
    DataDir.checkFirstStart(n4(fresh, WITH_N4, List.of()));
    DataDir.checkFirstStart(n4(dir("used", true), WITH_N4, PEERS));
  }

  @Test
  void aBootstrappedNodeRestartedWithJoinKeepsItsIdAndItsVoters() throws Exception {
    Path dir = dir("n4", false);
    DataDir.Start first = DataDir.start(n4(dir, WITH_N4, List.of()), "raftkv");
    assertFalse(first.joining());
    assertNull(first.join());
    assertEquals(WITH_N4, first.initialVoters());
    assertEquals(DataDir.bootstrapClusterId(WITH_N4, "raftkv"), first.clusterId());
    assertFalse(Files.exists(dir.resolve(DataDir.JOIN_FILE)));
    Files.createDirectories(dir.resolve("journal"));

    DataDir.Start restart = DataDir.start(n4(dir, WITH_N4, PEERS), "other token");
    assertEquals(first.clusterId(), restart.clusterId());
    assertEquals(WITH_N4, restart.initialVoters(), "as before --join: the log's membership rules anyway");
    assertEquals(PEERS, restart.join().contacts());
    assertNull(restart.join().storeClusterId());
  }

  @Test
  void aJoinThatNeverOpenedItsJournalLeavesAFreshDirForPeers() throws Exception {
    Path dir = dir("n4", false);
    DataDir.start(n4(dir, List.of(), PEERS), "raftkv"); // stopped before the node even read its journal
    DataDir.Start start = DataDir.start(n4(dir, WITH_N4, List.of()), "raftkv");
    assertFalse(start.joining());
    assertEquals(WITH_N4, start.initialVoters());
    assertEquals(DataDir.bootstrapClusterId(WITH_N4, "raftkv"), start.clusterId());
    assertFalse(Files.exists(dir.resolve(DataDir.JOIN_FILE)));
  }

  @Test
  void aMalformedJoinFileStopsTheNodeWithOneLine() throws Exception {
    Path dir = dir("n4", true);
    Files.writeString(dir.resolve(DataDir.JOIN_FILE), "garbage\n");
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> DataDir.start(n4(dir, WITH_N4, List.of()), "raftkv"));
    assertTrue(e.getMessage().contains(DataDir.JOIN_FILE), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
  }
}
