package raftkv.history;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * Concurrent clients against a real, atomic register, simulated in virtual time: each operation
 * takes effect at one instant inside its recorded interval, so the history is linearizable by
 * construction. Some operations fail before taking effect (FAIL), CAS operations whose expected
 * value is stale get a 412 (FAIL), and some mutations time out (UNKNOWN): the client gives up after
 * {@code TIMEOUT_MS}, and the operation takes effect later (maybe after the client gave up) or
 * never. Written values are unique.
 */
final class SimulatedRegisterClients {

  private static final long MS = 1_000_000L;
  private static final double TIMEOUT_MS = 10.0;

  private static final int INVOKE = 0;
  private static final int EFFECT = 1;
  private static final int COMPLETE = 2;

  private final SplittableRandom random;
  private final String key;
  private final double unknownMutationRate;

  private final List<Integer> process = new ArrayList<>();
  private final List<Kind> kind = new ArrayList<>();
  private final List<String> value = new ArrayList<>();
  private final List<String> expected = new ArrayList<>();
  private final List<Outcome> planned = new ArrayList<>();
  private final List<Long> invoked = new ArrayList<>();
  private final List<String> output = new ArrayList<>();
  private final List<Boolean> applied = new ArrayList<>();
  private final List<Op> ops = new ArrayList<>();

  private SimulatedRegisterClients(long seed, String key, double unknownMutationRate) {
    this.random = new SplittableRandom(seed);
    this.key = key;
    this.unknownMutationRate = unknownMutationRate;
  }

  /**
   * {@code clients} clients that issue {@code total} operations on {@code key} in all; each
   * mutation is UNKNOWN with probability {@code unknownMutationRate}.
   */
  static History run(long seed, int clients, int total, String key, double unknownMutationRate) {
    return new SimulatedRegisterClients(seed, key, unknownMutationRate).simulate(clients, total);
  }

  private History simulate(int clients, int total) {
    PriorityQueue<long[]> events = new PriorityQueue<>((a, b) -> a[0] != b[0]
        ? Long.compare(a[0], b[0]) : Long.compare(a[3], b[3])); // {time, type, id, sequence}
    long[] sequence = {0};
    String[] lastSeen = new String[clients];
    for (int c = 0; c < clients; c++) {
      events.add(new long[] {ms(0, 2), INVOKE, c, sequence[0]++});
    }
    String register = null;
    int written = 0;
    List<NemesisEvent> nemesis = new ArrayList<>();
    while (!events.isEmpty()) {
      long[] event = events.poll();
      long now = event[0];
      int id = (int) event[2];
      switch ((int) event[1]) {
        case INVOKE -> {
          if (kind.size() >= total) {
            break;
          }
          int op = kind.size();
          double roll = random.nextDouble();
          Kind k = roll < 0.5 ? Kind.READ : roll < 0.8 ? Kind.WRITE : roll < 0.95 ? Kind.CAS
              : Kind.DELETE;
          process.add(id);
          kind.add(k);
          value.add(k == Kind.WRITE || k == Kind.CAS ? "v" + written++ : null);
          expected.add(k == Kind.CAS ? lastSeen[id] : null);
          invoked.add(now);
          output.add(null);
          applied.add(false);
          double fate = random.nextDouble();
          Outcome outcome = fate < 0.02 ? Outcome.FAIL
              : k != Kind.READ && fate < 0.02 + unknownMutationRate ? Outcome.UNKNOWN
              : k == Kind.READ && fate < 0.03 ? Outcome.UNKNOWN : Outcome.OK;
          planned.add(outcome);
          long effect = now + ms(0.1, 5);
          if (outcome == Outcome.OK) {
            events.add(new long[] {effect, EFFECT, op, sequence[0]++});
            events.add(new long[] {effect + ms(0.1, 3), COMPLETE, op, sequence[0]++});
          } else if (outcome == Outcome.FAIL) {
            events.add(new long[] {now + ms(0.1, 2), COMPLETE, op, sequence[0]++});
          } else {
            if (random.nextBoolean()) {
              events.add(new long[] {now + ms(0.1, 3 * TIMEOUT_MS), EFFECT, op, sequence[0]++});
            }
            events.add(new long[] {now + ms(TIMEOUT_MS, TIMEOUT_MS), COMPLETE, op,
                sequence[0]++});
          }
          if (op % 500 == 250) {
            nemesis.add(new NemesisEvent(now, op % 1000 == 250 ? "partition [n1] | [n2 n3]"
                : "heal"));
          }
        }
        case EFFECT -> {
          switch (kind.get(id)) {
            case READ -> output.set(id, register);
            case WRITE -> register = value.get(id);
            case CAS -> {
              if (Objects.equals(register, expected.get(id))) {
                register = value.get(id);
                applied.set(id, true);
              }
            }
            case DELETE -> register = null;
          }
        }
        case COMPLETE -> {
          Outcome outcome = planned.get(id);
          if (kind.get(id) == Kind.CAS && outcome == Outcome.OK && !applied.get(id)) {
            outcome = Outcome.FAIL; // 412
          }
          Kind k = kind.get(id);
          boolean okRead = k == Kind.READ && outcome == Outcome.OK;
          ops.add(new Op(id, process.get(id), key, k, value.get(id), expected.get(id), outcome,
              okRead ? output.get(id) : null, invoked.get(id), now));
          int client = process.get(id);
          if (okRead) {
            lastSeen[client] = output.get(id);
          } else if (outcome == Outcome.OK && k != Kind.READ) {
            lastSeen[client] = value.get(id);
          }
          events.add(new long[] {now + ms(0, 1), INVOKE, client, sequence[0]++});
        }
        default -> throw new IllegalStateException();
      }
    }
    return History.of(0, ops, nemesis);
  }

  private long ms(double from, double to) {
    return Math.round((from + random.nextDouble() * (to - from)) * MS);
  }
}
