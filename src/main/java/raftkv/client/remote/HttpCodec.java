package raftkv.client.remote;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKvException;
import raftkv.client.RaftKvException.Kind;
import raftkv.client.SnapshotInfo;
import raftkv.kv.Compare;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The wire format of API.md on the client's side: paths with percent-encoded keys, the JSON bodies
 * the client sends (transactions, lease grants, membership changes) and the JSON and headers the
 * server answers with (see {@code raftkv.http.Json}), read back into the records of {@code raftkv.kv}
 * and {@code raftkv.client}.
 */
final class HttpCodec {

  static final ObjectMapper MAPPER = new ObjectMapper();
  private static final Pattern LEASE_IN_MESSAGE = Pattern.compile("lease (\\d+)");

  private HttpCodec() {}

  /**
   * A response: status, headers (names in lower case) and the body read whole; or, for a watch's
   * 200, {@code stream}, the body still streaming (else null).
   */
  record Reply(int status, Map<String, String> headers, byte[] body,
               akka.stream.javadsl.Source<akka.util.ByteString, Object> stream) {
    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    /** The body as JSON, or an empty object when it is empty or not JSON. */
    JsonNode json() {
      try {
        JsonNode node = body.length == 0 ? null : MAPPER.readTree(body);
        return node == null ? MAPPER.createObjectNode() : node;
      } catch (IOException e) {
        return MAPPER.createObjectNode();
      }
    }

    /** The {@code message} of a JSON error body, or the body as text. */
    String message() {
      JsonNode m = json().get("message");
      if (m != null && m.isTextual()) {
        return m.textValue();
      }
      String text = new String(body, StandardCharsets.UTF_8);
      return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }
  }

  // ---- paths

  /** {@code s} percent-encoded as UTF-8; unreserved characters (and {@code /} when {@code keepSlash}) stay. */
  static String encode(String s, boolean keepSlash) {
    StringBuilder out = new StringBuilder(s.length() + 16);
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
          || c == '~' || (keepSlash && c == '/')) {
        out.append((char) c);
      } else {
        out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
      }
    }
    return out.toString();
  }

  /** {@code /v1/kv/<key>}: the key percent-encoded, its slashes kept (API.md §2). */
  static String keyPath(String key) {
    return "/v1/kv/" + encode(key, true);
  }

  /** {@code ?a=b&c=d} of the non-null pairs (name, value, name, value...), or "" when none. */
  static String query(String... pairs) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i + 1 < pairs.length; i += 2) {
      if (pairs[i + 1] != null) {
        out.append(out.length() == 0 ? '?' : '&').append(pairs[i]).append('=').append(encode(pairs[i + 1], false));
      }
    }
    return out.toString();
  }

  // ---- bodies the client sends

  @FunctionalInterface
  interface Body {
    void writeTo(JsonGenerator json) throws IOException;
  }

  static byte[] json(Body body) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    try (JsonGenerator json = MAPPER.getFactory().createGenerator(out)) {
      body.writeTo(json);
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory failed", e);
    }
    return out.toByteArray();
  }

  /** The body of POST /v1/txn (API.md §3). */
  static byte[] txn(KvCommand.Txn txn) {
    if (txn.compare() == null || txn.success() == null || txn.failure() == null) {
      throw new RaftKvException(Kind.BAD_REQUEST, "a transaction needs its compare, success and failure lists");
    }
    return json(json -> {
      json.writeStartObject();
      json.writeArrayFieldStart("compare");
      for (Compare c : txn.compare()) {
        json.writeStartObject();
        json.writeStringField("key", c.key());
        json.writeStringField("target", switch (c.target()) {
          case VALUE -> "value";
          case VERSION -> "version";
          case CREATE_REVISION -> "createRevision";
          case MOD_REVISION -> "modRevision";
          case LEASE -> "lease";
          case LOCK -> "lock";
        });
        json.writeStringField("op", switch (c.op()) {
          case EQUAL -> "=";
          case NOT_EQUAL -> "!=";
          case LESS -> "<";
          case GREATER -> ">";
        });
        if (c.target() == Compare.Target.VALUE) {
          if (c.value() == null) {
            json.writeNullField("value");
          } else {
            writeValue(json, c.value());
          }
        } else {
          json.writeNumberField("value", c.number());
        }
        json.writeEndObject();
      }
      json.writeEndArray();
      writeOps(json, "success", txn.success());
      writeOps(json, "failure", txn.failure());
      json.writeEndObject();
    });
  }

  private static void writeOps(JsonGenerator json, String branch, List<TxnOp> ops) throws IOException {
    json.writeArrayFieldStart(branch);
    for (TxnOp op : ops) {
      json.writeStartObject();
      if (op instanceof TxnOp.Put put) {
        json.writeObjectFieldStart("put");
        json.writeStringField("key", put.key());
        writeValue(json, put.value());
        if (put.lease() != 0) {
          json.writeNumberField("lease", put.lease());
        }
      } else if (op instanceof TxnOp.Get get) {
        json.writeObjectFieldStart("get");
        json.writeStringField("key", get.key());
      } else if (op instanceof TxnOp.Delete delete) {
        json.writeObjectFieldStart("delete");
        json.writeStringField("key", delete.key());
        json.writeBooleanField("prefix", delete.prefix());
      } else {
        throw new RaftKvException(Kind.BAD_REQUEST, "a transaction op is missing");
      }
      json.writeEndObject();
      json.writeEndObject();
    }
    json.writeEndArray();
  }

  /** {@code "value"} when the bytes are valid UTF-8, else {@code "valueBase64"}. */
  private static void writeValue(JsonGenerator json, byte[] value) throws IOException {
    if (value == null) {
      throw new RaftKvException(Kind.BAD_REQUEST, "a value is missing");
    }
    String text = utf8OrNull(value);
    if (text != null) {
      json.writeStringField("value", text);
    } else {
      json.writeStringField("valueBase64", Base64.getEncoder().encodeToString(value));
    }
  }

  static String utf8OrNull(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  // ---- what the server answers

  /** The bytes of {@code value} or {@code valueBase64} of {@code node}, null when it has neither. */
  static byte[] value(JsonNode node) {
    JsonNode text = node.get("value");
    if (text != null && text.isTextual()) {
      return text.textValue().getBytes(StandardCharsets.UTF_8);
    }
    JsonNode base64 = node.get("valueBase64");
    if (base64 != null && base64.isTextual()) {
      return Base64.getDecoder().decode(base64.textValue());
    }
    return null;
  }

  /**
   * A key as the server writes it: {@code {"key","value"|"valueBase64","createRevision","modRevision",
   * "version"}}, and {@code "lease"} when the server sends it (else 0: API.md v1 does not carry it).
   */
  static KeyValue keyValue(JsonNode node) {
    return new KeyValue(node.path("key").asText(), value(node), node.path("createRevision").asLong(),
        node.path("modRevision").asLong(), node.path("version").asLong(), node.path("lease").asLong(0));
  }

  /** One event of a watch's change message. */
  static Event event(JsonNode node, String defaultType) {
    String type = node.has("type") ? node.get("type").asText() : defaultType;
    JsonNode prev = node.get("prevKv");
    return new Event("delete".equals(type) ? Event.Type.DELETE : Event.Type.PUT, keyValue(node),
        prev == null || prev.isNull() ? null : keyValue(prev));
  }

  static KvResult.PutDone putDone(JsonNode json) {
    JsonNode prev = json.get("prevModRevision");
    return new KvResult.PutDone(json.path("revision").asLong(), prev == null || prev.isNull() ? null : prev.asLong());
  }

  static KvResult.DeleteDone deleteDone(JsonNode json) {
    return new KvResult.DeleteDone(json.path("revision").asLong(), json.path("deleted").asLong());
  }

  /**
   * A transaction's answer. API.md v1 does not send a key's lease: a get after a put of the same key
   * in the branch taken reports the put's lease (what the store holds then), others the lease the
   * server sends, or 0.
   */
  static KvResult.TxnDone txnDone(JsonNode json, KvCommand.Txn txn) {
    boolean succeeded = json.path("succeeded").asBoolean();
    List<TxnOp> ops = succeeded ? txn.success() : txn.failure();
    Map<String, Long> leases = new java.util.HashMap<>();
    List<KvResult> results = new ArrayList<>();
    JsonNode list = json.path("results");
    for (int i = 0; i < list.size(); i++) {
      JsonNode r = list.get(i);
      TxnOp op = ops != null && i < ops.size() ? ops.get(i) : null;
      if (op instanceof TxnOp.Put put) {
        leases.put(put.key(), put.lease());
      } else if (op instanceof TxnOp.Delete delete && !delete.prefix()) {
        leases.remove(delete.key());
      }
      if (r.has("put")) {
        results.add(putDone(r.get("put")));
      } else if (r.has("delete")) {
        results.add(deleteDone(r.get("delete")));
      } else if (r.has("get")) {
        JsonNode kv = r.get("get").get("kv");
        KeyValue keyValue = kv == null || kv.isNull() ? null : keyValue(kv);
        if (keyValue != null && !kv.has("lease") && leases.containsKey(keyValue.key())) {
          keyValue = new KeyValue(keyValue.key(), keyValue.value(), keyValue.createRevision(), keyValue.modRevision(),
              keyValue.version(), leases.get(keyValue.key()));
        }
        results.add(new KvResult.GetDone(json.path("revision").asLong(), keyValue));
      } else {
        throw new RaftKvException(Kind.UNAVAILABLE, "the server answered a transaction result of an unknown form: " + r);
      }
    }
    return new KvResult.TxnDone(succeeded, json.path("revision").asLong(), List.copyOf(results));
  }

  static KvResult.RangeDone rangeDone(JsonNode json) {
    List<KeyValue> kvs = new ArrayList<>();
    for (JsonNode kv : json.path("kvs")) {
      kvs.add(keyValue(kv));
    }
    return new KvResult.RangeDone(json.path("revision").asLong(), List.copyOf(kvs), json.path("more").asBoolean());
  }

  /** GET /v1/kv/{key}: the raw value and the X- headers; a 404 is an absent key. */
  static KvResult.GetDone getDone(String key, Reply reply) {
    long revision = longHeader(reply, "X-Revision", 0);
    if (reply.status() == 404) {
      return new KvResult.GetDone(revision, null);
    }
    return new KvResult.GetDone(revision, new KeyValue(key, reply.body(), longHeader(reply, "X-Create-Revision", 0),
        longHeader(reply, "X-Mod-Revision", 0), longHeader(reply, "X-Version", 0), longHeader(reply, "X-Lease", 0)));
  }

  private static long longHeader(Reply reply, String name, long otherwise) {
    String v = reply.header(name);
    if (v == null) {
      return otherwise;
    }
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return otherwise;
    }
  }

  /** GET /v1/leases/{id}: {@code ttlSeconds} is the remaining time (whole seconds), {@code grantedTtlSeconds} the TTL. */
  static KvResult.LeaseInfo leaseInfo(JsonNode json) {
    List<String> keys = new ArrayList<>();
    json.path("keys").forEach(k -> keys.add(k.asText()));
    long remaining = json.path("ttlSeconds").asLong();
    long granted = json.has("grantedTtlSeconds") ? json.get("grantedTtlSeconds").asLong() : remaining;
    return new KvResult.LeaseInfo(json.path("id").asLong(), granted, remaining * 1000, List.copyOf(keys));
  }

  /** GET /v1/leases: ids and granted TTLs; the keys and remaining time are not sent (empty, -1). */
  static KvResult.Leases leases(JsonNode json) {
    List<KvResult.LeaseInfo> list = new ArrayList<>();
    for (JsonNode l : json.path("leases")) {
      list.add(new KvResult.LeaseInfo(l.path("id").asLong(), l.path("ttlSeconds").asLong(), -1, List.of()));
    }
    return new KvResult.Leases(List.copyOf(list));
  }

  /** The lease a 404 of a lease-bearing write names: from the message, else {@code otherwise}. */
  static long leaseOf(Reply reply, long otherwise) {
    Matcher m = LEASE_IN_MESSAGE.matcher(reply.message());
    if (m.find()) {
      try {
        return Long.parseLong(m.group(1));
      } catch (NumberFormatException e) {
        return otherwise;
      }
    }
    return otherwise;
  }

  /** The first lease a transaction's puts attach, 0 when none. */
  static long firstLease(KvCommand.Txn txn) {
    for (List<TxnOp> ops : List.of(txn.success(), txn.failure())) {
      for (TxnOp op : ops) {
        if (op instanceof TxnOp.Put put && put.lease() != 0) {
          return put.lease();
        }
      }
    }
    return 0;
  }

  static ClusterStatus status(JsonNode json) {
    return new ClusterStatus(text(json, "id"), text(json, "role"), json.path("term").asLong(), text(json, "leaderId"),
        json.path("commitIndex").asLong(), json.path("appliedIndex").asLong(), json.path("lastLogIndex").asLong(),
        json.path("snapshotIndex").asLong(), json.path("revision").asLong(), members(json),
        text(json, "clusterId"), text(json, "memberState"));
  }

  static List<ClusterStatus.Member> members(JsonNode json) {
    List<ClusterStatus.Member> members = new ArrayList<>();
    for (JsonNode m : json.path("members")) {
      members.add(new ClusterStatus.Member(text(m, "id"), text(m, "address"), text(m, "httpAddress"),
          m.path("voter").asBoolean(), m.has("matchIndex") ? m.get("matchIndex").asLong() : null,
          m.has("lastContactMillis") ? m.get("lastContactMillis").asLong() : null));
    }
    return List.copyOf(members);
  }

  static Health health(JsonNode json) {
    return new Health(json.path("healthy").asBoolean(), text(json, "reason"), text(json, "leaderId"),
        json.path("commitIndex").asLong(), json.path("appliedIndex").asLong());
  }

  static SnapshotInfo snapshot(JsonNode json) {
    return new SnapshotInfo(json.path("index").asLong(), json.path("term").asLong(), json.path("bytes").asLong());
  }

  private static String text(JsonNode json, String field) {
    JsonNode v = json.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  /** The exception of an error answer (API.md §6); {@code write}: a 5xx other than 503 leaves the outcome unknown. */
  static RaftKvException error(Reply reply, boolean write, long fromRevision) {
    String message = reply.message();
    Kind kind = switch (reply.status()) {
      case 400 -> Kind.BAD_REQUEST;
      case 404 -> Kind.NOT_FOUND;
      case 408 -> Kind.LOCK_TIMEOUT;
      case 409 -> Kind.CONFLICT;
      case 410 -> Kind.COMPACTED;
      case 412 -> Kind.PRECONDITION_FAILED;
      case 413 -> Kind.TOO_LARGE;
      case 422 -> Kind.IDEMPOTENCY_KEY_REUSED;
      case 503 -> Kind.UNAVAILABLE;
      case 504 -> Kind.TIMEOUT;
      default -> reply.status() >= 500 ? (write ? Kind.TIMEOUT : Kind.UNAVAILABLE) : Kind.BAD_REQUEST;
    };
    if (kind == Kind.COMPACTED) {
      return RaftKvException.compacted(reply.json().path("compactRevision").asLong(), fromRevision);
    }
    boolean known = switch (reply.status()) {
      case 400, 404, 408, 409, 412, 413, 422, 503, 504 -> true;
      default -> false;
    };
    return new RaftKvException(kind, known ? message : "HTTP " + reply.status() + ": " + message);
  }
}
