package raftkv.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;
import raftkv.raft.Peer;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The node's flags as NodeSettings reads them: --peers for a new cluster, --join for a running one. */
class NodeSettingsTest {
  private static final String PEERS = "n1@127.0.0.1:2552,n2@127.0.0.1:2553,n3@127.0.0.1:2554";

  /** The settings of node n4 on 127.0.0.1:2555 (HTTP 8084) with {@code flags} (raftkv.node.* keys) on top. */
  private static NodeSettings n4(Map<String, String> flags) {
    Map<String, Object> m = new HashMap<>(Map.of("id", "n4", "host", "127.0.0.1", "raft-port", "2555",
        "http-port", "8084", "data-dir", "data/n4"));
    m.putAll(flags);
    Map<String, Object> keyed = new HashMap<>();
    m.forEach((k, v) -> keyed.put("raftkv.node." + k, v));
    Config config = ConfigFactory.parseMap(keyed).withFallback(ConfigFactory.defaultReference());
    return NodeSettings.fromConfig(config);
  }

  private static String refused(Map<String, String> flags) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> n4(flags));
    assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    return e.getMessage();
  }

  @Test
  void joinIsParsedAndPeersIsThenOptional() {
    NodeSettings s = n4(Map.of("join", PEERS));
    assertTrue(s.joins());
    assertEquals(List.of(new Peer("n1", "127.0.0.1", 2552), new Peer("n2", "127.0.0.1", 2553),
        new Peer("n3", "127.0.0.1", 2554)), s.join());
    assertEquals(List.of(), s.peers());
    assertEquals(Path.of("data/n4").toAbsolutePath().normalize(), s.dataDir());
  }

  @Test
  void aNodeWithoutJoinDoesNotJoin() {
    NodeSettings s = n4(Map.of("peers", PEERS + ",n4@127.0.0.1:2555"));
    assertFalse(s.joins());
    assertEquals(List.of(), s.join());
    assertEquals(4, s.peers().size());
  }

  @Test
  void joinWithPeersIsParsedBothAsTheDataDirDecidesWhetherThatIsAllowed() {
    // refused on a first start only (DataDir.checkFirstStart); NodeSettings cannot tell
    NodeSettings s = n4(Map.of("join", PEERS, "peers", PEERS + ",n4@127.0.0.1:2555"));
    assertTrue(s.joins());
    assertEquals(4, s.peers().size());
  }

  @Test
  void theSeedNodesOfAJoiningNodeAreTheMembersItContactsOnly() {
    NodeSettings joining = n4(Map.of("join", "n1@127.0.0.1:2552,n2@127.0.0.1:2553"));
    assertEquals(List.of("akka://raftkv@127.0.0.1:2552", "akka://raftkv@127.0.0.1:2553"),
        joining.akkaConfig().getStringList("akka.cluster.seed-nodes"));
    NodeSettings bootstrapping = n4(Map.of("peers", "n1@127.0.0.1:2552,n4@127.0.0.1:2555"));
    assertEquals(List.of("akka://raftkv@127.0.0.1:2552", "akka://raftkv@127.0.0.1:2555"),
        bootstrapping.akkaConfig().getStringList("akka.cluster.seed-nodes"));
  }

  @Test
  void joinMustNotListThisNode() {
    String byId = refused(Map.of("join", "n1@127.0.0.1:2552,n4@10.0.0.4:2555"));
    assertEquals("--join lists this node's id 'n4' (n4@10.0.0.4:2555): give the members of the running cluster"
        + " to contact, not this node", byId);
    String byAddress = refused(Map.of("join", "n1@127.0.0.1:2552,other@127.0.0.1:2555"));
    assertTrue(byAddress.startsWith("--join lists this node's address 127.0.0.1:2555 (other@127.0.0.1:2555)"),
        byAddress);
  }

  @Test
  void aMalformedJoinIsRefusedWithAMessageNamingJoin() {
    for (String bad : List.of("n1@127.0.0.1", "n1@127.0.0.1:port", "n1@127.0.0.1:70000", "@127.0.0.1:2552",
        "n1@127.0.0.1:2552,n1@127.0.0.1:2553", "n1@127.0.0.1:2552,n2@127.0.0.1:2552")) {
      String message = refused(Map.of("join", bad));
      assertTrue(message.contains("--join"), bad + ": " + message);
      assertFalse(message.contains("--peers"), bad + ": " + message);
    }
    assertEquals("--join: peer 'n1@127.0.0.1' is not id@host:port", refused(Map.of("join", "n1@127.0.0.1")));
    assertEquals("peer id 'n1' appears twice in --join",
        refused(Map.of("join", "n1@127.0.0.1:2552,n1@127.0.0.1:2553")));
  }

  @Test
  void aMalformedPeersIsNamedAsPeers() {
    assertEquals("--peers: peer 'n1@127.0.0.1' is not id@host:port",
        refused(Map.of("peers", "n1@127.0.0.1", "join", PEERS)));
  }

  @Test
  void neitherPeersNorJoinIsRefusedNamingBoth() {
    String message = refused(Map.of());
    assertTrue(message.startsWith("--peers is empty"), message);
    assertTrue(message.contains("--join"), message);
  }

  @Test
  void theSelfChecksOfPeersStillApplyToPeers() {
    assertEquals("--peers does not list this node's id 'n4'", refused(Map.of("peers", PEERS)));
    assertTrue(refused(Map.of("peers", PEERS + ",n4@127.0.0.1:2556")).contains("but the node binds 127.0.0.1:2555"));
  }
}
