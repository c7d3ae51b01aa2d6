package raftkv.multijvm;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import raftkv.multijvm.KvHttpClient.NodeStatus;
import raftkv.multijvm.LeaseIdempotencyChecker.LeaderTerm;

/**
 * Watches who leads: one thread per node asks it for {@code GET /v1/cluster/status} every
 * {@value #INTERVAL_MILLIS} ms (with a short timeout, so that a paused node holds up only its own
 * thread) and records, for every term in which a node said it leads, when that was first and last
 * seen. A new leader is seen at most an interval or so after it won its election; the lease check
 * takes it as the moment the new leader started timing leases.
 */
final class LeaderMonitor implements AutoCloseable {

  static final long INTERVAL_MILLIS = 100;

  private final Map<Long, LeaderTerm> terms = new TreeMap<>(); // guarded by this
  private final List<Thread> threads = new ArrayList<>();
  private final List<String> anomalies = new ArrayList<>(); // guarded by this
  private final CountDownLatch stop = new CountDownLatch(1);

  private LeaderMonitor(Cluster cluster) {
    for (NodeProcess node : cluster.nodes()) {
      Thread thread = new Thread(() -> watch(node), cluster.testName() + "-leader-monitor-" + node.id());
      thread.setDaemon(true);
      threads.add(thread);
    }
  }

  /** Starts a thread per node of {@code cluster} as it is now. */
  static LeaderMonitor start(Cluster cluster) {
    LeaderMonitor monitor = new LeaderMonitor(cluster);
    monitor.threads.forEach(Thread::start);
    return monitor;
  }

  private void watch(NodeProcess node) {
    KvHttpClient http = new KvHttpClient(Duration.ofMillis(400));
    try {
      while (!stop.await(INTERVAL_MILLIS, TimeUnit.MILLISECONDS)) {
        if (!node.running()) {
          continue;
        }
        http.status(node).filter(NodeStatus::leader).ifPresent(s -> seen(s.term(), node.id(), System.nanoTime()));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private synchronized void seen(long term, String node, long nanos) {
    LeaderTerm known = terms.get(term);
    if (known == null) {
      terms.put(term, new LeaderTerm(term, node, nanos, nanos));
    } else if (known.node().equals(node)) {
      terms.put(term, new LeaderTerm(term, node, known.firstSeenNanos(), Math.max(known.lastSeenNanos(), nanos)));
    } else {
      anomalies.add("two leaders in term " + term + ": " + known.node() + " and " + node);
    }
  }

  /** Every term whose leader was seen, by term. */
  synchronized List<LeaderTerm> terms() {
    return terms.values().stream().sorted(Comparator.comparingLong(LeaderTerm::term)).toList();
  }

  /** Two nodes that said they lead the same term (Raft's election safety broken): should be empty. */
  synchronized List<String> anomalies() {
    return List.copyOf(anomalies);
  }

  @Override
  public void close() {
    stop.countDown();
    for (Thread t : threads) {
      try {
        t.join(2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
