package raftkv.client.remote;

import akka.NotUsed;
import akka.actor.ActorSystem;
import akka.actor.Cancellable;
import akka.actor.ClassicActorSystemProvider;
import akka.http.javadsl.Http;
import akka.http.javadsl.model.ContentTypes;
import akka.http.javadsl.model.HttpEntities;
import akka.http.javadsl.model.HttpHeader;
import akka.http.javadsl.model.HttpMethod;
import akka.http.javadsl.model.HttpMethods;
import akka.http.javadsl.model.HttpRequest;
import akka.http.javadsl.model.HttpResponse;
import akka.http.javadsl.model.headers.RawHeader;
import akka.http.javadsl.settings.ConnectionPoolSettings;
import akka.japi.pf.PFBuilder;
import akka.stream.KillSwitches;
import akka.stream.Materializer;
import akka.stream.SharedKillSwitch;
import akka.stream.javadsl.Source;
import akka.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.RaftKvException.Kind;
import raftkv.client.SnapshotInfo;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.client.remote.HttpCodec.Reply;

import java.net.ConnectException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * {@link RaftKv} over HTTP (API.md), for applications that do not run a node: every call is a
 * request to one of a list of endpoints, made with the Akka HTTP client on the caller's actor
 * system. Any node answers any request (a follower forwards to the leader), so the client never
 * looks for the leader.
 *
 * <p><b>Failover and retries.</b> Requests go to the endpoint that answered last, and move on
 * round-robin when an endpoint cannot be reached or answers {@code 503} (not applied: always safe
 * to send again). A write whose outcome is unknown (a {@code 504}, no answer within the request
 * timeout, or a connection lost after the request may have been sent) is sent again only when it
 * carries an {@code Idempotency-Key} (API.md §3), since then the cluster applies it at most once.
 * Reads are retried after any such failure. At most {@link Settings#maxAttempts()} attempts, with
 * exponential backoff between them (none when moving on from an endpoint that refused the
 * connection, on the first pass over the endpoints); then the stage fails with the last error:
 * UNAVAILABLE when no attempt can have been applied, TIMEOUT when one may have been.
 *
 * <p><b>Automatic idempotency.</b> With {@link Settings#autoIdempotency()} on (the default), every
 * write that has no {@link KvCommand.Idempotent} key of the caller's is sent under a fresh random
 * {@code Idempotency-Key} (a UUID), the same for all its attempts, so that the client can always
 * retry it safely: a write is applied at most once however often it is sent. The answer to such a
 * retry ({@code Idempotent-Replayed: true}) is handed back as the first answer itself, not as a
 * {@link KvResult.Replayed}: the caller did not ask for idempotency. A caller's own key gives
 * {@link KvResult.Replayed} and {@link KvResult.IdempotencyKeyReused} as the node does.
 *
 * <p><b>Watches.</b> {@link #watch} streams {@code GET /v1/watch} (Server-Sent Events). When the
 * connection drops mid-stream (the node stops, the network fails), the stream is resumed on the next
 * endpoint with {@code Last-Event-ID} = the last revision delivered, so it stays ordered and
 * gap-free, and a revision delivered is never delivered again; after {@code maxAttempts}
 * consecutive failed resumptions it fails with UNAVAILABLE. A watch from revision 0 ("after the
 * current revision") first reads the current revision linearizably and watches from the next one,
 * so that a resumption on another node cannot skip anything. If the revisions it needs were
 * compacted meanwhile, it ends with a {@link WatchMessage.Compacted}, as a node's watch does. The
 * returned Source is meant to be materialized once.
 *
 * <p>Not over HTTP: {@link KvQuery.History} and {@link KvCommand.LeaseCheckpoint} (server-internal,
 * BAD_REQUEST) and {@link #backup} (unsupported). What API.md v1 does not send, the results lack:
 * a key's lease is 0 in reads (except in a transaction's get of a key that one of its puts
 * attaches to a lease: a put before it in the branch taken, or else a lookup of that lease), lease
 * lists carry no keys, and a lease's remaining time is in whole seconds.
 *
 * <p>{@link #close()} fails pending calls that wait for a retry, aborts the open watches and refuses
 * new calls; the client has no threads of its own (timers run on the system's scheduler), and the
 * HTTP connection pools belong to the actor system, which closes idle connections itself.
 */
public final class RemoteRaftKv implements RaftKv, AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(RemoteRaftKv.class);

  /**
   * How the client behaves.
   *
   * @param requestTimeout  how long one attempt waits for its whole answer (for a watch: for its
   *                        headers); default 5 s
   * @param autoIdempotency send every write without a key of the caller's under a random
   *                        Idempotency-Key, so that it can be retried safely; default true
   * @param maxAttempts     attempts per call (and consecutive reconnections of a watch), at least 1;
   *                        default 6
   * @param minBackoff      the wait before the second attempt, doubled for each later one; default 200 ms
   * @param maxBackoff      the longest wait between attempts; default 2 s
   */
  public record Settings(Duration requestTimeout, boolean autoIdempotency, int maxAttempts, Duration minBackoff,
                         Duration maxBackoff) {
    public Settings {
      Objects.requireNonNull(requestTimeout, "requestTimeout");
      Objects.requireNonNull(minBackoff, "minBackoff");
      Objects.requireNonNull(maxBackoff, "maxBackoff");
      if (requestTimeout.isNegative() || requestTimeout.isZero()) {
        throw new IllegalArgumentException("requestTimeout must be positive, not " + requestTimeout);
      }
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts must be at least 1, not " + maxAttempts);
      }
      if (minBackoff.isNegative() || maxBackoff.compareTo(minBackoff) < 0) {
        throw new IllegalArgumentException("backoff must run from minBackoff >= 0 to maxBackoff >= minBackoff, not "
            + minBackoff + " to " + maxBackoff);
      }
    }

    /** 5 s per request, automatic idempotency keys, 6 attempts, backoff from 200 ms to 2 s. */
    public static Settings defaults() {
      return new Settings(Duration.ofSeconds(5), true, 6, Duration.ofMillis(200), Duration.ofSeconds(2));
    }

    public Settings withRequestTimeout(Duration timeout) {
      return new Settings(timeout, autoIdempotency, maxAttempts, minBackoff, maxBackoff);
    }

    public Settings withAutoIdempotency(boolean on) {
      return new Settings(requestTimeout, on, maxAttempts, minBackoff, maxBackoff);
    }

    public Settings withMaxAttempts(int attempts) {
      return new Settings(requestTimeout, autoIdempotency, attempts, minBackoff, maxBackoff);
    }

    public Settings withBackoff(Duration min, Duration max) {
      return new Settings(requestTimeout, autoIdempotency, maxAttempts, min, max);
    }
  }

  /** What a failure of one attempt allows. */
  private enum Safety {
    /** Changes nothing: retried after any failure. */
    READ,
    /** A write under an Idempotency-Key: applied at most once, so retried after any failure. */
    IDEMPOTENT_WRITE,
    /** Retried only when it was certainly not applied (connection refused, 503). */
    WRITE
  }

  /** A request, before it is addressed to an endpoint. */
  private record Spec(HttpMethod method, String target, byte[] body, boolean json, List<HttpHeader> headers) {
    HttpRequest to(Endpoint endpoint) {
      HttpRequest request = HttpRequest.create(endpoint.base() + target).withMethod(method);
      if (body != null) {
        request = request.withEntity(json
            ? HttpEntities.create(ContentTypes.APPLICATION_JSON, body)
            : HttpEntities.create(ContentTypes.APPLICATION_OCTET_STREAM, body));
      }
      return headers.isEmpty() ? request : request.addHeaders(headers);
    }
  }

  private final ActorSystem system;
  private final Materializer materializer;
  private final Http http;
  private final List<Endpoint> endpoints;
  private final Settings settings;
  private final ConnectionPoolSettings pool;
  private final ConnectionPoolSettings watchPool;
  /** The endpoint that answered last: where the next call starts. */
  private final AtomicInteger preferred = new AtomicInteger();
  private final SharedKillSwitch watches = KillSwitches.shared("remote-raftkv-watches");
  /** Backoff timers pending, with the futures they complete. */
  private final Map<Cancellable, CompletableFuture<Void>> timers = new ConcurrentHashMap<>();
  private volatile boolean closed;

  private RemoteRaftKv(ActorSystem system, List<Endpoint> endpoints, Settings settings) {
    this.system = system;
    this.materializer = Materializer.matFromSystem(system);
    this.http = Http.get(system);
    this.endpoints = List.copyOf(endpoints);
    this.settings = settings;
    // the client decides what is sent again, not the pool (it would resend a PUT or DELETE)
    ConnectionPoolSettings base = ConnectionPoolSettings.create(system).withMaxRetries(0);
    this.pool = base;
    // one connection per open watch: its own pool, so that watches never hold up other calls
    this.watchPool = base.withMaxConnections(1024).withMaxOpenRequests(1024)
        .withResponseEntitySubscriptionTimeout(scala.concurrent.duration.Duration.create(
            Math.max(settings.requestTimeout().toMillis(), 10_000), java.util.concurrent.TimeUnit.MILLISECONDS));
  }

  /**
   * A client of the cluster behind {@code endpoints} ({@code "host:port"} or {@code
   * "http://host:port"}), making its requests on {@code system}.
   *
   * @throws IllegalArgumentException for no endpoints or a malformed one
   */
  public static RemoteRaftKv create(ClassicActorSystemProvider system, List<String> endpoints, Settings settings) {
    Objects.requireNonNull(system, "system");
    Objects.requireNonNull(settings, "settings");
    if (endpoints == null || endpoints.isEmpty()) {
      throw new IllegalArgumentException("a remote client needs at least one endpoint");
    }
    List<Endpoint> parsed = new ArrayList<>();
    for (String e : endpoints) {
      parsed.add(Endpoint.parse(e));
    }
    return new RemoteRaftKv(system.classicSystem(), parsed, settings);
  }

  /** As {@link #create(ClassicActorSystemProvider, List, Settings)} with {@link Settings#defaults()}. */
  public static RemoteRaftKv create(ClassicActorSystemProvider system, List<String> endpoints) {
    return create(system, endpoints, Settings.defaults());
  }

  // ---- writes

  @Override
  public CompletionStage<KvResult> write(KvCommand command) {
    try {
      return writeChecked(command);
    } catch (RaftKvException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  private CompletionStage<KvResult> writeChecked(KvCommand command) {
    if (command == null) {
      throw badRequest("the command is missing");
    }
    KvCommand inner = command;
    String idempotencyKey = null;
    if (inner instanceof KvCommand.Idempotent idem) {
      if (idem.key() == null || idem.key().isEmpty()) {
        throw badRequest("the Idempotency-Key is empty");
      }
      idempotencyKey = idem.key();
      inner = idem.command();
    }
    String fenceLock = null;
    List<HttpHeader> headers = new ArrayList<>();
    if (inner instanceof KvCommand.Fenced fenced) {
      if (!(fenced.command() instanceof KvCommand.Put || fenced.command() instanceof KvCommand.Delete
          || fenced.command() instanceof KvCommand.Txn)) {
        throw badRequest("only a put, a delete or a transaction can be fenced");
      }
      fenceLock = fenced.lock();
      headers.add(RawHeader.create("If-Fence", fenced.lock() + "=" + fenced.token()));
      inner = fenced.command();
    }
    if (inner instanceof KvCommand.Idempotent || inner == null) {
      throw badRequest(inner == null ? "the command is missing" : "an idempotent command cannot hold another");
    }
    boolean autoKey = false;
    if (idempotencyKey == null && settings.autoIdempotency()) {
      idempotencyKey = UUID.randomUUID().toString();
      autoKey = true;
    }
    if (idempotencyKey != null) {
      headers.add(RawHeader.create("Idempotency-Key", idempotencyKey));
    }
    Spec spec;
    Function<Reply, KvResult> answer;
    String lock = fenceLock;
    if (inner instanceof KvCommand.Put put) {
      if (put.ifModRevision() != null) {
        headers.add(RawHeader.create("If-Match", "\"" + put.ifModRevision() + "\""));
      }
      if (put.ifAbsent()) {
        headers.add(RawHeader.create("If-None-Match", "*"));
      }
      if (put.key() == null || put.value() == null) {
        throw badRequest("a put needs a key and a value");
      }
      spec = new Spec(HttpMethods.PUT, HttpCodec.keyPath(put.key())
          + HttpCodec.query("lease", put.lease() != 0 ? Long.toString(put.lease()) : null), put.value(), false, headers);
      answer = reply -> switch (reply.status()) {
        case 200 -> HttpCodec.putDone(reply.json());
        case 412 -> precondition(reply, lock);
        case 404 -> {
          if (put.lease() != 0) {
            yield new KvResult.LeaseNotFound(put.lease());
          }
          throw HttpCodec.error(reply, true, 0);
        }
        default -> throw HttpCodec.error(reply, true, 0);
      };
    } else if (inner instanceof KvCommand.Delete delete) {
      if (delete.key() == null) {
        throw badRequest("a delete needs a key");
      }
      if (delete.ifModRevision() != null) {
        headers.add(RawHeader.create("If-Match", "\"" + delete.ifModRevision() + "\""));
      }
      spec = new Spec(HttpMethods.DELETE, HttpCodec.keyPath(delete.key())
          + HttpCodec.query("prefix", delete.prefix() ? "true" : null), null, false, headers);
      answer = reply -> switch (reply.status()) {
        case 200 -> HttpCodec.deleteDone(reply.json());
        case 412 -> precondition(reply, lock);
        default -> throw HttpCodec.error(reply, true, 0);
      };
    } else if (inner instanceof KvCommand.Txn txn) {
      spec = new Spec(HttpMethods.POST, "/v1/txn", HttpCodec.txn(txn), true, headers);
      answer = reply -> switch (reply.status()) {
        case 200 -> HttpCodec.txnDone(reply.json(), txn);
        case 412 -> precondition(reply, lock);
        case 404 -> new KvResult.LeaseNotFound(HttpCodec.leaseOf(reply, HttpCodec.firstLease(txn)));
        default -> throw HttpCodec.error(reply, true, 0);
      };
    } else if (inner instanceof KvCommand.LeaseGrant grant) {
      spec = new Spec(HttpMethods.POST, "/v1/leases", HttpCodec.json(json -> {
        json.writeStartObject();
        json.writeNumberField("ttlSeconds", grant.ttlSeconds());
        json.writeNumberField("id", grant.id());
        json.writeEndObject();
      }), true, headers);
      answer = reply -> switch (reply.status()) {
        case 200, 201 -> new KvResult.LeaseGranted(reply.json().path("id").asLong(grant.id()),
            reply.json().path("ttlSeconds").asLong());
        case 409 -> {
          if (reply.message().contains("exists")) {
            yield new KvResult.LeaseExists(grant.id());
          }
          throw HttpCodec.error(reply, true, 0);
        }
        default -> throw HttpCodec.error(reply, true, 0);
      };
    } else if (inner instanceof KvCommand.LeaseRevoke revoke) {
      if (revoke.expiryTerm() != 0) {
        throw badRequest("an expiry's revoke (expiryTerm " + revoke.expiryTerm() + ") is the leader's own command");
      }
      spec = new Spec(HttpMethods.DELETE, "/v1/leases/" + revoke.id(), null, false, headers);
      answer = reply -> switch (reply.status()) {
        case 200 -> new KvResult.LeaseRevoked(reply.json().path("revision").asLong(), reply.json().path("deleted").asLong());
        case 404 -> new KvResult.LeaseNotFound(revoke.id());
        default -> throw HttpCodec.error(reply, true, 0);
      };
    } else {
      throw badRequest("a " + inner.getClass().getSimpleName() + " is the server's own command, it cannot be sent over HTTP");
    }
    String key = idempotencyKey;
    boolean unwrap = autoKey;
    Function<Reply, KvResult> mapped = reply -> {
      if (reply.status() == 422) {
        return new KvResult.IdempotencyKeyReused(key);
      }
      KvResult result = answer.apply(reply);
      boolean replayed = "true".equalsIgnoreCase(reply.header("Idempotent-Replayed"));
      return replayed && !unwrap ? new KvResult.Replayed(result) : result;
    };
    CompletionStage<KvResult> result = call(spec, key != null ? Safety.IDEMPOTENT_WRITE : Safety.WRITE, false, mapped);
    return inner instanceof KvCommand.Txn txn ? result.thenCompose(r -> withLeases(r, txn)) : result;
  }

  /**
   * API.md v1 does not send a key's lease. Where a transaction's get returns a key that one of its
   * puts would attach to lease L (a waiter joining a lock queue, whose retry finds its key there
   * already), the lease is looked up ({@code GET /v1/leases/L}): the key has lease L when L lists
   * it. Other keys keep lease 0. A lookup that fails leaves the result as it is.
   */
  private CompletionStage<KvResult> withLeases(KvResult result, KvCommand.Txn txn) {
    KvResult.TxnDone done = result instanceof KvResult.TxnDone d ? d
        : result instanceof KvResult.Replayed r && r.first() instanceof KvResult.TxnDone d ? d : null;
    if (done == null) {
      return CompletableFuture.completedFuture(result);
    }
    Map<String, Long> leaseOfPut = new HashMap<>();
    for (List<raftkv.kv.TxnOp> ops : List.of(txn.success(), txn.failure())) {
      for (raftkv.kv.TxnOp op : ops) {
        if (op instanceof raftkv.kv.TxnOp.Put put && put.lease() != 0) {
          leaseOfPut.putIfAbsent(put.key(), put.lease());
        }
      }
    }
    java.util.Set<Long> toRead = new java.util.HashSet<>();
    for (KvResult r : done.results()) {
      if (r instanceof KvResult.GetDone g && g.kv() != null && g.kv().lease() == 0 && leaseOfPut.containsKey(g.kv().key())) {
        toRead.add(leaseOfPut.get(g.kv().key()));
      }
    }
    if (toRead.isEmpty()) {
      return CompletableFuture.completedFuture(result);
    }
    Map<Long, java.util.Set<String>> keysOf = new ConcurrentHashMap<>();
    CompletableFuture<?>[] reads = toRead.stream().map(lease -> read(new KvQuery.LeaseGet(lease), Consistency.LINEARIZABLE)
        .thenAccept(r -> keysOf.put(lease, r instanceof KvResult.LeaseInfo info ? java.util.Set.copyOf(info.keys())
            : java.util.Set.of()))
        .toCompletableFuture()).toArray(CompletableFuture[]::new);
    return CompletableFuture.allOf(reads).handle((v, failure) -> {
      if (failure != null) {
        log.debug("Could not look up the leases of a transaction's keys: {}", describe(unwrap(failure)));
        return result;
      }
      List<KvResult> results = new ArrayList<>();
      for (KvResult r : done.results()) {
        if (r instanceof KvResult.GetDone g && g.kv() != null && g.kv().lease() == 0 && leaseOfPut.containsKey(g.kv().key())
            && keysOf.getOrDefault(leaseOfPut.get(g.kv().key()), java.util.Set.of()).contains(g.kv().key())) {
          raftkv.kv.KeyValue kv = g.kv();
          r = new KvResult.GetDone(g.revision(), new raftkv.kv.KeyValue(kv.key(), kv.value(), kv.createRevision(),
              kv.modRevision(), kv.version(), leaseOfPut.get(kv.key())));
        }
        results.add(r);
      }
      KvResult.TxnDone filled = new KvResult.TxnDone(done.succeeded(), done.revision(), List.copyOf(results));
      return result instanceof KvResult.Replayed ? new KvResult.Replayed(filled) : filled;
    });
  }

  /** A 412: a fence that no longer holds (the body names {@code fencingToken}) or a failed compare-and-set. */
  private static KvResult precondition(Reply reply, String lock) {
    var json = reply.json();
    if (json.has("fencingToken")) {
      return new KvResult.FenceFailed(lock != null ? lock : "", json.get("fencingToken").asLong());
    } else if (json.has("modRevision")) {
      return new KvResult.PreconditionFailed(json.get("modRevision").asLong());
    }
    throw HttpCodec.error(reply, true, 0);
  }

  // ---- reads

  @Override
  public CompletionStage<KvResult> read(KvQuery query, Consistency consistency) {
    String serializable = consistency == Consistency.SERIALIZABLE ? "serializable" : null;
    if (query instanceof KvQuery.Get get) {
      if (get.key() == null || get.key().isEmpty()) {
        return CompletableFuture.failedFuture(badRequest("the key is missing or empty"));
      }
      Spec spec = new Spec(HttpMethods.GET, HttpCodec.keyPath(get.key()) + HttpCodec.query("consistency", serializable),
          null, false, List.of());
      return call(spec, Safety.READ, false, reply -> {
        if (reply.status() == 200 || reply.status() == 404) { // 404: the key is absent
          return HttpCodec.getDone(get.key(), reply);
        }
        throw HttpCodec.error(reply, false, 0);
      });
    } else if (query instanceof KvQuery.Range range) {
      Spec spec = new Spec(HttpMethods.GET, "/v1/kv" + HttpCodec.query(
          "prefix", range.prefix() == null ? "" : range.prefix(),
          "limit", range.limit() != 0 ? Integer.toString(range.limit()) : null,
          "after", range.after(),
          "consistency", serializable), null, false, List.of());
      return call(spec, Safety.READ, false, reply -> {
        if (reply.status() == 200) {
          return HttpCodec.rangeDone(reply.json());
        }
        throw HttpCodec.error(reply, false, 0);
      });
    } else if (query instanceof KvQuery.LeaseGet lease) {
      Spec spec = new Spec(HttpMethods.GET, "/v1/leases/" + lease.id(), null, false, List.of());
      return call(spec, Safety.READ, false, reply -> switch (reply.status()) {
        case 200 -> HttpCodec.leaseInfo(reply.json());
        case 404 -> new KvResult.LeaseNotFound(lease.id());
        default -> throw HttpCodec.error(reply, false, 0);
      });
    } else if (query instanceof KvQuery.LeaseList) {
      Spec spec = new Spec(HttpMethods.GET, "/v1/leases", null, false, List.of());
      return call(spec, Safety.READ, false, reply -> {
        if (reply.status() == 200) {
          return HttpCodec.leases(reply.json());
        }
        throw HttpCodec.error(reply, false, 0);
      });
    } else if (query instanceof KvQuery.LeaseKeepAlive keep) {
      Spec spec = new Spec(HttpMethods.POST, "/v1/leases/" + keep.id() + "/keepalive", null, false, List.of());
      return call(spec, Safety.READ, false, reply -> switch (reply.status()) {
        case 200 -> new KvResult.LeaseKeptAlive(reply.json().path("id").asLong(keep.id()),
            reply.json().path("ttlSeconds").asLong());
        case 404 -> new KvResult.LeaseNotFound(keep.id());
        default -> throw HttpCodec.error(reply, false, 0);
      });
    } else if (query == null) {
      return CompletableFuture.failedFuture(badRequest("the query is missing"));
    }
    return CompletableFuture.failedFuture(badRequest("a " + query.getClass().getSimpleName()
        + " query is not served over HTTP (watch the key instead)"));
  }

  // ---- cluster (API.md §5)

  @Override
  public CompletionStage<ClusterStatus> status() {
    return call(new Spec(HttpMethods.GET, "/v1/cluster/status", null, false, List.of()), Safety.READ, false,
        reply -> {
          if (reply.status() == 200) {
            return HttpCodec.status(reply.json());
          }
          throw HttpCodec.error(reply, false, 0);
        });
  }

  /** The health of the first endpoint that answers: an unhealthy node's 503 is an answer here, not a retry. */
  @Override
  public CompletionStage<Health> health() {
    return call(new Spec(HttpMethods.GET, "/health", null, false, List.of()), Safety.READ, true, reply -> {
      if ((reply.status() == 200 || reply.status() == 503) && reply.json().has("healthy")) {
        return HttpCodec.health(reply.json());
      }
      throw HttpCodec.error(reply, false, 0);
    });
  }

  /** A snapshot of the node that answers (taking one again is harmless, so it is retried as a read). */
  @Override
  public CompletionStage<SnapshotInfo> snapshot() {
    return call(new Spec(HttpMethods.POST, "/v1/cluster/snapshot", null, false, List.of()), Safety.READ, false,
        reply -> {
          if (reply.status() == 200) {
            return HttpCodec.snapshot(reply.json());
          }
          throw HttpCodec.error(reply, false, 0);
        });
  }

  @Override
  public CompletionStage<List<ClusterStatus.Member>> addMember(String id, String address, String httpAddress,
                                                             boolean learner) {
    byte[] body = HttpCodec.json(json -> {
      json.writeStartObject();
      json.writeStringField("id", id);
      json.writeStringField("address", address);
      if (httpAddress != null) {
        json.writeStringField("httpAddress", httpAddress);
      }
      json.writeBooleanField("learner", learner);
      json.writeEndObject();
    });
    return members(new Spec(HttpMethods.POST, "/v1/cluster/members", body, true, List.of()));
  }

  @Override
  public CompletionStage<List<ClusterStatus.Member>> promoteMember(String id) {
    return members(new Spec(HttpMethods.POST, "/v1/cluster/members/" + HttpCodec.encode(id, false) + "/promote",
        null, false, List.of()));
  }

  @Override
  public CompletionStage<List<ClusterStatus.Member>> removeMember(String id) {
    return members(new Spec(HttpMethods.DELETE, "/v1/cluster/members/" + HttpCodec.encode(id, false), null, false,
        List.of()));
  }

  private CompletionStage<List<ClusterStatus.Member>> members(Spec spec) {
    return call(spec, Safety.WRITE, false, reply -> {
      if (reply.status() == 200) {
        return HttpCodec.members(reply.json());
      }
      throw HttpCodec.error(reply, true, 0);
    });
  }

  @Override
  public CompletionStage<String> transferLeadership(String to) {
    byte[] body = to == null ? null : HttpCodec.json(json -> {
      json.writeStartObject();
      json.writeStringField("to", to);
      json.writeEndObject();
    });
    return call(new Spec(HttpMethods.POST, "/v1/cluster/leadership-transfer", body, true, List.of()), Safety.WRITE,
        false, reply -> {
          if (reply.status() == 200) {
            return reply.json().path("leaderId").asText();
          }
          throw HttpCodec.error(reply, true, 0);
        });
  }

  // ---- watches (API.md §4)

  @Override
  public CompletionStage<Source<WatchMessage, NotUsed>> watch(WatchRequest request) {
    if (request == null || request.key() == null || (request.key().isEmpty() && !request.prefix())) {
      return CompletableFuture.failedFuture(badRequest("a watch needs a key, or a prefix (which may be empty)"));
    }
    if (request.fromRevision() < 0) {
      return CompletableFuture.failedFuture(badRequest("fromRevision is " + request.fromRevision()
          + ", it must be 0 (after the current revision) or more"));
    }
    CompletionStage<Long> from = request.fromRevision() > 0
        ? CompletableFuture.completedFuture(request.fromRevision())
        : read(new KvQuery.Range(request.key(), null, 1), Consistency.LINEARIZABLE)
            .thenApply(r -> ((KvResult.RangeDone) r).revision() + 1);
    return from.thenCompose(revision -> {
      WatchState state = new WatchState(request, revision);
      return call(state.spec(), Safety.READ, false, true, reply -> {
        if (reply.status() == 200 && reply.stream() != null) {
          return reply;
        }
        throw HttpCodec.error(reply, false, revision);
      }).thenApply(first -> segment(state, first)
          .takeWhile(m -> !(m instanceof WatchMessage.Compacted), true)
          .via(watches.flow()));
    });
  }

  /** Where a watch is: the next revision it may deliver, the endpoint it reads, its failures in a row. */
  private final class WatchState {
    final WatchRequest request;
    volatile long next;
    volatile boolean delivered;
    volatile int endpoint = preferred.get();
    volatile int failures;
    volatile Throwable lastError;

    WatchState(WatchRequest request, long from) {
      this.request = request;
      this.next = from;
    }

    /** The request that resumes after the last revision delivered ({@code Last-Event-ID}). */
    Spec spec() {
      String target = "/v1/watch/" + HttpCodec.encode(request.key(), true) + HttpCodec.query(
          "prefix", request.prefix() ? "true" : null,
          "fromRevision", Long.toString(next),
          "prevKv", request.prevKv() ? "true" : null);
      List<HttpHeader> headers = delivered
          ? List.of(RawHeader.create("Last-Event-ID", Long.toString(next - 1)))
          : List.of();
      return new Spec(HttpMethods.GET, target, null, false, headers);
    }

    /** Whether to pass {@code message} on: nothing before what was delivered passes twice. */
    boolean accept(WatchMessage message) {
      if (message instanceof WatchMessage.Change change) {
        if (change.revision() < next) {
          return false;
        }
        next = change.revision() + 1;
      } else if (message instanceof WatchMessage.Progress progress) {
        if (progress.revision() < next - 1) {
          return false;
        }
        next = progress.revision() + 1;
      }
      delivered = true;
      failures = 0;
      return true;
    }

    /** The connection ended without a Compacted: move on to the next endpoint. */
    void dropped() {
      failures++;
      endpoint++;
      if (lastError == null) {
        lastError = new RaftKvException(Kind.UNAVAILABLE, "the watch's connection ended");
      }
    }
  }

  /**
   * The messages of one watch response, then (once it ended, by a failure or not, without a
   * Compacted) those of the next connection: the continuation is made only when the response
   * has ended, so there is one connection at a time.
   */
  private Source<WatchMessage, NotUsed> segment(WatchState state, Reply reply) {
    state.lastError = null;
    return reply.stream().mapMaterializedValue(m -> NotUsed.notUsed())
        .via(Sse.messages())
        .filter(state::accept)
        .recoverWithRetries(1, new PFBuilder<Throwable, akka.stream.Graph<akka.stream.SourceShape<WatchMessage>, NotUsed>>()
            .matchAny(e -> {
              state.lastError = e;
              return Source.empty();
            })
            .build())
        // concatLazy: concat would materialize and pull what follows at once, before the response ended
        .concatLazy(Source.lazySource(() -> {
          state.dropped();
          log.debug("A watch of {} lost its connection after revision {} ({}); resuming", state.request.key(),
              state.next - 1, String.valueOf(state.lastError));
          return Source.<WatchMessage>empty();
        }).mapMaterializedValue(m -> NotUsed.notUsed()))
        .concatLazy(next(state));
  }

  /** The rest of a watch after its connection ended, made only when it is pulled. */
  private Source<WatchMessage, NotUsed> next(WatchState state) {
    return Source.lazyCompletionStageSource(() -> resume(state)).mapMaterializedValue(m -> NotUsed.notUsed());
  }

  /** The next connection of a watch whose connection ended: on the next endpoint, after a backoff when it failed before. */
  private CompletionStage<Source<WatchMessage, NotUsed>> resume(WatchState state) {
    if (closed) {
      return CompletableFuture.completedFuture(Source.failed(closedException()));
    }
    if (state.failures >= settings.maxAttempts()) {
      Throwable last = state.lastError;
      return CompletableFuture.completedFuture(Source.failed(new RaftKvException(Kind.UNAVAILABLE,
          "the watch could not be resumed after revision " + (state.next - 1) + " in " + settings.maxAttempts()
              + " attempts: " + (last == null ? "no endpoint answered" : describe(last)))));
    }
    Duration wait = state.failures <= 1 ? Duration.ZERO : backoff(state.failures - 1);
    Endpoint endpoint = endpoints.get(Math.floorMod(state.endpoint, endpoints.size()));
    return delay(wait).thenCompose(v -> send(endpoint, state.spec(), true)).handle((reply, failure) -> {
      if (closed) {
        return Source.failed(closedException());
      } else if (failure != null) {
        state.lastError = unwrap(failure);
        state.dropped();
        log.debug("Resuming a watch of {} on {} failed: {}", state.request.key(), endpoint, describe(state.lastError));
        return next(state);
      } else if (reply.status() == 200 && reply.stream() != null) {
        log.debug("A watch of {} resumed on {} after revision {}", state.request.key(), endpoint, state.next - 1);
        return segment(state, reply);
      } else if (reply.status() == 410) {
        return Source.single(new WatchMessage.Compacted(reply.json().path("compactRevision").asLong()));
      } else if (reply.status() >= 500) {
        state.lastError = HttpCodec.error(reply, false, state.next);
        state.dropped();
        return next(state);
      }
      return Source.failed(HttpCodec.error(reply, false, state.next));
    });
  }

  // ---- requests, retries and failover

  private <T> CompletionStage<T> call(Spec spec, Safety safety, boolean answers503, Function<Reply, T> answer) {
    return call(spec, safety, answers503, false, answer);
  }

  private <T> CompletionStage<T> call(Spec spec, Safety safety, boolean answers503, boolean streaming,
                                      Function<Reply, T> answer) {
    if (closed) {
      return CompletableFuture.failedFuture(closedException());
    }
    CompletableFuture<T> result = new CompletableFuture<>();
    attempt(spec, safety, answers503, streaming, answer, result, 1, preferred.get(), false);
    return result;
  }

  private <T> void attempt(Spec spec, Safety safety, boolean answers503, boolean streaming, Function<Reply, T> answer,
                           CompletableFuture<T> result, int attempt, int index, boolean maybeApplied) {
    int at = Math.floorMod(index, endpoints.size());
    Endpoint endpoint = endpoints.get(at);
    send(endpoint, spec, streaming).whenComplete((reply, failure) -> {
      RaftKvException error;
      boolean retry;
      boolean unknown = false;
      boolean refused = false;
      if (failure != null) {
        Throwable cause = unwrap(failure);
        if (cause instanceof RaftKvException e && e.kind() == Kind.BAD_REQUEST) {
          result.completeExceptionally(e);
          return;
        }
        refused = notSent(cause);
        unknown = !refused && safety != Safety.READ;
        retry = refused || safety != Safety.WRITE;
        String what = endpoint + ": " + describe(cause);
        error = refused ? new RaftKvException(Kind.UNAVAILABLE, "could not connect to " + what)
            : safety == Safety.READ ? new RaftKvException(Kind.UNAVAILABLE, "no answer from " + what)
            : new RaftKvException(Kind.TIMEOUT, "no answer from " + what + "; the outcome of the write is unknown");
      } else if (reply.status() == 503 && !answers503) {
        retry = true;
        error = HttpCodec.error(reply, safety != Safety.READ, 0);
      } else if (reply.status() >= 500 && reply.status() != 501 && reply.status() != 503) {
        unknown = safety != Safety.READ;
        retry = safety != Safety.WRITE;
        error = HttpCodec.error(reply, safety != Safety.READ, 0);
      } else {
        preferred.set(at);
        T value;
        try {
          value = answer.apply(reply);
        } catch (Throwable t) {
          discard(reply);
          result.completeExceptionally(unwrap(t));
          return;
        }
        result.complete(value);
        return;
      }
      discard(reply);
      boolean mayHaveApplied = maybeApplied || unknown;
      if (mayHaveApplied && error.kind() == Kind.UNAVAILABLE) {
        error = new RaftKvException(Kind.TIMEOUT, error.getMessage() + " (an earlier attempt's outcome is unknown)");
      }
      if (!retry || attempt >= settings.maxAttempts() || closed) {
        result.completeExceptionally(closed ? closedException() : error);
        return;
      }
      Duration wait = refused && attempt < endpoints.size() ? Duration.ZERO : backoff(attempt);
      log.debug("{} {} failed on {} (attempt {} of {}): {}; retrying in {} ms on the next endpoint", spec.method().name(),
          spec.target(), endpoint, attempt, settings.maxAttempts(), error.getMessage(), wait.toMillis());
      delay(wait).whenComplete((v, closedMeanwhile) -> {
        if (closedMeanwhile != null) {
          result.completeExceptionally(closedException());
        } else {
          attempt(spec, safety, answers503, streaming, answer, result, attempt + 1, at + 1, mayHaveApplied);
        }
      });
    });
  }

  /**
   * Sends {@code spec} to {@code endpoint} and reads the answer whole within the request timeout;
   * with {@code streaming}, a 200's body is left to stream ({@link Reply#stream()}).
   */
  private CompletableFuture<Reply> send(Endpoint endpoint, Spec spec, boolean streaming) {
    CompletableFuture<Reply> result = new CompletableFuture<>();
    HttpRequest request;
    try {
      request = spec.to(endpoint);
    } catch (RuntimeException e) {
      result.completeExceptionally(badRequest("the request cannot be made: " + e.getMessage()));
      return result;
    }
    long timeoutMillis = settings.requestTimeout().toMillis();
    Cancellable timer = system.scheduler().scheduleOnce(settings.requestTimeout(), () -> result.completeExceptionally(
        new TimeoutException("no answer within " + timeoutMillis + " ms")), system.dispatcher());
    http.singleRequest(request, http.defaultClientHttpsContext(), streaming ? watchPool : pool, system.log())
        .thenCompose(response -> {
          if (result.isDone()) { // timed out meanwhile
            response.discardEntityBytes(materializer);
            return CompletableFuture.<Reply>completedFuture(null);
          }
          if (streaming && response.status().intValue() == 200) {
            return CompletableFuture.completedFuture(new Reply(200, headers(response), new byte[0],
                response.entity().getDataBytes()));
          }
          return response.entity().toStrict(timeoutMillis, materializer)
              .thenApply(strict -> new Reply(response.status().intValue(), headers(response),
                  strict.getData().toArray(), null));
        })
        .whenComplete((reply, failure) -> {
          timer.cancel();
          if (failure != null) {
            result.completeExceptionally(failure);
          } else if (reply != null && !result.complete(reply)) {
            discard(reply);
          }
        });
    return result;
  }

  private void discard(Reply reply) {
    if (reply != null && reply.stream() != null) {
      reply.stream().runWith(akka.stream.javadsl.Sink.ignore(), materializer);
    }
  }

  private static Map<String, String> headers(HttpResponse response) {
    Map<String, String> headers = new HashMap<>();
    for (HttpHeader h : response.getHeaders()) {
      headers.put(h.lowercaseName(), h.value());
    }
    return headers;
  }

  /** The wait before attempt {@code attempt + 1}: minBackoff doubled per attempt, at most maxBackoff, with jitter. */
  private Duration backoff(int attempt) {
    long min = settings.minBackoff().toMillis();
    long max = settings.maxBackoff().toMillis();
    long base = min << Math.min(attempt - 1, 20);
    long capped = Math.min(max, base < 0 ? max : base);
    return Duration.ofMillis(capped / 2 + ThreadLocalRandom.current().nextLong(capped / 2 + 1));
  }

  /** Completes after {@code wait} on the system's scheduler; fails at once when the client is closed. */
  private CompletableFuture<Void> delay(Duration wait) {
    if (closed) {
      return CompletableFuture.failedFuture(closedException());
    }
    if (wait.isZero()) {
      return CompletableFuture.completedFuture(null);
    }
    CompletableFuture<Void> done = new CompletableFuture<>();
    Cancellable[] timer = new Cancellable[1];
    synchronized (timers) {
      timer[0] = system.scheduler().scheduleOnce(wait, () -> {
        timers.remove(timer[0]);
        done.complete(null);
      }, system.dispatcher());
      timers.put(timer[0], done);
    }
    if (closed && timers.remove(timer[0]) != null) {
      timer[0].cancel();
      done.completeExceptionally(closedException());
    }
    return done;
  }

  /** Whether {@code cause} shows that the request never reached the server (no connection was made). */
  private static boolean notSent(Throwable cause) {
    for (Throwable t = cause; t != null; t = t.getCause()) {
      if (t instanceof ConnectException || t instanceof UnknownHostException) {
        return true;
      }
      String message = t.getMessage();
      if (message != null && (message.contains("Connection refused") || message.contains("ConnectException")
          || message.contains("UnknownHostException"))) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  private static Throwable unwrap(Throwable failure) {
    Throwable cause = failure;
    while ((cause instanceof CompletionException || cause instanceof ExecutionException) && cause.getCause() != null) {
      cause = cause.getCause();
    }
    return cause;
  }

  private static String describe(Throwable t) {
    String message = t.getMessage();
    return message == null ? t.getClass().getSimpleName() : message.length() > 300 ? message.substring(0, 300) + "..." : message;
  }

  private static RaftKvException badRequest(String message) {
    return new RaftKvException(Kind.BAD_REQUEST, message);
  }

  private static RaftKvException closedException() {
    return new RaftKvException(Kind.UNAVAILABLE, "the remote client is closed");
  }

  /** The endpoints, as {@code host:port}, in the order they are tried. */
  public List<String> endpoints() {
    return endpoints.stream().map(Endpoint::toString).toList();
  }

  /**
   * Refuses new calls, fails the calls waiting for a retry and aborts open watches (their streams
   * fail with UNAVAILABLE). Requests on the wire complete or time out on their own.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    watches.abort(closedException());
    synchronized (timers) {
      for (Map.Entry<Cancellable, CompletableFuture<Void>> e : timers.entrySet()) {
        e.getKey().cancel();
        e.getValue().completeExceptionally(closedException());
      }
      timers.clear();
    }
    log.debug("Remote client of {} closed", endpoints);
  }

  @Override
  public String toString() {
    return "RemoteRaftKv" + endpoints;
  }
}
