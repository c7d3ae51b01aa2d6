package raftkv.multijvm;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One raftkv node as an operating-system process ({@code bin/raftkv node}, API.md §1) on
 * 127.0.0.1: its ports, data dir and log file stay the same across restarts, so that a node killed
 * with SIGKILL comes back with its journal. Output (stdout and stderr) is appended to the log file
 * of the node, with a marker line before every start.
 *
 * <p>{@code bin/raftkv} {@code exec}s the JVM, so the process started here is the node's JVM and
 * its pid is what SIGKILL, SIGSTOP and SIGCONT go to.
 */
public final class NodeProcess {

  /** What the harness did to the node last. */
  public enum State {
    /** Never started. */
    NEW,
    /** Started (and not known to have exited). */
    RUNNING,
    /** Stopped with SIGSTOP. */
    PAUSED,
    /** Killed with SIGKILL, or stopped for good. */
    KILLED
  }

  private static final long EXIT_WAIT_SECONDS = 20;

  private final String id;
  private final int raftPort;
  private final int httpPort;
  private final Path dataDir;
  private final Path logFile;
  private List<String> commandLine; // guarded by this
  private final Map<String, String> environment;
  private final Path workingDir;

  private Process process; // guarded by this
  private State state = State.NEW; // guarded by this
  private int starts; // guarded by this
  private final List<ProcessHandle> started = new ArrayList<>(); // guarded by this

  NodeProcess(String id, int raftPort, int httpPort, Path dataDir, Path logFile,
      List<String> commandLine, Map<String, String> environment, Path workingDir) {
    this.id = id;
    this.raftPort = raftPort;
    this.httpPort = httpPort;
    this.dataDir = dataDir;
    this.logFile = logFile;
    this.commandLine = List.copyOf(commandLine);
    this.environment = Map.copyOf(environment);
    this.workingDir = workingDir;
  }

  /** The node's id, as in {@code --id}. */
  public String id() {
    return id;
  }

  /** Akka remoting port (Raft). */
  public int raftPort() {
    return raftPort;
  }

  /** HTTP port. */
  public int httpPort() {
    return httpPort;
  }

  /** {@code 127.0.0.1:raftPort}, as the fault endpoints name a peer. */
  public String raftAddress() {
    return "127.0.0.1:" + raftPort;
  }

  /** The node's journal and snapshots. */
  public Path dataDir() {
    return dataDir;
  }

  /** Where the node's output goes, across restarts. */
  public Path logFile() {
    return logFile;
  }

  /** {@code http://127.0.0.1:httpPort} + {@code pathAndQuery}. */
  public URI uri(String pathAndQuery) {
    return KvHttpClient.localUri(httpPort, pathAndQuery);
  }

  /** What the harness did to the node last; a RUNNING node may have died on its own. */
  public synchronized State state() {
    return state;
  }

  /** True if the process runs or is paused. */
  public synchronized boolean alive() {
    return process != null && process.isAlive();
  }

  /** True if the node was started and neither killed nor paused since: it should answer. */
  public synchronized boolean running() {
    return state == State.RUNNING && process != null && process.isAlive();
  }

  /** The pid of the current JVM, -1 if never started. */
  public synchronized long pid() {
    return process == null ? -1 : process.pid();
  }

  /** Every process this node ever started, for the check that none outlives the cluster. */
  public synchronized List<ProcessHandle> processesStarted() {
    return List.copyOf(started);
  }

  /**
   * From the next start on, the node joins a running cluster ({@code --join joinSpec}) instead of
   * bootstrapping one with {@code --peers}; with {@link #wipeDataDir()}, a node replaced under the
   * same id and address.
   */
  public synchronized void joinInsteadOfPeers(String joinSpec) {
    List<String> next = new ArrayList<>(commandLine);
    int at = next.indexOf("--peers");
    if (at < 0) {
      at = next.indexOf("--join");
    }
    if (at < 0 || at + 1 >= next.size()) {
      throw new IllegalStateException(id + "'s command line has no --peers or --join: " + next);
    }
    next.set(at, "--join");
    next.set(at + 1, joinSpec);
    commandLine = List.copyOf(next);
  }

  /** Deletes the data dir of a node that is not running: a lost disk. */
  public synchronized void wipeDataDir() {
    if (process != null && process.isAlive()) {
      throw new IllegalStateException(id + " is still running: kill it before wiping its data dir");
    }
    if (!Files.exists(dataDir)) {
      return;
    }
    try (java.util.stream.Stream<Path> paths = Files.walk(dataDir)) {
      for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot wipe " + dataDir, e);
    }
  }

  /** Starts the JVM (again); it does not wait for it to be ready, see {@link Cluster#awaitReady}. */
  public synchronized void start() {
    if (process != null && process.isAlive()) {
      throw new IllegalStateException(id + " is still running (pid " + process.pid() + ")");
    }
    starts++;
    try {
      Files.createDirectories(dataDir);
      Files.createDirectories(logFile.getParent());
      Files.writeString(logFile, "==== harness: start #" + starts + " of " + id + " at "
          + Instant.now() + ": " + String.join(" ", commandLine) + "\n",
          StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      ProcessBuilder builder = new ProcessBuilder(commandLine)
          .directory(workingDir.toFile())
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      builder.environment().putAll(environment);
      process = builder.start();
      started.add(process.toHandle());
      state = State.RUNNING;
    } catch (IOException e) {
      throw new IllegalStateException("cannot start " + id + ": " + e.getMessage(), e);
    }
  }

  /** SIGKILL ({@code kill -9}) and waits until the process is gone. */
  public synchronized void kill() {
    sendKill();
    if (process != null) {
      awaitExit();
    }
  }

  /** SIGKILL without waiting for the exit: to kill several nodes at the same instant. */
  public synchronized void sendKill() {
    if (process != null) {
      process.destroyForcibly();
    }
    state = State.KILLED;
  }

  /** SIGSTOP: the JVM freezes, its sockets stay open. */
  public synchronized void pause() {
    requireAlive("pause");
    signal("STOP");
    state = State.PAUSED;
  }

  /** SIGCONT after {@link #pause()}. */
  public synchronized void resume() {
    requireAlive("resume");
    signal("CONT");
    state = State.RUNNING;
  }

  /**
   * Kills the process, whatever its state, and waits for it to be gone; used when the cluster
   * closes, also from a test thread that a timeout interrupted. Never throws.
   */
  synchronized void destroy() {
    if (process != null && process.isAlive()) {
      process.destroyForcibly();
      boolean interrupted = Thread.interrupted(); // wait anyway, then restore the flag
      try {
        process.waitFor(EXIT_WAIT_SECONDS, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        interrupted = true;
      } finally {
        if (interrupted) {
          Thread.currentThread().interrupt();
        }
      }
    }
    state = State.KILLED;
  }

  /** The exit code if the process has exited by itself or was killed, else null. */
  public synchronized Integer exitCode() {
    return process == null || process.isAlive() ? null : process.exitValue();
  }

  private void awaitExit() {
    try {
      if (!process.waitFor(EXIT_WAIT_SECONDS, TimeUnit.SECONDS)) {
        throw new IllegalStateException(id + " (pid " + process.pid() + ") did not exit within "
            + EXIT_WAIT_SECONDS + " s of SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while killing " + id, e);
    }
  }

  private void requireAlive(String action) {
    if (process == null || !process.isAlive()) {
      throw new IllegalStateException("cannot " + action + " " + id + ": it is not running");
    }
  }

  /** Sends SIGname with the kill(1) command; ProcessHandle knows only TERM and KILL. */
  private void signal(String name) {
    try {
      Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid()))
          .redirectErrorStream(true).start();
      if (!kill.waitFor(10, TimeUnit.SECONDS)) {
        kill.destroyForcibly();
        throw new IllegalStateException("kill -" + name + " " + process.pid() + " hung");
      }
      if (kill.exitValue() != 0) {
        throw new IllegalStateException("kill -" + name + " " + process.pid() + " failed: "
            + new String(kill.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim());
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot run kill -" + name + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while sending SIG" + name + " to " + id, e);
    }
  }

  @Override
  public synchronized String toString() {
    return id + "(" + state.name().toLowerCase(Locale.ROOT)
        + (process == null ? "" : ", pid " + process.pid() + (process.isAlive() ? "" : ", exited"))
        + ")";
  }
}
