package raftkv.history;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

import raftkv.history.Op.Kind;
import raftkv.history.Op.Outcome;

/**
 * Small random histories on one key, with few values (so that values repeat) and coarse times (so
 * that they tie): clients against an atomic register, where some ops fail, some time out and take
 * effect late or never, and one read in ten returns a random value instead of the right one.
 */
final class RandomRegisterHistories {

  private static final String[] VALUES = {null, "a", "b", "c"};
  private static final long MS = 1_000_000L;

  private RandomRegisterHistories() {
  }

  /** One history of 1 to {@code maxOps} operations. */
  static List<Op> next(SplittableRandom random, int maxOps) {
    int n = 1 + random.nextInt(maxOps);
    long[] invoke = new long[n];
    long[] effect = new long[n]; // -1: never
    long[] complete = new long[n];
    Kind[] kinds = new Kind[n];
    Outcome[] outcomes = new Outcome[n];
    String[] values = new String[n];
    String[] expected = new String[n];
    String[] outputs = new String[n];
    boolean[] applied = new boolean[n];
    Integer[] byEffect = new Integer[n];
    for (int i = 0; i < n; i++) {
      double roll = random.nextDouble();
      kinds[i] = roll < 0.4 ? Kind.READ : roll < 0.7 ? Kind.WRITE : roll < 0.85 ? Kind.CAS
          : Kind.DELETE;
      invoke[i] = random.nextInt(30);
      effect[i] = invoke[i] + random.nextInt(8);
      complete[i] = effect[i] + random.nextInt(8);
      double fate = random.nextDouble();
      outcomes[i] = fate < 0.75 ? Outcome.OK : fate < 0.93 ? Outcome.UNKNOWN : Outcome.FAIL;
      if (outcomes[i] == Outcome.FAIL || outcomes[i] == Outcome.UNKNOWN && random.nextBoolean()) {
        effect[i] = -1;
      } else if (outcomes[i] == Outcome.UNKNOWN) {
        effect[i] += random.nextInt(15); // maybe after the client gave up
      }
      values[i] = kinds[i] == Kind.WRITE ? VALUES[1 + random.nextInt(3)]
          : kinds[i] == Kind.CAS ? VALUES[random.nextInt(4)] : null;
      expected[i] = kinds[i] == Kind.CAS ? VALUES[random.nextInt(4)] : null;
      byEffect[i] = i;
    }
    Arrays.sort(byEffect, Comparator.comparingLong(i -> effect[i] < 0 ? Long.MAX_VALUE
        : effect[i] * n + i));
    String register = null;
    for (int i : byEffect) {
      if (effect[i] < 0) {
        continue;
      }
      switch (kinds[i]) {
        case READ -> outputs[i] = register;
        case WRITE -> register = values[i];
        case DELETE -> register = null;
        case CAS -> {
          if (Objects.equals(register, expected[i])) {
            register = values[i];
            applied[i] = true;
          }
        }
      }
    }
    List<Op> ops = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Outcome outcome = outcomes[i];
      if (kinds[i] == Kind.CAS && outcome == Outcome.OK && !applied[i]) {
        outcome = Outcome.FAIL; // 412
      }
      String output = kinds[i] == Kind.READ && outcome == Outcome.OK ? outputs[i] : null;
      if (kinds[i] == Kind.READ && outcome == Outcome.OK && random.nextInt(10) == 0) {
        output = VALUES[random.nextInt(4)];
      }
      ops.add(new Op(i, i % 4, "x", kinds[i], values[i], expected[i], outcome, output,
          invoke[i] * MS, complete[i] * MS));
    }
    return ops;
  }
}
