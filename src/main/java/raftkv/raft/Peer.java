package raftkv.raft;

import raftkv.CborSerializable;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** A cluster member: its stable id and the host and port of its Akka remoting (Raft) endpoint. */
public record Peer(String id, String host, int port) implements CborSerializable {

  public String address() {
    return host + ":" + port;
  }

  /**
   * Parses {@code n1@127.0.0.1:2552,n2@127.0.0.1:2553}; throws IllegalArgumentException with a
   * one-line reason on any malformed, duplicate or out-of-range element.
   */
  public static List<Peer> parseList(String spec) {
    if (spec == null || spec.isBlank()) {
      throw new IllegalArgumentException("--peers is empty: give id@host:port for every voter, this node included");
    }
    List<Peer> peers = new ArrayList<>();
    Set<String> ids = new HashSet<>();
    Set<String> addresses = new HashSet<>();
    for (String part : spec.split(",")) {
      String p = part.trim();
      int at = p.indexOf('@');
      int colon = p.lastIndexOf(':');
      if (at <= 0 || colon < at + 2 || colon == p.length() - 1) {
        throw new IllegalArgumentException("peer '" + p + "' is not id@host:port");
      }
      String id = p.substring(0, at);
      String host = p.substring(at + 1, colon);
      int port;
      try {
        port = Integer.parseInt(p.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("peer '" + p + "' has a port that is not a number");
      }
      if (port < 1 || port > 65535) {
        throw new IllegalArgumentException("peer '" + p + "' has port " + port + ", outside 1..65535");
      }
      if (!ids.add(id)) {
        throw new IllegalArgumentException("peer id '" + id + "' appears twice in --peers");
      }
      if (!addresses.add(host + ":" + port)) {
        throw new IllegalArgumentException("address " + host + ":" + port + " appears twice in --peers");
      }
      peers.add(new Peer(id, host, port));
    }
    return List.copyOf(peers);
  }
}
