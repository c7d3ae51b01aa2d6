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

  /** What a node id may be: 1 to 64 letters, digits, '.', '_' or '-'. */
  public static final java.util.regex.Pattern ID = java.util.regex.Pattern.compile("[A-Za-z0-9_.-]{1,64}");

  /** Whether {@code id} is a well-formed node id ({@link #ID}). */
  public static boolean isValidId(String id) {
    return id != null && ID.matcher(id).matches();
  }

  /**
   * Member {@code id} at {@code address} ({@code host:port}, port 1..65535); throws
   * IllegalArgumentException with a one-line reason when the address is malformed.
   */
  public static Peer at(String id, String address) {
    int colon = address == null ? -1 : address.lastIndexOf(':');
    int port = -1;
    if (colon > 0 && colon < address.length() - 1) {
      try {
        port = Integer.parseInt(address.substring(colon + 1));
      } catch (NumberFormatException e) {
        port = -1;
      }
    }
    if (port < 1 || port > 65535 || address.substring(0, colon).isBlank()) {
      throw new IllegalArgumentException("address '" + (address != null && address.length() > 80
          ? address.substring(0, 80) + "..." : address) + "' is not host:port with a port in 1..65535");
    }
    return new Peer(id, address.substring(0, colon), port);
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
