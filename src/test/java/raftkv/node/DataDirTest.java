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
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cluster id a data dir keeps: made once at the first start, then read, never made again. */
class DataDirTest {
  private static final List<Peer> PEERS = List.of(
      new Peer("n1", "127.0.0.1", 2552), new Peer("n2", "127.0.0.1", 2553), new Peer("n3", "127.0.0.1", 2554));

  @TempDir
  Path tmp;

  @Test
  void theNodesOfOneBootstrapAgreeOnTheirClusterIdWithoutTalking() throws Exception {
    Files.createDirectories(tmp.resolve("n1"));
    Files.createDirectories(tmp.resolve("n3"));
    long n1 = DataDir.clusterId(tmp.resolve("n1"), PEERS, "raftkv");
    long n3 = DataDir.clusterId(tmp.resolve("n3"), List.of(PEERS.get(2), PEERS.get(0), PEERS.get(1)), "raftkv");
    assertEquals(n1, n3, "the order of --peers does not matter");
    assertNotEquals(n1, DataDir.bootstrapClusterId(PEERS, "another"), "another token, another cluster");
    assertNotEquals(n1, DataDir.bootstrapClusterId(List.of(PEERS.get(0), PEERS.get(1),
        new Peer("n3", "127.0.0.1", 2555)), "raftkv"), "other addresses, another cluster");
    assertNotEquals(0, n1);
  }

  @Test
  void theIdIsKeptAndWinsOverThePeersGivenAtARestart() throws Exception {
    Path dir = tmp.resolve("n1");
    Files.createDirectories(dir);
    long first = DataDir.clusterId(dir, PEERS, "raftkv");
    assertEquals(RaftNode.clusterIdText(first) + "\n", Files.readString(dir.resolve(DataDir.CLUSTER_ID_FILE)));
    assertEquals(first, DataDir.clusterId(dir, PEERS.subList(0, 1), "changed"), "a restart keeps the cluster's id");
  }

  @Test
  void aMalformedIdFileStopsTheNodeWithOneLine() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("n1"));
    Files.writeString(dir.resolve(DataDir.CLUSTER_ID_FILE), "not an id\nat all\n");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> DataDir.clusterId(dir, PEERS, "raftkv"));
    assertTrue(e.getMessage().contains(DataDir.CLUSTER_ID_FILE), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
  }

  @Test
  void aRestoredClusterIsNeitherTheOldOneNorAnotherRestore() {
    byte[] backupA = new byte[32];
    byte[] backupB = new byte[32];
    backupB[31] = 1;
    long restored = DataDir.restoredClusterId(backupA, PEERS, "raftkv");
    assertNotEquals(DataDir.bootstrapClusterId(PEERS, "raftkv"), restored, "the same machines, a new cluster");
    assertEquals(restored, DataDir.restoredClusterId(backupA.clone(), PEERS, "raftkv"), "every node of it agrees");
    assertNotEquals(restored, DataDir.restoredClusterId(backupB, PEERS, "raftkv"), "another backup, another cluster");
  }

  @Test
  void anUnfinishedRestoreIsRefusedAndADirOfAnEarlierVersionGetsTheBootstrapId() throws Exception {
    Path restoring = Files.createDirectories(tmp.resolve("restoring").resolve("kv"));
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> DataDir.clusterId(restoring.getParent(), PEERS, "raftkv"));
    assertTrue(e.getMessage().contains("unfinished restore"), e.getMessage());
    Path older = Files.createDirectories(tmp.resolve("older").resolve("journal")).getParent();
    assertEquals(DataDir.bootstrapClusterId(PEERS, "raftkv"), DataDir.clusterId(older, PEERS, "raftkv"));
  }
}
