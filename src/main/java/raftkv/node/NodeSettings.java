package raftkv.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import raftkv.raft.Peer;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Who a node is and where it lives (API.md §1), read once from {@code raftkv.node}.
 *
 * @param httpPort -1 for a node without an HTTP endpoint
 * @param peers    the initial voters (--peers), read on a first start only; empty for a node that joins
 * @param join     the running members a node started with --join contacts, never this node (empty without
 *                 --join). With --peers as well it is a bad flag on a first start ({@link DataDir#checkFirstStart})
 *                 and read for its contacts only on a restart
 */
public record NodeSettings(String id, String host, int raftPort, int httpPort, Path dataDir, List<Peer> peers,
                           List<Peer> join) {

  public NodeSettings {
    peers = peers == null ? List.of() : List.copyOf(peers);
    join = join == null ? List.of() : List.copyOf(join);
  }

  /** A node of a cluster bootstrapped with {@code peers}. */
  public NodeSettings(String id, String host, int raftPort, int httpPort, Path dataDir, List<Peer> peers) {
    this(id, host, raftPort, httpPort, dataDir, peers, List.of());
  }

  /** A node that joins a running cluster through {@code contacts} (--join). */
  public static NodeSettings joining(String id, String host, int raftPort, int httpPort, Path dataDir,
                                     List<Peer> contacts) {
    return new NodeSettings(id, host, raftPort, httpPort, dataDir, List.of(), contacts);
  }

  /** Whether this node was started with --join (with or without --peers). */
  public boolean joins() {
    return !join.isEmpty();
  }

  /** The ActorSystem name every node of a cluster shares. */
  public static final String SYSTEM_NAME = "raftkv";

  /** Reads and validates; throws IllegalArgumentException with a one-line reason naming the setting. */
  public static NodeSettings fromConfig(Config root) {
    Config c = root.getConfig("raftkv.node");
    String id = c.getString("id");
    if (id.isBlank() || !Peer.isValidId(id)) {
      throw new IllegalArgumentException("--id must be a name of 1 to 64 letters, digits, '.', '_' or '-'"
          + (id.isBlank() ? "" : ", not '" + (id.length() > 64 ? id.substring(0, 64) + "..." : id) + "'"));
    }
    int raftPort = port(c, "raft-port", "--raft-port", false);
    int httpPort = port(c, "http-port", "--http-port", true);
    String host = c.getString("host");
    if (host.isBlank()) {
      throw new IllegalArgumentException("--host is empty");
    }
    if (host.length() > 253) {
      throw new IllegalArgumentException("--host is " + host.length() + " characters long, a host name has at most 253");
    }
    String dataDir = c.getString("data-dir");
    if (dataDir.isBlank()) {
      throw new IllegalArgumentException("--data-dir is empty");
    }
    String joinSpec = c.hasPath("join") ? c.getString("join") : "";
    String peerSpec = c.getString("peers");
    if (joinSpec.isBlank() && peerSpec.isBlank()) {
      throw new IllegalArgumentException("--peers is empty: give id@host:port for every voter, this node included"
          + " (or --join with the members of a running cluster to add this node to it)");
    }
    List<Peer> join = joinSpec.isBlank() ? List.of() : parseList("--join", joinSpec);
    for (Peer p : join) {
      if (p.id().equals(id) || (p.host().equals(host) && p.port() == raftPort)) {
        throw new IllegalArgumentException("--join lists this node" + (p.id().equals(id) ? "'s id '" + id + "'"
            : "'s address " + host + ":" + raftPort) + " (" + p.id() + "@" + p.address() + "): give the members of the"
            + " running cluster to contact, not this node");
      }
    }
    List<Peer> peers = peerSpec.isBlank() ? List.of() : parseList("--peers", peerSpec);
    if (!peers.isEmpty()) {
      Peer me = peers.stream().filter(p -> p.id().equals(id)).findFirst().orElseThrow(() ->
          new IllegalArgumentException("--peers does not list this node's id '" + id + "'"));
      if (me.port() != raftPort || !me.host().equals(host)) {
        throw new IllegalArgumentException("--peers lists " + id + " at " + me.address()
            + " but the node binds " + host + ":" + raftPort);
      }
    }
    if (httpPort == raftPort) {
      throw new IllegalArgumentException("--http-port and --raft-port are both " + raftPort);
    }
    return new NodeSettings(id, host, raftPort, httpPort, Path.of(dataDir).toAbsolutePath().normalize(), peers, join);
  }

  /** {@link Peer#parseList}, with a message that names {@code flag} (--peers or --join). */
  static List<Peer> parseList(String flag, String spec) {
    try {
      return Peer.parseList(spec);
    } catch (IllegalArgumentException e) {
      String reason = String.valueOf(e.getMessage()).replace("--peers", flag);
      throw new IllegalArgumentException(reason.contains(flag) ? reason : flag + ": " + reason, e);
    }
  }

  private static int port(Config c, String key, String flag, boolean allowNone) {
    int p;
    try {
      p = c.getInt(key);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(flag + " must be a port number, not '" + c.getValue(key).unwrapped() + "'");
    }
    if ((p < 1 || p > 65535) && !(allowNone && p == -1)) {
      throw new IllegalArgumentException(flag + " must be between 1 and 65535, not " + p);
    }
    return p;
  }

  public String httpAddress() {
    return httpPort < 0 ? null : host + ":" + httpPort;
  }

  /**
   * The Akka settings that follow from this node's settings: remoting address, seed nodes (every
   * peer; for a node started with --join, the running members it contacts and nothing else),
   * journal and snapshot dirs under the data dir. Put them in front of the rest.
   */
  public Config akkaConfig() {
    Map<String, Object> m = new HashMap<>();
    m.put("akka.remote.artery.canonical.hostname", host);
    m.put("akka.remote.artery.canonical.port", raftPort);
    m.put("akka.cluster.seed-nodes", ConfigValueFactory.fromIterable((joins() ? join : peers).stream()
        .map(p -> "akka://" + SYSTEM_NAME + "@" + p.host() + ":" + p.port()).toList()));
    m.put("raftkv.journal.dir", dataDir.resolve("journal").toString());
    m.put("raftkv.snapshot-store.dir", dataDir.resolve("snapshots").toString());
    return ConfigFactory.parseMap(m);
  }
}
