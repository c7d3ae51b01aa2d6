package raftkv.multijvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Prints the tail of every node log of a test that failed, from
 * {@code target/multi-jvm-logs/<Class.method>/}, so that the failure report shows what the nodes
 * were doing. Register it with {@code @ExtendWith(NodeLogsOnFailure.class)}.
 */
public final class NodeLogsOnFailure implements TestWatcher {

  /** Lines shown per node log. */
  public static final int TAIL_LINES = 60;

  @Override
  public void testFailed(ExtensionContext context, Throwable cause) {
    String test = context.getRequiredTestClass().getSimpleName() + "."
        + context.getRequiredTestMethod().getName();
    Path dir = Cluster.logDir(test);
    StringBuilder text = new StringBuilder("\n===== " + test + " failed: node logs in " + dir);
    // one level of subdirs too: a test that runs a second cluster names it <Class.method>/<what>
    try (Stream<Path> files = Files.walk(dir, 2)) {
      List<Path> logs = files.filter(f -> f.getFileName().toString().endsWith(".log")).sorted().toList();
      for (Path log : logs) {
        text.append("\n----- last ").append(TAIL_LINES).append(" lines of ").append(dir.relativize(log))
            .append('\n').append(Cluster.tail(log, TAIL_LINES));
      }
    } catch (IOException e) {
      text.append("\n(no logs: ").append(e).append(')');
    }
    System.out.println(text.append("\n=====").toString());
  }
}
