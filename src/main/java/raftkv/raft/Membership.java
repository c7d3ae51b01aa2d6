package raftkv.raft;

import raftkv.CborSerializable;

import java.util.ArrayList;
import java.util.List;

/**
 * A cluster configuration (DESIGN.md §7): the members, each a voter or a learner, with the
 * address of its Raft endpoint and the HTTP address it serves clients on (null when unknown).
 * Answers who votes, how many make a quorum, and who gets AppendEntries. Immutable; a change makes
 * a new one. It lives in the log as {@link LogEntry.Config} entries, and takes effect on each node
 * when such an entry is appended (RaftLog tracks which one is in effect).
 */
public record Membership(List<Member> members) implements CborSerializable {

  /** A member: {@code voter} false for a learner (it receives every entry, but never votes and counts in no quorum). */
  public record Member(String id, String host, int port, String httpAddress, boolean voter) implements CborSerializable {
    public String address() {
      return host + ":" + port;
    }

    public Peer peer() {
      return new Peer(id, host, port);
    }
  }

  /** No members: a node that joins an existing cluster knows none until the leader replicates to it. */
  public static final Membership EMPTY = new Membership(List.of());

  @com.fasterxml.jackson.annotation.JsonCreator(mode = com.fasterxml.jackson.annotation.JsonCreator.Mode.PROPERTIES)
  public Membership {
    members = List.copyOf(members);
  }

  /** The bootstrap configuration: every peer a voter, HTTP addresses unknown. */
  public static Membership ofVoters(List<Peer> voters) {
    return new Membership(voters.stream().map(p -> new Member(p.id(), p.host(), p.port(), null, true)).toList());
  }

  public boolean isEmpty() {
    return members.isEmpty();
  }

  public List<Member> voters() {
    return members.stream().filter(Member::voter).toList();
  }

  public List<Member> learners() {
    return members.stream().filter(m -> !m.voter()).toList();
  }

  public List<String> voterIds() {
    return members.stream().filter(Member::voter).map(Member::id).toList();
  }

  public List<Peer> voterPeers() {
    return members.stream().filter(Member::voter).map(Member::peer).toList();
  }

  /** The member named {@code id}, or null. */
  public Member member(String id) {
    for (Member m : members) {
      if (m.id().equals(id)) {
        return m;
      }
    }
    return null;
  }

  public boolean isMember(String id) {
    return member(id) != null;
  }

  public boolean isVoter(String id) {
    Member m = member(id);
    return m != null && m.voter();
  }

  /** Acknowledgements (or votes) needed: a majority of the voters. */
  public int quorumSize() {
    return Quorum.majority(voterCount());
  }

  public int voterCount() {
    int n = 0;
    for (Member m : members) {
      if (m.voter()) {
        n++;
      }
    }
    return n;
  }

  /** The member at {@code address} (host:port), or null. */
  public Member memberAt(String address) {
    for (Member m : members) {
      if (m.address().equals(address)) {
        return m;
      }
    }
    return null;
  }

  /** This configuration with {@code member} added at the end. */
  public Membership with(Member member) {
    List<Member> next = new ArrayList<>(members);
    next.add(member);
    return new Membership(next);
  }

  /** This configuration without {@code id}. */
  public Membership without(String id) {
    return new Membership(members.stream().filter(m -> !m.id().equals(id)).toList());
  }

  /** This configuration with learner {@code id} made a voter. */
  public Membership promoted(String id) {
    return new Membership(members.stream()
        .map(m -> m.id().equals(id) ? new Member(m.id(), m.host(), m.port(), m.httpAddress(), true) : m).toList());
  }

  /** This configuration with the HTTP addresses {@code known} gives for members that have none. */
  public Membership withHttpAddresses(java.util.function.Function<String, String> known) {
    return new Membership(members.stream().map(m -> m.httpAddress() != null || known.apply(m.id()) == null ? m
        : new Member(m.id(), m.host(), m.port(), known.apply(m.id()), m.voter())).toList());
  }

  /** "n1, n2, n3 (learners: n4)", for log lines. */
  public String describe() {
    String voters = String.join(", ", voterIds());
    List<String> learners = learners().stream().map(Member::id).toList();
    return (voters.isEmpty() ? "no voters" : voters) + (learners.isEmpty() ? "" : " (learners: " + String.join(", ", learners) + ")");
  }
}
