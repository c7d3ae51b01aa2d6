package raftkv.multijvm;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import raftkv.multijvm.LeaseIdempotencyChecker.Answer;
import raftkv.multijvm.LeaseIdempotencyChecker.Report;

/**
 * Checks what the {@link LockClients} of {@code LockFaultsIT} recorded, once the faults are healed:
 * that a lock with fencing tokens (API.md §4, README.md "Locks" and "Fenced writes") protected a
 * counter that its holders incremented with fenced compare-and-set writes. Plain data in, a list of
 * problems out, so that {@code LockCheckerTest} can show it catching each kind of bug with made-up
 * histories. Times are {@link System#nanoTime()} readings of the test JVM.
 *
 * <p>The clients: each acquisition of the lock gives a fencing token {@code T}; its holder does one
 * to three increments of the key {@code counter}, each a linearizable read ({@code v}, mod revision
 * {@code m}) then a {@code PUT v+1} with {@code If-Fence: <lock>=T}, {@code If-Match: "m"} and an
 * {@code Idempotency-Key} of its own, retried with that key after any answer that does not say
 * what happened, until it is answered. A "paused client" stops renewing its lease while holding,
 * waits until a linearizable read of the lock shows another token (or none), and then tries an
 * increment with its old token.
 *
 * <p>The checks:
 * <ol>
 *   <li><b>No lost update, no double apply</b>: the final counter (a linearizable read after
 *       healing) equals the number of acknowledged increments (each has an Idempotency-Key of its
 *       own, so each is one logical increment), plus at most the increments never resolved; and its
 *       version is its value plus one (the initial {@code 0} and one put per increment);</li>
 *   <li><b>Values</b>: the values of the acknowledged increments are 1..N, each once (a value twice
 *       is a lost update: two holders' writes from the same read); every value in 1..final that no
 *       acknowledged increment wrote must be one an unresolved increment tried (else something was
 *       applied without being acknowledged, or twice); within one acquisition the values grow in the
 *       order they were acknowledged;</li>
 *   <li><b>Tokens</b>: ordered by value, the acknowledged increments carry non-decreasing tokens
 *       (a later value never under an older token: the holders' writes form one run per token, in
 *       token order), each its acquisition's token; no two acquisitions got the same token; an
 *       acquisition whose first request was sent after another's was acknowledged has a greater
 *       token; and no increment was refused for its {@code If-Match} while its fence passed (the
 *       counter changed under a holder, or its linearizable read was stale);</li>
 *   <li><b>Stale tokens</b>: every increment tried with a token after a linearizable read saw the
 *       lock held by another token (or by none) was refused with {@code 412} naming a holder's
 *       token other than its own, and the value it tried is not in the counter's history unless an
 *       acknowledged or unresolved increment explains it;</li>
 *   <li><b>Liveness</b>: acquisitions and acknowledged increments in every phase (quiet, faults,
 *       quiet).</li>
 * </ol>
 */
public final class LockChecker {

  /** How an increment ended. */
  public enum Outcome {
    /** 200 (a first answer or a replay). */
    ACKED,
    /** 412 for its If-Match: the fence passed, the counter had changed. */
    MATCH_FAILED,
    /** 412 for its If-Fence: the token no longer held the lock. */
    FENCED,
    /** No definite answer within the client's bounds: it may or may not have been applied. */
    UNRESOLVED,
    /** Another answer no increment should get (a 4xx other than 412, a 5xx that stays): not applied. */
    REFUSED
  }

  /**
   * One acquisition of the lock.
   *
   * @param client         who ("c0")
   * @param seq            its number among the client's acquisitions
   * @param lease          the lease it was made with
   * @param key            the waiter key the server named
   * @param token          the fencing token
   * @param firstSendNanos when the first request of this acquisition was sent (retries keep their place)
   * @param ackNanos       when the 200 came
   * @param releaseNanos   when the release was answered 200, -1 if it was not released so
   * @param end            how the hold ended: "released", "gone" (404: the key had gone), "lost" (a
   *                       write or the release found another holder), "paused" (a paused client),
   *                       "unknown" (the release went unanswered)
   */
  public record Acquisition(String client, int seq, long lease, String key, long token, long firstSendNanos,
      long ackNanos, long releaseNanos, String end) {

    String name() {
      return client + " acquisition #" + seq + " (token " + token + ")";
    }
  }

  /**
   * One increment: a PUT of {@code value} with the acquisition's token and an If-Match of
   * {@code readModRevision}, under one Idempotency-Key, retried until answered.
   *
   * @param answers every try, in order
   * @param holderToken the holder's token a FENCED answer named, else 0
   */
  public record Increment(String client, int acquisition, long token, String idempotencyKey, long value,
      long readModRevision, List<Answer> answers, Outcome outcome, long holderToken) {

    public Increment {
      answers = List.copyOf(answers);
    }

    long firstSendNanos() {
      return answers.isEmpty() ? -1 : answers.get(0).sendNanos();
    }

    long endNanos() {
      return answers.isEmpty() ? -1 : answers.get(answers.size() - 1).endNanos();
    }

    boolean replayed() {
      return !answers.isEmpty() && answers.get(answers.size() - 1).replayed();
    }

    String name() {
      return client + " increment to " + value + " under token " + token + " (Idempotency-Key " + idempotencyKey + ")";
    }
  }

  /**
   * A paused client's increment with its old token, tried after {@code movedOnNanos}, when a
   * linearizable read of the lock answered that {@code holderSeen} held it (0: nobody).
   *
   * @param answers every try of the PUT, in order (empty if it was never sent)
   * @param outcome how it ended; {@link Outcome#ACKED} is the bug this looks for
   * @param holderToken the holder's token its 412 named, else 0
   */
  public record StaleAttempt(String client, int acquisition, long token, long movedOnNanos, long holderSeen,
      String idempotencyKey, long value, List<Answer> answers, Outcome outcome, long holderToken) {

    public StaleAttempt {
      answers = List.copyOf(answers);
    }

    String name() {
      return client + " stale write of " + value + " under old token " + token + " (the lock seen "
          + (holderSeen == 0 ? "free" : "held by token " + holderSeen) + ")";
    }
  }

  /** The counter as a linearizable read found it at the end. */
  public record FinalCounter(long value, long version, long modRevision) {}

  /**
   * The phases of the run: quiet from {@code startNanos}, faults from {@code faultsStartNanos},
   * quiet again from {@code faultsEndNanos} until {@code endNanos}.
   */
  public record Phases(long startNanos, long faultsStartNanos, long faultsEndNanos, long endNanos) {

    int of(long nanos) {
      return nanos < faultsStartNanos ? 0 : nanos < faultsEndNanos ? 1 : 2;
    }

    static final List<String> NAMES = List.of("first quiet phase", "fault phase", "last quiet phase");
  }

  /** Checks the whole run; the report's figures say what was seen. */
  public Report check(List<Acquisition> acquisitions, List<Increment> increments, List<StaleAttempt> stale,
      FinalCounter counter, Phases phases) {
    List<String> problems = new ArrayList<>();
    List<String> figures = new ArrayList<>();
    List<Increment> acked = increments.stream().filter(i -> i.outcome() == Outcome.ACKED).toList();
    List<Increment> unresolved = increments.stream().filter(i -> i.outcome() == Outcome.UNRESOLVED).toList();

    checkFinal(acked, unresolved, counter, problems);
    checkValues(acked, unresolved, stale, counter, problems);
    checkTokens(acquisitions, increments, acked, problems);
    checkStale(stale, problems);
    checkLiveness(acquisitions, acked, phases, problems, figures);

    long replays = acked.stream().filter(Increment::replayed).count();
    long retried = increments.stream().filter(i -> i.answers().size() > 1).count();
    Map<Outcome, Long> outcomes = new LinkedHashMap<>();
    for (Outcome o : Outcome.values()) {
      outcomes.put(o, increments.stream().filter(i -> i.outcome() == o).count());
    }
    Map<String, Long> ends = acquisitions.stream()
        .collect(Collectors.groupingBy(Acquisition::end, TreeMap::new, Collectors.counting()));
    figures.add(0, String.format(Locale.ROOT, "%d acquisitions (%s), tokens %s; %d increments: %s; %d sent more"
            + " than once (503, 504 or no answer first), %d acknowledged by a replay; final counter %d (version %d)",
        acquisitions.size(), ends, acquisitions.isEmpty() ? "-"
            : acquisitions.stream().mapToLong(Acquisition::token).min().getAsLong() + ".."
            + acquisitions.stream().mapToLong(Acquisition::token).max().getAsLong(),
        increments.size(), outcomes, retried, replays, counter.value(), counter.version()));
    long refused = stale.stream().filter(s -> s.outcome() == Outcome.FENCED).count();
    figures.add(1, String.format(Locale.ROOT, "%d stale-token writes by paused clients: %d refused by the fence,"
            + " %d answered otherwise",
        stale.size(), refused, stale.size() - refused));
    return new Report(problems, figures);
  }

  // ---- (1) the final counter

  private static void checkFinal(List<Increment> acked, List<Increment> unresolved, FinalCounter counter,
      List<String> problems) {
    long n = acked.size();
    if (counter.value() < n) {
      problems.add("lost update: the final counter is " + counter.value() + " but " + n
          + " increments were acknowledged");
    } else if (counter.value() > n + unresolved.size()) {
      problems.add("double apply: the final counter is " + counter.value() + " but only " + n
          + " increments were acknowledged and " + unresolved.size() + " never resolved");
    }
    if (counter.version() != counter.value() + 1) {
      problems.add("the counter's version is " + counter.version() + " for value " + counter.value()
          + ": not one put per increment after the initial 0 (" + (counter.version() - 1 - counter.value())
          + " puts too many)");
    }
  }

  // ---- (2) the values

  private static void checkValues(List<Increment> acked, List<Increment> unresolved, List<StaleAttempt> stale,
      FinalCounter counter, List<String> problems) {
    Map<Long, List<Increment>> byValue = new TreeMap<>();
    for (Increment i : acked) {
      byValue.computeIfAbsent(i.value(), v -> new ArrayList<>()).add(i);
    }
    for (Map.Entry<Long, List<Increment>> e : byValue.entrySet()) {
      if (e.getValue().size() > 1) {
        problems.add("lost update: value " + e.getKey() + " was acknowledged to " + e.getValue().size()
            + " increments: " + e.getValue().stream().map(Increment::name).collect(Collectors.joining("; ")));
      }
      if (e.getKey() < 1 || e.getKey() > counter.value()) {
        problems.add("value " + e.getKey() + " was acknowledged but the final counter is " + counter.value()
            + ": " + e.getValue().get(0).name());
      }
    }
    Map<Long, Increment> unresolvedByValue = new HashMap<>();
    unresolved.forEach(i -> unresolvedByValue.putIfAbsent(i.value(), i));
    Map<Long, StaleAttempt> staleByValue = new HashMap<>();
    stale.forEach(s -> staleByValue.putIfAbsent(s.value(), s));
    int reported = 0;
    for (long v = 1; v <= counter.value(); v++) {
      if (byValue.containsKey(v) || unresolvedByValue.containsKey(v)) {
        continue;
      }
      if (++reported > 20) {
        problems.add("... more values with no acknowledged increment");
        break;
      }
      StaleAttempt s = staleByValue.get(v);
      problems.add(s != null
          ? "stale write applied: value " + v + " is in the counter's history, and the only write of it was the "
              + s.name() + ", answered " + describe(s.answers())
          : "value " + v + " is in the counter's history but no acknowledged or unresolved increment wrote it"
              + " (an increment applied twice, or applied without its acknowledgement)");
    }
    Map<String, List<Increment>> byAcquisition = new LinkedHashMap<>();
    for (Increment i : acked) {
      byAcquisition.computeIfAbsent(i.client() + "#" + i.acquisition(), k -> new ArrayList<>()).add(i);
    }
    for (List<Increment> hold : byAcquisition.values()) {
      List<Increment> inOrder = hold.stream().sorted(Comparator.comparingLong(Increment::endNanos)).toList();
      for (int k = 1; k < inOrder.size(); k++) {
        if (inOrder.get(k).value() <= inOrder.get(k - 1).value()) {
          problems.add("within one hold the values went down: " + inOrder.get(k - 1).name() + ", then "
              + inOrder.get(k).name());
        }
      }
    }
  }

  // ---- (3) the tokens

  private static void checkTokens(List<Acquisition> acquisitions, List<Increment> increments, List<Increment> acked,
      List<String> problems) {
    List<Increment> byValue = acked.stream().sorted(Comparator.comparingLong(Increment::value)).toList();
    for (int k = 1; k < byValue.size(); k++) {
      Increment before = byValue.get(k - 1);
      Increment after = byValue.get(k);
      if (after.token() < before.token()) {
        problems.add("tokens went backwards: value " + after.value() + " was written under token " + after.token()
            + " after value " + before.value() + " under token " + before.token() + " (" + before.name() + "; "
            + after.name() + ")");
      }
    }
    Map<String, Acquisition> bySeq = new HashMap<>();
    Map<Long, Acquisition> byToken = new HashMap<>();
    for (Acquisition a : acquisitions) {
      bySeq.put(a.client() + "#" + a.seq(), a);
      Acquisition other = byToken.putIfAbsent(a.token(), a);
      if (other != null) {
        problems.add("two acquisitions got token " + a.token() + ": " + other.name() + " and " + a.name());
      }
    }
    for (Increment i : increments) {
      Acquisition a = bySeq.get(i.client() + "#" + i.acquisition());
      if (a != null && a.token() != i.token()) {
        problems.add(i.name() + " does not carry its acquisition's token " + a.token());
      }
      if (i.outcome() == Outcome.MATCH_FAILED) {
        problems.add(i.name() + " was refused for its If-Match (mod revision " + i.readModRevision()
            + ") while its fence passed: the counter changed under the holder, or its linearizable read was stale; "
            + describe(i.answers()));
      }
    }
    List<Acquisition> byAck = acquisitions.stream().sorted(Comparator.comparingLong(Acquisition::ackNanos)).toList();
    int reported = 0;
    for (Acquisition b : acquisitions) {
      for (Acquisition a : byAck) {
        if (a.ackNanos() - b.firstSendNanos() >= 0) {
          break;
        }
        if (a != b && b.token() <= a.token() && reported++ < 10) {
          problems.add("tokens went backwards: " + b.name() + " was asked for " + LeaseIdempotencyChecker.seconds(
              b.firstSendNanos() - a.ackNanos()) + " after " + a.name() + " was acknowledged, yet got a token not above it");
        }
      }
    }
  }

  // ---- (4) stale tokens

  private static void checkStale(List<StaleAttempt> stale, List<String> problems) {
    for (StaleAttempt s : stale) {
      switch (s.outcome()) {
        case ACKED -> problems.add("stale write applied: the " + s.name() + " was answered " + describe(s.answers()));
        case MATCH_FAILED -> problems.add("the " + s.name() + " passed the fence (it was refused for its If-Match"
            + " only): its token still held the lock after a linearizable read saw it held by "
            + (s.holderSeen() == 0 ? "nobody" : "token " + s.holderSeen()) + "; " + describe(s.answers()));
        case FENCED -> {
          if (s.holderToken() == s.token()) {
            problems.add("the " + s.name() + " was refused by its fence, naming its own token as the holder's: "
                + describe(s.answers()));
          }
        }
        default -> { } // UNRESOLVED, REFUSED: not applied, or only the counter can tell (checked with the values)
      }
    }
  }

  // ---- (5) liveness

  private static void checkLiveness(List<Acquisition> acquisitions, List<Increment> acked, Phases phases,
      List<String> problems, List<String> figures) {
    int[] acquired = new int[3];
    int[] incremented = new int[3];
    acquisitions.forEach(a -> acquired[phases.of(a.ackNanos())]++);
    acked.forEach(i -> incremented[phases.of(i.endNanos())]++);
    StringBuilder text = new StringBuilder("by phase (acquisitions / acknowledged increments):");
    for (int p = 0; p < 3; p++) {
      text.append(String.format(Locale.ROOT, " %s %d / %d;", Phases.NAMES.get(p), acquired[p], incremented[p]));
      if (acquired[p] == 0 || incremented[p] == 0) {
        problems.add("no progress in the " + Phases.NAMES.get(p) + ": " + acquired[p] + " acquisitions, "
            + incremented[p] + " acknowledged increments");
      }
    }
    figures.add(text.toString());
  }

  private static String describe(List<Answer> answers) {
    if (answers.isEmpty()) {
      return "(never sent)";
    }
    Answer last = answers.get(answers.size() - 1);
    String body = last.body() == null ? "" : " " + (last.body().length() > 160 ? last.body().substring(0, 160) + "..."
        : last.body());
    return last.describe() + body + (answers.size() > 1 ? " (try " + answers.size() + ")" : "");
  }
}
