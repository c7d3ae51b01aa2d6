package raftkv.raft;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorRefResolver;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The membership as this node sees it: who votes, how many make a quorum, how to reach each peer's
 * Raft actor, and the HTTP addresses peers advertise. Membership changes (a later issue) change it
 * here only. Plain class, owned by the node's actor.
 */
final class Peers {
  private final String selfId;
  private List<Peer> voters;
  private final Map<String, ActorRef<RaftNode.Command>> refs = new LinkedHashMap<>();
  private final Map<String, String> httpAddresses = new HashMap<>();

  Peers(String selfId, String selfHttp, List<Peer> voters, ActorRefResolver resolver, String systemName) {
    this.selfId = selfId;
    this.voters = List.copyOf(voters);
    httpAddresses.put(selfId, selfHttp);
    for (Peer p : voters) {
      if (!p.id().equals(selfId)) {
        refs.put(p.id(), resolver.resolveActorRef(
            "akka://" + systemName + "@" + p.host() + ":" + p.port() + "/system/raftkv"));
      }
    }
  }

  List<Peer> voters() {
    return voters;
  }

  List<String> voterIds() {
    return voters.stream().map(Peer::id).toList();
  }

  boolean selfVotes() {
    return voters.stream().anyMatch(p -> p.id().equals(selfId));
  }

  int quorumSize() {
    return Quorum.majority(voters.size());
  }

  /** The other members' Raft actors, by id. */
  Map<String, ActorRef<RaftNode.Command>> refs() {
    return refs;
  }

  /** The Raft actor of member {@code id}, or null when it is not a member (or is this node). */
  ActorRef<RaftNode.Command> ref(String id) {
    return refs.get(id);
  }

  boolean isPeer(String id) {
    return refs.containsKey(id);
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
