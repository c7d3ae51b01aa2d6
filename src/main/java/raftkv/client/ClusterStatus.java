package raftkv.client;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/**
 * A node's view of the cluster, as GET /v1/cluster/status renders it (API.md §5).
 * {@code clusterId} is the id of the node's cluster (16 hex digits), or null when unknown.
 * {@code memberState}: null for a voter; "learner", "joining" (started with --join, no leader
 * has replicated to it yet) or "removed" (the configuration in its log no longer lists it).
 */
public record ClusterStatus(
    String id, String role, long term, String leaderId, long commitIndex, long appliedIndex,
    long lastLogIndex, long snapshotIndex, long revision, List<Member> members, String clusterId,
    String memberState) {

  /** A status without a member state (a voter's). */
  public ClusterStatus(String id, String role, long term, String leaderId, long commitIndex, long appliedIndex,
                       long lastLogIndex, long snapshotIndex, long revision, List<Member> members, String clusterId) {
    this(id, role, term, leaderId, commitIndex, appliedIndex, lastLogIndex, snapshotIndex, revision, members, clusterId,
        null);
  }

  /** A status without a cluster id. */
  public ClusterStatus(String id, String role, long term, String leaderId, long commitIndex, long appliedIndex,
                       long lastLogIndex, long snapshotIndex, long revision, List<Member> members) {
    this(id, role, term, leaderId, commitIndex, appliedIndex, lastLogIndex, snapshotIndex, revision, members, null);
  }

  /** {@code matchIndex} and {@code lastContactMillis} are known on the leader only (else null). */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Member(String id, String address, String httpAddress, boolean voter,
                       Long matchIndex, Long lastContactMillis) {}
}
