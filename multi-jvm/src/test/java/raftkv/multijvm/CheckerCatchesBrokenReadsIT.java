package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import raftkv.history.CheckReport;
import raftkv.history.CheckResult;
import raftkv.history.History;
import raftkv.history.LinearizabilityChecker;
import raftkv.multijvm.KvHttpClient.Result;

/**
 * Shows that the pipeline — clients, history, checker — can fail: a follower is cut off from
 * everyone while writes continue through the majority, and a client reads that follower with
 * {@code ?consistency=serializable} (local, possibly stale state) but records the reads as
 * linearizable ones. The stale values must make the checker report a violation. Stale reads are
 * near certain once the isolated follower has missed one acknowledged write; the setup is retried
 * a bounded number of times in case none was stale.
 */
@ExtendWith(NodeLogsOnFailure.class)
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class CheckerCatchesBrokenReadsIT {

  private static final int ATTEMPTS = 3;
  private static final String KEY = "x";

  @Test
  void staleSerializableReadsLabelledLinearizableAreCaught(TestInfo info) {
    try (Scenario scenario = Scenario.start(info, 3)) {
      Cluster cluster = scenario.cluster();
      for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        History history = new History();
        Nemesis nemesis = new Nemesis(cluster, history);
        NodeProcess leader = cluster.awaitSettled(Scenario.SETTLE_TIMEOUT);
        NodeProcess follower = scenario.pick(cluster.others(leader));
        List<NodeProcess> majority = cluster.others(follower);
        scenario.log("attempt " + attempt + ": isolating follower " + follower.id()
            + ", writing through " + majority.get(0).id() + " and " + majority.get(1).id());

        nemesis.isolate(follower);
        runLoad(scenario, history, attempt, follower, majority, Duration.ofSeconds(6));
        nemesis.healAll();

        CheckReport report = new LinearizabilityChecker().check(history);
        scenario.log(report.describe());
        if (!report.violations().isEmpty()) {
          CheckResult violation = report.violations().get(0);
          assertEquals(KEY, violation.key());
          scenario.log("the checker caught the stale reads, as it must: "
              + violation.failingOp().describe(history.startNanos()));
          return;
        }
        scenario.log("attempt " + attempt + ": no stale read was caught; retrying");
      }
      fail("in " + ATTEMPTS + " attempts the checker never caught a stale serializable read of an"
          + " isolated follower: either the reads were never stale (was the follower really cut"
          + " off?) or the checker misses violations");
    }
  }

  /**
   * One writer puts unique values through the majority, one reader reads the isolated follower
   * serializably; both record into {@code history}, the reads as plain (linearizable) reads.
   */
  private static void runLoad(Scenario scenario, History history, int attempt,
      NodeProcess follower, List<NodeProcess> majority, Duration duration) {
    long end = System.nanoTime() + duration.toNanos();
    AtomicBoolean writing = new AtomicBoolean(true);
    AtomicReference<Throwable> crash = new AtomicReference<>();
    Thread writer = new Thread(() -> {
      KvHttpClient http = new KvHttpClient();
      int process = 0;
      try {
        for (int i = 0; System.nanoTime() - end < 0; i++) {
          History.Invocation call = history.invokeWrite(process, KEY, "a" + attempt + "-w" + i);
          Result result = http.put(majority.get(i % majority.size()), KEY, "a" + attempt + "-w" + i);
          history.complete(call, result.outcome());
          if (!result.answered()) {
            process += 2; // a new process after an unknown outcome; evens write, odds read
            Poll.pause(100);
          }
          Poll.pause(20);
        }
      } catch (Throwable t) {
        crash.set(t);
      } finally {
        writing.set(false);
      }
    }, scenario.name() + "-writer");
    writer.setDaemon(true);
    writer.start();

    KvHttpClient http = new KvHttpClient();
    int process = 1;
    while (writing.get()) {
      History.Invocation call = history.invokeRead(process, KEY);
      Result result = http.get(follower, KEY, true); // local state, recorded as linearizable
      history.complete(call, result.outcome(), result.value());
      if (!result.answered()) {
        process += 2;
        Poll.pause(100);
      }
      Poll.pause(20);
    }
    try {
      writer.join(KvHttpClient.REQUEST_TIMEOUT.toMillis() * 3);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (crash.get() != null) {
      throw new AssertionError("the writer crashed", crash.get());
    }
  }
}
