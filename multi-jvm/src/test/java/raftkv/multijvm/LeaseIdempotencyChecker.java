package raftkv.multijvm;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Checks what the clients of {@code LeaseIdempotencyFaultsIT} recorded, once the faults are healed:
 * that retried writes were applied exactly once (Idempotency-Key, API.md §3), and that leases
 * (API.md §4) kept their keys while they were renewed in time and lost them in time once
 * abandoned. Plain data in, a list of problems out, so that {@code LeaseIdempotencyCheckerTest}
 * can show it catching each kind of bug with made-up histories. Times are
 * {@link System#nanoTime()} readings of the test JVM (the nodes on this machine read the same
 * monotonic clock).
 *
 * <p><b>Idempotency.</b> Each client writes its own key ({@code PUT}) with a unique
 * {@code Idempotency-Key} per logical write, retrying with the same key after any answer that does
 * not say what happened, and sends some writes again after their 200 (a client that lost the
 * answer), and some under a used key with another body. Then: the key's version is the number of
 * logical writes acknowledged (plus, at most, those never resolved); every 200 under one
 * Idempotency-Key carries the same body; a write sent again after its 200 is answered 200 with
 * {@code Idempotent-Replayed: true}; a replayed first 200 follows some attempt that may have been
 * applied (not only 503s, which promise nothing was); another request under a used key is a
 * {@code 422}, never a 200; the revisions of a client's writes grow with their order; the final
 * value and mod revision are the last write's; and every linearizable read a client made between
 * its writes saw the version its acknowledged writes imply.
 *
 * <p><b>Leases kept alive.</b> The longest time a lease may have gone without a renewal is, for
 * each pair of successive successes, from the send of the first to the answer of the second (a
 * renewal happens somewhere between a request's send and its answer); from the grant's first
 * send; and from the last renewal's send to the end of the observation. A lease whose longest such
 * gap is at most its TTL less {@link Bounds#keptMarginNanos} is <em>kept</em>: its key must never
 * have been deleted (no delete event in any watcher), must exist at the end with the create
 * revision of its put, and no keepalive of it may have been answered 404. A lease with a longer gap
 * is only reported.
 *
 * <p><b>Leases abandoned.</b> Granted, given keys, perhaps renewed, then left. Every key must be
 * gone at the end, deleted once, all keys of a lease at one revision. The deletion is seen at
 * {@code tD}, the earliest of a watcher receiving its revision and a linearizable read answering
 * 404: an upper bound of when it was committed. The lease's time runs from its last renewal, at
 * some instant between the send and the answer of the request; so {@code tD} before the send + TTL
 * is a deletion before the TTL, and a 404 to a put or keepalive of the lease answered before it is
 * an expiry before the TTL. What the server does ({@code node.LeaseKeeper}): the leader revokes a
 * lease its TTL after the last renewal, and a new leader, once its no-op is applied, gives every
 * lease its whole TTL (or the remaining time a checkpoint recorded: only leases longer than
 * {@code raftkv.lease.checkpoint-interval}, 5 min, have one) plus one election timeout, as etcd
 * does. So the latest deadline is {@code max(lastAck + TTL, tL + TTL + ET)}, with {@code tL} the
 * time a leader of a newer term was first seen (by {@code LeaderMonitor}) after the renewal;
 * {@code tD} may pass it by one election timeout (the revoke's proposal and commit, as the README
 * allows) plus an observer allowance: how late the deletion may be seen, larger when a fault was
 * in force in the window (a node restarting on two cores, a watcher reconnecting, a new leader's
 * no-op). A lease whose last renewal may have been followed by another (a keepalive that timed out
 * or was answered 503 or 504, which a leader may still have served) is checked for being gone, not
 * for when.
 *
 * <p>README.md ("Leases") words it otherwise: "an abandoned lease's keys go within its TTL plus one
 * election timeout of its last renewal — plus, if the leader changes in between, the time the
 * election took". That does not hold when the leader changes late in the TTL (the new leader
 * starts the whole TTL again), and a lease can outlive its TTL many times over while leaders keep
 * changing more often than the TTL. The figures count the abandoned leases that went later than
 * those words allow; it is not a failure.
 */
public final class LeaseIdempotencyChecker {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final double NANOS_PER_SECOND = 1e9;

  /**
   * One request and what came of it.
   *
   * @param node      where it went
   * @param sendNanos when it was sent
   * @param endNanos  when the answer came or the client gave up
   * @param status    the HTTP status, -1 without an answer
   * @param replayed  the answer had {@code Idempotent-Replayed: true}
   * @param body      the body as text (null without an answer)
   * @param failure   why there was no answer, else null
   * @param refused   no connection was made: the request never left
   */
  public record Answer(String node, long sendNanos, long endNanos, int status, boolean replayed, String body,
      String failure, boolean refused) {

    /** A 200 or 201. */
    public boolean ok() {
      return status == 200 || status == 201;
    }

    /** An answer that promises nothing was applied: 503, any 4xx, or no connection at all. */
    public boolean definitelyNotApplied() {
      return refused || status == 503 || (status >= 400 && status < 500);
    }

    /** "504 via n2 after 2.01 s", "HttpTimeoutException via n1 after 3.00 s". */
    public String describe() {
      return (status < 0 ? failure : status + (replayed ? " (replayed)" : "")) + " via " + node + " after "
          + seconds(endNanos - sendNanos);
    }

    /** The {@code revision} of a JSON body, -1 if none. */
    public long revision() {
      if (body == null || body.isEmpty()) {
        return -1;
      }
      try {
        JsonNode json = JSON.readTree(body);
        return json != null && json.path("revision").canConvertToLong() ? json.path("revision").asLong() : -1;
      } catch (java.io.IOException e) {
        return -1;
      }
    }
  }

  // ---- idempotency: what the clients did

  /**
   * One logical write: a PUT of {@code value} to {@code key} under {@code idempotencyKey}.
   *
   * @param attempts  every try until the first 200 (or the client gave up), in order
   * @param duplicate the same request sent again after the 200 (a lost answer), until answered
   * @param conflict  another body under the same Idempotency-Key after the 200, until answered
   */
  public record LogicalWrite(String client, String key, int seq, String idempotencyKey, String value,
      List<Answer> attempts, List<Answer> duplicate, List<Answer> conflict) {

    public LogicalWrite {
      attempts = List.copyOf(attempts);
      duplicate = List.copyOf(duplicate);
      conflict = List.copyOf(conflict);
    }

    /** The 200 that ended the attempts, if one did. */
    public Optional<Answer> acknowledged() {
      return attempts.isEmpty() || !attempts.get(attempts.size() - 1).ok() ? Optional.empty()
          : Optional.of(attempts.get(attempts.size() - 1));
    }

    String name() {
      return key + " write #" + seq + " (Idempotency-Key " + idempotencyKey + ")";
    }
  }

  /**
   * A linearizable read of a client's key made after its write {@code writesBefore - 1} was
   * resolved and before write {@code writesBefore} was sent: its answer (200, or 404 for a key not
   * written yet, version 0), and the {@code X-Version} and value it returned.
   */
  public record CounterRead(String key, int writesBefore, Answer answer, long version, String value) {}

  /** A key as a linearizable read found it at the end. */
  public record FinalKey(String key, boolean present, long version, long createRevision, long modRevision,
      String value) {

    /** An absent key. */
    public static FinalKey absent(String key) {
      return new FinalKey(key, false, 0, 0, 0, null);
    }
  }

  // ---- leases: what the clients did and what was seen

  /** A successful grant or keepalive: sent at {@code sendNanos} (the first try's, for a grant), answered at {@code ackNanos}. */
  public record Renewal(long sendNanos, long ackNanos) {}

  /**
   * A lease renewed every TTL/4 until the end.
   *
   * @param renewals    its grant, then every successful keepalive, in order
   * @param putRevision the revision of the put that attached {@code key}
   * @param endNanos    when the observation ended (after the final read of the key)
   * @param lost        a 404 answer to one of its keepalives, or null
   */
  public record KeptLease(long id, long ttlSeconds, String key, long putRevision, List<Renewal> renewals,
      long endNanos, Answer lost) {

    public KeptLease {
      renewals = List.copyOf(renewals);
    }
  }

  /**
   * A lease granted, given {@code keys}, perhaps renewed a few times, then left alone.
   *
   * @param last      its last successful grant or keepalive
   * @param uncertain a keepalive after {@code last} was sent and may have been served (no definite answer)
   * @param notFound  404s to puts or keepalives of it (the lease was gone when they were served)
   */
  public record AbandonedLease(long id, long ttlSeconds, List<String> keys, Renewal last, boolean uncertain,
      List<Answer> notFound) {

    public AbandonedLease {
      keys = List.copyOf(keys);
      notFound = List.copyOf(notFound);
    }
  }

  /** A put or delete of a key at {@code revision}, first received by some watcher at {@code firstSeenNanos}. */
  public record KeyEvent(long revision, boolean delete, long firstSeenNanos) {}

  /**
   * What polling a key of an abandoned lease with linearizable reads saw: the send of the last
   * read that found it, and the answer of the first that did not (-1: none).
   */
  public record PollObservation(long lastPresentNanos, long firstAbsentNanos) {}

  /** A term whose leader was seen (status role leader) first and last at these times. */
  public record LeaderTerm(long term, String node, long firstSeenNanos, long lastSeenNanos) {}

  /**
   * How far a lease's expiry may be from its deadline.
   *
   * @param electionTimeoutNanos the cluster's election timeout
   * @param observerNanos        allowance for seeing a deletion late, when no fault was in force
   * @param faultObserverNanos   the same when a fault was in force at some point of the window
   * @param keptMarginNanos      a kept lease's longest gap must be at most its TTL less this
   */
  public record Bounds(long electionTimeoutNanos, long observerNanos, long faultObserverNanos, long keptMarginNanos) {}

  /** What the lease check looks at besides the leases. */
  public record Observations(Map<String, List<KeyEvent>> events, Map<String, PollObservation> polls,
      Map<String, FinalKey> finalKeys, Map<Long, Boolean> leaseExistsAtEnd, List<LeaderTerm> leaders,
      List<Nemesis.Window> faultWindows) {}

  /** The problems found (empty: all good) and a few lines of figures. */
  public record Report(List<String> problems, List<String> figures) {

    public boolean ok() {
      return problems.isEmpty();
    }

    public String describe() {
      StringBuilder text = new StringBuilder();
      figures.forEach(f -> text.append("\n  ").append(f));
      if (!problems.isEmpty()) {
        text.append("\n  ").append(problems.size()).append(" problem(s):");
        problems.forEach(p -> text.append("\n  - ").append(p));
      }
      return text.toString();
    }
  }

  // ---- idempotency

  /** Checks the logical writes, the reads between them, and the final state of the clients' keys. */
  public Report checkIdempotency(List<LogicalWrite> writes, List<CounterRead> reads, Map<String, FinalKey> finals) {
    List<String> problems = new ArrayList<>();
    Map<String, List<LogicalWrite>> byKey = new TreeMap<>();
    writes.forEach(w -> byKey.computeIfAbsent(w.key(), k -> new ArrayList<>()).add(w));
    int attempts = 0;
    int retries = 0;
    int retriesReplayed = 0;
    int duplicates = 0;
    int duplicatesReplayed = 0;
    int conflicts = 0;
    int conflicts422 = 0;
    int inFlight409 = 0;
    int unresolvedAll = 0;
    Map<String, Integer> retryCauses = new TreeMap<>();
    for (Map.Entry<String, List<LogicalWrite>> entry : byKey.entrySet()) {
      String key = entry.getKey();
      List<LogicalWrite> list = new ArrayList<>(entry.getValue());
      list.sort(Comparator.comparingInt(LogicalWrite::seq));
      int acked = 0;
      int unresolved = 0;
      LogicalWrite lastAcked = null;
      long lastRevision = -1;
      LogicalWrite lastRevisionWrite = null;
      for (LogicalWrite w : list) {
        attempts += w.attempts().size();
        retries += Math.max(0, w.attempts().size() - 1);
        for (int i = 0; i + 1 < w.attempts().size(); i++) {
          Answer a = w.attempts().get(i);
          retryCauses.merge(a.status() < 0 ? (a.refused() ? "refused" : "no answer") : Integer.toString(a.status()), 1,
              Integer::sum);
        }
        inFlight409 += (int) w.attempts().stream().filter(a -> a.status() == 409).count();
        Optional<Answer> ack = w.acknowledged();
        for (Answer a : w.attempts()) {
          if (!a.ok() && a.status() != 503 && a.status() != 504 && a.status() != 409 && a.status() != -1) {
            problems.add(w.name() + ": an answer no retry of the same request should get: " + a.describe()
                + " " + abbreviate(a.body()));
          }
        }
        if (ack.isEmpty()) {
          unresolved++;
          continue;
        }
        acked++;
        lastAcked = w;
        Answer first200 = ack.get();
        if (w.attempts().size() > 1 && first200.replayed()) {
          retriesReplayed++;
        }
        List<Answer> earlier = w.attempts().subList(0, w.attempts().size() - 1);
        if (first200.replayed() && earlier.stream().allMatch(Answer::definitelyNotApplied)) {
          problems.add(w.name() + ": its first 200 (" + first200.describe() + ") is a replay, but no earlier attempt"
              + " can have been applied: " + (earlier.isEmpty() ? "there was none"
              : earlier.stream().map(Answer::describe).collect(Collectors.joining(", "))
              + " (503 and refused connections promise that nothing was applied)"));
        }
        // every 200 under this Idempotency-Key carries the first answer
        List<Answer> oks = new ArrayList<>();
        oks.add(first200);
        w.duplicate().stream().filter(Answer::ok).forEach(oks::add);
        for (Answer a : oks) {
          if (!a.body().equals(first200.body())) {
            problems.add(w.name() + ": two different 200 answers under one Idempotency-Key: "
                + abbreviate(first200.body()) + " (" + first200.describe() + ") and " + abbreviate(a.body()) + " ("
                + a.describe() + ")");
          }
        }
        if (!w.duplicate().isEmpty()) {
          duplicates++;
          Answer last = w.duplicate().get(w.duplicate().size() - 1);
          if (!last.ok()) {
            problems.add(w.name() + ": sent again after its 200, it never got a 200: last " + last.describe());
          } else if (!last.replayed()) {
            problems.add(w.name() + ": sent again after its 200 (" + first200.describe() + "), it was answered "
                + last.describe() + " " + abbreviate(last.body()) + " without Idempotent-Replayed: applied twice");
          } else {
            duplicatesReplayed++;
          }
          for (Answer a : w.duplicate()) {
            if (!a.ok() && a.status() != 503 && a.status() != 504 && a.status() != 409 && a.status() != -1) {
              problems.add(w.name() + ": sent again after its 200, answered " + a.describe() + " " + abbreviate(a.body()));
            }
          }
        }
        if (!w.conflict().isEmpty()) {
          conflicts++;
          for (Answer a : w.conflict()) {
            if (a.ok()) {
              problems.add(w.name() + ": another body under its used Idempotency-Key was answered " + a.describe() + " "
                  + abbreviate(a.body()) + ", not 422");
            } else if (a.status() != 422 && a.status() != 503 && a.status() != 504 && a.status() != -1) {
              problems.add(w.name() + ": another body under its used Idempotency-Key was answered " + a.describe()
                  + " " + abbreviate(a.body()) + ", not 422");
            }
          }
          if (w.conflict().get(w.conflict().size() - 1).status() == 422) {
            conflicts422++;
          }
        }
        long revision = first200.revision();
        if (revision < 0) {
          problems.add(w.name() + ": its 200 has no revision: " + abbreviate(first200.body()));
        } else {
          if (revision <= lastRevision) {
            problems.add(w.name() + ": applied at revision " + revision + ", not after the client's earlier "
                + lastRevisionWrite.name() + " at revision " + lastRevision
                + (revision == lastRevision ? ": two logical writes share one record" : ""));
          }
          lastRevision = revision;
          lastRevisionWrite = w;
        }
      }
      unresolvedAll += unresolved;
      FinalKey end = finals.get(key);
      if (end == null) {
        problems.add(key + ": no final read");
        continue;
      }
      if (end.version() > acked + unresolved) {
        problems.add(key + ": version " + end.version() + " at the end, but " + acked + " logical writes were"
            + " acknowledged" + (unresolved == 0 ? "" : " and " + unresolved + " never resolved")
            + ": some write was applied more than once");
      } else if (end.version() < acked) {
        problems.add(key + ": version " + end.version() + " at the end, but " + acked
            + " logical writes were acknowledged: some acknowledged write is lost");
      }
      if (lastAcked != null && lastAcked == list.get(list.size() - 1)) {
        if (!lastAcked.value().equals(end.value())) {
          problems.add(key + ": holds " + abbreviate(end.value()) + " at the end, not " + lastAcked.value()
              + ", the value of its last write (" + lastAcked.name() + ")");
        }
        long revision = lastAcked.acknowledged().get().revision();
        if (revision >= 0 && end.modRevision() != revision) {
          problems.add(key + ": mod revision " + end.modRevision() + " at the end, but its last write ("
              + lastAcked.name() + ") was applied at revision " + revision);
        }
      }
    }
    // the reads between writes
    int readsChecked = 0;
    for (CounterRead read : reads) {
      if (read.answer().status() != 200 && read.answer().status() != 404) {
        continue; // a read that failed says nothing
      }
      List<LogicalWrite> before = byKey.getOrDefault(read.key(), List.of()).stream()
          .filter(w -> w.seq() < read.writesBefore()).toList();
      long acked = before.stream().filter(w -> w.acknowledged().isPresent()).count();
      long unresolved = before.size() - acked;
      readsChecked++;
      if (read.version() < acked || read.version() > acked + unresolved) {
        problems.add(read.key() + ": a linearizable read after " + acked + " acknowledged writes"
            + (unresolved == 0 ? "" : " (" + unresolved + " unresolved)") + " saw version " + read.version() + " ("
            + read.answer().describe() + ")" + (read.version() > acked + unresolved ? ": a write applied twice"
            : ": an acknowledged write missing"));
      }
    }
    List<String> figures = List.of(String.format(Locale.ROOT,
        "idempotency: %d logical writes on %d keys (%d never resolved) in %d attempts: %d retries (after %s),"
            + " of which %d were answered from the record of an earlier attempt (Idempotent-Replayed); %d sent again after their 200, %d of them replayed; %d other bodies under a"
            + " used key, %d of them 422; %d answers 409; %d reads in between checked",
        writes.size(), byKey.size(), unresolvedAll, attempts, retries,
        retryCauses.entrySet().stream().map(e -> e.getKey() + " x" + e.getValue()).collect(Collectors.joining(", ")),
        retriesReplayed, duplicates, duplicatesReplayed, conflicts, conflicts422, inFlight409, readsChecked));
    return new Report(List.copyOf(problems), figures);
  }

  // ---- leases

  /** Checks the kept and the abandoned leases against what was observed. */
  public Report checkLeases(List<KeptLease> kept, List<AbandonedLease> abandoned, Observations seen, Bounds bounds) {
    List<String> problems = new ArrayList<>();
    List<String> figures = new ArrayList<>();
    checkKept(kept, seen, bounds, problems, figures);
    checkAbandoned(abandoned, seen, bounds, problems, figures);
    return new Report(List.copyOf(problems), List.copyOf(figures));
  }

  /** The longest a kept lease may have gone without a renewal, from the grant to the end. */
  static long longestGapNanos(KeptLease lease) {
    long longest = 0;
    List<Renewal> renewals = lease.renewals();
    for (int i = 0; i + 1 < renewals.size(); i++) {
      longest = Math.max(longest, renewals.get(i + 1).ackNanos() - renewals.get(i).sendNanos());
    }
    if (!renewals.isEmpty()) {
      longest = Math.max(longest, lease.endNanos() - renewals.get(renewals.size() - 1).sendNanos());
    }
    return longest;
  }

  private static void checkKept(List<KeptLease> kept, Observations seen, Bounds bounds, List<String> problems,
      List<String> figures) {
    int qualified = 0;
    long longestQualified = 0;
    List<String> notQualified = new ArrayList<>();
    for (KeptLease lease : kept) {
      long ttl = lease.ttlSeconds() * 1_000_000_000L;
      long gap = longestGapNanos(lease);
      List<KeyEvent> deletes = seen.events().getOrDefault(lease.key(), List.of()).stream()
          .filter(KeyEvent::delete).toList();
      String name = "kept lease " + lease.id() + " (TTL " + lease.ttlSeconds() + " s, key " + lease.key() + ")";
      if (lease.renewals().isEmpty() || gap > ttl - bounds.keptMarginNanos()) {
        notQualified.add(name + ": longest gap " + seconds(gap)
            + (deletes.isEmpty() ? "" : ", its key deleted at revision " + deletes.get(0).revision())
            + (lease.lost() == null ? "" : ", a keepalive answered " + lease.lost().describe()));
        continue;
      }
      qualified++;
      longestQualified = Math.max(longestQualified, gap);
      if (!deletes.isEmpty()) {
        problems.add(name + ": renewed at most " + seconds(gap) + " apart, yet its key was deleted at revision "
            + deletes.get(0).revision() + " (first seen " + seconds(deletes.get(0).firstSeenNanos()
            - lease.renewals().get(0).sendNanos()) + " after the grant)");
      }
      if (lease.lost() != null) {
        problems.add(name + ": renewed at most " + seconds(gap) + " apart, yet a keepalive was answered "
            + lease.lost().describe() + " " + abbreviate(lease.lost().body()));
      }
      FinalKey end = seen.finalKeys().get(lease.key());
      if (end == null || !end.present()) {
        problems.add(name + ": renewed at most " + seconds(gap) + " apart, yet its key is "
            + (end == null ? "not read" : "gone") + " at the end");
      } else if (lease.putRevision() > 0 && end.createRevision() != lease.putRevision()) {
        problems.add(name + ": its key was created again at revision " + end.createRevision() + ", not "
            + lease.putRevision() + " as put");
      }
      if (Boolean.FALSE.equals(seen.leaseExistsAtEnd().get(lease.id()))) {
        problems.add(name + ": renewed at most " + seconds(gap) + " apart, yet the lease is gone at the end");
      }
    }
    figures.add(String.format(Locale.ROOT, "leases kept alive: %d, %d renewed in time all along (longest gap %s),"
        + " their keys never deleted%s", kept.size(), qualified, seconds(longestQualified),
        notQualified.isEmpty() ? "" : "; not renewed in time: " + String.join("; ", notQualified)));
  }

  private static void checkAbandoned(List<AbandonedLease> abandoned, Observations seen, Bounds bounds,
      List<String> problems, List<String> figures) {
    long maxCleanOvershoot = Long.MIN_VALUE;
    long maxFaultOvershoot = Long.MIN_VALUE;
    long maxLeaderChangeOvershoot = Long.MIN_VALUE;
    long maxBeyondDeadline = Long.MIN_VALUE;
    long minLived = Long.MAX_VALUE;
    int clean = 0;
    int faulted = 0;
    int leaderChanged = 0;
    int uncertain = 0;
    int timed = 0;
    List<String> beyondReadme = new ArrayList<>();
    for (AbandonedLease lease : abandoned) {
      long ttl = lease.ttlSeconds() * 1_000_000_000L;
      String name = "abandoned lease " + lease.id() + " (TTL " + lease.ttlSeconds() + " s, keys " + lease.keys() + ")";
      for (Answer notFound : lease.notFound()) {
        if (notFound.endNanos() - (lease.last().sendNanos() + ttl) < 0) {
          problems.add(name + ": answered " + notFound.describe() + " (lease not found) "
              + seconds(notFound.endNanos() - lease.last().sendNanos()) + " after its last renewal was sent:"
              + " it expired before its TTL");
        }
      }
      if (lease.keys().isEmpty()) {
        continue;
      }
      long tD = Long.MAX_VALUE;
      Set<Long> deleteRevisions = new LinkedHashSet<>();
      for (String key : lease.keys()) {
        List<KeyEvent> events = seen.events().getOrDefault(key, List.of());
        List<KeyEvent> deletes = events.stream().filter(KeyEvent::delete).toList();
        FinalKey end = seen.finalKeys().get(key);
        if (end == null || end.present()) {
          problems.add(name + ": key " + key + " " + (end == null ? "was not read at the end"
              : "outlived its lease: still there at the end (version " + end.version() + ")"));
        }
        if (deletes.size() != 1) {
          problems.add(name + ": key " + key + " deleted " + deletes.size() + " times (watch events "
              + events.stream().map(e -> (e.delete() ? "delete@" : "put@") + e.revision()).toList() + ")");
        }
        if (!deletes.isEmpty() && !events.get(events.size() - 1).delete()) {
          problems.add(name + ": key " + key + " put again after its deletion: " + events);
        }
        for (KeyEvent d : deletes) {
          deleteRevisions.add(d.revision());
          tD = Math.min(tD, d.firstSeenNanos());
        }
        PollObservation poll = seen.polls().get(key);
        if (poll != null && poll.firstAbsentNanos() >= 0) {
          tD = Math.min(tD, poll.firstAbsentNanos());
        }
      }
      if (deleteRevisions.size() > 1) {
        problems.add(name + ": its keys were deleted at revisions " + deleteRevisions + ", not at one revision");
      }
      if (Boolean.TRUE.equals(seen.leaseExistsAtEnd().get(lease.id()))) {
        problems.add(name + ": the lease still exists at the end");
      }
      if (tD == Long.MAX_VALUE) {
        problems.add(name + ": its deletion was never seen");
        continue;
      }
      long seenGone = tD;
      long lived = tD - lease.last().sendNanos();
      minLived = Math.min(minLived, lived - ttl);
      if (lived < ttl) {
        problems.add(name + ": deleted (seen " + seconds(lived) + " after its last renewal was sent) before its TTL");
      }
      if (lease.uncertain()) {
        uncertain++;
        continue;
      }
      timed++;
      long lastAck = lease.last().ackNanos();
      // a leader of a newer term taking over after the renewal gives the lease its TTL and an election timeout again
      Optional<LeaderTerm> newer = seen.leaders().stream()
          .filter(t -> t.firstSeenNanos() > lease.last().sendNanos() && t.firstSeenNanos() < seenGone)
          .max(Comparator.comparingLong(LeaderTerm::firstSeenNanos));
      long deadline = lastAck + ttl;
      if (newer.isPresent()) {
        deadline = Math.max(deadline, newer.get().firstSeenNanos() + ttl + bounds.electionTimeoutNanos());
      }
      boolean fault = seen.faultWindows().stream().anyMatch(w -> w.start() < seenGone && w.end() > lease.last().sendNanos());
      long allowance = bounds.electionTimeoutNanos() + (fault || newer.isPresent() ? bounds.faultObserverNanos()
          : bounds.observerNanos());
      long overshoot = tD - lastAck - ttl;
      maxBeyondDeadline = Math.max(maxBeyondDeadline, tD - deadline);
      if (newer.isPresent()) {
        leaderChanged++;
        maxLeaderChangeOvershoot = Math.max(maxLeaderChangeOvershoot, overshoot);
      } else if (fault) {
        faulted++;
        maxFaultOvershoot = Math.max(maxFaultOvershoot, overshoot);
      } else {
        clean++;
        maxCleanOvershoot = Math.max(maxCleanOvershoot, overshoot);
      }
      if (tD - deadline > allowance) {
        problems.add(name + ": its keys outlived their deadline: deletion seen " + seconds(overshoot)
            + " past TTL after the last renewal's answer, " + seconds(tD - deadline) + " past the latest deadline"
            + (newer.isPresent() ? " (a leader of term " + newer.get().term() + " took over "
                + seconds(newer.get().firstSeenNanos() - lastAck) + " after the renewal)" : "")
            + "; allowed " + seconds(allowance) + (fault ? " (a fault was in force)" : ""));
      }
      // the README's words: TTL + one election timeout, plus the election time when the leader changed
      long readme = lastAck + ttl + bounds.electionTimeoutNanos() + electionTime(seen.leaders(), lease.last().sendNanos(), tD);
      if (tD - readme > (fault || newer.isPresent() ? bounds.faultObserverNanos() : bounds.observerNanos())) {
        beyondReadme.add(lease.id() + " by " + seconds(tD - readme) + (newer.isPresent()
            ? " (leader of term " + newer.get().term() + " first seen " + seconds(newer.get().firstSeenNanos() - lastAck)
            + " after the renewal)" : ""));
      }
    }
    figures.add(String.format(Locale.ROOT, "leases abandoned: %d (%d with a renewal of unknown outcome, checked for"
        + " being gone only); deletion seen past TTL after the last renewal's answer: at most %s with no fault in"
        + " the window (%d), %s with a fault but no leader change (%d), %s across a leader change (%d); at most %s"
        + " past the latest deadline (max(lastAck + TTL, new leader + TTL + ET)); earliest %s past TTL after the"
        + " last renewal's send", abandoned.size(), uncertain, orNone(maxCleanOvershoot), clean,
        orNone(maxFaultOvershoot), faulted, orNone(maxLeaderChangeOvershoot), leaderChanged,
        orNone(maxBeyondDeadline), minLived == Long.MAX_VALUE ? "n/a" : seconds(minLived)));
    figures.add("abandoned leases deleted later than the README's bound (TTL + ET after the last renewal, plus the"
        + " election time when the leader changed): " + (beyondReadme.isEmpty() ? "none" : beyondReadme.size() + " of "
        + timed + ": " + String.join(", ", beyondReadme)));
  }

  /**
   * The time elections took between {@code from} and {@code to}: for each leader first seen in it,
   * from the last sight of the previous term's leader to the first sight of this one.
   */
  static long electionTime(List<LeaderTerm> leaders, long from, long to) {
    List<LeaderTerm> sorted = leaders.stream().sorted(Comparator.comparingLong(LeaderTerm::term)).toList();
    long total = 0;
    for (int i = 1; i < sorted.size(); i++) {
      LeaderTerm t = sorted.get(i);
      if (t.firstSeenNanos() > from && t.firstSeenNanos() < to) {
        total += Math.max(0, t.firstSeenNanos() - sorted.get(i - 1).lastSeenNanos());
      }
    }
    return total;
  }

  /**
   * The put and delete events of every key in the watchers' change messages (JSON arrays of
   * {@code {"type","key",...}}), each with the time the first watcher received its revision.
   */
  public static Map<String, List<KeyEvent>> eventsByKey(Map<Long, String> dataByRevision, Map<Long, Long> firstSeen) {
    Map<String, List<KeyEvent>> events = new LinkedHashMap<>();
    new TreeMap<>(dataByRevision).forEach((revision, data) -> {
      try {
        JsonNode array = JSON.readTree(data);
        for (JsonNode event : array) {
          events.computeIfAbsent(event.path("key").asText(), k -> new ArrayList<>()).add(new KeyEvent(revision,
              "delete".equals(event.path("type").asText()), firstSeen.getOrDefault(revision, Long.MAX_VALUE)));
        }
      } catch (java.io.IOException e) {
        throw new IllegalStateException("revision " + revision + ": data is not JSON: " + abbreviate(data), e);
      }
    });
    return events;
  }

  private static String orNone(long nanos) {
    return nanos == Long.MIN_VALUE ? "n/a" : seconds(nanos);
  }

  static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.2f s", nanos / NANOS_PER_SECOND);
  }

  private static String abbreviate(String text) {
    if (text == null) {
      return "(no body)";
    }
    return text.length() > 160 ? text.substring(0, 160) + "..." : text;
  }
}
