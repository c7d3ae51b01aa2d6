package raftkv.multijvm;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;

import raftkv.multijvm.LeaseIdempotencyChecker.AbandonedLease;
import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LeaseIdempotencyChecker.KeptLease;
import raftkv.multijvm.LeaseIdempotencyChecker.PollObservation;
import raftkv.multijvm.LeaseIdempotencyChecker.Renewal;

/**
 * Lease clients (API.md §4) through the faults, recording what the {@link LeaseIdempotencyChecker}
 * needs, on the test JVM's {@link System#nanoTime()}:
 *
 * <ul>
 *   <li><b>keepers</b>: each grants a lease (a fixed TTL), attaches a key to it
 *       ({@code lease/kept-<n>}), and renews it every TTL/4 ({@code POST /v1/leases/{id}/keepalive})
 *       until it is stopped, through any node: after a failed keepalive it tries another node
 *       {@value #RETRY_MILLIS} ms later (timeout {@value #KEEPALIVE_TIMEOUT_MILLIS} ms, so that a
 *       paused node does not hold it up long); every successful renewal is recorded with its send
 *       and answer times;
 *   <li><b>abandoners</b>: again and again, grant a lease (a TTL drawn from a range), attach two
 *       keys ({@code lease/ab-<n>-a}, {@code -b}), renew it zero to two times a second apart, and
 *       leave it, recording the last successful renewal and whether a keepalive of unknown outcome
 *       (no answer, 503 or 504: the leader may still have served it) came after it;
 *   <li>an <b>observer</b> that polls every key of an abandoned lease with linearizable reads
 *       through the running nodes in turn until one answers 404, recording the send of the last
 *       read that found it and the answer of the first that did not.
 * </ul>
 *
 * Grants carry an explicit lease id and an {@code Idempotency-Key}, and puts an Idempotency-Key,
 * so that every request is retried as it is until it is answered (bounded in time).
 */
final class LeaseClients implements AutoCloseable {

  static final String PREFIX = "lease/";
  static final long KEEPALIVE_TIMEOUT_MILLIS = 1_500;
  static final long RETRY_MILLIS = 150;
  /** The longest a grant or put of a key is retried. */
  static final Duration REQUEST_BOUND = Duration.ofSeconds(20);

  private final Cluster cluster;
  private final String tag;
  private final SplittableRandom root;
  private final List<Thread> keeperThreads = new ArrayList<>();
  private final List<Thread> abandonerThreads = new ArrayList<>();
  private final List<Keeper> keepers = new ArrayList<>();
  private final ConcurrentLinkedQueue<AbandonedLease> abandoned = new ConcurrentLinkedQueue<>();
  private final Map<String, PollObservation> polls = new ConcurrentHashMap<>();
  private final ConcurrentLinkedQueue<String> watched = new ConcurrentLinkedQueue<>();
  private final AtomicReference<Throwable> crash = new AtomicReference<>();
  private final AtomicInteger keepalivesOk = new AtomicInteger();
  private final AtomicInteger keepalivesFailed = new AtomicInteger();
  private final AtomicInteger grants = new AtomicInteger();
  private final CountDownLatch stopKeepers = new CountDownLatch(1);
  private final CountDownLatch stopAbandoners = new CountDownLatch(1);
  private final CountDownLatch stopObserver = new CountDownLatch(1);
  private final Thread observer;
  private volatile long keepersEndNanos = -1;
  /** Set by {@link #close()}: no request is retried after it. */
  private volatile boolean closed;

  LeaseClients(Cluster cluster, long seed, String tag) {
    this.cluster = cluster;
    this.tag = tag;
    this.root = new SplittableRandom(seed);
    this.observer = thread("lease-observer", this::observe, new ArrayList<>());
    observer.start();
  }

  /** Starts a keeper per TTL, in seconds. */
  synchronized void startKeepers(List<Integer> ttls) {
    for (int i = 0; i < ttls.size(); i++) {
      Keeper keeper = new Keeper(i, ttls.get(i), root.split());
      keepers.add(keeper);
      thread("lease-keeper-" + i, keeper::run, keeperThreads).start();
    }
  }

  /** Starts {@code count} abandoners, each drawing TTLs from [{@code minTtl}, {@code maxTtl}] seconds. */
  synchronized void startAbandoners(int count, int minTtl, int maxTtl) {
    for (int i = 0; i < count; i++) {
      Abandoner abandoner = new Abandoner(i, minTtl, maxTtl, root.split());
      thread("lease-abandoner-" + i, abandoner::run, abandonerThreads).start();
    }
  }

  private Thread thread(String name, Runnable body, List<Thread> group) {
    Thread thread = new Thread(() -> {
      try {
        body.run();
      } catch (Throwable t) {
        crash.compareAndSet(null, t);
      }
    }, cluster.testName() + "-" + name);
    thread.setDaemon(true);
    group.add(thread);
    return thread;
  }

  /** Stops making leases; each abandoner finishes the lease it is making. */
  void stopAbandoners() {
    stopAbandoners.countDown();
    join(abandonerThreads, REQUEST_BOUND.toMillis() * 4 + 10_000);
  }

  /**
   * Waits until the observer saw every key of every abandoned lease gone; fails after
   * {@code timeout} naming those it still saw.
   */
  void awaitAbandonedGone(Duration timeout) {
    Poll.until("every key of every abandoned lease to be gone", timeout,
        () -> watched.stream().allMatch(k -> polls.containsKey(k) && polls.get(k).firstAbsentNanos() >= 0)
            ? Optional.of(true) : Optional.empty(),
        () -> "still there: " + watched.stream().filter(k -> !polls.containsKey(k) || polls.get(k).firstAbsentNanos() < 0)
            .toList() + "\n" + cluster.describe());
  }

  /** Stops the keepers (the end of their observation is now) and the observer. */
  void stopKeepers() {
    keepersEndNanos = System.nanoTime();
    stopKeepers.countDown();
    join(keeperThreads, KEEPALIVE_TIMEOUT_MILLIS * 3 + REQUEST_BOUND.toMillis() + 5_000);
    stopObserver.countDown();
    join(List.of(observer), 10_000);
    if (crash.get() != null) {
      throw new AssertionError("a lease client crashed: " + crash.get(), crash.get());
    }
  }

  private static void join(List<Thread> threads, long limitMillis) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(limitMillis);
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while stopping the lease clients", e);
      }
      if (t.isAlive()) {
        throw new AssertionError(t.getName() + " did not finish within " + limitMillis + " ms");
      }
    }
  }

  /**
   * Stops every client at once if the test did not (it failed midway): nothing is retried after
   * this, so that nothing reaches the ports of a cluster that is gone.
   */
  @Override
  public void close() {
    closed = true;
    if (keepersEndNanos < 0) {
      keepersEndNanos = System.nanoTime();
    }
    stopAbandoners.countDown();
    stopKeepers.countDown();
    stopObserver.countDown();
    List<Thread> all = new ArrayList<>(abandonerThreads);
    all.addAll(keeperThreads);
    all.add(observer);
    for (Thread t : all) {
      try {
        t.join(KvHttpClient.REQUEST_TIMEOUT.toMillis() + 2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** The kept leases (after {@link #stopKeepers()}: their observation ended then). */
  List<KeptLease> kept() {
    List<KeptLease> leases = new ArrayList<>();
    for (Keeper k : keepers) {
      if (k.id > 0) {
        leases.add(new KeptLease(k.id, k.ttl, k.key, k.putRevision, List.copyOf(k.renewals),
            keepersEndNanos > 0 ? keepersEndNanos : System.nanoTime(), k.lost));
      }
    }
    return leases;
  }

  /** The keys kept alive. */
  List<String> keptKeys() {
    return keepers.stream().map(k -> k.key).toList();
  }

  /** The ids of the kept leases granted. */
  List<Long> keptIds() {
    return keepers.stream().filter(k -> k.id > 0).map(k -> k.id).toList();
  }

  /** The leases abandoned. */
  List<AbandonedLease> abandoned() {
    return List.copyOf(abandoned);
  }

  /** What polling the keys of abandoned leases saw, by key. */
  Map<String, PollObservation> polls() {
    return Map.copyOf(polls);
  }

  /** "lease clients: 4 kept ..., 23 abandoned, 310 keepalives (12 failed)". */
  String summary() {
    return "lease clients: " + keepers.size() + " kept alive, " + abandoned.size() + " abandoned, " + grants
        + " grants, " + keepalivesOk + " keepalives answered 200 and " + keepalivesFailed + " not";
  }

  // ---- requests

  /** What a grant came to: the lease id and TTL, and the first send and the answer of the 201. */
  private record Grant(long id, long ttlSeconds, Renewal renewal) {}

  /** Something that sends requests to one node at a time and moves on after a failure. */
  private abstract class Client {
    final SplittableRandom random;
    final TimedHttp http = new TimedHttp(KvHttpClient.REQUEST_TIMEOUT);
    final TimedHttp fast = new TimedHttp(Duration.ofMillis(KEEPALIVE_TIMEOUT_MILLIS));
    NodeProcess node;

    Client(SplittableRandom random) {
      this.random = random;
      List<NodeProcess> nodes = cluster.nodes();
      this.node = nodes.get(random.nextInt(nodes.size()));
    }

    /** Another node than the current one, at random; one that runs if there is one. */
    void moveOn() {
      List<NodeProcess> nodes = cluster.nodes().stream().filter(n -> n != node).toList();
      List<NodeProcess> running = nodes.stream().filter(NodeProcess::running).toList();
      List<NodeProcess> choice = running.isEmpty() ? nodes : running;
      if (!choice.isEmpty()) {
        node = choice.get(random.nextInt(choice.size()));
      }
    }

    /**
     * Sends one request again and again (to another node after each failure) until {@code done}
     * accepts an answer, an answer comes that a retry would not change (not 503, 504, 409 or
     * none), {@code stop} says so, or {@link #REQUEST_BOUND} has passed; every answer, in order.
     */
    List<TimedHttp.Reply> untilAnswered(String method, String path, byte[] body, String idempotencyKey,
        Predicate<Answer> done, CountDownLatch stop) {
      List<TimedHttp.Reply> replies = new ArrayList<>();
      long deadline = System.nanoTime() + REQUEST_BOUND.toNanos();
      while (true) {
        TimedHttp.Reply reply = http.send(node, method, path, body, "Idempotency-Key", idempotencyKey,
            "Content-Type", "application/json");
        replies.add(reply);
        int status = reply.status();
        if (done.test(reply.answer()) || !(status == 503 || status == 504 || status == 409 || status == -1)
            || System.nanoTime() - deadline >= 0 || (stop != null && stop.getCount() == 0) || closed) {
          return replies;
        }
        moveOn();
        Poll.pause(RETRY_MILLIS);
      }
    }

    /** Grants a lease of {@code ttl} s under {@code id}; empty if no 201 came in time. */
    Optional<Grant> grant(long id, int ttl, String idempotencyKey) {
      byte[] body = ("{\"ttlSeconds\":" + ttl + ",\"id\":" + id + "}").getBytes(StandardCharsets.UTF_8);
      List<TimedHttp.Reply> replies = untilAnswered("POST", "/v1/leases", body, idempotencyKey, a -> a.status() == 201,
          null);
      TimedHttp.Reply last = replies.get(replies.size() - 1);
      if (last.status() != 201) {
        return Optional.empty();
      }
      grants.incrementAndGet();
      long granted = last.json().map(j -> j.path("ttlSeconds").asLong(-1)).orElse(-1L);
      long gotId = last.json().map(j -> j.path("id").asLong(-1)).orElse(-1L);
      if (gotId != id || granted != ttl) {
        throw new AssertionError("lease grant of " + ttl + " s under id " + id + " answered " + last.answer().body());
      }
      return Optional.of(new Grant(id, ttl, new Renewal(replies.get(0).answer().sendNanos(), last.answer().endNanos())));
    }

    /** One keepalive through the current node (a short timeout). */
    TimedHttp.Reply keepAlive(long id) {
      TimedHttp.Reply reply = fast.send(node, "POST", "/v1/leases/" + id + "/keepalive", null);
      if (reply.status() == 200) {
        keepalivesOk.incrementAndGet();
      } else {
        keepalivesFailed.incrementAndGet();
      }
      return reply;
    }

    /** A lease id for this run: positive, from the seed. */
    long newLeaseId() {
      return 1 + (random.nextLong() >>> 1) % (Long.MAX_VALUE - 1);
    }
  }

  /** Keeps one lease alive until stopped. */
  private final class Keeper extends Client {
    final int number;
    final int ttl;
    final String key;
    final List<Renewal> renewals = new ArrayList<>(); // read after the thread ended
    volatile long id;
    volatile long putRevision;
    volatile Answer lost;

    Keeper(int number, int ttl, SplittableRandom random) {
      super(random);
      this.number = number;
      this.ttl = ttl;
      this.key = PREFIX + "kept-" + number;
    }

    void run() {
      long leaseId = newLeaseId();
      Optional<Grant> grant = grant(leaseId, ttl, tag + "/kept-" + number + "/grant");
      if (grant.isEmpty()) {
        throw new AssertionError("the lease for " + key + " was not granted within " + REQUEST_BOUND.toSeconds() + " s");
      }
      synchronized (this) {
        renewals.add(grant.get().renewal());
      }
      id = leaseId;
      long period = TimeUnit.SECONDS.toNanos(ttl) / 4;
      long due = grant.get().renewal().ackNanos() + period;
      String putKey = tag + "/kept-" + number + "/put";
      byte[] value = key.getBytes(StandardCharsets.UTF_8);
      while (stopKeepers.getCount() > 0 && lost == null) {
        long now = System.nanoTime();
        if (now - due >= 0) {
          TimedHttp.Reply reply = keepAlive(leaseId);
          if (reply.status() == 200) {
            synchronized (this) {
              renewals.add(new Renewal(reply.answer().sendNanos(), reply.answer().endNanos()));
            }
            due = reply.answer().endNanos() + period;
          } else if (reply.status() == 404) {
            lost = reply.answer();
          } else {
            moveOn();
            due = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RETRY_MILLIS);
          }
        } else if (putRevision == 0) {
          // attach the key, one attempt at a time, so that keepalives go on meanwhile
          TimedHttp.Reply reply = fast.send(node, "PUT", "/v1/kv/" + key + "?lease=" + leaseId, value,
              "Idempotency-Key", putKey);
          if (reply.status() == 200) {
            putRevision = reply.answer().revision();
          } else if (reply.status() == 404) {
            lost = reply.answer();
          } else {
            moveOn();
            await(TimeUnit.MILLISECONDS.toNanos(RETRY_MILLIS));
          }
        } else {
          await(due - now);
        }
      }
    }

    private void await(long nanos) {
      try {
        stopKeepers.await(Math.max(1, nanos), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted", e);
      }
    }
  }

  /** Makes leases and leaves them, until stopped. */
  private final class Abandoner extends Client {
    final int number;
    final int minTtl;
    final int maxTtl;

    Abandoner(int number, int minTtl, int maxTtl, SplittableRandom random) {
      super(random);
      this.number = number;
      this.minTtl = minTtl;
      this.maxTtl = maxTtl;
    }

    void run() {
      for (int n = 0; stopAbandoners.getCount() > 0; n++) {
        abandonOne(n);
        pause(1_000 + random.nextInt(1_500));
      }
    }

    private void abandonOne(int n) {
      int ttl = minTtl + random.nextInt(maxTtl - minTtl + 1);
      long leaseId = newLeaseId();
      String name = "ab-" + number + "-" + n;
      Optional<Grant> grant = grant(leaseId, ttl, tag + "/" + name + "/grant");
      if (grant.isEmpty()) {
        return; // it may exist: the final check that only kept leases are left waits for it to expire
      }
      Renewal last = grant.get().renewal();
      List<String> keys = new ArrayList<>();
      List<Answer> notFound = new ArrayList<>();
      boolean uncertain = false;
      for (String suffix : List.of("a", "b")) {
        String key = PREFIX + name + "-" + suffix;
        List<TimedHttp.Reply> replies = untilAnswered("PUT", "/v1/kv/" + key + "?lease=" + leaseId,
            key.getBytes(StandardCharsets.UTF_8), tag + "/" + name + "/put-" + suffix, Answer::ok, null);
        TimedHttp.Reply reply = replies.get(replies.size() - 1);
        if (reply.status() == 200) {
          keys.add(key);
        } else if (reply.status() == 404) {
          notFound.add(reply.answer());
        }
      }
      int renewals = notFound.isEmpty() ? random.nextInt(3) : 0;
      for (int r = 0; r < renewals && !uncertain; r++) {
        pause(800 + random.nextInt(400));
        TimedHttp.Reply reply = keepAlive(leaseId);
        if (reply.status() == 200) {
          last = new Renewal(reply.answer().sendNanos(), reply.answer().endNanos());
        } else if (reply.status() == 404) {
          notFound.add(reply.answer());
          break;
        } else {
          uncertain = !reply.answer().refused(); // a leader may still serve it: the last renewal is not known
          moveOn();
        }
      }
      abandoned.add(new AbandonedLease(leaseId, ttl, keys, last, uncertain, notFound));
      watched.addAll(keys);
    }

    private void pause(long millis) {
      try {
        stopAbandoners.await(millis, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted", e);
      }
    }
  }

  // ---- the observer

  private void observe() {
    TimedHttp http = new TimedHttp(Duration.ofMillis(1_000));
    int turn = 0;
    try {
      while (!stopObserver.await(50, TimeUnit.MILLISECONDS)) {
        for (String key : watched) {
          PollObservation seen = polls.get(key);
          if (seen != null && seen.firstAbsentNanos() >= 0) {
            continue;
          }
          List<NodeProcess> running = cluster.nodes().stream().filter(NodeProcess::running).toList();
          if (running.isEmpty()) {
            break;
          }
          NodeProcess via = running.get(turn++ % running.size());
          TimedHttp.Reply reply = http.send(via, "GET", "/v1/kv/" + key, null);
          long lastPresent = seen == null ? -1 : seen.lastPresentNanos();
          if (reply.status() == 200) {
            polls.put(key, new PollObservation(reply.answer().sendNanos(), -1));
          } else if (reply.status() == 404 && "not_found".equals(reply.errorCode())) {
            polls.put(key, new PollObservation(lastPresent, reply.answer().endNanos()));
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
