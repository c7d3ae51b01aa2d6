/**
 * The multi-JVM (Jepsen-style) suite: real {@code bin/raftkv node} processes on 127.0.0.1, real
 * faults, concurrent HTTP clients, and the checkers of {@code raftkv.history} on what they saw.
 *
 * <h2>Pieces</h2>
 * <ul>
 *   <li>{@link raftkv.multijvm.Cluster} owns the node processes ({@link raftkv.multijvm.NodeProcess}):
 *       free ports, a fresh data dir and a log file per node, and no process left behind after
 *       {@code close()}.</li>
 *   <li>{@link raftkv.multijvm.Nemesis} kills (SIGKILL) and restarts, pauses (SIGSTOP/SIGCONT) and
 *       partitions (the nodes' test-only {@code /v1/faults} endpoints, enabled by
 *       {@code --fault-injection}), and records each fault in the history.</li>
 *   <li>{@link raftkv.multijvm.ClientPool} runs the register and set workloads over
 *       {@link raftkv.multijvm.KvHttpClient}, which sorts every answer into OK, FAIL or UNKNOWN.</li>
 *   <li>{@link raftkv.multijvm.WatchClient} keeps a watcher of every key on each node through the
 *       faults (resuming with {@code Last-Event-ID}, elsewhere after a compaction), and
 *       {@link raftkv.multijvm.WatchChecker} checks what they received: every revision once, in
 *       order, the same events everywhere, replaying to the final state.</li>
 *   <li>{@link raftkv.multijvm.Scenario} ties a seeded schedule to these, and its
 *       {@code verify()} heals, settles, reads every key from every node, prints the
 *       {@link raftkv.multijvm.Availability} report and runs the checkers.</li>
 * </ul>
 *
 * <h2>Running</h2>
 * The tests are {@code *IT} classes, run by failsafe in {@code mvn verify} after {@code package}
 * (which builds what {@code bin/raftkv} needs). One of them:
 * <pre>
 * mvn verify -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=LeaderKillIT
 * </pre>
 * Each scenario prints its seed; {@code -Draftkv.seed=N} replays the schedule and the clients'
 * choices (not the machine's timing). Node logs and the recorded histories are under
 * {@code target/multi-jvm-logs/<Class.method>/}, data dirs under
 * {@code target/multi-jvm-data/<Class.method>/}. {@code -Draftkv.multijvm.java-opts=...}
 * replaces the nodes' JVM options ({@link raftkv.multijvm.Cluster#DEFAULT_JAVA_OPTS}).
 * {@code -DskipITs} skips the suite.
 */
package raftkv.multijvm;
