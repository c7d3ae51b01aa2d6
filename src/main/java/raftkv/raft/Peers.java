package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;

import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How to reach the other nodes' Raft actors, and the HTTP addresses they advertise. It knows every
 * member of every configuration the log still holds (so that a member being removed can still be
 * answered until its removal commits) and, on a node started with {@code --join}, the members it
 * was told to contact. Who votes and who counts is {@link Membership}'s business. Plain class,
 * owned by the node's actor.
 */
final class Peers {
  private final String selfId;
  private final ActorRefResolver resolver;
  private final String systemName;
  private final Map<String, ActorRef<RaftNode.Command>> refs = new LinkedHashMap<>();
  private final Map<String, String> addresses = new HashMap<>();
  private final Map<String, String> httpAddresses = new HashMap<>();
  private final List<Peer> contacts;
  /** Leaders not (yet) in this node's configuration that told their address (AppendEntries, InstallSnapshot). */
  private final Map<String, Peer> learned = new LinkedHashMap<>();

  Peers(String selfId, String selfHttp, List<Peer> contacts, ActorRefResolver resolver, String systemName) {
    this.selfId = selfId;
    this.resolver = resolver;
    this.systemName = systemName;
    this.contacts = List.copyOf(contacts);
    httpAddresses.put(selfId, selfHttp);
  }

  /** Knows exactly the members of {@code configs} and the join contacts; refs of the others are dropped. */
  void update(Collection<Membership> configs) {
    Map<String, Peer> wanted = new LinkedHashMap<>();
    for (Peer p : contacts) {
      wanted.put(p.id(), p);
    }
    wanted.putAll(learned);
    for (Membership m : configs) {
      for (Membership.Member member : m.members()) {
        wanted.put(member.id(), member.peer());
        if (member.httpAddress() != null && !member.id().equals(selfId)) {
          httpAddresses.putIfAbsent(member.id(), member.httpAddress());
        }
      }
    }
    wanted.remove(selfId);
    refs.keySet().removeIf(id -> !wanted.containsKey(id) || !wanted.get(id).address().equals(addresses.get(id)));
    for (Peer p : wanted.values()) {
      if (!refs.containsKey(p.id())) {
        refs.put(p.id(), resolver.resolveActorRef(
            "akka://" + systemName + "@" + p.host() + ":" + p.port() + "/system/raftkv"));
        addresses.put(p.id(), p.address());
      }
    }
  }

  /**
   * A leader this node does not know told its Raft address ({@code host:port}): it is reachable from
   * now on (dissertation §4.1: a server accepts AppendEntries from a leader that is not in its
   * latest configuration, which it may not have yet). False when the address is malformed.
   */
  boolean learn(String id, String address) {
    if (id.equals(selfId)) {
      return false;
    }
    Peer p;
    try {
      p = Peer.at(id, address);
    } catch (IllegalArgumentException e) {
      return false;
    }
    learned.put(id, p);
    refs.put(id, resolver.resolveActorRef("akka://" + systemName + "@" + p.host() + ":" + p.port() + "/system/raftkv"));
    addresses.put(id, p.address());
    return true;
  }

  /** The Raft actor of node {@code id}, or null when it is not known (or is this node). */
  ActorRef<RaftNode.Command> ref(String id) {
    return refs.get(id);
  }

  boolean isPeer(String id) {
    return refs.containsKey(id);
  }

  /** Whether {@code id} is one of the members a joining node was told to contact. */
  boolean isContact(String id) {
    for (Peer p : contacts) {
      if (p.id().equals(id)) {
        return true;
      }
    }
    return false;
  }

  void noteHttp(String id, String http) {
    if (http != null) {
      httpAddresses.put(id, http);
    }
  }

  String http(String id) {
    return httpAddresses.get(id);
  }
}
