package raftkv.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Membership changes as a nemesis (issue #12), among kills, pauses and partitions, under register
 * and set load: a voter (sometimes the leader) is removed, its disk "lost" (data dir wiped), and it
 * comes back under the same id with {@code --join}, as a learner that is promoted once caught up
 * (the first such learner is killed and restarted before it caught up); leadership is handed to
 * a random voter. The register history stays linearizable, and every acknowledged add of the set
 * is on every final member ({@link Scenario#verify()} reads every node). The cluster keeps 4 to 5
 * voters, and at most one node is down at a time besides the one being replaced.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class MembershipIT {

  private static final int NODES = 5;
  private static final Duration CHANGE_TIMEOUT = Duration.ofSeconds(60);

  private enum Op { REPLACE, REPLACE_LEADER, TRANSFER, KILL, PAUSE, ISOLATE }

  private final KvHttpClient http = new KvHttpClient(Duration.ofSeconds(8));

  @Test
  void membershipChangesAmongKillsPausesAndPartitions(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, NODES)) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(4).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.setClients().clients(2).duration(Scenario.MAX_LOAD));
      scenario.hold(2_000, 3_000);
      boolean[] killedALearner = {false};
      int[] replaced = {0};
      int[] transfers = {0};
      int[] step = {0};
      // a node's restart takes 10-20 s on two cores with five nodes: the first steps are fixed so
      // that every kind of change happens once, then the seed picks among the faults and transfers
      List<Op> first = List.of(Op.REPLACE, Op.TRANSFER, scenario.pick(List.of(Op.KILL, Op.PAUSE, Op.ISOLATE)),
          Op.REPLACE_LEADER, Op.TRANSFER);
      Runnable next = () -> {
        Op op = step[0] < first.size() ? first.get(step[0])
            : scenario.pick(List.of(Op.TRANSFER, Op.KILL, Op.PAUSE, Op.ISOLATE));
        step[0]++;
        List<NodeProcess> up = nemesis.up();
        switch (op) {
          case REPLACE, REPLACE_LEADER -> {
            NodeProcess leader = cluster.awaitLeader(CHANGE_TIMEOUT);
            NodeProcess victim = op == Op.REPLACE_LEADER ? leader : scenario.pick(up);
            replace(scenario, victim, !killedALearner[0]);
            killedALearner[0] = true;
            replaced[0]++;
          }
          case TRANSFER -> {
            List<String> voters = voters(scenario);
            NodeProcess leader = cluster.awaitLeader(CHANGE_TIMEOUT);
            String target = scenario.pick(voters.stream().filter(id -> !id.equals(leader.id())).toList());
            nemesis.membership("transfer leadership " + leader.id() + " -> " + target, false);
            KvHttpClient.Reply reply = http.send(scenario.pick(up), "POST", "/v1/cluster/leadership-transfer",
                ("{\"to\":\"" + target + "\"}").getBytes(StandardCharsets.UTF_8));
            scenario.log("transfer to " + target + ": " + reply.describe());
            assertTrue(reply.status() == 200 || reply.status() == 503 || reply.status() == 504 || reply.status() == -1,
                "a transfer answers 200, or 503/504 when it could not complete: " + reply.describe());
            if (reply.status() == 200) {
              assertEquals(target, reply.json().orElseThrow().path("leaderId").asText(), reply.describe());
              transfers[0]++;
            }
          }
          case KILL -> {
            NodeProcess victim = scenario.pick(up);
            nemesis.kill(victim);
            scenario.hold(1_500, 3_000);
            nemesis.restart(victim);
          }
          case PAUSE -> {
            NodeProcess victim = scenario.pick(up);
            nemesis.pause(victim);
            scenario.hold(1_500, 3_000);
            nemesis.resume(victim);
          }
          case ISOLATE -> {
            nemesis.isolate(scenario.pick(up));
            scenario.hold(1_500, 3_000);
            nemesis.healPartitions();
          }
          default -> throw new IllegalStateException("unknown op " + op);
        }
        scenario.hold(1_000, 2_000);
      };
      for (int i = 0; i < first.size(); i++) {
        next.run();
      }
      scenario.repeatFor(Duration.ofSeconds(20), next);
      scenario.log("membership: " + replaced[0] + " nodes replaced, " + transfers[0] + " leadership transfers");
      assertTrue(replaced[0] >= 1, "at least one node was replaced");
      assertEquals(cluster.nodes().stream().map(NodeProcess::id).sorted().toList(), voters(scenario),
          "every node ends a voter");
      scenario.verify();
    }
  }

  /**
   * Removes {@code victim} (the leader, maybe), wipes its data dir, starts it again with --join,
   * adds it as a learner and promotes it once caught up; {@code killMidCatchUp}: the learner is
   * killed and restarted right after it was added, before it caught up.
   */
  private void replace(Scenario scenario, NodeProcess victim, boolean killMidCatchUp) {
    Cluster cluster = scenario.cluster();
    Nemesis nemesis = scenario.nemesis();
    boolean wasLeader = cluster.leader().map(l -> l == victim).orElse(false);
    nemesis.membership("remove " + victim.id() + (wasLeader ? " (leader)" : ""), wasLeader);
    change(scenario, "DELETE", "/v1/cluster/members/" + victim.id(), null,
        () -> !members(scenario).containsKey(victim.id()));
    if (wasLeader) {
      NodeProcess next = cluster.awaitLeader(CHANGE_TIMEOUT);
      assertTrue(next != victim || !members(scenario).containsKey(victim.id()), "a removed leader does not lead");
    }
    if (victim.alive()) {
      nemesis.kill(victim);
    }
    victim.wipeDataDir();
    victim.joinInsteadOfPeers(cluster.others(victim).stream().map(n -> n.id() + "@" + n.raftAddress())
        .collect(Collectors.joining(",")));
    nemesis.restart(victim);
    Poll.until(victim.id() + " to say it is not a member yet", Duration.ofSeconds(30),
        () -> http.send(victim, "GET", "/health", null).status() == 503 ? Optional.of(true) : Optional.empty(),
        cluster::describe);
    nemesis.membership("add " + victim.id() + " as a learner", false);
    change(scenario, "POST", "/v1/cluster/members", "{\"id\":\"" + victim.id() + "\",\"address\":\""
        + victim.raftAddress() + "\",\"httpAddress\":\"127.0.0.1:" + victim.httpPort() + "\",\"learner\":true}",
        () -> members(scenario).containsKey(victim.id()));
    if (killMidCatchUp) {
      nemesis.kill(victim);
      scenario.hold(500, 1_500);
      nemesis.restart(victim);
    }
    nemesis.membership("promote " + victim.id(), false);
    change(scenario, "POST", "/v1/cluster/members/" + victim.id() + "/promote", "",
        () -> Boolean.TRUE.equals(members(scenario).get(victim.id())));
  }

  /**
   * Sends a membership change to a random node until it is done: 200, or {@code done} says so
   * after an unknown outcome; 409 (a change pending, a learner not caught up) and 503 are retried.
   */
  private void change(Scenario scenario, String method, String path, String body,
                      java.util.function.BooleanSupplier done) {
    Poll.until(method + " " + path, CHANGE_TIMEOUT, () -> {
      if (done.getAsBoolean()) {
        return Optional.of(true);
      }
      List<NodeProcess> up = scenario.nemesis().up();
      if (up.isEmpty()) {
        return Optional.empty();
      }
      KvHttpClient.Reply reply = http.send(scenario.pick(up), method, path,
          body == null ? null : body.getBytes(StandardCharsets.UTF_8));
      if (reply.status() == 200) {
        return Optional.of(true);
      }
      assertTrue(reply.status() == 409 || reply.status() == 503 || reply.status() == 504 || reply.status() == -1,
          method + " " + path + " answered " + reply.describe());
      return Optional.empty();
    }, () -> scenario.cluster().describe());
  }

  /** The leader's configuration: member id to voter flag (empty when no leader answers). */
  private Map<String, Boolean> members(Scenario scenario) {
    Map<String, Boolean> members = new TreeMap<>();
    Optional<NodeProcess> leader = scenario.cluster().leader();
    if (leader.isEmpty()) {
      return members;
    }
    KvHttpClient.Reply reply = http.send(leader.get(), "GET", "/v1/cluster/status", null);
    Optional<JsonNode> json = reply.status() == 200 ? reply.json() : Optional.empty();
    json.ifPresent(j -> j.path("members").forEach(m -> members.put(m.path("id").asText(), m.path("voter").asBoolean())));
    return members;
  }

  private List<String> voters(Scenario scenario) {
    return Poll.until("the leader's configuration", CHANGE_TIMEOUT, () -> {
      Map<String, Boolean> members = members(scenario);
      if (members.isEmpty()) {
        return Optional.empty();
      }
      List<String> voters = new ArrayList<>();
      members.forEach((id, voter) -> {
        if (voter) {
          voters.add(id);
        }
      });
      return Optional.of(voters);
    }, () -> scenario.cluster().describe());
  }
}
