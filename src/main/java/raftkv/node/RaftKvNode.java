package raftkv.node;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.AskPattern;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCodec;
import raftkv.kv.KvCommand;
import raftkv.client.KvLimits;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.KvDb;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.raft.RaftNode;
import raftkv.raft.RaftSettings;
import raftkv.util.Stages;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.List;
import java.util.function.Function;

/**
 * A raftkv node running inside an ActorSystem: settings in, a {@link RaftKv} handle out. The
 * launcher ({@code bin/raftkv node}) is one user of this class; an application can embed a node
 * in its own ActorSystem the same way (the system must be named {@value NodeSettings#SYSTEM_NAME},
 * use the cluster provider on the node's raft port, and carry {@link NodeSettings#akkaConfig()}).
 */
public final class RaftKvNode implements RaftKv {
  private final ActorSystem<?> system;
  private final ActorRef<RaftNode.Command> node;
  private final Duration timeout;
  private final KvLimits limits;
  private final int maxCommandBytes;
  private final NodeSettings settings;
  /** The state machine the node's applier opened last (it opens it again when the node restarts). */
  private final java.util.concurrent.atomic.AtomicReference<KvStateMachine> stateMachine;
  private final WatchHub watchHub;

  private RaftKvNode(ActorSystem<?> system, ActorRef<RaftNode.Command> node, NodeSettings settings, KvLimits limits,
                     RaftSettings raft, java.util.concurrent.atomic.AtomicReference<KvStateMachine> stateMachine,
                     WatchHub watchHub) {
    this.system = system;
    this.stateMachine = stateMachine;
    this.watchHub = watchHub;
    this.node = node;
    this.settings = settings;
    this.timeout = system.settings().config().getDuration("raftkv.client.request-timeout");
    this.limits = limits;
    this.maxCommandBytes = raft.maxCommandBytes();
  }

  /**
   * Checks the settings (throws IllegalArgumentException with a one-line reason naming the keys
   * when they do not fit together), claims the data dir (IllegalStateException when it is not
   * usable) and starts the node. {@code lifecycle}, when not null, hears when recovery is done.
   */
  public static RaftKvNode start(ActorSystem<?> system, NodeSettings settings, ActorRef<RaftNode.Lifecycle> lifecycle) {
    RaftSettings raft = RaftSettings.fromConfig(system.settings().config());
    RaftSettings.checkIdentity(settings.id(), settings.httpAddress());
    KvLimits limits = limits(system.settings().config(), raft);
    DataDir.checkFirstStart(settings); // --join with --peers: a bad flag on a first start only
    DataDir.claim(settings.dataDir(), settings.id());
    // bootstrap with --peers, or join (no voters, no cluster id until the leader that adds it replicates)
    DataDir.Start start = DataDir.start(settings, system.settings().config().getString("raftkv.node.cluster-token"));
    if (start.joining() && start.clusterId() == 0) {
      system.log().info("Node {} joins a running cluster: it bootstraps nothing and waits until a leader among {}"
          + " adds it (POST /v1/cluster/members with address {}:{} on any member)", settings.id(),
          start.join().contacts().stream().map(p -> p.id() + "@" + p.address()).toList(), settings.host(),
          settings.raftPort());
    }
    java.util.concurrent.atomic.AtomicReference<KvStateMachine> current = new java.util.concurrent.atomic.AtomicReference<>();
    java.nio.file.Path kvDir = settings.dataDir().resolve("kv");
    com.typesafe.config.Config config = system.settings().config();
    KvDb.Retention retention = new KvDb.Retention(config.getLong("raftkv.watch.history-retention.revisions"),
        config.getDuration("raftkv.watch.history-retention.time").toMillis(),
        config.getDuration("raftkv.idempotency.retention").toMillis(), config.getLong("raftkv.idempotency.max-records"));
    // the hub reads history through the node (a local read on the applier), so it is wired after the node starts
    java.util.concurrent.atomic.AtomicReference<RaftKvNode> self = new java.util.concurrent.atomic.AtomicReference<>();
    LeaseKeeper keeper = new LeaseKeeper(new LeaseKeeper.Settings(raft.electionTimeout(),
        config.getDuration("raftkv.lease.checkpoint-interval")), command -> self.get().write(command), System::nanoTime);
    Duration tick = config.getDuration("raftkv.lease.tick");
    system.scheduler().scheduleAtFixedRate(tick, tick, keeper::tick, system.executionContext());
    WatchHub hub = new WatchHub(WatchHub.Settings.fromConfig(config),
        query -> self.get().read(query, Consistency.SERIALIZABLE),
        (delay, task) -> {
          akka.actor.Cancellable c = system.scheduler().scheduleOnce(delay, task, system.executionContext());
          return c::cancel;
        });
    ActorRef<RaftNode.Command> ref = system.systemActorOf(
        RaftNode.create(new RaftNode.NodeIdentity(settings.id(), settings.httpAddress(), start.clusterId()),
            start.initialVoters(), start.join(), raft,
            () -> {
              KvStateMachine sm = KvStateMachine.open(kvDir, retention, hub, keeper);
              current.set(sm);
              return sm;
            },
            settings.dataDir().resolve("snapshot-files"), lifecycle),
        "raftkv", Props.empty());
    RaftKvNode started = new RaftKvNode(system, ref, settings, limits, raft, current, hub);
    self.set(started);
    system.getWhenTerminated().thenRun(hub::shutdown); // open watches fail rather than wait for ever
    return started;
  }

  /** The watches of this node. */
  public WatchHub watchHub() {
    return watchHub;
  }

  @Override
  public CompletionStage<akka.stream.javadsl.Source<WatchMessage, akka.NotUsed>> watch(WatchRequest request) {
    try {
      limits.validate(new KvQuery.History(request.key(), request.prefix(), Math.max(1, request.fromRevision()), 1));
      if (request.fromRevision() < 0) {
        throw new RaftKvException(RaftKvException.Kind.BAD_REQUEST,
            "fromRevision is " + request.fromRevision() + ", it must be 1 or more (0: after the current revision)");
      }
    } catch (RaftKvException e) {
      return CompletableFuture.failedFuture(e);
    }
    return watchHub.watch(request);
  }

  /**
   * The limits of {@code raftkv.limits}, which must let the largest put fit in one command: a
   * value of max-value-bytes under a key of max-key-bytes whose every byte costs two on the wire
   * (U+0000, the worst case of the log's string format).
   */
  static KvLimits limits(com.typesafe.config.Config config, RaftSettings raft) {
    KvLimits limits = new KvLimits(
        (int) config.getMemorySize("raftkv.limits.max-key-bytes").toBytes(),
        (int) config.getMemorySize("raftkv.limits.max-value-bytes").toBytes(),
        config.getInt("raftkv.limits.max-txn-ops"),
        // API.md §4: the shortest lease is 1.5 x the election timeout, rounded up to a second
        (raft.electionTimeout().toMillis() * 3 / 2 + 999) / 1000,
        config.getDuration("raftkv.lease.max-ttl").toSeconds());
    int largestPut = KvCodec.commandBytes(new KvCommand.Put("\u0000".repeat(limits.maxKeyBytes()),
        new byte[limits.maxValueBytes()], Long.MAX_VALUE, Long.MAX_VALUE, true));
    if (largestPut > raft.maxCommandBytes()) {
      throw new IllegalArgumentException("raftkv.limits.max-value-bytes (" + limits.maxValueBytes()
          + ") and max-key-bytes (" + limits.maxKeyBytes() + ") allow a put of " + largestPut
          + " bytes, more than raftkv.raft.max-command-bytes (" + raft.maxCommandBytes()
          + "); raise max-command-bytes, max-bytes-per-append and the frame size with them");
    }
    return limits;
  }

  public NodeSettings settings() {
    return settings;
  }

  public KvLimits limits() {
    return limits;
  }

  @Override
  public CompletionStage<KvResult> write(KvCommand command) {
    command = withLeaseTtl(command);
    try {
      limits.validate(command);
    } catch (RaftKvException e) {
      return CompletableFuture.failedFuture(e);
    }
    byte[] encoded = KvCodec.encode(command);
    int bytes = encoded.length;
    if (bytes > maxCommandBytes) {
      // nothing larger may enter the log: one AppendEntries must carry any entry (RaftSettings)
      return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.TOO_LARGE,
          "the request is " + bytes + " bytes once encoded for the log, the limit is " + maxCommandBytes
              + " (raftkv.raft.max-command-bytes)"));
    }
    return ask(replyTo -> new RaftNode.Propose(encoded, replyTo, 0), RaftKvException.Kind.TIMEOUT,
        "the write was proposed but not known to be committed within " + timeout.toMillis() + " ms; its outcome is unknown");
  }

  /** A lease grant gets at least the shortest TTL (API.md §4); the answer says what it got. */
  private KvCommand withLeaseTtl(KvCommand command) {
    if (command instanceof KvCommand.LeaseGrant g && g.ttlSeconds() > 0 && g.ttlSeconds() < limits.minLeaseTtlSeconds()) {
      return new KvCommand.LeaseGrant(g.id(), limits.minLeaseTtlSeconds());
    } else if (command instanceof KvCommand.Idempotent i && i.command() instanceof KvCommand.LeaseGrant) {
      return new KvCommand.Idempotent(i.key(), i.fingerprint(), withLeaseTtl(i.command()));
    }
    return command;
  }

  @Override
  public CompletionStage<KvResult> read(KvQuery query, Consistency consistency) {
    try {
      limits.validate(query);
    } catch (RaftKvException e) {
      return CompletableFuture.failedFuture(e);
    }
    byte[] encoded = KvCodec.encode(query);
    return ask(replyTo -> new RaftNode.Read(encoded, consistency == Consistency.LINEARIZABLE, replyTo, 0),
        RaftKvException.Kind.UNAVAILABLE, "the read could not be confirmed by a leader within " + timeout.toMillis() + " ms");
  }

  private CompletionStage<KvResult> ask(Function<ActorRef<RaftNode.ClientReply>, RaftNode.Command> request,
                                        RaftKvException.Kind onTimeout, String timeoutMessage) {
    CompletableFuture<KvResult> result = new CompletableFuture<>();
    Stages.direct(AskPattern.<RaftNode.Command, RaftNode.ClientReply>ask(node, request::apply, timeout, system.scheduler()))
        .whenComplete((reply, error) -> {
          if (error != null) {
            Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
            result.completeExceptionally(cause instanceof TimeoutException
                ? new RaftKvException(onTimeout, timeoutMessage)
                : new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "the node failed the request: " + cause.getMessage()));
          } else if (reply instanceof RaftNode.Ok ok) {
            try {
              result.complete(KvCodec.decodeResult(ok.result()));
            } catch (IllegalArgumentException e) {
              result.completeExceptionally(new RaftKvException(RaftKvException.Kind.UNAVAILABLE,
                  "the node's answer could not be read: " + e.getMessage()));
            }
          } else if (reply instanceof RaftNode.Failed f) {
            result.completeExceptionally(new RaftKvException(kind(f.kind()), f.message()));
          }
        });
    return result;
  }

  private static RaftKvException.Kind kind(RaftNode.ErrorKind kind) {
    return switch (kind) {
      case BAD_REQUEST -> RaftKvException.Kind.BAD_REQUEST;
      case TOO_LARGE -> RaftKvException.Kind.TOO_LARGE;
      case UNAVAILABLE -> RaftKvException.Kind.UNAVAILABLE;
      case TIMEOUT -> RaftKvException.Kind.TIMEOUT;
      case NOT_FOUND -> RaftKvException.Kind.NOT_FOUND;
      case CONFLICT -> RaftKvException.Kind.CONFLICT;
    };
  }

  // ---- membership and leadership (API.md §5) --------------------------------------------------

  @Override
  public CompletionStage<List<ClusterStatus.Member>> addMember(String id, String address, String httpAddress,
                                                             boolean learner) {
    if (!raftkv.raft.Peer.isValidId(id)) {
      return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.BAD_REQUEST,
          "a member id is 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    raftkv.raft.Peer peer;
    try {
      peer = raftkv.raft.Peer.at(id, address);
    } catch (IllegalArgumentException e) {
      return CompletableFuture.failedFuture(new RaftKvException(RaftKvException.Kind.BAD_REQUEST, e.getMessage()));
    }
    return changeMembership(new RaftNode.AddMember(id, peer.host(), peer.port(), httpAddress, learner));
  }

  @Override
  public CompletionStage<List<ClusterStatus.Member>> promoteMember(String id) {
    return changeMembership(new RaftNode.PromoteMember(id));
  }

  @Override
  public CompletionStage<List<ClusterStatus.Member>> removeMember(String id) {
    return changeMembership(new RaftNode.RemoveMember(id));
  }

  private CompletionStage<List<ClusterStatus.Member>> changeMembership(RaftNode.MembershipChange change) {
    return askCluster(replyTo -> new RaftNode.ChangeMembership(change, replyTo, 0),
        "the membership change was not known to be committed within " + timeout.toMillis()
            + " ms; its outcome is unknown, see /v1/cluster/status")
        .thenApply(reply -> ((RaftNode.MembershipChanged) reply).members().stream().map(m -> new ClusterStatus.Member(
            m.id(), m.address(), m.httpAddress(), m.voter(), m.matchIndex(), m.lastContactMillis())).toList());
  }

  @Override
  public CompletionStage<String> transferLeadership(String to) {
    return askCluster(replyTo -> new RaftNode.TransferLeadership(to, replyTo, 0),
        "no new leader was known within " + timeout.toMillis() + " ms")
        .thenApply(reply -> ((RaftNode.LeaderTransferred) reply).leaderId());
  }

  /** An ask whose answer is not a state machine's (Failed becomes a RaftKvException, a timeout TIMEOUT). */
  private CompletionStage<RaftNode.ClientReply> askCluster(Function<ActorRef<RaftNode.ClientReply>, RaftNode.Command> request,
                                                          String timeoutMessage) {
    CompletableFuture<RaftNode.ClientReply> result = new CompletableFuture<>();
    Stages.direct(AskPattern.<RaftNode.Command, RaftNode.ClientReply>ask(node, request::apply, timeout, system.scheduler()))
        .whenComplete((reply, error) -> {
          if (error != null) {
            Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
            result.completeExceptionally(cause instanceof TimeoutException
                ? new RaftKvException(RaftKvException.Kind.TIMEOUT, timeoutMessage)
                : new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "the node failed the request: " + cause.getMessage()));
          } else if (reply instanceof RaftNode.Failed f) {
            result.completeExceptionally(new RaftKvException(kind(f.kind()), f.message()));
          } else {
            result.complete(reply);
          }
        });
    return result;
  }

  @Override
  public CompletionStage<ClusterStatus> status() {
    return Stages.direct(AskPattern.<RaftNode.Command, RaftNode.Status>ask(node, RaftNode.GetStatus::new, timeout,
        system.scheduler())).thenApply(st -> {
          KvStateMachine sm = stateMachine.get();
          List<ClusterStatus.Member> members = st.members().stream().map(m -> new ClusterStatus.Member(m.id(),
              m.address(), m.httpAddress(), m.voter(), m.matchIndex(), m.lastContactMillis())).toList();
          return new ClusterStatus(st.id(), st.role(), st.term(), st.leaderId(), st.commitIndex(), st.appliedIndex(),
              st.lastLogIndex(), st.snapshotIndex(), sm == null ? 0 : sm.db().revision(), members,
              st.clusterId(), st.memberState());
        });
  }

  @Override
  public CompletionStage<Health> health() {
    return Stages.direct(AskPattern.<RaftNode.Command, RaftNode.Health>ask(node, RaftNode.GetHealth::new, timeout,
        system.scheduler())).thenApply(h -> new Health(h.healthy(), h.reason(), h.leaderId(), h.commitIndex(),
            h.appliedIndex()));
  }

  /**
   * Makes the state machine durable and compacts the log now (POST /v1/cluster/snapshot): the
   * snapshot's index, term and size in bytes.
   */
  /**
   * Writes a backup of the state machine into {@code out} (API.md §5): after a ReadIndex on the
   * leader when {@code linearizable} (a follower fails with {@link RaftNode.NotLeader}, which names
   * the leader's HTTP address when known), else this node's local state. Completes with the
   * backup's [index, term] once all of it is written; {@code out} is not closed.
   */
  @Override
  public CompletionStage<long[]> backup(boolean linearizable, java.io.OutputStream out) {
    CompletableFuture<long[]> done = new CompletableFuture<>();
    node.tell(new RaftNode.Backup(linearizable, out, done));
    return done;
  }

  @Override
  public CompletionStage<raftkv.client.SnapshotInfo> snapshot() {
    return Stages.direct(AskPattern.<RaftNode.Command, RaftNode.SnapshotTaken>ask(node, RaftNode.TakeSnapshot::new,
        timeout, system.scheduler())).thenApply(t -> new raftkv.client.SnapshotInfo(t.index(), t.term(), t.bytes()));
  }
}
