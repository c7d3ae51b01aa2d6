package raftkv.multijvm;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.JsonNode;

import raftkv.history.History;

/**
 * Injects faults into a {@link Cluster} while clients run, and writes each one into the
 * {@link History} as a nemesis event: SIGKILL and restart, SIGSTOP and SIGCONT, and partitions
 * through the nodes' blackhole endpoints. It remembers what is broken, so that {@link #healAll()}
 * can mend everything, and keeps what the availability report needs: when faults were in force
 * and when a leader was lost.
 *
 * <p>A node counts as faulty from its kill until it answers HTTP again after its restart.
 * Methods are called from the test's thread; a restart in the background has a watcher thread of
 * its own.
 *
 * <p>Membership (API.md §5) goes through the HTTP API of a live member, picked with the random
 * source given (the scenario's seed): {@link #startJoiner} starts a new node with {@code --join},
 * {@link #addMember}, {@link #promote}, {@link #removeMember} (then the node is stopped and
 * {@linkplain Cluster#retire retired}) and {@link #transferLeadership}. Each is recorded as a
 * nemesis event before it is sent and again with its answer; none opens a fault window, but a
 * removal of the leader and a transfer count as leader losses in the availability report.
 */
public final class Nemesis {

  /** A span of time, in {@link System#nanoTime()} readings; {@code end} is MAX_VALUE while open. */
  public record Window(long start, long end) {

    /** True if {@code nanos} lies inside. */
    public boolean contains(long nanos) {
      return nanos >= start && nanos <= end;
    }
  }

  /** A fault that took the leader away (kill, pause, isolation, minority side), at {@code nanos}. */
  public record LeaderLoss(long nanos, String description) {}

  private static final Duration LEADER_TIMEOUT = Duration.ofSeconds(30);

  /** The longest a membership change may take, its retries included, unless a caller says otherwise. */
  public static final Duration CHANGE_TIMEOUT = Duration.ofSeconds(45);

  /** Between two attempts of a membership change that was refused (409) or not answered. */
  private static final long CHANGE_RETRY_MILLIS = 250;

  private final Cluster cluster;
  private final Random random;
  private final List<History> histories;
  private final long startNanos;
  private final KvHttpClient admin = new KvHttpClient(Duration.ofSeconds(8));
  private final Set<NodeProcess> dead = new LinkedHashSet<>();
  private final Set<NodeProcess> booting = new LinkedHashSet<>();
  private final Set<NodeProcess> paused = new LinkedHashSet<>();
  /** Started with --join and not added yet (or its add not confirmed): no fault target, no contact. */
  private final Set<NodeProcess> joining = new LinkedHashSet<>();
  /** The smaller side of each partition in force: cut off from the majority. */
  private final Set<NodeProcess> cutOff = new LinkedHashSet<>();
  private final Set<Set<NodeProcess>> cuts = new LinkedHashSet<>();
  private final List<Window> faultWindows = new ArrayList<>();
  private final List<LeaderLoss> leaderLosses = new ArrayList<>();
  private final List<Throwable> bootFailures = new ArrayList<>();
  private long openSince = -1;
  private boolean partitioned;

  /**
   * A nemesis for {@code cluster} that records into every one of {@code histories}; its own
   * choices (which member a membership call goes to) follow a fixed seed.
   */
  public Nemesis(Cluster cluster, History... histories) {
    this(cluster, new Random(0), histories);
  }

  /**
   * A nemesis for {@code cluster} that records into every one of {@code histories} and makes its
   * own choices with {@code random} (seeded from the scenario's seed, for replays).
   */
  public Nemesis(Cluster cluster, Random random, History... histories) {
    this.cluster = cluster;
    this.random = random;
    this.histories = List.of(histories);
    this.startNanos = histories.length > 0 ? histories[0].startNanos() : System.nanoTime();
  }

  // ---- process faults

  /** SIGKILL on {@code node}. */
  public synchronized void kill(NodeProcess node) {
    boolean wasLeader = isLeader(node);
    long at = announce("kill " + node.id() + (wasLeader ? " (leader)" : ""), wasLeader);
    node.kill();
    dead.add(node);
    booting.remove(node);
    paused.remove(node);
    updateWindows(at);
  }

  /** SIGKILL on the current leader (waiting for one to be known); returns it. */
  public synchronized NodeProcess killLeader() {
    NodeProcess leader = cluster.awaitLeader(LEADER_TIMEOUT);
    kill(leader);
    return leader;
  }

  /** SIGKILL on every node at the same instant. */
  public synchronized void killAll() {
    long at = announce("kill all: " + ids(cluster.nodes()), true);
    cluster.nodes().forEach(NodeProcess::sendKill);
    cluster.nodes().forEach(NodeProcess::kill);
    dead.addAll(cluster.nodes());
    booting.clear();
    paused.clear();
    updateWindows(at);
  }

  /** Starts a dead node again on its data dir, and waits until it answers HTTP. */
  public synchronized void restart(NodeProcess node) {
    record("restart " + node.id(), false);
    node.start();
    cluster.awaitReady(node, Cluster.START_TIMEOUT);
    dead.remove(node);
    record(node.id() + " is up", false);
  }

  /**
   * Starts a dead node again on its data dir and returns at once; a watcher thread records when
   * it answers HTTP. Until then the node is neither {@link #up()} nor a target for faults.
   */
  public synchronized void restartInBackground(NodeProcess node) {
    record("restart " + node.id(), false);
    node.start();
    dead.remove(node);
    booting.add(node);
    long pid = node.pid();
    Thread watcher = new Thread(() -> {
      try {
        cluster.awaitReady(node, Cluster.START_TIMEOUT);
        booted(node, pid);
      } catch (Throwable t) {
        bootFailed(node, pid, t);
      }
    }, cluster.testName() + "-boot-" + node.id());
    watcher.setDaemon(true);
    watcher.start();
  }

  /** Starts every dead node at once, then waits until each (and each booting one) answers HTTP. */
  public synchronized void restartAllDead() {
    List<NodeProcess> down = List.copyOf(dead);
    if (!down.isEmpty()) {
      record("restart " + ids(down), false);
      down.forEach(NodeProcess::start);
      booting.addAll(down);
      dead.clear();
    }
    for (NodeProcess node : List.copyOf(booting)) {
      cluster.awaitReady(node, Cluster.START_TIMEOUT);
    }
    if (!booting.isEmpty()) {
      String up = ids(List.copyOf(booting));
      booting.clear();
      record(up + " up", false);
    }
    if (!bootFailures.isEmpty()) {
      AssertionError error = new AssertionError("a node restarted in the background never came up");
      bootFailures.forEach(error::addSuppressed);
      throw error;
    }
  }

  /** SIGSTOP on {@code node}. */
  public synchronized void pause(NodeProcess node) {
    boolean wasLeader = isLeader(node);
    long at = announce("pause " + node.id() + (wasLeader ? " (leader)" : ""), wasLeader);
    node.pause();
    paused.add(node);
    updateWindows(at);
  }

  /** SIGSTOP on the current leader; returns it. */
  public synchronized NodeProcess pauseLeader() {
    NodeProcess leader = cluster.awaitLeader(LEADER_TIMEOUT);
    pause(leader);
    return leader;
  }

  /** SIGCONT on a paused node. */
  public synchronized void resume(NodeProcess node) {
    node.resume();
    paused.remove(node);
    record("resume " + node.id(), false);
  }

  // ---- partitions

  /** Cuts {@code node} off from every other node. */
  public synchronized void isolate(NodeProcess node) {
    partition(List.of(node), cluster.others(node));
  }

  /**
   * Cuts every node of {@code side} off from every node of {@code otherSide}: a blackhole on each
   * node of a pair for the other, or on one of them only when the other is not {@link #up()} (a
   * dead or starting node cannot be told, and one side's blackhole stops both directions).
   */
  public synchronized void partition(List<NodeProcess> side, List<NodeProcess> otherSide) {
    Optional<NodeProcess> leader = cluster.leader();
    boolean leaderLost = leader.isPresent() && (side.size() <= otherSide.size()
        ? side.contains(leader.get()) : otherSide.contains(leader.get()));
    String what = side.size() == 1 && otherSide.size() == cluster.nodes().size() - 1
        ? "isolate " + side.get(0).id()
        : "partition [" + ids(side) + "] | [" + ids(otherSide) + "]";
    List<NodeProcess> up = up();
    cutOff.addAll(side.size() <= otherSide.size() ? side : otherSide);
    for (NodeProcess a : side) {
      for (NodeProcess b : otherSide) {
        partitioned = true;
        if (up.contains(a)) {
          cluster.blackhole(a, b);
        }
        if (up.contains(b)) {
          cluster.blackhole(b, a);
        }
        if (up.contains(a) || up.contains(b)) {
          cuts.add(Set.of(a, b));
        }
      }
    }
    // recorded once every cut is in place: before that the leader may still reach a majority
    record(what + leader.map(l -> " (leader " + l.id() + ")").orElse(""), leaderLost);
  }

  /** Heals every cut on every node that is up (a restarted node starts without cuts). */
  public synchronized void healPartitions() {
    healCutsOfNodesUp();
    cuts.removeIf(pair -> pair.stream().noneMatch(paused::contains));
    cutOff.removeIf(node -> cuts.stream().noneMatch(pair -> pair.contains(node)));
    record("heal partitions", false);
  }

  /**
   * Mends everything: resumes paused nodes, restarts dead ones and waits for every restart, and
   * heals every cut on every node if this nemesis ever cut one (so that scenarios without
   * partitions need no fault endpoints).
   */
  public synchronized void healAll() {
    for (NodeProcess node : List.copyOf(paused)) {
      resume(node);
    }
    restartAllDead();
    healCutsOfNodesUp();
    cuts.clear();
    cutOff.clear();
    record("heal all", false);
  }

  /**
   * Records a membership operation (issue #12) in the histories and the output; it is no fault:
   * it opens no fault window. {@code leaderLost}: it took leadership away (a removal of the leader).
   */
  public synchronized void membership(String description, boolean leaderLost) {
    record(description, leaderLost);
  }

  // ---- membership (API.md §5), through the HTTP API of a live member

  /** What a removal did: the configuration after it, and what the removed node said of itself. */
  public record Removal(Map<String, Boolean> members, boolean wasLeader, String memberStateSeen) {}

  /**
   * The configuration as the leader reports it in its status (id to voter flag), waiting up to
   * {@link #LEADER_TIMEOUT} for a leader that answers.
   */
  public Map<String, Boolean> members() {
    return Poll.until("the leader's configuration", LEADER_TIMEOUT,
        () -> cluster.leader().flatMap(cluster::members).filter(m -> !m.isEmpty()), cluster::describe);
  }

  /** The voters of {@link #members()}, in the leader's order. */
  public List<String> voters() {
    return members().entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).toList();
  }

  /**
   * The ids of the nodes that are not {@link #up()} for the cluster now: dead, starting, paused,
   * or on the smaller side of a partition. A schedule that keeps at most a minority of voters
   * impaired checks a new fault against these.
   */
  public synchronized Set<String> impaired() {
    Set<String> ids = new LinkedHashSet<>();
    for (NodeProcess node : cluster.nodes()) {
      if (!joining.contains(node) && (!node.running() || dead.contains(node) || booting.contains(node)
          || paused.contains(node) || cutOff.contains(node))) {
        ids.add(node.id());
      }
    }
    return ids;
  }

  /**
   * Starts a new node (the next id, fresh ports and data dir, the same JVM options) with
   * {@code --join} naming every member of the leader's configuration, and waits until it answers
   * HTTP and says it is not a member yet ({@code GET /health} 503, status {@code memberState}
   * "joining"). Until {@link #addMember} it is neither {@link #up()} nor a contact.
   */
  public NodeProcess startJoiner() {
    NodeProcess node = startJoinerInBackground();
    awaitJoinerReady(node);
    return node;
  }

  /**
   * As {@link #startJoiner()}, but returns once the process is started; {@link #addMember} waits
   * for it. No other node may be added meanwhile: the leader must be among the members its
   * {@code --join} names.
   */
  public NodeProcess startJoinerInBackground() {
    return startJoinerInBackground(null);
  }

  /**
   * As {@link #startJoinerInBackground()}; with {@code reuse}, a node removed and retired before
   * comes back under its old id and address with a wiped data dir ({@link Cluster#rejoin}).
   */
  public NodeProcess startJoinerInBackground(NodeProcess reuse) {
    Map<String, Boolean> members = members();
    List<NodeProcess> contacts = members.keySet().stream().map(cluster::find).flatMap(Optional::stream).toList();
    synchronized (this) {
      NodeProcess node = reuse == null ? cluster.addNode(contacts) : cluster.rejoin(reuse, contacts);
      joining.add(node);
      record("start " + node.id() + (reuse == null ? "" : " (its data dir wiped)") + " with --join "
          + ids(contacts), false);
      node.start();
      return node;
    }
  }

  /** Waits until a node started with --join answers HTTP with /health 503 and memberState "joining". */
  private void awaitJoinerReady(NodeProcess node) {
    cluster.awaitReady(node, Cluster.START_TIMEOUT);
    Poll.until(node.id() + " to say it is not a member yet (/health 503, memberState joining)",
        Duration.ofSeconds(20), () -> {
          KvHttpClient.Reply health = admin.send(node, "GET", "/health", null);
          Optional<JsonNode> status = admin.statusJson(node);
          boolean joiningNow = health.status() == 503
              && status.map(s -> "joining".equals(s.path("memberState").asText())).orElse(false);
          return joiningNow ? Optional.of(health.text()) : Optional.empty();
        }, () -> node.id() + ": health " + admin.send(node, "GET", "/health", null).text()
            + ", status " + admin.statusJson(node).map(Object::toString).orElse("none"));
  }

  /**
   * {@code POST /v1/cluster/members} for {@code node} (started with {@link #startJoiner}), as a
   * learner or a voter, through a live member, until the change is committed: 409 (another change
   * pending), 503, 504 and no answer are retried for up to {@link #CHANGE_TIMEOUT}; any other
   * answer fails the test. Returns the configuration after it.
   */
  public Map<String, Boolean> addMember(NodeProcess node, boolean learner) {
    if (node.state() == NodeProcess.State.RUNNING) {
      awaitJoinerReady(node);
    }
    String body = "{\"id\":\"" + node.id() + "\",\"address\":\"" + node.raftAddress()
        + "\",\"httpAddress\":\"127.0.0.1:" + node.httpPort() + "\"" + (learner ? ",\"learner\":true" : "") + "}";
    Map<String, Boolean> members = change("add " + node.id() + (learner ? " as a learner" : " as a voter"),
        false, "POST", "/v1/cluster/members", body, CHANGE_TIMEOUT,
        m -> m.containsKey(node.id()) && m.get(node.id()) == !learner, node);
    synchronized (this) {
      joining.remove(node);
    }
    return members;
  }

  /**
   * {@code POST /v1/cluster/members/{id}/promote} through a live member until {@code id} is a
   * voter: 409 (not caught up yet, another change pending), 503, 504 and no answer are retried for
   * up to {@code maxWait}, the bounded wait for a learner to catch up. Returns the configuration.
   */
  public Map<String, Boolean> promote(NodeProcess node, Duration maxWait) {
    return change("promote " + node.id(), false, "POST", "/v1/cluster/members/" + node.id() + "/promote", "",
        maxWait, m -> Boolean.TRUE.equals(m.get(node.id())), null);
  }

  /**
   * {@code DELETE /v1/cluster/members/{id}} through a live member (the node itself included) until
   * it is committed; then, if the node was up, waits up to 10 s for its status to say
   * {@code memberState} "removed"; then stops it and {@linkplain Cluster#retire retires} it.
   */
  public Removal removeMember(NodeProcess node) {
    boolean wasLeader = isLeader(node);
    boolean reachable;
    synchronized (this) {
      reachable = node.running() && !paused.contains(node) && !cutOff.contains(node) && !booting.contains(node);
    }
    Map<String, Boolean> members = change("remove " + node.id() + (wasLeader ? " (leader)" : ""), wasLeader,
        "DELETE", "/v1/cluster/members/" + node.id(), null, CHANGE_TIMEOUT, m -> !m.containsKey(node.id()), null);
    String seen = null;
    if (reachable) {
      try {
        seen = Poll.until(node.id() + " to say it was removed", Duration.ofSeconds(10), () -> admin.statusJson(node)
            .map(s -> s.path("memberState").asText("")).filter("removed"::equals), () -> "");
      } catch (AssertionError notSaid) {
        seen = admin.statusJson(node).map(s -> "memberState '" + s.path("memberState").asText("") + "'")
            .orElse("no status");
      }
    }
    retire(node, "removed" + (seen == null ? "" : ", memberState " + seen));
    return new Removal(members, wasLeader, seen);
  }

  /**
   * Stops {@code node} (SIGKILL, if it runs) and takes it out of the cluster and of every fault
   * this nemesis keeps, so that the heal neither restarts it nor counts it.
   */
  public synchronized void retire(NodeProcess node, String why) {
    if (node.alive()) {
      node.kill();
    }
    dead.remove(node);
    booting.remove(node);
    paused.remove(node);
    joining.remove(node);
    cutOff.remove(node);
    cuts.removeIf(pair -> pair.contains(node));
    cluster.retire(node);
    record("stop and retire " + node.id() + " (" + why + ")", false);
  }

  /**
   * {@code POST /v1/cluster/leadership-transfer} with {@code {"to":to}} (no body when {@code to}
   * is null) through a live member, once; returns the answer.
   */
  public KvHttpClient.Reply transferLeadership(String to) {
    Optional<NodeProcess> leader = cluster.leader();
    NodeProcess via = contact(null);
    announce("transfer leadership from " + leader.map(NodeProcess::id).orElse("?") + " to "
        + (to == null ? "the most up-to-date voter" : to) + " via " + via.id(), true);
    byte[] body = to == null ? null : ("{\"to\":\"" + to + "\"}").getBytes(StandardCharsets.UTF_8);
    KvHttpClient.Reply reply = admin.send(via, "POST", "/v1/cluster/leadership-transfer", body,
        "Content-Type", "application/json");
    record("transfer: " + reply.describe() + (reply.status() == 200 ? " " + reply.text() : ""), false);
    return reply;
  }

  /**
   * Sends a membership change to live members until it is committed: a 200, or a confirmed
   * configuration (see {@link #confirmed}) that {@code done} accepts after a refusal or an unknown
   * outcome; 409, 503, 504 and no answer are retried until {@code timeout}.
   */
  private Map<String, Boolean> change(String what, boolean leaderLost, String method, String path, String body,
      Duration timeout, Predicate<Map<String, Boolean>> done, NodeProcess notVia) {
    announce(what, leaderLost);
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    Map<String, Integer> refusals = new LinkedHashMap<>();
    String last = "";
    int attempts = 0;
    while (true) {
      NodeProcess via = contact(notVia);
      attempts++;
      KvHttpClient.Reply reply = admin.send(via, method, path,
          body == null ? null : body.getBytes(StandardCharsets.UTF_8), "Content-Type", "application/json");
      last = via.id() + ": " + reply.describe() + " " + reply.json().map(j -> j.path("message").asText("")).orElse("");
      if (reply.status() == 200) {
        Map<String, Boolean> members = new LinkedHashMap<>();
        reply.json().ifPresent(j -> j.path("members").forEach(m -> members.put(m.path("id").asText(), m.path("voter").asBoolean())));
        if (!done.test(members)) {
          throw new AssertionError(what + " answered 200 with members " + members + " that do not show it: " + reply.text());
        }
        record(what + ": 200 from " + via.id() + " after " + attempts + " attempt(s) in "
            + seconds(System.nanoTime() - start) + describeRefusals(refusals) + "; members " + describeMembers(members), false);
        return members;
      }
      int status = reply.status();
      if (status != 409 && status != 503 && status != 504 && status != -1
          && !(status == 404 && method.equals("DELETE"))) {
        throw new AssertionError(what + " through " + via.id() + " answered " + reply.describe() + ": " + reply.text());
      }
      String kind = status + (status == 409 ? " " + reasonOf(reply) : "");
      refusals.merge(kind, 1, Integer::sum);
      Optional<Map<String, Boolean>> confirmed = confirmed(done);
      if (confirmed.isPresent()) {
        record(what + ": done (seen in the configuration) after " + attempts + " attempt(s) in "
            + seconds(System.nanoTime() - start) + describeRefusals(refusals) + "; members " + describeMembers(confirmed.get()), false);
        return confirmed.get();
      }
      if (System.nanoTime() - deadline >= 0) {
        throw new AssertionError("timed out after " + timeout.toSeconds() + " s: " + what + " (" + attempts
            + " attempts" + describeRefusals(refusals) + "; last: " + last + ")\n" + cluster.describe());
      }
      Poll.pause(CHANGE_RETRY_MILLIS);
    }
  }

  /**
   * The leader's configuration if {@code done} accepts it and a quorum of its voters report a
   * configuration that {@code done} accepts too (a configuration takes effect when appended, so
   * the leader's own view alone may not be committed yet).
   */
  private Optional<Map<String, Boolean>> confirmed(Predicate<Map<String, Boolean>> done) {
    Optional<Map<String, Boolean>> leaders = cluster.leader().flatMap(cluster::members).filter(done);
    if (leaders.isEmpty()) {
      return Optional.empty();
    }
    List<String> voters = leaders.get().entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).toList();
    long agreeing = voters.stream().map(cluster::find).flatMap(Optional::stream).filter(NodeProcess::running)
        .filter(n -> cluster.members(n).filter(done).isPresent()).count();
    return agreeing >= voters.size() / 2 + 1 ? leaders : Optional.empty();
  }

  /** A live member to send a membership call to, at random (the seed's), never {@code not}. */
  private NodeProcess contact(NodeProcess not) {
    List<NodeProcess> candidates;
    synchronized (this) {
      candidates = up().stream().filter(n -> n != not && !cutOff.contains(n)).toList();
      if (candidates.isEmpty()) {
        candidates = up().stream().filter(n -> n != not).toList();
      }
    }
    if (candidates.isEmpty()) {
      candidates = cluster.nodes().stream().filter(n -> n != not && n.running()).toList();
    }
    if (candidates.isEmpty()) {
      throw new IllegalStateException("no live member to send a membership call to\n" + cluster.describe());
    }
    return candidates.get(random.nextInt(candidates.size()));
  }

  private static String reasonOf(KvHttpClient.Reply reply) {
    String message = reply.json().map(j -> j.path("message").asText("")).orElse("");
    if (message.contains("caught up")) {
      return "not caught up";
    }
    if (message.contains("not committed") || message.contains("in progress")) {
      return "change pending";
    }
    if (message.contains("live") || message.contains("quorum")) {
      return "too few live voters";
    }
    return message.length() > 60 ? message.substring(0, 60) : message;
  }

  /** "n1 n2 n4(learner)". */
  public static String describeMembers(Map<String, Boolean> members) {
    return members.entrySet().stream().map(e -> e.getKey() + (Boolean.TRUE.equals(e.getValue()) ? "" : "(learner)"))
        .collect(Collectors.joining(" "));
  }

  /** "; refused or unanswered: 409 not caught up x12, 503 x1", or "". */
  private static String describeRefusals(Map<String, Integer> refusals) {
    return refusals.isEmpty() ? "" : "; refused or unanswered: " + refusals.entrySet().stream()
        .map(e -> e.getKey() + " x" + e.getValue()).collect(Collectors.joining(", "));
  }

  private static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.1f s", nanos / 1e9);
  }

  // ---- what happened

  /**
   * The nodes that run, answer, and are not paused (nor started with --join and not added yet):
   * the ones a fault can target now.
   */
  public synchronized List<NodeProcess> up() {
    return cluster.nodes().stream()
        .filter(n -> n.running() && !booting.contains(n) && !paused.contains(n) && !dead.contains(n)
            && !joining.contains(n))
        .toList();
  }

  /** True while some fault is in force. */
  public synchronized boolean faulty() {
    return !dead.isEmpty() || !booting.isEmpty() || !paused.isEmpty() || !cuts.isEmpty();
  }

  /** The spans during which some fault was in force; the last may still be open. */
  public synchronized List<Window> faultWindows() {
    List<Window> windows = new ArrayList<>(faultWindows);
    if (openSince >= 0) {
      windows.add(new Window(openSince, Long.MAX_VALUE));
    }
    return windows;
  }

  /** The faults that took the leader away, in order. */
  public synchronized List<LeaderLoss> leaderLosses() {
    return List.copyOf(leaderLosses);
  }

  private void healCutsOfNodesUp() {
    if (!partitioned) {
      return;
    }
    for (NodeProcess node : cluster.nodes()) {
      // a node started with --join and not added yet was never told of a cut (see partition), and
      // may still be starting
      if (node.running() && !booting.contains(node) && !joining.contains(node)) {
        cluster.heal(node);
      }
    }
  }

  private synchronized void booted(NodeProcess node, long pid) {
    if (node.pid() == pid && booting.remove(node)) {
      record(node.id() + " is up", false);
    }
  }

  private synchronized void bootFailed(NodeProcess node, long pid, Throwable failure) {
    if (node.pid() == pid && booting.contains(node)) {
      bootFailures.add(failure);
    }
  }

  private boolean isLeader(NodeProcess node) {
    return node.running() && cluster.leader().map(l -> l == node).orElse(false);
  }

  /** Records a change that already happened (a repair, a node that came up), with its effect. */
  private void record(String description, boolean leaderLost) {
    updateWindows(announce(description, leaderLost));
  }

  /**
   * Writes {@code description} into the histories and the output now, before a fault is
   * applied, so that the event is not later than the fault; returns the time.
   */
  private long announce(String description, boolean leaderLost) {
    long now = System.nanoTime();
    for (History history : histories) {
      history.nemesis(description);
    }
    if (leaderLost) {
      leaderLosses.add(new LeaderLoss(now, description));
    }
    System.out.printf(Locale.ROOT, "[%s] %8.1f s  nemesis: %s%n", cluster.testName(),
        (now - startNanos) / 1e9, description);
    return now;
  }

  /** Opens or closes the current fault window after a change of state made at {@code at}. */
  private void updateWindows(long at) {
    if (faulty() && openSince < 0) {
      openSince = at;
    } else if (!faulty() && openSince >= 0) {
      faultWindows.add(new Window(openSince, at));
      openSince = -1;
    }
  }

  private static String ids(List<NodeProcess> nodes) {
    return nodes.stream().map(NodeProcess::id).collect(Collectors.joining(" "));
  }
}
