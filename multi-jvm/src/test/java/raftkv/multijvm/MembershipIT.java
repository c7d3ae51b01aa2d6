package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Membership changes (API.md §1 {@code --join}, §5) on real node processes, under load, checked
 * like every other scenario.
 *
 * <p>{@link #membershipChangesAmongKillsPausesAndPartitions}: a membership nemesis (start a node
 * with {@code --join}, add it as a learner, promote it once caught up, remove a voter (the leader,
 * sometimes), transfer leadership) mixed with kills, pauses and partitions, often with a membership
 * call made while a fault is in force, under register and set load. The cluster keeps 3 to 5
 * voters and never more than a minority of them killed, paused or cut off at once. First every
 * kind of change once (a transfer; a fault while a new node starts with --join; that node added as
 * a learner under a minority fault, or killed right after it was added, and promoted; the leader
 * removed), then 15 s of the seed's mix, where a join may also bring back a removed node under its
 * old id with its data dir wiped. New nodes start in the background and are added once they
 * answer, so the schedule does not wait for JVM starts. The register history stays linearizable
 * with every final member's reads in it, every final member holds every acknowledged add, and
 * every final member reports the same configuration, all voters, 3 to 5 of them.
 *
 * <p>{@link #aLearnerKilledMidCatchUpCatchesUpAfterItsRestartAndIsPromoted}: a learner added to a
 * cluster that holds 3 MB (so it catches up through a snapshot sent in 4 KiB chunks) is killed
 * with SIGKILL while the snapshot comes in, before its match index reaches the leader's; promoting
 * it then is a 409; restarted on its data dir it catches up (every preloaded key, the leader's
 * commit index), is promoted, and can lead.
 */
@ExtendWith(NodeLogsOnFailure.class)
class MembershipIT {

  private static final Duration WAIT = Duration.ofSeconds(60);
  /** The bounded wait for a learner to catch up before its promotion is accepted (409s until then). */
  private static final Duration CATCH_UP = Duration.ofSeconds(60);
  private static final int MIN_VOTERS = 3;
  private static final int MAX_VOTERS = 5;

  private enum Fault { KILL, PAUSE, ISOLATE }

  private enum Step { KILL, PAUSE, ISOLATE, TRANSFER, REMOVE, JOIN }

  private final KvHttpClient http = new KvHttpClient(Duration.ofSeconds(8));

  /** A node started with --join in the background, to be added once it answers (JVM starts are slow on two cores). */
  private NodeProcess pending;

  // what the schedule did, for the final assertions
  private int grown;
  private int removed;
  private int leadersRemoved;
  private int transfers;
  private int transfersDone;
  private int faults;
  private int changesDuringFaults;

  // ---- (a) the membership nemesis among kills, pauses and partitions

  @Test
  @Timeout(value = 180, unit = TimeUnit.SECONDS) // a guard against a hang; it takes about a minute
  void membershipChangesAmongKillsPausesAndPartitions(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, MIN_VOTERS)) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      scenario.run(scenario.registerClients().clients(3).duration(Scenario.MAX_LOAD));
      scenario.run(scenario.setClients().clients(1).duration(Scenario.MAX_LOAD));
      NodeProcess first = nemesis.startJoinerInBackground(); // boots during the first steps
      scenario.hold(2_000, 3_000);

      // every kind of change once, whatever the seed
      scenario.log("phase: transfer leadership");
      transfer(scenario);
      scenario.log("phase: a fault, maybe with a change made during it, while " + first.id() + " starts");
      fault(scenario, scenario.pick(List.of(Fault.values())), true);
      scenario.log("phase: add " + first.id() + " as a learner under a fault, promote it once caught up");
      grow(scenario, first, true);
      scenario.log("phase: remove the leader");
      remove(scenario, cluster.awaitLeader(WAIT));

      scenario.log("phase: the seed's mix of faults and changes");
      scenario.repeatFor(Duration.ofSeconds(15), () -> step(scenario));
      assertPendingAlive();
      if (pending != null) {
        NodeProcess node = pending;
        pending = null;
        if (answers(node)) {
          grow(scenario, node, false);
        } else {
          nemesis.retire(node, "started with --join, never added");
        }
      }

      scenario.log(String.format("membership: %d grown, %d removed (%d leaders), %d transfers (%d done),"
          + " %d faults, %d changes made during a fault", grown, removed, leadersRemoved, transfers,
          transfersDone, faults, changesDuringFaults));
      scenario.hold(2_000, 2_000); // healthy load after the last step
      scenario.verify();
      assertFinalConfiguration(scenario);
      assertTrue(grown >= 1 && removed >= 1 && leadersRemoved >= 1 && transfers >= 1,
          "every kind of change happened at least once");
    }
  }

  /**
   * One step of the seed's mix; what may be done depends on the voters and on what is impaired. A
   * join starts a node in the background (half the time a node removed before, under its old id
   * with its data dir wiped); a later step adds and promotes it once it answers.
   */
  private void step(Scenario scenario) {
    Nemesis nemesis = scenario.nemesis();
    assertPendingAlive();
    if (pending != null && answers(pending)) {
      NodeProcess node = pending;
      pending = null;
      grow(scenario, node, scenario.random().nextBoolean());
      scenario.hold(1_000, 2_000);
      return;
    }
    Map<String, Boolean> members = nemesis.members();
    long voters = members.values().stream().filter(v -> v).count();
    List<Step> options = new ArrayList<>(List.of(Step.KILL, Step.KILL, Step.PAUSE, Step.ISOLATE, Step.TRANSFER));
    if (voters > MIN_VOTERS) {
      options.add(Step.REMOVE);
    }
    if (pending == null && voters < MAX_VOTERS && members.size() == voters) {
      options.add(Step.JOIN);
    }
    Step step = scenario.pick(options);
    switch (step) {
      case KILL -> fault(scenario, Fault.KILL, true);
      case PAUSE -> fault(scenario, Fault.PAUSE, true);
      case ISOLATE -> fault(scenario, Fault.ISOLATE, true);
      case TRANSFER -> transfer(scenario);
      case REMOVE -> removalTarget(scenario, scenario.random().nextInt(3) == 0)
          .ifPresentOrElse(victim -> remove(scenario, victim), () -> scenario.hold(500, 1_000));
      case JOIN -> {
        List<NodeProcess> retired = scenario.cluster().everyNode().stream()
            .filter(n -> !scenario.cluster().nodes().contains(n)).toList();
        boolean reuse = !retired.isEmpty() && scenario.random().nextBoolean();
        pending = nemesis.startJoinerInBackground(reuse ? scenario.pick(retired) : null);
      }
      default -> throw new IllegalStateException("unknown step " + step);
    }
    scenario.hold(1_000, 2_000);
  }

  /** A node started with --join must not exit by itself before it is added. */
  private void assertPendingAlive() {
    if (pending != null && !pending.alive()) {
      throw new AssertionError(pending.id() + ", started with --join, exited with code " + pending.exitCode()
          + "; its log ends with:\n" + Cluster.logTail(pending, 30));
    }
  }

  /** True if {@code node} answers its status now (a JVM that has finished starting). */
  private boolean answers(NodeProcess node) {
    return node.running() && http.statusJson(node).isPresent();
  }

  /**
   * Adds {@code node} (started with --join) as a learner and promotes it once it caught up. With
   * {@code underFault}: either a minority fault on a voter is in force while it is added and
   * catches up (healed before the promotion), or the learner itself is killed right after it was
   * added and restarted, and the promotion waits (409 not caught up) until it caught up.
   */
  private void grow(Scenario scenario, NodeProcess node, boolean underFault) {
    Nemesis nemesis = scenario.nemesis();
    int kind = underFault ? scenario.random().nextInt(4) : -1; // 0-2: a fault on a voter, 3: kill the learner
    Optional<NodeProcess> victim = Optional.empty();
    Fault fault = null;
    if (kind >= 0 && kind < 3) {
      fault = Fault.values()[kind];
      victim = victim(scenario, scenario.random().nextInt(3) == 0);
      victim.ifPresent(inject(nemesis, fault));
      changesDuringFaults += victim.isPresent() ? 1 : 0;
      faults += victim.isPresent() ? 1 : 0;
    }
    Map<String, Boolean> members = nemesis.addMember(node, true);
    assertEquals(Boolean.FALSE, members.get(node.id()), node.id() + " is a learner: " + members);
    assertLearnerSaysSo(node);
    if (kind == 3) {
      scenario.hold(300, 1_500);
      nemesis.kill(node);
      faults++;
      scenario.hold(500, 1_500);
      nemesis.restartInBackground(node);
    } else {
      scenario.hold(1_000, 2_500);
    }
    if (victim.isPresent()) {
      heal(scenario, fault, victim.get());
    }
    awaitPromotable(scenario, node);
    members = nemesis.promote(node, CATCH_UP);
    assertEquals(Boolean.TRUE, members.get(node.id()), node.id() + " is a voter: " + members);
    assertVoterCount(members);
    grown++;
  }

  /**
   * Waits until promoting {@code node} leaves at most a minority of the voters impaired (the
   * learner itself counted if it is down: a caught-up learner may be promoted while it restarts).
   */
  private static void awaitPromotable(Scenario scenario, NodeProcess node) {
    Nemesis nemesis = scenario.nemesis();
    Poll.until("promoting " + node.id() + " to leave at most a minority of voters impaired", CATCH_UP, () -> {
      List<String> voters = nemesis.voters();
      Set<String> impaired = nemesis.impaired();
      long down = voters.stream().filter(impaired::contains).count() + (impaired.contains(node.id()) ? 1 : 0);
      return down <= voters.size() / 2 ? Optional.of(true) : Optional.empty();
    }, () -> "impaired: " + nemesis.impaired() + "\n" + scenario.cluster().describe());
  }

  /** Removes {@code node} (the leader, maybe), then stops and retires it; a removed leader says so. */
  private void remove(Scenario scenario, NodeProcess node) {
    Nemesis.Removal removal = scenario.nemesis().removeMember(node);
    assertTrue(!removal.members().containsKey(node.id()), node.id() + " is gone: " + removal.members());
    assertVoterCount(removal.members());
    if (removal.wasLeader()) {
      // the leader appends the configuration that removes it: it knows, whatever the others heard
      // (asked when it was reachable: not paused, dead or cut off)
      if (removal.memberStateSeen() != null) {
        assertEquals("removed", removal.memberStateSeen(), "the removed leader " + node.id() + "'s memberState");
      }
      leadersRemoved++;
    }
    removed++;
  }

  /**
   * A voter whose removal leaves at least {@link #MIN_VOTERS} voters with at most a minority of
   * them impaired: the leader when {@code leader} and it qualifies, else one at random.
   */
  private Optional<NodeProcess> removalTarget(Scenario scenario, boolean leader) {
    List<NodeProcess> allowed = removable(scenario);
    if (leader) {
      Optional<NodeProcess> current = scenario.cluster().leader().filter(allowed::contains);
      if (current.isPresent()) {
        return current;
      }
    }
    return allowed.isEmpty() ? Optional.empty() : Optional.of(scenario.pick(allowed));
  }

  /** The voters whose removal leaves at least {@link #MIN_VOTERS} voters, at most a minority of them impaired. */
  private List<NodeProcess> removable(Scenario scenario) {
    Nemesis nemesis = scenario.nemesis();
    List<String> voters = nemesis.voters();
    Set<String> impaired = nemesis.impaired();
    List<NodeProcess> allowed = new ArrayList<>();
    for (String id : voters) {
      List<String> rest = voters.stream().filter(v -> !v.equals(id)).toList();
      long impairedRest = rest.stream().filter(impaired::contains).count();
      if (rest.size() >= MIN_VOTERS && impairedRest <= (rest.size() - 1) / 2) {
        scenario.cluster().find(id).filter(scenario.cluster().nodes()::contains).ifPresent(allowed::add);
      }
    }
    return allowed;
  }

  /**
   * A node to kill, pause or cut off now: a learner, or a voter if one more impaired voter is still
   * a minority; the leader when {@code leader} and it qualifies.
   */
  private Optional<NodeProcess> victim(Scenario scenario, boolean leader) {
    Nemesis nemesis = scenario.nemesis();
    List<String> voters = nemesis.voters();
    Set<String> impaired = nemesis.impaired();
    long impairedVoters = voters.stream().filter(impaired::contains).count();
    boolean voterAllowed = impairedVoters + 1 <= (voters.size() - 1) / 2;
    List<NodeProcess> candidates = nemesis.up().stream()
        .filter(n -> !impaired.contains(n.id()) && (voterAllowed || !voters.contains(n.id())))
        .toList();
    if (leader) {
      Optional<NodeProcess> current = scenario.cluster().leader().filter(candidates::contains);
      if (current.isPresent()) {
        return current;
      }
    }
    return candidates.isEmpty() ? Optional.empty() : Optional.of(scenario.pick(candidates));
  }

  /**
   * A kill (restarted in the background), pause or isolation of a node (the leader a third of the
   * time), held for a while; with {@code changes}, half the time a membership call is made while
   * it is in force: a transfer, or the removal of a voter (the faulty one, or another).
   */
  private void fault(Scenario scenario, Fault fault, boolean changes) {
    Nemesis nemesis = scenario.nemesis();
    Optional<NodeProcess> victim = victim(scenario, scenario.random().nextInt(3) == 0);
    if (victim.isEmpty()) {
      scenario.hold(500, 1_000);
      return;
    }
    inject(nemesis, fault).accept(victim.get());
    faults++;
    scenario.hold(1_000, 2_500);
    if (changes && scenario.random().nextBoolean()) {
      changesDuringFaults++;
      boolean removeOne = nemesis.voters().size() > MIN_VOTERS && scenario.random().nextBoolean();
      Optional<NodeProcess> target = Optional.empty();
      if (removeOne) {
        // half the time the faulty node, as an operator replaces a failed one; else any voter allowed
        boolean faultyOne = scenario.random().nextBoolean() && removable(scenario).contains(victim.get());
        target = faultyOne ? victim : removalTarget(scenario, scenario.random().nextInt(3) == 0);
      }
      if (target.isPresent()) {
        remove(scenario, target.get());
      } else {
        transfer(scenario);
      }
    }
    heal(scenario, fault, victim.get());
  }

  private static java.util.function.Consumer<NodeProcess> inject(Nemesis nemesis, Fault fault) {
    return node -> {
      switch (fault) {
        case KILL -> nemesis.kill(node);
        case PAUSE -> nemesis.pause(node);
        case ISOLATE -> nemesis.isolate(node);
        default -> throw new IllegalStateException("unknown fault " + fault);
      }
    };
  }

  /** Ends {@code fault} on {@code node}, unless the node was removed (and retired) meanwhile. */
  private static void heal(Scenario scenario, Fault fault, NodeProcess node) {
    Nemesis nemesis = scenario.nemesis();
    if (fault == Fault.ISOLATE) {
      nemesis.healPartitions();
      return;
    }
    if (!scenario.cluster().nodes().contains(node)) {
      return;
    }
    if (fault == Fault.KILL) {
      nemesis.restartInBackground(node);
    } else {
      nemesis.resume(node);
    }
  }

  /**
   * Hands leadership to a voter that is not impaired (or, a quarter of the time, asks with no body
   * for the most up-to-date voter). A 200 names that voter; 503 and 504 (a transfer that could not
   * complete in time) and no answer are allowed, and so is 409 while an earlier transfer is still
   * in progress.
   */
  private void transfer(Scenario scenario) {
    Nemesis nemesis = scenario.nemesis();
    List<String> voters = nemesis.voters();
    Set<String> impaired = nemesis.impaired();
    String leader = scenario.cluster().leader().map(NodeProcess::id).orElse("");
    List<String> targets = voters.stream().filter(v -> !v.equals(leader) && !impaired.contains(v)).toList();
    String to = targets.isEmpty() || scenario.random().nextInt(4) == 0 ? null : scenario.pick(targets);
    KvHttpClient.Reply reply = nemesis.transferLeadership(to);
    transfers++;
    int status = reply.status();
    assertTrue(status == 200 || status == 503 || status == 504 || status == -1
        || (status == 409 && reply.text().contains("in progress")),
        "a leadership transfer answers 200, 503 or 504: " + reply.describe() + " " + reply.text());
    if (status == 200) {
      String leaderId = reply.json().map(j -> j.path("leaderId").asText("")).orElse("");
      if (to != null) {
        assertEquals(to, leaderId, "the voter leadership was handed to: " + reply.text());
      } else {
        assertTrue(voters.contains(leaderId), "the new leader " + leaderId + " is one of the voters " + voters);
      }
      transfersDone++;
    }
  }

  /** A learner says so: role "learner" (or memberState "learner") in its own status. */
  private void assertLearnerSaysSo(NodeProcess node) {
    Poll.until(node.id() + " to report itself a learner", Duration.ofSeconds(20), () -> http.statusJson(node)
        .filter(s -> "learner".equals(s.path("role").asText()) || "learner".equals(s.path("memberState").asText()))
        .map(s -> true), () -> node.id() + ": " + http.statusJson(node).map(Object::toString).orElse("no status"));
  }

  private static void assertVoterCount(Map<String, Boolean> members) {
    long voters = members.values().stream().filter(v -> v).count();
    assertTrue(voters >= MIN_VOTERS && voters <= MAX_VOTERS, "between " + MIN_VOTERS + " and " + MAX_VOTERS
        + " voters: " + members);
  }

  /**
   * After the run: the leader's configuration is exactly the nodes the test keeps (no removed node,
   * every added one), all voters, 3 to 5 of them; every member reports that same configuration in
   * its own status and is a voter itself (no memberState, role not "learner").
   */
  private void assertFinalConfiguration(Scenario scenario) {
    Cluster cluster = scenario.cluster();
    Map<String, Boolean> members = new TreeMap<>(scenario.nemesis().members());
    List<String> expected = cluster.nodes().stream().map(NodeProcess::id).sorted().toList();
    assertEquals(expected, List.copyOf(members.keySet()), "the final configuration is the nodes kept");
    assertTrue(members.values().stream().allMatch(v -> v), "every final member is a voter: " + members);
    assertVoterCount(members);
    for (NodeProcess node : cluster.nodes()) {
      JsonNode status = Poll.until(node.id() + "'s status", WAIT, () -> http.statusJson(node), cluster::describe);
      Map<String, Boolean> own = new TreeMap<>();
      status.path("members").forEach(m -> own.put(m.path("id").asText(), m.path("voter").asBoolean()));
      assertEquals(members, own, node.id() + "'s configuration");
      assertTrue(status.path("memberState").isMissingNode() || status.path("memberState").isNull(),
          node.id() + " is a voter, with no memberState: " + status);
      assertTrue(!"learner".equals(status.path("role").asText()), node.id() + "'s role: " + status);
    }
    scenario.log("final configuration: " + Nemesis.describeMembers(members));
  }

  // ---- (b) a learner killed in the middle of its catch-up

  @Test
  @Timeout(value = 150, unit = TimeUnit.SECONDS) // a guard against a hang; it takes under a minute
  void aLearnerKilledMidCatchUpCatchesUpAfterItsRestartAndIsPromoted(TestInfo info) {
    // 4 KiB snapshot chunks: a 3 MB snapshot takes hundreds of round trips, seconds, to send; a
    // promotion needs the learner within 50 entries of the leader (not 1000: the whole log here)
    try (Scenario scenario = Scenario.start(info, 3,
        "-Draftkv.raft.snapshot-chunk-bytes=4k -Draftkv.raft.promote-max-lag=50")) {
      Cluster cluster = scenario.cluster();
      Nemesis nemesis = scenario.nemesis();
      NodeProcess learner = nemesis.startJoinerInBackground(); // its JVM starts during the preload
      long start = System.nanoTime();
      Map<String, String> preloaded = preload(scenario, 600, 5, 1_000);
      scenario.log("preloaded " + preloaded.size() + " keys of 1 KB in "
          + (System.nanoTime() - start) / 1_000_000 + " ms");
      scenario.run(scenario.registerClients().clients(2).duration(Scenario.MAX_LOAD));

      nemesis.addMember(learner, true);
      // the log was compacted long ago: the learner catches up through a snapshot
      Poll.until(learner.id() + " to start receiving a snapshot", WAIT,
          () -> count(learner, "receives a snapshot") > 0);
      NodeProcess leader = cluster.awaitLeader(WAIT);
      JsonNode leaderStatus = Poll.until("the leader's status", WAIT, () -> http.statusJson(leader), cluster::describe);
      long leaderLast = leaderStatus.path("lastLogIndex").asLong();
      long match = matchIndexOf(leaderStatus, learner.id());
      nemesis.kill(learner);
      scenario.log(learner.id() + " killed with its match index at " + match + " of the leader's " + leaderLast);
      assertTrue(match < leaderLast, "killed before its match index reached the leader's: " + match + " of " + leaderLast);
      assertEquals(0, count(learner, "installed a snapshot"), learner.id()
          + " was killed while the snapshot came in, before it was installed (else raise the preload)");

      // while it is down and behind, a promotion is refused: 409, not caught up
      KvHttpClient.Reply refused = Poll.until("an answer to the promotion of the dead learner", WAIT, () -> {
        KvHttpClient.Reply reply = http.send(scenario.pick(nemesis.up()), "POST",
            "/v1/cluster/members/" + learner.id() + "/promote", new byte[0]);
        return reply.status() == 503 || reply.status() == -1 ? Optional.empty() : Optional.of(reply);
      }, cluster::describe);
      nemesis.membership("promote " + learner.id() + " while it is down: " + refused.describe(), false);
      assertEquals(409, refused.status(), "a learner that has not caught up is not promoted: " + refused.text());
      assertTrue(refused.text().contains("caught up"), "409 says it has not caught up: " + refused.text());

      // restarted on its data dir, it catches up
      nemesis.restart(learner);
      awaitCaughtUp(cluster, learner, preloaded);
      assertTrue(count(learner, "installed a snapshot") > 0, learner.id() + " caught up through a snapshot");
      Map<String, Boolean> members = nemesis.promote(learner, CATCH_UP);
      assertEquals(Boolean.TRUE, members.get(learner.id()), learner.id() + " is a voter: " + members);
      JsonNode own = Poll.until(learner.id() + " to know it is a voter", WAIT, () -> http.statusJson(learner)
          .filter(s -> !"learner".equals(s.path("role").asText()) && s.path("memberState").isMissingNode()),
          () -> learner.id() + ": " + http.statusJson(learner).map(Object::toString).orElse("no status"));
      scenario.log(learner.id() + " is a voter: role " + own.path("role").asText());

      // and, a voter now, it can lead
      KvHttpClient.Reply transferred = Poll.until("leadership handed to " + learner.id(), WAIT, () -> {
        KvHttpClient.Reply reply = nemesis.transferLeadership(learner.id());
        if (reply.status() == 200) {
          return Optional.of(reply);
        }
        assertTrue(reply.status() == 503 || reply.status() == 504 || reply.status() == -1 || reply.status() == 409,
            "a transfer answers 200, or 409/503/504 to retry: " + reply.describe() + " " + reply.text());
        Poll.pause(500);
        return Optional.empty();
      }, cluster::describe);
      assertEquals(learner.id(), transferred.json().map(j -> j.path("leaderId").asText()).orElse(""));

      scenario.hold(2_000, 2_000);
      scenario.verify();
      // every member, the former learner too, holds every preloaded key (the load's keys: verify)
      for (NodeProcess node : cluster.nodes()) {
        awaitHolds(node, preloaded);
      }
      assertEquals(4, nemesis.voters().size(), "four voters: " + nemesis.members());
    }
  }

  /**
   * Writes {@code txns} transactions of {@code putsPerTxn} puts of {@code valueBytes} random
   * (incompressible, from the seed) bytes under {@code bulk/}, four writers at once, each until
   * acknowledged; returns the keys and values.
   */
  private Map<String, String> preload(Scenario scenario, int txns, int putsPerTxn, int valueBytes) {
    Cluster cluster = scenario.cluster();
    long seed = scenario.random().nextLong();
    Map<String, String> acked = new ConcurrentHashMap<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    int writers = 4;
    List<Thread> threads = new ArrayList<>();
    for (int w = 0; w < writers; w++) {
      int writer = w;
      Thread thread = new Thread(() -> {
        try {
          Random random = new Random(seed + writer);
          KvHttpClient client = new KvHttpClient();
          NodeProcess[] target = {cluster.awaitLeader(WAIT)};
          byte[] bytes = new byte[valueBytes * 3 / 4];
          for (int t = writer; t < txns; t += writers) {
            ObjectNode txn = JsonNodeFactory.instance.objectNode();
            txn.putArray("compare");
            var success = txn.putArray("success");
            txn.putArray("failure");
            Map<String, String> batch = new TreeMap<>();
            for (int p = 0; p < putsPerTxn; p++) {
              random.nextBytes(bytes);
              String key = String.format("bulk/%05d", t * putsPerTxn + p);
              String value = Base64.getEncoder().encodeToString(bytes);
              batch.put(key, value);
              success.addObject().putObject("put").put("key", key).put("value", value);
            }
            byte[] body = txn.toString().getBytes(StandardCharsets.UTF_8);
            Poll.until("preload transaction " + t, WAIT, () -> {
              if (client.send(target[0], "POST", "/v1/txn", body, "Content-Type", "application/json").status() == 200) {
                return Optional.of(true);
              }
              cluster.leader().ifPresent(l -> target[0] = l);
              return Optional.empty();
            }, cluster::describe);
            acked.putAll(batch);
          }
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        }
      }, cluster.testName() + "-preload-" + w);
      thread.setDaemon(true);
      threads.add(thread);
      thread.start();
    }
    for (Thread thread : threads) {
      try {
        thread.join(WAIT.toMillis() * 2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
    if (failure.get() != null) {
      throw new AssertionError("the preload failed: " + failure.get(), failure.get());
    }
    assertEquals(txns * putsPerTxn, acked.size(), "every preload transaction was acknowledged");
    return new TreeMap<>(acked);
  }

  /** The leader's {@code matchIndex} for {@code id} in its status (0 when it lists none). */
  private static long matchIndexOf(JsonNode leaderStatus, String id) {
    for (JsonNode member : leaderStatus.path("members")) {
      if (id.equals(member.path("id").asText())) {
        return member.path("matchIndex").asLong(0);
      }
    }
    throw new AssertionError(id + " is not in the leader's members: " + leaderStatus);
  }

  /** Waits until {@code node} has applied what the leader had committed and holds {@code keys}. */
  private void awaitCaughtUp(Cluster cluster, NodeProcess node, Map<String, String> keys) {
    long commit = Poll.until("the leader's commit index", WAIT, () -> cluster.leader().flatMap(http::statusJson)
        .map(s -> s.path("commitIndex").asLong()), cluster::describe);
    Poll.until(node.id() + " to apply up to " + commit, WAIT, () -> http.statusJson(node)
        .filter(s -> s.path("appliedIndex").asLong() >= commit).map(s -> true),
        () -> node.id() + ": " + http.statusJson(node).map(Object::toString).orElse("no status"));
    awaitHolds(node, keys);
  }

  /** Waits until {@code node}'s own state (serializable reads) holds exactly {@code keys} under bulk/. */
  private void awaitHolds(NodeProcess node, Map<String, String> keys) {
    Poll.until(node.id() + " to hold every preloaded key", WAIT, () -> http.range(node, "bulk/", true)
        .filter(keys::equals).map(m -> true), () -> http.range(node, "bulk/", true)
        .map(m -> node.id() + " holds " + m.size() + " of " + keys.size() + " preloaded keys, "
            + keys.entrySet().stream().filter(e -> !e.getValue().equals(m.get(e.getKey()))).limit(3)
            .map(Map.Entry::getKey).collect(Collectors.joining(", ", "missing or different: ", "")))
        .orElse(node.id() + " does not answer"));
  }

  private static int count(NodeProcess node, String text) {
    try {
      // ISO-8859-1 reads any bytes; the words sought are ASCII
      return (int) Files.readAllLines(node.logFile(), StandardCharsets.ISO_8859_1).stream()
          .filter(l -> l.contains(text)).count();
    } catch (java.io.IOException | java.io.UncheckedIOException e) {
      return 0;
    }
  }
}
