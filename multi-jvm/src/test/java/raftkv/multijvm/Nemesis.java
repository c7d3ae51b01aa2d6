package raftkv.multijvm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

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

  private final Cluster cluster;
  private final List<History> histories;
  private final long startNanos;
  private final Set<NodeProcess> dead = new LinkedHashSet<>();
  private final Set<NodeProcess> booting = new LinkedHashSet<>();
  private final Set<NodeProcess> paused = new LinkedHashSet<>();
  private final Set<Set<NodeProcess>> cuts = new LinkedHashSet<>();
  private final List<Window> faultWindows = new ArrayList<>();
  private final List<LeaderLoss> leaderLosses = new ArrayList<>();
  private final List<Throwable> bootFailures = new ArrayList<>();
  private long openSince = -1;
  private boolean partitioned;

  /** A nemesis for {@code cluster} that records into every one of {@code histories}. */
  public Nemesis(Cluster cluster, History... histories) {
    this.cluster = cluster;
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
    record("heal all", false);
  }

  /**
   * Records a membership operation (issue #12) in the histories and the output; it is no fault:
   * it opens no fault window. {@code leaderLost}: it took leadership away (a removal of the leader).
   */
  public synchronized void membership(String description, boolean leaderLost) {
    record(description, leaderLost);
  }

  // ---- what happened

  /** The nodes that run, answer, and are not paused: the ones a fault can target now. */
  public synchronized List<NodeProcess> up() {
    return cluster.nodes().stream()
        .filter(n -> n.running() && !booting.contains(n) && !paused.contains(n) && !dead.contains(n))
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
      if (node.running() && !booting.contains(node)) {
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
