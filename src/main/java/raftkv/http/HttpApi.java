package raftkv.http;

import akka.NotUsed;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.DispatcherSelector;
import akka.http.javadsl.Http;
import akka.http.javadsl.ServerBinding;
import akka.http.javadsl.model.ContentTypes;
import akka.http.javadsl.model.HttpEntities;
import akka.http.javadsl.model.HttpEntity;
import akka.http.javadsl.model.HttpHeader;
import akka.http.javadsl.model.HttpMethod;
import akka.http.javadsl.model.HttpMethods;
import akka.http.javadsl.model.HttpRequest;
import akka.http.javadsl.model.HttpResponse;
import akka.http.javadsl.model.RequestEntity;
import akka.http.javadsl.model.StatusCodes;
import akka.http.javadsl.model.headers.Allow;
import akka.http.javadsl.model.headers.Connection;
import akka.http.javadsl.model.headers.ContentDisposition;
import akka.http.javadsl.model.headers.ContentDispositionTypes;
import akka.http.javadsl.model.headers.Location;
import akka.http.javadsl.model.headers.RawHeader;
import akka.http.javadsl.model.headers.TimeoutAccess;
import akka.http.javadsl.server.ExceptionHandler;
import akka.http.javadsl.server.MethodRejection;
import akka.http.javadsl.server.Rejection;
import akka.http.javadsl.server.RejectionHandler;
import akka.http.javadsl.server.Route;
import akka.http.javadsl.settings.ServerSettings;
import akka.http.scaladsl.model.EntityStreamSizeException;
import akka.http.scaladsl.model.ExceptionWithErrorInfo;
import akka.http.scaladsl.model.IllegalRequestException;
import akka.japi.Pair;
import akka.stream.Materializer;
import akka.stream.javadsl.Source;
import akka.stream.javadsl.StreamConverters;
import akka.util.ByteString;
import akka.http.javadsl.model.MediaTypes;
import raftkv.client.WatchRequest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.client.KvLimits;
import raftkv.recipes.LockQueue;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.raft.RaftNode;
import raftkv.util.Stages;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

import static akka.http.javadsl.server.Directives.complete;
import static akka.http.javadsl.server.Directives.completeWithFuture;
import static akka.http.javadsl.server.Directives.concat;
import static akka.http.javadsl.server.Directives.delete;
import static akka.http.javadsl.server.Directives.extractRequest;
import static akka.http.javadsl.server.Directives.get;
import static akka.http.javadsl.server.Directives.handleExceptions;
import static akka.http.javadsl.server.Directives.handleRejections;
import static akka.http.javadsl.server.Directives.path;
import static akka.http.javadsl.server.Directives.pathPrefix;
import static akka.http.javadsl.server.Directives.post;
import static akka.http.javadsl.server.Directives.put;
import static akka.http.javadsl.server.Directives.withRequestTimeoutResponse;
import static akka.http.javadsl.server.PathMatchers.segment;

/**
 * The HTTP endpoint of a node: the KV endpoints of API.md §3 (keys as in §2), {@code GET
 * /v1/cluster/status}, {@code POST /v1/cluster/snapshot}, {@code GET /v1/cluster/backup} and {@code
 * GET /health} of §5, and the JSON errors of §6 for everything that goes wrong, rejections and
 * unparsable requests included.
 *
 * <p>Every request becomes one call to the {@link RaftKv} handle; nothing here blocks. Keys and
 * query parameters are percent-decoded from the raw request-target as strict UTF-8 (see {@link
 * RequestTarget}); commands and queries pass {@link KvLimits} before they reach the node.
 *
 * <p>Choices where API.md is silent: {@code GET /v1/kv} without {@code limit} (or with 0) returns
 * every matching key; {@code after=} (empty) is the same as no {@code after}; {@code If-Match}
 * takes one modRevision, quoted or bare, and 0 means "absent"; {@code If-Match} with {@code
 * If-None-Match}, or with {@code ?prefix=true}, is a 400; a request over Akka's request-timeout is a
 * 504 for writes and a 503 for reads.
 */
public final class HttpApi {

  private static final Logger log = LoggerFactory.getLogger(HttpApi.class);

  private static final String AKKA_PARSING_ERROR_HANDLER = "akka.http.DefaultParsingErrorHandler$";
  /** How long a client may take to send a request body. */
  private static final long BODY_TIMEOUT_MILLIS = 10_000;
  /** A PUT body over the value limit but at most this long is read and dropped, so that the connection survives its 413. */
  private static final long DRAIN_LIMIT_BYTES = 8L * 1024 * 1024;
  private static final String FAULT_INJECTION_SETTING = "raftkv.test.fault-injection";
  private static final String MAX_JSON_DEPTH_SETTING = "raftkv.limits.max-json-depth";
  /** The depth of JSON bodies when {@code raftkv.limits.max-json-depth} is not configured. */
  private static final int DEFAULT_MAX_JSON_DEPTH = 64;
  /** Segments before the key in {@code /v1/kv/{key}}. */
  private static final int KEY_PATH_SEGMENTS = 2;
  /** At most this many watch messages that are ready together go out in one chunk. */
  private static final int WATCH_CHUNK_MESSAGES = 256;
  private static final String KEY_PATH_PREFIX = "/v1/kv/";
  private static final String CLIENT_TIMEOUT_SETTING = "raftkv.client.request-timeout";
  /** How long a backup may take to start when {@code raftkv.client.request-timeout} is not configured. */
  private static final long DEFAULT_BACKUP_START_MILLIS = 5_000;
  /**
   * How long one write of a backup may wait for the client to read: a client that stalls longer
   * ends the backup (its body is cut short) and frees the node's snapshot of the store.
   */
  private static final Duration BACKUP_WRITE_TIMEOUT = Duration.ofSeconds(30);
  /** SnapshotFile writes its header field by field; each write to the stream source is one element. */
  private static final int BACKUP_BUFFER_BYTES = 1 << 16;

  private static final String MAX_LOCK_WAIT_SETTING = "raftkv.locks.max-wait";
  private static final Duration DEFAULT_MAX_LOCK_WAIT = Duration.ofSeconds(60);
  /** How much longer than its waitSeconds a lock or campaign request may take before Akka answers for it. */
  private static final Duration LOCK_REQUEST_MARGIN = Duration.ofSeconds(15);

  /** What a failed call means for the client: TimeoutExceptions of writes leave the outcome unknown. */
  private enum Call { READ, WRITE, INFO }

  private final ActorSystem<?> system;
  private final RaftKv kv;
  private final KvLimits limits;
  /** How deep a JSON request body may nest objects and arrays. */
  private final int maxJsonDepth;
  private final Materializer materializer;
  /** Where the end of a backup is handled: closing its stream waits for the client to read the rest. */
  private final Executor blocking;
  /** How long a backup may take to write its first bytes (the leader's ReadIndex, the applier catching up). */
  private final long backupStartMillis;
  private final Route route;
  /** The longest waitSeconds of a lock or a campaign (raftkv.locks.max-wait), also the default. */
  private final Duration maxLockWait;
  private final LockQueue locks;

  private HttpApi(ActorSystem<?> system, RaftKv kv, KvLimits limits) {
    this.system = system;
    this.kv = kv;
    this.limits = limits;
    this.maxJsonDepth = system.settings().config().hasPath(MAX_JSON_DEPTH_SETTING)
        ? system.settings().config().getInt(MAX_JSON_DEPTH_SETTING)
        : DEFAULT_MAX_JSON_DEPTH;
    this.materializer = Materializer.matFromSystem(system);
    this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
    this.backupStartMillis = system.settings().config().hasPath(CLIENT_TIMEOUT_SETTING)
        ? system.settings().config().getDuration(CLIENT_TIMEOUT_SETTING).toMillis()
        : DEFAULT_BACKUP_START_MILLIS;
    this.maxLockWait = system.settings().config().hasPath(MAX_LOCK_WAIT_SETTING)
        ? system.settings().config().getDuration(MAX_LOCK_WAIT_SETTING)
        : DEFAULT_MAX_LOCK_WAIT;
    this.locks = LockQueue.create(kv, system);
    this.route = buildRoute();
  }

  /** The endpoint of the node behind {@code kv}, checking requests against {@code limits}. */
  public static HttpApi create(ActorSystem<?> system, RaftKv kv, KvLimits limits) {
    return new HttpApi(Objects.requireNonNull(system, "system"), Objects.requireNonNull(kv, "kv"),
        Objects.requireNonNull(limits, "limits"));
  }

  /**
   * All endpoints, sealed with JSON rejection and exception handlers. Bind it with {@code
   * akka.http.server.raw-request-uri-header = on} (as {@link #bind} does), or keys cannot be
   * checked for malformed UTF-8.
   */
  public Route route() {
    return route;
  }

  /**
   * Serves {@link #route()} on {@code host:port} (0: any free port). Turns on the {@code
   * Raw-Request-URI} header the route decodes keys from, and answers unparsable requests with
   * {@link JsonParsingErrorHandler} unless another handler is configured.
   */
  public CompletionStage<ServerBinding> bind(String host, int port) {
    ServerSettings settings = ServerSettings.create(system.classicSystem()).withRawRequestUriHeader(true);
    if (AKKA_PARSING_ERROR_HANDLER.equals(settings.getParsingErrorHandler())) {
      settings = settings.withParsingErrorHandler(JsonParsingErrorHandler.class.getName());
    }
    return Http.get(system).newServerAt(host, port).withSettings(settings).bind(handler());
  }

  /**
   * What {@link #bind} serves: GET and PUT of one key, the hot path, straight to their handlers;
   * everything else through {@link #route()}. Both give the same answers (HttpApiTest runs against
   * this); the routing DSL costs a fresh tree of directives, rejections and futures per request.
   */
  private akka.japi.function.Function<HttpRequest, CompletionStage<HttpResponse>> handler() {
    akka.japi.function.Function<HttpRequest, CompletionStage<HttpResponse>> routed = route.handler(system);
    return request -> {
      HttpMethod method = request.method();
      boolean get = method.equals(HttpMethods.GET);
      if ((get || method.equals(HttpMethods.PUT)) && isKeyPath(request.getUri().path())) {
        request.getHeader(TimeoutAccess.class)
            .ifPresent(t -> t.timeoutAccess().updateHandler(HttpApi::requestTimedOut));
        return get ? respondWith(Call.READ, () -> getKeyResponse(request))
            : respondWith(Call.WRITE, () -> putKeyResponse(request));
      }
      return routed.apply(request);
    };
  }

  /** {@code /v1/kv/} and at least one more character: the paths {@code pathPrefix(segment("kv").slash())} takes. */
  private static boolean isKeyPath(String path) {
    return path.length() > KEY_PATH_PREFIX.length() && path.startsWith(KEY_PATH_PREFIX);
  }

  private Route buildRoute() {
    Route kvRoutes = pathPrefix("v1", () -> concat(
        path("kv", () -> get(() -> extractRequest(this::range))),
        pathPrefix(segment("kv").slash(), () -> extractRequest(request -> concat(
            get(() -> getKey(request)),
            put(() -> putKey(request)),
            delete(() -> deleteKey(request))))),
        path("txn", () -> post(() -> extractRequest(this::txn))),
        pathPrefix(segment("watch"), () -> get(() -> extractRequest(this::watch))),
        path("leases", () -> concat(get(this::listLeases), post(() -> extractRequest(this::grantLease)))),
        path(segment("leases").slash(akka.http.javadsl.server.PathMatchers.segment()).slash("keepalive"),
            id -> post(() -> keepAliveLease(id))),
        path(segment("leases").slash(akka.http.javadsl.server.PathMatchers.segment()), id -> concat(
            get(() -> getLease(id)), delete(() -> extractRequest(request -> revokeLease(request, id))))),
        pathPrefix(segment("locks"), () -> extractRequest(this::locks)),
        pathPrefix(segment("elections"), () -> extractRequest(this::elections)),
        path(segment("cluster").slash("status"), () -> get(this::status)),
        path(segment("cluster").slash("snapshot"), () -> post(this::snapshot)),
        path(segment("cluster").slash("backup"), () -> get(() -> extractRequest(this::backup))),
        path(segment("cluster").slash("members"), () -> post(() -> extractRequest(this::addMember))),
        path(segment("cluster").slash("members").slash(akka.http.javadsl.server.PathMatchers.segment()).slash("promote"),
            id -> post(() -> changeMembers(() -> kv.promoteMember(memberId(id))))),
        path(segment("cluster").slash("members").slash(akka.http.javadsl.server.PathMatchers.segment()),
            id -> delete(() -> changeMembers(() -> kv.removeMember(memberId(id))))),
        path(segment("cluster").slash("leadership-transfer"), () -> post(() -> extractRequest(this::transferLeadership)))));
    Route healthRoute = path("health", () -> get(this::health));
    Route routes = faultInjectionEnabled()
        ? concat(kvRoutes, healthRoute, new FaultInjection(system).route())
        : concat(kvRoutes, healthRoute);
    return withRequestTimeoutResponse(HttpApi::requestTimedOut, () ->
        handleExceptions(exceptionHandler(), () ->
            handleRejections(rejectionHandler(), () -> routes)));
  }

  /** The test-only {@link FaultInjection} endpoints are served when {@code raftkv.test.fault-injection} is on. */
  private boolean faultInjectionEnabled() {
    return system.settings().config().hasPath(FAULT_INJECTION_SETTING) && FaultInjection.enabled(system);
  }

  // ---- GET /v1/kv/{key}

  private Route getKey(HttpRequest request) {
    return respond(Call.READ, () -> getKeyResponse(request));
  }

  private CompletionStage<HttpResponse> getKeyResponse(HttpRequest request) {
    RequestTarget target = RequestTarget.of(request);
    KvQuery.Get query = new KvQuery.Get(key(target));
    RaftKv.Consistency consistency = consistency(target);
    limits.validate(query);
    return kv.read(query, consistency).thenApply(HttpApi::valueResponse);
  }

  private static HttpResponse valueResponse(KvResult result) {
    if (!(result instanceof KvResult.GetDone done)) {
      throw unexpected(result);
    }
    HttpHeader revision = RawHeader.create("X-Revision", Long.toString(done.revision()));
    KeyValue kv = done.kv();
    if (kv == null) {
      return ApiError.notFound("the key does not exist").toResponse().addHeader(revision);
    }
    HttpHeader etag = etag(kv.modRevision());
    HttpHeader created = RawHeader.create("X-Create-Revision", Long.toString(kv.createRevision()));
    HttpHeader modified = RawHeader.create("X-Mod-Revision", Long.toString(kv.modRevision()));
    HttpHeader version = RawHeader.create("X-Version", Long.toString(kv.version()));
    return HttpResponse.create()
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_OCTET_STREAM, kv.value()))
        .withHeaders(kv.lease() == 0 ? List.of(etag, created, modified, version, revision)
            : List.of(etag, created, modified, version, RawHeader.create("X-Lease", Long.toString(kv.lease())), revision));
  }

  // ---- GET /v1/kv?prefix=P&limit=N&after=K

  private Route range(HttpRequest request) {
    return respond(Call.READ, () -> {
      RequestTarget target = RequestTarget.of(request);
      String prefix = target.param("prefix");
      String after = target.param("after");
      KvQuery.Range query = new KvQuery.Range(prefix == null ? "" : prefix,
          after == null || after.isEmpty() ? null : after, limit(target.param("limit")));
      RaftKv.Consistency consistency = consistency(target);
      limits.validate(query);
      return kv.read(query, consistency).thenApply(result -> {
        if (!(result instanceof KvResult.RangeDone done)) {
          throw unexpected(result);
        }
        return HttpResponse.create().withEntity(Json.range(done));
      });
    });
  }

  // ---- GET /v1/watch/{key}?prefix=true&fromRevision=R&prevKv=true (API.md §4)

  /**
   * A watch as Server-Sent Events: one message per revision ({@code id: R}, {@code event: change},
   * data the revision's events as a JSON array), {@code event: progress} when caught up and idle,
   * {@code event: compacted} (the last) when the watcher fell behind compaction. {@code
   * Last-Event-ID} resumes after that revision and wins over {@code fromRevision}. A revision no
   * longer in the history is a 410 before the stream starts. Messages that are ready together go
   * out in one chunk.
   */
  private Route watch(HttpRequest request) {
    return respond(Call.READ, () -> {
      RequestTarget target = RequestTarget.of(request);
      String path = request.getUri().path();
      if (!path.equals("/v1/watch") && !path.startsWith("/v1/watch/")) {
        throw ApiError.notFound("no endpoint has this path");
      }
      String key = target.pathAfter(2, "the key");
      boolean prefix = flag(target.param("prefix"), "prefix");
      if (key.isEmpty() && !prefix) {
        throw ApiError.badRequest("the key is empty: the path must be /v1/watch/{key}, or /v1/watch/{prefix}?prefix=true"
            + " (an empty prefix watches every key)");
      }
      boolean prevKv = flag(target.param("prevKv"), "prevKv");
      long from = 0;
      String fromRevision = target.param("fromRevision");
      if (fromRevision != null) {
        from = nonNegative(fromRevision);
        if (from < 1) {
          throw ApiError.badRequest("fromRevision must be a revision (a whole number from 1), not " + quote(fromRevision));
        }
      }
      Optional<HttpHeader> lastEventId = request.getHeader("Last-Event-ID");
      if (lastEventId.isPresent()) {
        String id = lastEventId.get().value().trim();
        long last = nonNegative(id);
        if (last < 0 || last == Long.MAX_VALUE) {
          throw ApiError.badRequest("Last-Event-ID must be a revision (a whole number), not " + quote(id));
        }
        from = last + 1; // resumes after it, and wins over fromRevision
      }
      return kv.watch(new WatchRequest(key, prefix, from, prevKv)).thenApply(source -> HttpResponse.create()
          .withEntity(HttpEntities.create(MediaTypes.TEXT_EVENT_STREAM.toContentType(),
              source.map(Json::sse).batch(WATCH_CHUNK_MESSAGES, bytes -> bytes, ByteString::concat)))
          .addHeader(RawHeader.create("Cache-Control", "no-cache")));
    });
  }

  // ---- PUT /v1/kv/{key}

  private Route putKey(HttpRequest request) {
    return respond(Call.WRITE, () -> putKeyResponse(request));
  }

  private CompletionStage<HttpResponse> putKeyResponse(HttpRequest request) {
    // The body is read first, so that every answer leaves the connection reusable.
    return readValue(request).thenCompose(value -> {
      RequestTarget target = RequestTarget.of(request);
      String key = key(target);
      long lease = lease(target.param("lease"));
      String ifMatch = header(request, "If-Match");
      String ifNoneMatch = header(request, "If-None-Match");
      if (ifMatch != null && ifNoneMatch != null) {
        throw ApiError.badRequest("If-Match and If-None-Match cannot be used together");
      }
      KvCommand.Put put = new KvCommand.Put(key, value, lease,
          ifMatch == null ? null : modRevision(ifMatch), ifNoneMatch != null && createOnly(ifNoneMatch));
      KvCommand command = fenced(request, put);
      limits.validate(command);
      return kv.write(idempotent(request, command, value));
    }).thenApply(result -> idempotentResponse(result, HttpApi::putResponse));
  }

  /**
   * {@code command} under the request's {@code If-Fence: <lock name>=<fencingToken>} (API.md §3),
   * when it has one: applied only while that token holds that lock, else 412. The lock name is
   * everything before the last {@code =}, so a name may hold one.
   */
  static KvCommand fenced(HttpRequest request, KvCommand command) {
    String fence = header(request, "If-Fence");
    if (fence == null) {
      return command;
    }
    int eq = fence.lastIndexOf('=');
    String lock = eq < 0 ? "" : fence.substring(0, eq).trim();
    String token = eq < 0 ? "" : fence.substring(eq + 1).trim();
    if (lock.isEmpty() || !token.matches("[0-9]{1,18}") || Long.parseLong(token) < 1) {
      throw ApiError.badRequest("If-Fence is '<lock name>=<fencing token>', the token a positive integer, not "
          + quote(fence.length() > 80 ? fence.substring(0, 80) + "..." : fence));
    }
    return new KvCommand.Fenced(lock, Long.parseLong(token), command);
  }

  /**
   * {@code command} under the request's {@code Idempotency-Key} (API.md §3), when it has one: the
   * state machine applies it at most once per key, and knows the request again by a SHA-256 of its
   * method, target (path and query), preconditions and body.
   */
  private static KvCommand idempotent(HttpRequest request, KvCommand command, byte[] body) {
    String key = header(request, "Idempotency-Key");
    if (key == null) {
      return command;
    }
    KvLimits.checkIdempotencyKey(key);
    java.security.MessageDigest sha;
    try {
      sha = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256", e);
    }
    RequestTarget target = RequestTarget.of(request);
    for (String part : new String[] {request.method().value(), target.path(), target.query(),
        header(request, "If-Match"), header(request, "If-None-Match"), header(request, "If-Fence")}) {
      byte[] bytes = part == null ? new byte[] {(byte) 0xff} : part.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      sha.update(java.nio.ByteBuffer.allocate(4).putInt(bytes.length).array());
      sha.update(bytes);
    }
    sha.update(body == null ? new byte[0] : body);
    return new KvCommand.Idempotent(key, sha.digest(), command);
  }

  /** The answer to a write that may carry an Idempotency-Key: a retry gets the first answer, marked as such. */
  private static HttpResponse idempotentResponse(KvResult result, java.util.function.Function<KvResult, HttpResponse> answer) {
    if (result instanceof KvResult.Replayed replayed) {
      if (replayed.first() == null) {
        return ApiError.conflict("a request with this Idempotency-Key was applied before; its answer was too large to"
            + " keep (over " + raftkv.kv.KvDb.MAX_KEPT_RESULT_BYTES / 1024 + " KiB): read the keys it wrote").toResponse();
      }
      return answer.apply(replayed.first()).addHeader(RawHeader.create("Idempotent-Replayed", "true"));
    } else if (result instanceof KvResult.IdempotencyKeyReused reused) {
      return ApiError.idempotencyKeyReused("the Idempotency-Key was used before with a different request (method,"
          + " path, query, preconditions or body); nothing was applied").toResponse();
    }
    return answer.apply(result);
  }

  private static HttpResponse putResponse(KvResult result) {
    if (result instanceof KvResult.PutDone done) {
      return HttpResponse.create().withEntity(Json.putDone(done)).addHeader(etag(done.revision()));
    } else if (result instanceof KvResult.PreconditionFailed failed) {
      return ApiError.preconditionFailed(failed.currentModRevision()).toResponse();
    } else if (result instanceof KvResult.FenceFailed failed) {
      return ApiError.fenceFailed(failed.lock(), failed.holderToken()).toResponse();
    } else if (result instanceof KvResult.LeaseNotFound missing) {
      return leaseNotFound(missing.id()).toResponse();
    }
    throw unexpected(result);
  }

  private static ApiError leaseNotFound(long id) {
    return ApiError.notFound("lease " + id + " does not exist (never granted, revoked, or expired); nothing was applied");
  }

  // ---- leases (API.md §4)

  private static final java.util.Set<String> GRANT_FIELDS = java.util.Set.of("ttlSeconds", "id");

  /** A lease id from the path: a positive integer, or 400. */
  private static long leaseId(String id) {
    long n = nonNegative(id);
    if (n < 1) {
      throw ApiError.badRequest("a lease id is a positive integer, not " + quote(id));
    }
    return n;
  }

  /**
   * POST /v1/leases {"ttlSeconds":N[,"id":ID]} → 201 {"id","ttlSeconds"} with the TTL granted (at
   * least the shortest); the node picks a random id unless the body names one (409 if it exists).
   */
  private Route grantLease(HttpRequest request) {
    return respond(Call.WRITE, () -> strictBody(request.entity())
        .handle((strict, failure) -> {
          if (failure != null) {
            throw bodyFailure(failure, "the request body is larger than the server accepts");
          }
          byte[] bytes = strict.toArray();
          com.fasterxml.jackson.databind.JsonNode body = Json.readTree(bytes, maxJsonDepth);
          if (body == null || !body.isObject()) {
            throw ApiError.badRequest("the body must be a JSON object {\"ttlSeconds\":N}");
          }
          body.fieldNames().forEachRemaining(f -> {
            if (!GRANT_FIELDS.contains(f)) {
              throw ApiError.badRequest("unknown field '" + f + "'; a lease grant has ttlSeconds and, optionally, id");
            }
          });
          com.fasterxml.jackson.databind.JsonNode ttl = body.get("ttlSeconds");
          if (ttl == null || !ttl.isIntegralNumber() || !ttl.canConvertToLong()) {
            throw ApiError.badRequest("ttlSeconds must be a whole number of seconds");
          }
          limits.leaseTtl(ttl.longValue());
          com.fasterxml.jackson.databind.JsonNode id = body.get("id");
          if (id != null && (!id.isIntegralNumber() || !id.canConvertToLong() || id.longValue() < 1)) {
            throw ApiError.badRequest("id must be a lease id (a positive integer)");
          }
          long chosen = id != null ? id.longValue() : java.util.concurrent.ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
          return new Object[] {idempotent(request, new KvCommand.LeaseGrant(chosen, ttl.longValue()), bytes), id != null};
        })
        .thenCompose(a -> kv.write((KvCommand) a[0]))
        .thenApply(r -> idempotentResponse(r, result -> {
          if (result instanceof KvResult.LeaseGranted granted) {
            return HttpResponse.create().withStatus(StatusCodes.CREATED).withEntity(Json.numbers(
                "{\"id\":" + granted.id() + ",\"ttlSeconds\":" + granted.ttlSeconds() + "}"));
          } else if (result instanceof KvResult.LeaseExists exists) {
            return ApiError.conflict("lease " + exists.id() + " exists already").toResponse();
          }
          throw unexpected(result);
        })));
  }

  /** POST /v1/leases/{id}/keepalive → {"id","ttlSeconds"}: renewed by the leader for its whole TTL. */
  private Route keepAliveLease(String id) {
    return respond(Call.READ, () -> kv.read(new KvQuery.LeaseKeepAlive(leaseId(id)), RaftKv.Consistency.LINEARIZABLE)
        .thenApply(result -> {
          if (result instanceof KvResult.LeaseKeptAlive kept) {
            return HttpResponse.create().withEntity(Json.numbers(
                "{\"id\":" + kept.id() + ",\"ttlSeconds\":" + kept.ttlSeconds() + "}"));
          }
          return leaseError(result);
        }));
  }

  /** GET /v1/leases/{id} → {"id","ttlSeconds" (remaining, as the leader sees it),"grantedTtlSeconds","keys"}. */
  private Route getLease(String id) {
    return respond(Call.READ, () -> kv.read(new KvQuery.LeaseGet(leaseId(id)), RaftKv.Consistency.LINEARIZABLE)
        .thenApply(result -> {
          if (result instanceof KvResult.LeaseInfo info) {
            return HttpResponse.create().withEntity(Json.lease(info));
          }
          return leaseError(result);
        }));
  }

  /** GET /v1/leases → {"leases":[{"id","ttlSeconds"}]}, by id. */
  private Route listLeases() {
    return respond(Call.READ, () -> kv.read(new KvQuery.LeaseList(true), RaftKv.Consistency.LINEARIZABLE)
        .thenApply(result -> {
          if (result instanceof KvResult.Leases leases) {
            return HttpResponse.create().withEntity(Json.leases(leases));
          }
          throw unexpected(result);
        }));
  }

  /** DELETE /v1/leases/{id} → {"revision","deleted"}: the lease and its keys are gone. */
  private Route revokeLease(HttpRequest request, String id) {
    return respond(Call.WRITE, () -> {
      KvCommand revoke = new KvCommand.LeaseRevoke(leaseId(id), 0);
      return kv.write(idempotent(request, revoke, null)).thenApply(r -> idempotentResponse(r, result -> {
        if (result instanceof KvResult.LeaseRevoked revoked) {
          return HttpResponse.create().withEntity(Json.numbers(
              "{\"revision\":" + revoked.revision() + ",\"deleted\":" + revoked.deleted() + "}"));
        }
        return leaseError(result);
      }));
    });
  }

  private static HttpResponse leaseError(KvResult result) {
    if (result instanceof KvResult.LeaseNotFound missing) {
      return leaseNotFound(missing.id()).toResponse();
    } else if (result instanceof KvResult.Unavailable unavailable) {
      return ApiError.unavailable(unavailable.reason()).toResponse();
    }
    throw unexpected(result);
  }

  /**
   * The value of a PUT, at most {@code maxValueBytes}: a longer Content-Length is refused before
   * anything is stored, a longer chunked body as soon as it passes the limit. A client that sent
   * {@code Expect: 100-continue} gets its 413 before it sends the body.
   */
  private CompletionStage<byte[]> readValue(HttpRequest request) {
    RequestEntity entity = request.entity();
    long max = limits.maxValueBytes();
    if (entity instanceof HttpEntity.Strict strict) {
      // the common case: the body arrived with the headers, no stream to run
      long size = strict.getData().size();
      return size > max
          ? CompletableFuture.failedFuture(ApiError.tooLarge("the value is " + size + " bytes, the limit is " + max))
          : CompletableFuture.completedFuture(strict.getData().toArray());
    }
    OptionalLong length = entity.getContentLengthOption();
    if (length.isPresent() && length.getAsLong() > max) {
      ApiError error = ApiError.tooLarge("the value is " + length.getAsLong() + " bytes, the limit is " + max);
      boolean drain = !entity.isStrict() && length.getAsLong() <= DRAIN_LIMIT_BYTES && header(request, "Expect") == null;
      if (!drain) {
        return CompletableFuture.failedFuture(error);
      }
      return Stages.direct(entity.discardBytes(materializer).completionStage()).handle((done, failure) -> {
        throw error;
      });
    }
    return Stages.direct(entity.withSizeLimit(max).toStrict(BODY_TIMEOUT_MILLIS, max, materializer))
        .handle((strict, failure) -> {
          if (failure != null) {
            throw bodyFailure(failure, "the value is over the limit of " + max + " bytes");
          }
          return strict.getData().toArray();
        });
  }

  /** The whole body of a request: at once when it came with the headers, else read within BODY_TIMEOUT_MILLIS. */
  private CompletableFuture<akka.util.ByteString> strictBody(RequestEntity entity) {
    if (entity instanceof HttpEntity.Strict strict) {
      return CompletableFuture.completedFuture(strict.getData());
    }
    return Stages.direct(entity.toStrict(BODY_TIMEOUT_MILLIS, materializer)).thenApply(HttpEntity.Strict::getData);
  }

  /** A body that could not be read: too long, too slow or cut short. Nothing was applied. */
  private static ApiError bodyFailure(Throwable failure, String tooLarge) {
    Throwable cause = unwrap(failure);
    if (cause instanceof EntityStreamSizeException) {
      return ApiError.tooLarge(tooLarge);
    } else if (cause instanceof TimeoutException) {
      return ApiError.badRequest("the request body did not arrive within " + BODY_TIMEOUT_MILLIS / 1000 + " seconds");
    }
    return ApiError.badRequest("the request body could not be read");
  }

  // ---- DELETE /v1/kv/{key}

  private Route deleteKey(HttpRequest request) {
    return respond(Call.WRITE, () -> {
      RequestTarget target = RequestTarget.of(request);
      String key = key(target);
      boolean prefix = flag(target.param("prefix"), "prefix");
      String ifMatch = header(request, "If-Match");
      if (header(request, "If-None-Match") != null) {
        throw ApiError.badRequest("If-None-Match is not supported on DELETE");
      }
      if (prefix && ifMatch != null) {
        throw ApiError.badRequest("If-Match cannot be used with prefix=true");
      }
      KvCommand delete = fenced(request, new KvCommand.Delete(key, prefix, ifMatch == null ? null : modRevision(ifMatch)));
      limits.validate(delete);
      return kv.write(idempotent(request, delete, null)).thenApply(r -> idempotentResponse(r, result -> {
        if (result instanceof KvResult.DeleteDone done) {
          return HttpResponse.create().withEntity(Json.deleteDone(done));
        } else if (result instanceof KvResult.PreconditionFailed failed) {
          return ApiError.preconditionFailed(failed.currentModRevision()).toResponse();
        } else if (result instanceof KvResult.FenceFailed failed) {
          return ApiError.fenceFailed(failed.lock(), failed.holderToken()).toResponse();
        }
        throw unexpected(result);
      }));
    });
  }

  // ---- POST /v1/txn

  private Route txn(HttpRequest request) {
    return respond(Call.WRITE, () -> strictBody(request.entity())
        .handle((strict, failure) -> {
          if (failure != null) {
            throw bodyFailure(failure, "the transaction is larger than the server accepts");
          }
          byte[] body = strict.toArray();
          KvCommand txn = fenced(request, TxnRequest.parse(body, maxJsonDepth));
          limits.validate(txn);
          return idempotent(request, txn, body);
        })
        .thenCompose(kv::write)
        .thenApply(r -> idempotentResponse(r, result -> {
          if (result instanceof KvResult.LeaseNotFound missing) {
            return leaseNotFound(missing.id()).toResponse();
          } else if (result instanceof KvResult.FenceFailed failed) {
            return ApiError.fenceFailed(failed.lock(), failed.holderToken()).toResponse();
          }
          if (!(result instanceof KvResult.TxnDone done)) {
            throw unexpected(result);
          }
          return HttpResponse.create().withEntity(Json.txnDone(done));
        })));
  }

  // ---- locks and elections (API.md §4), on the waiter queue of raftkv.recipes.LockQueue

  /**
   * {@code POST /v1/locks/{name}?lease=ID&waitSeconds=N} acquires, {@code DELETE
   * /v1/locks/{name}?key=K[&fencingToken=T]} releases, {@code GET /v1/locks/{name}} names the holder.
   */
  private Route locks(HttpRequest request) {
    RequestTarget target = RequestTarget.of(request);
    HttpMethod method = request.method();
    if (method.equals(HttpMethods.POST)) {
      Duration wait = lockWait(target);
      return akka.http.javadsl.server.Directives.withRequestTimeout(scalaDuration(wait.plus(LOCK_REQUEST_MARGIN)), () -> respond(Call.WRITE, () -> {
        String name = lockName(target, 2, "the lock name");
        long lease = requiredLease(target);
        return locks.acquire(name, lease, new byte[0], wait, command -> idempotent(request, command, null))
            .thenApply(held -> HttpResponse.create().withEntity(Json.numbers("{\"key\":" + Json.string(held.key())
                + ",\"fencingToken\":" + held.token() + '}')));
      }));
    } else if (method.equals(HttpMethods.DELETE)) {
      return respond(Call.WRITE, () -> {
        String name = lockName(target, 2, "the lock name");
        String key = requiredParam(target, "key");
        String token = target.param("fencingToken");
        long fence = token == null ? 0 : nonNegative(token);
        if (fence == 0 || fence < 0) {
          if (token != null) {
            throw ApiError.badRequest("fencingToken must be a positive integer, not " + quote(token));
          }
        }
        return locks.release(name, key, Math.max(fence, 0), command -> idempotent(request, command, null))
            .thenApply(revision -> HttpResponse.create().withEntity(Json.numbers("{\"revision\":" + revision + '}')));
      });
    } else if (method.equals(HttpMethods.GET)) {
      return respond(Call.READ, () -> {
        String name = lockName(target, 2, "the lock name");
        return locks.holder(name).thenApply(holder -> holder.map(h -> HttpResponse.create().withEntity(
                Json.numbers("{\"key\":" + Json.string(h.key()) + ",\"fencingToken\":" + h.token() + ",\"lease\":" + h.lease() + '}')))
            .orElseGet(() -> ApiError.notFound("nobody holds lock " + quote(name)).toResponse()));
      });
    }
    return complete(ApiError.methodNotAllowed("a lock takes POST (acquire), DELETE (release) or GET (its holder)").toResponse());
  }

  /**
   * Elections (API.md §4): {@code POST .../{name}/campaign?lease=ID&waitSeconds=N} with the value,
   * {@code PUT .../{name}/proclaim?key=K} with the new value, {@code DELETE .../{name}?key=K}
   * resigns, {@code GET .../{name}} is the leader, {@code GET .../{name}/observe} the SSE of leaders.
   * The last path segment is the verb when it is campaign, proclaim or observe (a name that ends in
   * such a segment encodes its last slash as %2F).
   */
  private Route elections(HttpRequest request) {
    RequestTarget target = RequestTarget.of(request);
    String path = target.path();
    int slash = path.lastIndexOf('/');
    String last = path.substring(slash + 1);
    String verb = slash > "/v1/elections".length() && java.util.Set.of("campaign", "proclaim", "observe").contains(last)
        ? last : "";
    RequestTarget named = verb.isEmpty() ? target : RequestTarget.parse(path.substring(0, slash));
    HttpMethod method = request.method();
    switch (verb) {
      case "campaign" -> {
        if (!method.equals(HttpMethods.POST)) {
          break;
        }
        Duration wait = lockWait(target);
        return akka.http.javadsl.server.Directives.withRequestTimeout(scalaDuration(wait.plus(LOCK_REQUEST_MARGIN)), () -> respond(Call.WRITE, () -> readValue(request)
            .thenCompose(value -> {
              String name = lockName(named, 2, "the election name");
              long lease = requiredLease(target);
              return locks.acquire(name, lease, value, wait, command -> idempotent(request, command, value));
            })
            .thenApply(leader -> HttpResponse.create().withEntity(Json.numbers("{\"key\":" + Json.string(leader.key())
                + ",\"leaderRevision\":" + leader.token() + '}')))));
      }
      case "proclaim" -> {
        if (!method.equals(HttpMethods.PUT)) {
          break;
        }
        return respond(Call.WRITE, () -> readValue(request).thenCompose(value -> {
          String name = lockName(named, 2, "the election name");
          String key = requiredParam(target, "key");
          return locks.proclaim(name, key, value, command -> idempotent(request, command, value));
        }).thenApply(leader -> HttpResponse.create().withEntity(Json.numbers("{\"key\":" + Json.string(leader.key())
            + ",\"leaderRevision\":" + leader.token() + '}'))));
      }
      case "observe" -> {
        if (!method.equals(HttpMethods.GET)) {
          break;
        }
        return respond(Call.READ, () -> {
          String name = lockName(named, 2, "the election name");
          return locks.observe(name).thenApply(source -> HttpResponse.create()
              .withEntity(HttpEntities.create(MediaTypes.TEXT_EVENT_STREAM.toContentType(), source.map(Json::leaderSse)))
              .addHeader(RawHeader.create("Cache-Control", "no-cache")));
        });
      }
      default -> {
        if (method.equals(HttpMethods.GET)) {
          return respond(Call.READ, () -> {
            String name = lockName(named, 2, "the election name");
            return locks.holder(name).thenApply(leader -> leader.map(l -> HttpResponse.create().withEntity(Json.leader(l)))
                .orElseGet(() -> ApiError.notFound("election " + quote(name) + " has no leader").toResponse()));
          });
        } else if (method.equals(HttpMethods.DELETE)) {
          return respond(Call.WRITE, () -> {
            String name = lockName(named, 2, "the election name");
            String key = requiredParam(target, "key");
            return locks.release(name, key, 0, command -> idempotent(request, command, null))
                .thenApply(revision -> HttpResponse.create().withEntity(Json.numbers("{\"revision\":" + revision + '}')));
          });
        }
      }
    }
    return complete(ApiError.methodNotAllowed("an election takes POST .../campaign, PUT .../proclaim, GET .../observe,"
        + " GET (its leader) or DELETE (resign)").toResponse());
  }

  /** The decoded name after {@code segments} path segments: a valid key whose waiter keys are valid keys too. */
  private String lockName(RequestTarget target, int segments, String what) {
    String name = target.pathAfter(segments, what);
    if (name.isEmpty()) {
      throw ApiError.badRequest(what + " is empty");
    }
    limits.validate(new raftkv.kv.KvQuery.Get(LockQueue.waiterKey(name, Long.MAX_VALUE)));
    return name;
  }

  private Duration lockWait(RequestTarget target) {
    String wait = target.param("waitSeconds");
    if (wait == null) {
      return maxLockWait;
    }
    long seconds = nonNegative(wait);
    if (seconds < 0 || seconds > maxLockWait.toSeconds()) {
      throw ApiError.badRequest("waitSeconds must be a whole number from 0 to " + maxLockWait.toSeconds() + ", not " + quote(wait));
    }
    return Duration.ofSeconds(seconds);
  }

  private static scala.concurrent.duration.FiniteDuration scalaDuration(Duration d) {
    return scala.concurrent.duration.Duration.create(d.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  private static long requiredLease(RequestTarget target) {
    String lease = target.param("lease");
    if (lease == null) {
      throw ApiError.badRequest("lease is missing: a lock or a campaign lives under a lease (POST /v1/leases)");
    }
    return lease(lease);
  }

  private static String requiredParam(RequestTarget target, String name) {
    String value = target.param(name);
    if (value == null || value.isEmpty()) {
      throw ApiError.badRequest(name + " is missing");
    }
    return value;
  }

  // ---- GET /v1/cluster/status, GET /health

  private Route status() {
    return respond(Call.INFO, () -> kv.status().thenApply(status -> HttpResponse.create().withEntity(Json.status(status))));
  }

  /** POST /v1/cluster/snapshot: {"index","term","bytes"} of the snapshot taken (or the last, when nothing changed). */
  private Route snapshot() {
    return respond(Call.INFO, () -> kv.snapshot().thenApply(info -> HttpResponse.create().withEntity(
        Json.snapshot(info))));
  }

  // ---- membership (API.md §5): POST /v1/cluster/members, .../{id}/promote, DELETE .../{id},
  // POST /v1/cluster/leadership-transfer. Each changes the cluster: a timeout is a 504.

  private static final java.util.Set<String> ADD_MEMBER_FIELDS = java.util.Set.of("id", "address", "httpAddress", "learner");

  /** {@code id} from the path, or 400. */
  private static String memberId(String id) {
    if (!raftkv.raft.Peer.isValidId(id)) {
      throw ApiError.badRequest("a member id is 1 to 64 letters, digits, '.', '_' or '-'");
    }
    return id;
  }

  private Route changeMembers(Callable<CompletionStage<List<raftkv.client.ClusterStatus.Member>>> change) {
    return respond(Call.WRITE, () -> change.call().thenApply(members ->
        HttpResponse.create().withEntity(Json.members(members))));
  }

  /** POST /v1/cluster/members {"id","address":"host:raftPort","httpAddress":"host:httpPort","learner":bool}. */
  private Route addMember(HttpRequest request) {
    return respond(Call.WRITE, () -> strictBody(request.entity())
        .handle((strict, failure) -> {
          if (failure != null) {
            throw bodyFailure(failure, "the request body is larger than the server accepts");
          }
          com.fasterxml.jackson.databind.JsonNode body = Json.readTree(strict.toArray(), maxJsonDepth);
          if (body == null || !body.isObject()) {
            throw ApiError.badRequest("the body must be a JSON object {\"id\",\"address\",\"httpAddress\",\"learner\"}");
          }
          body.fieldNames().forEachRemaining(f -> {
            if (!ADD_MEMBER_FIELDS.contains(f)) {
              throw ApiError.badRequest("unknown field '" + f + "'; a member has id, address, httpAddress and learner");
            }
          });
          String id = text(body, "id", true);
          String address = text(body, "address", true);
          String http = text(body, "httpAddress", false);
          com.fasterxml.jackson.databind.JsonNode learner = body.get("learner");
          if (learner != null && !learner.isBoolean() && !learner.isNull()) {
            throw ApiError.badRequest("learner must be true or false");
          }
          memberId(id);
          hostPort(address, "address");
          if (http != null) {
            hostPort(http, "httpAddress");
          }
          return new Object[] {id, address, http, learner != null && learner.asBoolean()};
        })
        .thenCompose(a -> kv.addMember((String) a[0], (String) a[1], (String) a[2], (Boolean) a[3]))
        .thenApply(members -> HttpResponse.create().withEntity(Json.members(members))));
  }

  /** POST /v1/cluster/leadership-transfer {"to":"n2"}, or no body: the most up-to-date voter. */
  private Route transferLeadership(HttpRequest request) {
    return respond(Call.WRITE, () -> strictBody(request.entity())
        .handle((strict, failure) -> {
          if (failure != null) {
            throw bodyFailure(failure, "the request body is larger than the server accepts");
          }
          byte[] bytes = strict.toArray();
          if (bytes.length == 0 || new String(bytes, java.nio.charset.StandardCharsets.UTF_8).isBlank()) {
            return java.util.Optional.<String>empty();
          }
          com.fasterxml.jackson.databind.JsonNode body = Json.readTree(bytes, maxJsonDepth);
          if (body == null || !body.isObject()) {
            throw ApiError.badRequest("the body must be a JSON object {\"to\":\"<member id>\"}, or empty");
          }
          body.fieldNames().forEachRemaining(f -> {
            if (!f.equals("to")) {
              throw ApiError.badRequest("unknown field '" + f + "'; the body is {\"to\":\"<member id>\"}");
            }
          });
          String to = text(body, "to", false);
          return java.util.Optional.ofNullable(to == null ? null : memberId(to));
        })
        .thenCompose(to -> kv.transferLeadership(to.orElse(null)))
        .thenApply(leader -> HttpResponse.create().withEntity(Json.entity(json -> {
          json.writeStartObject();
          json.writeStringField("leaderId", leader);
          json.writeEndObject();
        }))));
  }

  /** A string field: required or optional (absent or null gives null), else 400. */
  private static String text(com.fasterxml.jackson.databind.JsonNode body, String field, boolean required) {
    com.fasterxml.jackson.databind.JsonNode v = body.get(field);
    if (v == null || v.isNull()) {
      if (required) {
        throw ApiError.badRequest("the body lacks " + field);
      }
      return null;
    }
    if (!v.isTextual()) {
      throw ApiError.badRequest(field + " must be a string");
    }
    return v.asText();
  }

  /** Checks host:port, port 1..65535, else 400. */
  private static void hostPort(String value, String field) {
    try {
      raftkv.raft.Peer.at("-", value);
    } catch (IllegalArgumentException e) {
      throw ApiError.badRequest(field + ": " + e.getMessage());
    }
    if (value.length() > 260 || value.chars().anyMatch(c -> c <= ' ' || c == '/' || c == '@')) {
      throw ApiError.badRequest(field + " '" + (value.length() > 80 ? value.substring(0, 80) + "..." : value)
          + "' is not host:port: a host has no spaces, '/' or '@' and at most 253 characters");
    }
  }

  // ---- GET /v1/cluster/backup[?stale=true]

  /**
   * GET /v1/cluster/backup (API.md §5): the backup, streamed as the node writes it, in {@link
   * raftkv.raft.SnapshotFile}'s layout (header, the state machine's bytes, a SHA-256 trailer), so
   * a backup of any size needs no buffer or temporary file here.
   *
   * <p>The status is chosen when the backup's first bytes arrive, or when it fails first: a
   * follower asked for a linearizable backup answers {@code 307 Temporary Redirect} to the leader's
   * same path when it knows the leader's HTTP address (a backup is one long read, which is better
   * served by the leader itself than relayed through a follower; {@code curl -L} follows it), else
   * {@code 503} with Retry-After (no leader known, or the leader stepped down meanwhile), as is a
   * backup that does not start within {@code raftkv.client.request-timeout}. {@code ?stale=true}
   * serves this node's local state, on any node. A backup that fails once its body is under way
   * cuts the body short (the chunked response ends without its last chunk), and the file's
   * SHA-256 trailer would be refused by {@code raftkv restore} anyway.
   */
  private Route backup(HttpRequest request) {
    return respond(Call.INFO, () -> backupResponse(request));
  }

  private CompletionStage<HttpResponse> backupResponse(HttpRequest request) {
    boolean stale = flag(RequestTarget.of(request).param("stale"), "stale");
    Pair<OutputStream, Source<ByteString, NotUsed>> stream =
        StreamConverters.asOutputStream(BACKUP_WRITE_TIMEOUT).preMaterialize(materializer);
    BackupOutput out = new BackupOutput(stream.first());
    CompletableFuture<long[]> done;
    try {
      done = Stages.direct(kv.backup(!stale, out.buffered));
    } catch (RuntimeException e) {
      done = CompletableFuture.failedFuture(e);
    }
    done.whenCompleteAsync((indexAndTerm, failure) -> out.finish(failure), blocking);
    // a failure after the last bytes fails the body, so that the client sees it cut short
    Source<ByteString, NotUsed> body = stream.second()
        .concat(Source.completionStage(done).mapConcat(indexAndTerm -> List.<ByteString>of()));
    return out.started().orTimeout(backupStartMillis, TimeUnit.MILLISECONDS).handle((index, failure) -> {
      if (failure != null) {
        blocking.execute(out::abort);
        return backupRefused(failure, request);
      }
      String name = index >= 0 ? "raftkv-backup-" + index + ".snap" : "raftkv-backup.snap";
      return HttpResponse.create()
          .withEntity(HttpEntities.create(ContentTypes.APPLICATION_OCTET_STREAM, body))
          .addHeader(ContentDisposition.create(ContentDispositionTypes.ATTACHMENT, Map.of("filename", name)));
    });
  }

  /** The answer to a backup that failed before its first bytes: a redirect to the leader, or an error. */
  private HttpResponse backupRefused(Throwable failure, HttpRequest request) {
    Throwable cause = unwrap(failure);
    if (cause instanceof RaftNode.NotLeader notLeader) {
      if (notLeader.leaderHttp() != null) {
        String scheme = "https".equals(request.getUri().getScheme()) ? "https" : "http";
        return HttpResponse.create().withStatus(StatusCodes.TEMPORARY_REDIRECT)
            .addHeader(Location.create(scheme + "://" + notLeader.leaderHttp() + "/v1/cluster/backup"));
      }
      return ApiError.unavailable(notLeader.getMessage() != null ? notLeader.getMessage() : "no leader is known")
          .toResponse();
    } else if (cause instanceof UnsupportedOperationException) {
      return ApiError.notImplemented("this node does not take backups").toResponse();
    } else if (cause instanceof TimeoutException) {
      return ApiError.unavailable("the backup did not start within " + backupStartMillis + " ms").toResponse();
    } else if (cause instanceof IOException e) {
      log.warn("A backup failed before it started: {}", e.toString());
      return ApiError.unavailable("the backup could not be written: " + e.getMessage()).toResponse();
    }
    return toError(cause, Call.INFO).toResponse();
  }

  /**
   * What a backup is written into: buffered (the header is written field by field, and each write
   * to the stream source becomes one element of the body), and {@link #started()} completes with the
   * backup's index (-1 when its first bytes do not say) as soon as the first bytes reach the
   * source, <em>before</em> they are handed to it: the source takes them only once the response
   * that carries it is under way.
   */
  private static final class BackupOutput extends OutputStream {
    /** Magic, format and index: the first fields of a snapshot file (SnapshotFile.writeHeader). */
    private static final int HEAD_BYTES = 4 + 4 + 8;
    private static final int SNAPSHOT_MAGIC = 0x524B534E; // "RKSN"

    private final OutputStream sink;
    final BufferedOutputStream buffered = new BufferedOutputStream(this, BACKUP_BUFFER_BYTES);
    private final CompletableFuture<Long> started = new CompletableFuture<>();
    private final byte[] head = new byte[HEAD_BYTES];
    private int headLength;

    BackupOutput(OutputStream sink) {
      this.sink = sink;
    }

    CompletableFuture<Long> started() {
      return started;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      if (!started.isDone() && len > 0) {
        int n = Math.min(len, HEAD_BYTES - headLength);
        System.arraycopy(b, off, head, headLength, n);
        headLength += n;
        if (headLength == HEAD_BYTES) {
          started.complete(index());
        }
      }
      sink.write(b, off, len);
    }

    /** Nothing to do: the source has every byte written; its own flush would wait for the client to read them. */
    @Override
    public void flush() {}

    @Override
    public void close() throws IOException {
      sink.close();
    }

    /**
     * The backup ended: on success, the rest of the buffer goes out and the body ends; on failure,
     * the body ends without it (and then fails), or the response becomes an error when it had not
     * started. Runs on a blocking thread: closing waits for the client to read what is left.
     */
    void finish(Throwable failure) {
      if (failure == null) {
        try {
          buffered.close();
        } catch (IOException e) {
          // the client went away; the backup itself was complete
        }
        started.complete(headLength == HEAD_BYTES ? index() : -1L);
      } else {
        started.completeExceptionally(failure);
        abort();
      }
    }

    /** Ends the source without the bytes still buffered; later writes fail. */
    void abort() {
      try {
        sink.close();
      } catch (IOException e) {
        // already closed, or the client went away
      }
    }

    private long index() {
      ByteBuffer b = ByteBuffer.wrap(head);
      return b.getInt(0) == SNAPSHOT_MAGIC ? b.getLong(8) : -1L;
    }
  }

  private Route health() {
    return respond(Call.INFO, () -> kv.health().thenApply(health -> {
      HttpResponse response = HttpResponse.create().withEntity(Json.health(health));
      return health.healthy()
          ? response
          : response.withStatus(StatusCodes.SERVICE_UNAVAILABLE).addHeader(ApiError.RETRY_AFTER);
    }));
  }

  // ---- requests

  private static String key(RequestTarget target) {
    String key = target.pathAfter(KEY_PATH_SEGMENTS, "the key");
    if (key.isEmpty()) {
      throw ApiError.badRequest("the key is empty, the path must be /v1/kv/{key}");
    }
    return key;
  }

  private static RaftKv.Consistency consistency(RequestTarget target) {
    String consistency = target.param("consistency");
    if (consistency == null || consistency.equals("linearizable")) {
      return RaftKv.Consistency.LINEARIZABLE;
    } else if (consistency.equals("serializable")) {
      return RaftKv.Consistency.SERIALIZABLE;
    }
    throw ApiError.badRequest("consistency must be linearizable or serializable, not " + quote(consistency));
  }

  private static int limit(String limit) {
    if (limit == null) {
      return 0;
    }
    long n = nonNegative(limit);
    if (n < 0 || n > Integer.MAX_VALUE) {
      throw ApiError.badRequest("limit must be a whole number from 0 (no limit) to " + Integer.MAX_VALUE
          + ", not " + quote(limit));
    }
    return (int) n;
  }

  private static long lease(String lease) {
    if (lease == null) {
      return 0;
    }
    long id = nonNegative(lease);
    if (id <= 0) {
      throw ApiError.badRequest("lease must be a lease id (a positive integer), not " + quote(lease));
    }
    return id;
  }

  private static boolean flag(String value, String name) {
    if (value == null || value.equals("false")) {
      return false;
    } else if (value.equals("true")) {
      return true;
    }
    throw ApiError.badRequest(name + " must be true or false, not " + quote(value));
  }

  /** {@code If-Match: "42"} (or {@code 42}): the modRevision the key must have, 0 for "absent". */
  private static long modRevision(String ifMatch) {
    String tag = ifMatch.trim();
    if (tag.length() >= 2 && tag.charAt(0) == '"' && tag.charAt(tag.length() - 1) == '"') {
      tag = tag.substring(1, tag.length() - 1);
    }
    long modRevision = nonNegative(tag);
    if (modRevision < 0) {
      throw ApiError.badRequest("If-Match must be one modRevision in quotes, like \"42\", not " + quote(ifMatch));
    }
    return modRevision;
  }

  /** {@code If-None-Match: *}: create only. */
  private static boolean createOnly(String ifNoneMatch) {
    if (!ifNoneMatch.trim().equals("*")) {
      throw ApiError.badRequest("If-None-Match must be *, not " + quote(ifNoneMatch));
    }
    return true;
  }

  /** The number that {@code digits} spell, or -1 unless they are 1 to 19 ASCII digits of a long. */
  private static long nonNegative(String digits) {
    if (digits.isEmpty() || digits.length() > 19) {
      return -1;
    }
    for (int i = 0; i < digits.length(); i++) {
      char c = digits.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
    }
    try {
      return Long.parseLong(digits);
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  private static String header(HttpRequest request, String name) {
    return request.getHeader(name).map(HttpHeader::value).orElse(null);
  }

  private static String quote(String value) {
    return '"' + (value.length() > 64 ? value.substring(0, 64) + "..." : value) + '"';
  }

  private static HttpHeader etag(long revision) {
    return RawHeader.create("ETag", "\"" + revision + '"');
  }

  // ---- failures

  /**
   * Completes with what {@code action} answers; whatever it throws, or its stage fails with,
   * becomes the JSON error of API.md §6.
   */
  private static Route respond(Call call, Callable<CompletionStage<HttpResponse>> action) {
    return completeWithFuture(respondWith(call, action));
  }

  /** What {@code action} answers, or the JSON error of what it throws or fails with. */
  private static CompletionStage<HttpResponse> respondWith(Call call, Callable<CompletionStage<HttpResponse>> action) {
    try {
      return Stages.direct(action.call()).exceptionally(failure -> toError(failure, call).toResponse());
    } catch (Exception e) {
      return CompletableFuture.completedFuture(toError(e, call).toResponse());
    }
  }

  private static ApiError toError(Throwable failure, Call call) {
    Throwable cause = unwrap(failure);
    if (cause instanceof ApiError error) {
      return error;
    } else if (cause instanceof RaftKvException e) {
      String message = e.getMessage();
      return switch (e.kind()) {
        case BAD_REQUEST -> ApiError.badRequest(message != null ? message : "the request is malformed");
        case TOO_LARGE -> ApiError.tooLarge(message != null ? message : "the key or value is over the limit");
        case UNAVAILABLE -> ApiError.unavailable(message != null ? message : "no leader is reachable");
        case NOT_FOUND -> ApiError.notFound(message != null ? message : "not found");
        case CONFLICT -> ApiError.conflict(message != null ? message : "refused in the cluster's present state");
        case COMPACTED -> ApiError.compacted(message, e.compactRevision());
        case PRECONDITION_FAILED -> ApiError.precondition(message != null ? message : "the precondition did not hold");
        case LOCK_TIMEOUT -> ApiError.lockTimeout(message != null ? message : "the lock was not acquired in time");
        case IDEMPOTENCY_KEY_REUSED -> ApiError.idempotencyKeyReused(message != null ? message
            : "the Idempotency-Key was used before with a different request; nothing was applied");
        case TIMEOUT -> call == Call.INFO
            ? ApiError.unavailable(message != null ? message : "the node did not answer in time")
            : ApiError.timeout(message != null ? message : "the request was not confirmed in time, its outcome is unknown");
      };
    } else if (cause instanceof TimeoutException) {
      return call == Call.WRITE
          ? ApiError.timeout("the write was not confirmed in time, its outcome is unknown")
          : ApiError.unavailable("the node did not answer in time");
    } else if (cause instanceof EntityStreamSizeException) {
      return ApiError.tooLarge("the request body is larger than the server accepts");
    } else if (cause instanceof IllegalRequestException e && e.status().intValue() == 413) {
      return ApiError.tooLarge(e.info().summary());
    } else if (cause instanceof ExceptionWithErrorInfo e) {
      return ApiError.badRequest(e.info().summary());
    } else if (call == Call.INFO) {
      log.warn("The node could not report its state: {}", cause.toString());
      return ApiError.unavailable("the node could not report its state");
    }
    log.error("A request failed unexpectedly", cause);
    return ApiError.internal();
  }

  private static Throwable unwrap(Throwable failure) {
    Throwable cause = failure;
    while ((cause instanceof CompletionException || cause instanceof ExecutionException) && cause.getCause() != null) {
      cause = cause.getCause();
    }
    return cause;
  }

  private static IllegalStateException unexpected(KvResult result) {
    return new IllegalStateException("the node answered with an unexpected "
        + (result == null ? "null" : result.getClass().getSimpleName()));
  }

  private static ExceptionHandler exceptionHandler() {
    return ExceptionHandler.newBuilder()
        .matchAny(failure -> complete(toError(failure, Call.READ).toResponse()))
        .build();
  }

  private static RejectionHandler rejectionHandler() {
    return RejectionHandler.newBuilder()
        .handleAll(MethodRejection.class, rejections -> {
          HttpMethod[] allowed = rejections.stream().map(MethodRejection::supported).distinct().toArray(HttpMethod[]::new);
          String names = rejections.stream().map(r -> r.supported().name()).distinct().collect(Collectors.joining(", "));
          return complete(ApiError.methodNotAllowed("this path accepts only " + names).toResponse()
              .addHeader(Allow.create(allowed)));
        })
        .handleNotFound(complete(ApiError.notFound("no endpoint has this path").toResponse()))
        .handle(Rejection.class, rejection -> complete(ApiError.badRequest("the request was rejected: " + rejection).toResponse()))
        .build();
  }

  /** Akka closes the connection after a request timeout; the header tells the client not to reuse it. */
  private static HttpResponse requestTimedOut(HttpRequest request) {
    HttpMethod method = request.method();
    boolean read = method.equals(HttpMethods.GET) || method.equals(HttpMethods.HEAD);
    return (read
        ? ApiError.unavailable("the server did not answer within its request timeout")
        : ApiError.timeout("the server did not answer within its request timeout, the outcome of the write is unknown"))
        .toResponse()
        .addHeader(Connection.create("close"));
  }
}
