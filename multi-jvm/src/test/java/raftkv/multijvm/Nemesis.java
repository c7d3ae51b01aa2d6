package raftkv.multijvm;

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
 * can mend everything, and keeps what the availability report needs: when faults were active and
 * when a leader was lost.
 *
 * <p>Methods are called from one thread (the test's), between client operations that run on
 * their own threads.
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

  private final Cluster cluster;
  private final List<History> histories;
  private final long startNanos;
  private final Set<NodeProcess> dead = new LinkedHashSet<>();
  private final Set<NodeProcess> paused = new LinkedHashSet<>();
  private final Set<Set<NodeProcess>> cuts = new LinkedHashSet<>();
  private final List<Window> faultWindows = new ArrayList<>();
  private final List<LeaderLoss> leaderLosses = new ArrayList<>();
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
    node.kill();
    dead.add(node);
    paused.remove(node);
    record("kill " + node.id() + (wasLeader ? " (leader)" : ""), wasLeader);
  }

  /** SIGKILL on the current leader (waiting for one to be known); returns it. */
  public synchronized NodeProcess killLeader() {
    NodeProcess leader = cluster.awaitLeader(java.time.Duration.ofSeconds(30));
    kill(leader);
    return leader;
  }

  /** SIGKILL on every node at the same instant. */
  public synchronized void killAll() {
    cluster.nodes().forEach(NodeProcess::sendKill);
    cluster.nodes().forEach(NodeProcess::kill);
    dead.addAll(cluster.nodes());
    paused.clear();
    record("kill all: " + ids(cluster.nodes()), true);
  }

  /** Starts a dead node again with its data dir, and waits until it answers HTTP. */
  public synchronized void restart(NodeProcess node) {
    record("restart " + node.id(), false);
    node.start();
    cluster.awaitReady(node, Cluster.START_TIMEOUT);
    dead.remove(node);
    record(node.id() + " is up", false);
  }

  /** Starts every dead node at once, then waits until each answers HTTP. */
  public synchronized void restartAllDead() {
    List<NodeProcess> down = List.copyOf(dead);
    if (down.isEmpty()) {
      return;
    }
    record("restart " + ids(down), false);
    down.forEach(NodeProcess::start);
    for (NodeProcess node : down) {
      cluster.awaitReady(node, Cluster.START_TIMEOUT);
      dead.remove(node);
    }
    record(ids(down) + " up", false);
  }

  /** SIGSTOP on {@code node}. */
  public synchronized void pause(NodeProcess node) {
    boolean wasLeader = isLeader(node);
    node.pause();
    paused.add(node);
    record("pause " + node.id() + (wasLeader ? " (leader)" : ""), wasLeader);
  }

  /** SIGSTOP on the current leader; returns it. */
  public synchronized NodeProcess pauseLeader() {
    NodeProcess leader = cluster.awaitLeader(java.time.Duration.ofSeconds(30));
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

  /** Cuts every node of {@code side} off from every node of {@code otherSide}. */
  public synchronized void partition(List<NodeProcess> side, List<NodeProcess> otherSide) {
    Optional<NodeProcess> leader = cluster.leader();
    boolean leaderLost = leader.isPresent() && (side.size() <= otherSide.size()
        ? side.contains(leader.get()) : otherSide.contains(leader.get()));
    for (NodeProcess a : side) {
      for (NodeProcess b : otherSide) {
        partitioned = true;
        cluster.cut(a, b);
        cuts.add(Set.of(a, b));
      }
    }
    String what = side.size() == 1 && otherSide.size() == cluster.nodes().size() - 1
        ? "isolate " + side.get(0).id()
        : "partition [" + ids(side) + "] | [" + ids(otherSide) + "]";
    record(what + leader.map(l -> " (leader " + l.id() + ")").orElse(""), leaderLost);
  }

  /** Heals every cut on every running node. */
  public synchronized void healPartitions() {
    cluster.healAllCuts();
    cuts.removeIf(pair -> pair.stream().allMatch(NodeProcess::running));
    record("heal partitions", false);
  }

  /**
   * Mends everything: resumes paused nodes, restarts dead ones, and heals every cut on every node
   * if this nemesis ever cut one (so that scenarios without partitions need no fault endpoints).
   */
  public synchronized void healAll() {
    for (NodeProcess node : List.copyOf(paused)) {
      resume(node);
    }
    restartAllDead();
    if (partitioned) {
      cluster.healAllCuts();
    }
    cuts.clear();
    record("heal all", false);
  }

  // ---- what happened

  /** True while some fault is in force. */
  public synchronized boolean faulty() {
    return !dead.isEmpty() || !paused.isEmpty() || !cuts.isEmpty();
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

  private boolean isLeader(NodeProcess node) {
    return node.running() && cluster.leader().map(l -> l == node).orElse(false);
  }

  private void record(String description, boolean leaderLost) {
    long now = System.nanoTime();
    for (History history : histories) {
      history.nemesis(description);
    }
    if (leaderLost) {
      leaderLosses.add(new LeaderLoss(now, description));
    }
    if (faulty() && openSince < 0) {
      openSince = now;
    } else if (!faulty() && openSince >= 0) {
      faultWindows.add(new Window(openSince, now));
      openSince = -1;
    }
    System.out.printf(Locale.ROOT, "[%s] %8.1f s  nemesis: %s%n", cluster.testName(),
        (now - startNanos) / 1e9, description);
  }

  private static String ids(List<NodeProcess> nodes) {
    return nodes.stream().map(NodeProcess::id).collect(Collectors.joining(" "));
  }
}
