package raftkv.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code raftkv node} with --join, as an operator runs it (a JVM of its own): every bad combination
 * exits 2 with one line on stderr, before the data dir is touched.
 */
class MainJoinFlagsTest {
  @TempDir
  Path tmp;

  private record Exit(int status, List<String> stderr) {
    String line() {
      assertEquals(1, stderr.size(), "one line: " + stderr);
      return stderr.get(0);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      return s.getLocalPort();
    }
  }

  /** Runs {@code raftkv node --id n4 --host 127.0.0.1} on free ports with data dir tmp/n4 and {@code flags}. */
  private Exit node(String... flags) throws Exception {
    return node(freePort(), flags);
  }

  private Exit node(int raftPort, String... flags) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), Main.class.getName(),
        "node", "--id", "n4", "--host", "127.0.0.1", "--raft-port", String.valueOf(raftPort),
        "--http-port", String.valueOf(freePort()), "--data-dir", tmp.resolve("n4").toString()));
    command.addAll(List.of(flags));
    Process p = new ProcessBuilder(command).directory(tmp.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .start();
    p.getOutputStream().close();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("raftkv node did not exit: " + err);
    }
    return new Exit(p.exitValue(), err.lines().filter(l -> !l.isBlank()).toList());
  }

  @Test
  void joinWithPeersOnAFirstStartIsABadFlag() throws Exception {
    int port = freePort();
    Exit exit = node(port, "--join", "n1@127.0.0.1:2552", "--peers", "n1@127.0.0.1:2552,n4@127.0.0.1:" + port);
    assertEquals(2, exit.status(), exit.stderr().toString());
    String line = exit.line();
    assertTrue(line.startsWith("raftkv: --join and --peers"), line);
    assertFalse(Files.exists(tmp.resolve("n4")), "the data dir is not touched");
  }

  @Test
  void joinListingThisNodeIsABadFlag() throws Exception {
    Exit exit = node("--join", "n1@127.0.0.1:2552,n4@127.0.0.1:2599");
    assertEquals(2, exit.status(), exit.stderr().toString());
    assertTrue(exit.line().startsWith("raftkv: --join lists this node's id 'n4' (n4@127.0.0.1:2599)"), exit.line());
  }

  @Test
  void aMalformedJoinIsABadFlagNamingJoin() throws Exception {
    Exit exit = node("--join=n1@127.0.0.1");
    assertEquals(2, exit.status(), exit.stderr().toString());
    assertEquals("raftkv: --join: peer 'n1@127.0.0.1' is not id@host:port", exit.line());
  }

  @Test
  void neitherPeersNorJoinIsABadFlagNamingBoth() throws Exception {
    Exit exit = node();
    assertEquals(2, exit.status(), exit.stderr().toString());
    assertTrue(exit.line().contains("--peers") && exit.line().contains("--join"), exit.line());
  }
}
