package raftkv.multijvm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * API.md §1: {@code bin/raftkv node} exits non-zero with a one-line reason on a bad flag, a port
 * in use, or a data dir it cannot use, and never leaves a half-started node behind.
 */
class LauncherIT {
  private static final Path HOME = Path.of(System.getProperty("raftkv.home", ".")).toAbsolutePath();

  private record Exit(int status, String stderr) {}

  private static Exit run(String... args) throws Exception {
    return runWithJavaOpts("", args);
  }

  /** Runs the launcher with {@code javaOpts} in RAFTKV_JAVA_OPTS (settings as -D flags). */
  private static Exit runWithJavaOpts(String javaOpts, String... args) throws Exception {
    List<String> command = new ArrayList<>();
    command.add(HOME.resolve("bin/raftkv").toString());
    command.addAll(List.of(args));
    Path err = Files.createTempFile("raftkv-launcher", ".err");
    ProcessBuilder builder = new ProcessBuilder(command).redirectError(err.toFile())
        .redirectOutput(ProcessBuilder.Redirect.DISCARD);
    if (!javaOpts.isEmpty()) {
      builder.environment().put("RAFTKV_JAVA_OPTS", javaOpts);
    }
    Process p = builder.start();
    try {
      assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the launcher did not exit: " + String.join(" ", args));
      return new Exit(p.exitValue(), Files.readString(err, StandardCharsets.UTF_8));
    } finally {
      p.destroyForcibly();
      Files.deleteIfExists(err);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static String[] node(String id, int raftPort, int httpPort, Path dataDir, String... extra) {
    List<String> a = new ArrayList<>(List.of("node", "--id", id, "--host", "127.0.0.1",
        "--raft-port", String.valueOf(raftPort), "--http-port", String.valueOf(httpPort),
        "--data-dir", dataDir.toString(), "--peers", id + "@127.0.0.1:" + raftPort));
    a.addAll(List.of(extra));
    return a.toArray(String[]::new);
  }

  /** The reason is one line starting with "raftkv:", and it says what is wrong. */
  private static void assertOneLineReason(Exit exit, String mentions) {
    assertTrue(exit.status() != 0, "exit status 0");
    List<String> lines = exit.stderr().lines().filter(l -> l.startsWith("raftkv:")).toList();
    assertEquals(1, lines.size(), "expected one reason line, got: " + exit.stderr());
    assertTrue(lines.get(0).contains(mentions), lines.get(0) + " does not mention " + mentions);
    assertTrue(exit.stderr().lines().noneMatch(l -> l.trim().startsWith("at ")), "a stack trace: " + exit.stderr());
  }

  @Test
  void anUnknownFlagIsRejected() throws Exception {
    assertOneLineReason(run("node", "--id", "n1", "--bogus", "1"), "--bogus");
  }

  @Test
  void aPortThatIsNotANumberIsRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    assertOneLineReason(run("node", "--id", "n1", "--raft-port", "abc", "--data-dir", dir.toString(),
        "--peers", "n1@127.0.0.1:2552"), "--raft-port");
  }

  @Test
  void peersThatDoNotListThisNodeAreRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    assertOneLineReason(run("node", "--id", "n9", "--raft-port", "2552", "--data-dir", dir.toString(),
        "--peers", "n1@127.0.0.1:2552"), "n9");
  }

  @Test
  void anHttpPortInUseIsRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    try (ServerSocket busy = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      assertOneLineReason(run(node("n1", freePort(), busy.getLocalPort(), dir)), "--http-port");
    }
  }

  @Test
  void aDataDirOfAnotherNodeIsRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    Files.writeString(dir.resolve("raftkv-node-id"), "n7\n");
    assertOneLineReason(run(node("n1", freePort(), freePort(), dir)), "belongs to node 'n7'");
  }

  @Test
  void aDataDirThatIsAFileIsRejected() throws Exception {
    Path file = Files.createTempFile("raftkv-launcher", ".not-a-dir");
    assertOneLineReason(run(node("n1", freePort(), freePort(), file)), "not a directory");
  }

  @Test
  void sizeSettingsThatDoNotFitTogetherAreRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    // a command that no AppendEntries could carry
    assertOneLineReason(runWithJavaOpts("-Draftkv.raft.max-command-bytes=2MiB",
        node("n1", freePort(), freePort(), dir)), "raftkv.raft.max-bytes-per-append");
    // an AppendEntries that no frame could carry
    assertOneLineReason(runWithJavaOpts("-Dakka.remote.artery.advanced.maximum-frame-size=1MiB",
        node("n1", freePort(), freePort(), dir)), "maximum-frame-size");
    // a value that no command could carry
    assertOneLineReason(runWithJavaOpts("-Draftkv.limits.max-value-bytes=4MiB",
        node("n1", freePort(), freePort(), dir)), "raftkv.raft.max-command-bytes");
  }

  @Test
  void aCorruptJournalIsRejected() throws Exception {
    Path dir = Files.createTempDirectory("raftkv-launcher");
    Files.writeString(dir.resolve("raftkv-node-id"), "n1\n");
    Path journal = Files.createDirectories(dir.resolve("journal"));
    Files.writeString(journal.resolve("CURRENT"), "MANIFEST-999999\n");
    assertOneLineReason(run(node("n1", freePort(), freePort(), dir)), "journal");
  }
}
