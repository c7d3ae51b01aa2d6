package raftkv.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import raftkv.history.Op.Outcome;

/**
 * The HTTP API of API.md, as a test client sees it: one request at a time to a node it names, each
 * with a deadline, and every answer sorted into what the history needs to know. {@link Outcome#OK}
 * is a 2xx; {@link Outcome#FAIL} is an answer that promises nothing was applied (503, 412, any
 * other 4xx, a refused connection, a CAS whose compare failed); {@link Outcome#UNKNOWN} is anything
 * else (504, a timeout, a connection reset, another IO error once the request may have left).
 *
 * <p>Only 127.0.0.1 is ever a target: the URLs come from {@link NodeProcess#uri(String)}.
 */
public final class KvHttpClient {

  /** How long one request may take before the client gives up on it. */
  public static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(3);

  private static final ObjectMapper JSON = new ObjectMapper();
  /** Slack past {@link #REQUEST_TIMEOUT} for the JDK's own timer before we stop waiting anyway. */
  private static final long GUARD_MILLIS = 2_000;

  private final HttpClient http;
  private final Duration requestTimeout;

  /** A client with the default {@link #REQUEST_TIMEOUT}. */
  public KvHttpClient() {
    this(REQUEST_TIMEOUT);
  }

  /** A client whose requests give up after {@code requestTimeout}. */
  public KvHttpClient(Duration requestTimeout) {
    this.requestTimeout = requestTimeout;
    this.http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(1))
        .followRedirects(HttpClient.Redirect.NEVER)
        .build();
  }

  /** What a node answered, or how the request failed (status -1). */
  public record Reply(int status, byte[] body, Throwable failure) {

    /** True for a 2xx answer. */
    public boolean success() {
      return status >= 200 && status < 300;
    }

    /** The body as UTF-8 text ("" without a body). */
    public String text() {
      return body == null ? "" : new String(body, StandardCharsets.UTF_8);
    }

    /** The body as JSON, if it is JSON. */
    public Optional<JsonNode> json() {
      if (body == null || body.length == 0) {
        return Optional.empty();
      }
      try {
        return Optional.ofNullable(JSON.readTree(body));
      } catch (IOException e) {
        return Optional.empty();
      }
    }

    /** The {@code error} code of a JSON error body (API.md §6), or "". */
    public String errorCode() {
      return json().map(j -> j.path("error").asText("")).orElse("");
    }

    /** What this answer means for the history; see {@link KvHttpClient}. */
    public Outcome outcome() {
      if (failure != null) {
        return failure instanceof ConnectException || failure instanceof HttpConnectTimeoutException
            ? Outcome.FAIL
            : Outcome.UNKNOWN;
      }
      if (success()) {
        return Outcome.OK;
      }
      if (status == 503 || (status >= 400 && status < 500)) {
        return Outcome.FAIL;
      }
      return Outcome.UNKNOWN; // 504, 500 and anything unexpected: it may have been applied
    }

    /** A few words for a log line: "503 unavailable", "HttpTimeoutException". */
    public String describe() {
      if (failure != null) {
        String message = failure.getMessage();
        return failure.getClass().getSimpleName() + (message == null ? "" : ": " + message);
      }
      String code = errorCode();
      return status + (code.isEmpty() ? "" : " " + code);
    }
  }

  /**
   * The result of one KV operation: its outcome for the history, whether the cluster gave a
   * definite answer (a 2xx, a CAS refusal included: it counts as available), and what a read saw.
   *
   * @param outcome  for the history
   * @param answered the node answered with a 2xx
   * @param value    what an OK read returned (null: absent), else null
   * @param detail   what happened, for a log line
   */
  public record Result(Outcome outcome, boolean answered, String value, String detail) {}

  /** One node's view of the cluster, from {@code GET /v1/cluster/status}. */
  public record NodeStatus(String id, String role, long term, String leaderId, long commitIndex,
      long appliedIndex) {

    /** True if the node says it leads. */
    public boolean leader() {
      return "leader".equals(role);
    }
  }

  /** Sends one request to {@code node}; never throws for a network failure, see {@link Reply}. */
  public Reply send(NodeProcess node, String method, String pathAndQuery, byte[] body,
      String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(node.uri(pathAndQuery))
        .timeout(requestTimeout)
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofByteArray(body));
    for (int i = 0; i + 1 < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    CompletableFuture<HttpResponse<byte[]>> call =
        http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    try {
      HttpResponse<byte[]> response =
          call.get(requestTimeout.toMillis() + GUARD_MILLIS, TimeUnit.MILLISECONDS);
      return new Reply(response.statusCode(), response.body(), null);
    } catch (ExecutionException e) {
      return new Reply(-1, null, e.getCause() == null ? e : e.getCause());
    } catch (TimeoutException e) {
      call.cancel(true);
      return new Reply(-1, null, e);
    } catch (InterruptedException e) {
      call.cancel(true);
      Thread.currentThread().interrupt();
      return new Reply(-1, null, e);
    }
  }

  // ---- KV operations

  /** {@code GET /v1/kv/{key}}, linearizable unless {@code serializable}; 404 is an OK "absent". */
  public Result get(NodeProcess node, String key, boolean serializable) {
    Reply reply = send(node, "GET", "/v1/kv/" + encodePath(key)
        + (serializable ? "?consistency=serializable" : ""), null);
    if (reply.status() == 200) {
      return new Result(Outcome.OK, true, reply.text(), "200");
    }
    if (reply.status() == 404 && "not_found".equals(reply.errorCode())) {
      return new Result(Outcome.OK, true, null, "404 absent");
    }
    return new Result(reply.outcome(), false, null, reply.describe());
  }

  /** {@code PUT /v1/kv/{key}} with {@code value} as the raw body. */
  public Result put(NodeProcess node, String key, String value) {
    Reply reply = send(node, "PUT", "/v1/kv/" + encodePath(key),
        value.getBytes(StandardCharsets.UTF_8));
    return new Result(reply.outcome(), reply.success(), null, reply.describe());
  }

  /**
   * Compare-and-set through {@code POST /v1/txn}: put {@code value} if the key holds
   * {@code expected} (null: if it is absent, as version 0). {@code succeeded:false} is a FAIL that
   * the cluster answered.
   */
  public Result cas(NodeProcess node, String key, String expected, String value) {
    ObjectNode txn = JSON.createObjectNode();
    ObjectNode compare = txn.putArray("compare").addObject().put("key", key);
    if (expected == null) {
      compare.put("target", "version").put("op", "=").put("value", 0);
    } else {
      compare.put("target", "value").put("op", "=").put("value", expected);
    }
    ArrayNode success = txn.putArray("success");
    success.addObject().putObject("put").put("key", key).put("value", value);
    txn.putArray("failure");
    Reply reply = send(node, "POST", "/v1/txn", txn.toString().getBytes(StandardCharsets.UTF_8),
        "Content-Type", "application/json");
    if (reply.status() == 200) {
      Optional<JsonNode> body = reply.json();
      if (body.isPresent() && body.get().path("succeeded").isBoolean()) {
        boolean succeeded = body.get().path("succeeded").asBoolean();
        return new Result(succeeded ? Outcome.OK : Outcome.FAIL, true, null,
            succeeded ? "200 succeeded" : "200 compare failed");
      }
      return new Result(Outcome.UNKNOWN, false, null, "200 with an unreadable body: " + reply.text());
    }
    return new Result(reply.outcome(), false, null, reply.describe());
  }

  /**
   * {@code GET /v1/kv?prefix=P}: every key under the prefix with its UTF-8 value, following
   * {@code more} page by page; empty if any page failed.
   */
  public Optional<Map<String, String>> range(NodeProcess node, String prefix, boolean serializable) {
    Map<String, String> kvs = new LinkedHashMap<>();
    String after = null;
    while (true) {
      String query = "/v1/kv?prefix=" + encodeQuery(prefix)
          + (after == null ? "" : "&after=" + encodeQuery(after))
          + (serializable ? "&consistency=serializable" : "");
      Reply reply = send(node, "GET", query, null);
      if (reply.status() != 200 || reply.json().isEmpty()) {
        return Optional.empty();
      }
      JsonNode body = reply.json().get();
      List<String> keys = new ArrayList<>();
      for (JsonNode kv : body.path("kvs")) {
        String key = kv.path("key").asText();
        kvs.put(key, kv.path("value").isTextual() ? kv.path("value").asText()
            : "base64:" + kv.path("valueBase64").asText());
        keys.add(key);
      }
      if (!body.path("more").asBoolean(false) || keys.isEmpty()) {
        return Optional.of(kvs);
      }
      after = keys.get(keys.size() - 1);
    }
  }

  // ---- cluster and faults

  /** {@code GET /v1/cluster/status}, if the node answers it. */
  public Optional<NodeStatus> status(NodeProcess node) {
    Reply reply = send(node, "GET", "/v1/cluster/status", null);
    if (reply.status() != 200) {
      return Optional.empty();
    }
    return reply.json().map(j -> new NodeStatus(
        j.path("id").asText(""),
        j.path("role").asText(""),
        j.path("term").asLong(-1),
        j.path("leaderId").isTextual() ? j.path("leaderId").asText() : null,
        j.path("commitIndex").asLong(-1),
        j.path("appliedIndex").asLong(-1)));
  }

  /** {@code GET /v1/cluster/status} as JSON (members, memberState and all), if the node answers it. */
  public Optional<JsonNode> statusJson(NodeProcess node) {
    Reply reply = send(node, "GET", "/v1/cluster/status", null);
    return reply.status() == 200 ? reply.json() : Optional.empty();
  }

  /** The status code of {@code GET /health}, -1 if the node did not answer. */
  public int health(NodeProcess node) {
    return send(node, "GET", "/health", null).status();
  }

  /** {@code POST /v1/faults/blackhole?peer=HOST:RAFTPORT} on {@code node}: it stops talking to {@code peer}. */
  public Reply blackhole(NodeProcess node, NodeProcess peer) {
    return send(node, "POST", "/v1/faults/blackhole?peer=" + encodeQuery(peer.raftAddress()), null);
  }

  /** {@code POST /v1/faults/heal} on {@code node}: every cut of this node is healed. */
  public Reply heal(NodeProcess node) {
    return send(node, "POST", "/v1/faults/heal", null);
  }

  /** {@code POST /v1/faults/heal?peer=HOST:RAFTPORT} on {@code node}. */
  public Reply heal(NodeProcess node, NodeProcess peer) {
    return send(node, "POST", "/v1/faults/heal?peer=" + encodeQuery(peer.raftAddress()), null);
  }

  private static String encodeQuery(String text) {
    return URLEncoder.encode(text, StandardCharsets.UTF_8);
  }

  /** Percent-encodes a key for the path, keeping '/' (API.md §2). */
  private static String encodePath(String key) {
    return URLEncoder.encode(key, StandardCharsets.UTF_8).replace("+", "%20").replace("%2F", "/");
  }

  /** The URI of {@code pathAndQuery} on 127.0.0.1:{@code port}. */
  static URI localUri(int port, String pathAndQuery) {
    return URI.create("http://127.0.0.1:" + port + pathAndQuery);
  }
}
