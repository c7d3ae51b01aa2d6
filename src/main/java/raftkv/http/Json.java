package raftkv.http;

import akka.http.javadsl.model.ContentTypes;
import akka.http.javadsl.model.HttpEntities;
import akka.http.javadsl.model.HttpEntity;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.kv.KeyValue;
import raftkv.kv.KvResult;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import akka.util.ByteString;
import raftkv.client.WatchMessage;
import raftkv.kv.Event;
import java.util.Base64;
import java.util.List;

/**
 * The JSON bodies of the API (API.md §3, §5, §6), written field by field with one shared Jackson
 * factory: no reflection per request, and field names that a refactoring cannot rename.
 */
final class Json {

  /** Parses request bodies: duplicate fields and trailing content are errors. */
  static final ObjectMapper MAPPER = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private static final JsonFactory FACTORY = MAPPER.getFactory();
  private static final byte[] NO_BYTES = new byte[0];

  private Json() {}

  /**
   * The tree of a request body, nested at most {@code maxDepth} objects and arrays deep (the root
   * counts as 1). The depth is checked first, token by token without recursion: Jackson 2.11 has
   * no limit of its own, and building the tree of a deeper body could overflow the stack. Then
   * {@link #MAPPER} builds the tree, refusing duplicate fields and trailing content. An empty body
   * gives a missing node (or null).
   *
   * @throws ApiError bad_request for a body nested too deep or that is not valid JSON
   */
  static JsonNode readTree(byte[] body, int maxDepth) {
    try {
      try (JsonParser parser = FACTORY.createParser(body)) {
        int depth = 0;
        for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
          if (token == JsonToken.START_OBJECT || token == JsonToken.START_ARRAY) {
            if (++depth > maxDepth) {
              throw ApiError.badRequest("the JSON body is nested deeper than " + maxDepth + " levels");
            }
          } else if (token == JsonToken.END_OBJECT || token == JsonToken.END_ARRAY) {
            depth--;
          }
        }
      }
      return MAPPER.readTree(body);
    } catch (JsonProcessingException e) {
      throw ApiError.badRequest("the body is not valid JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw ApiError.badRequest("the body could not be read as JSON");
    }
  }

  /** Writes one JSON document. */
  @FunctionalInterface
  interface Body {
    void writeTo(JsonGenerator json) throws IOException;
  }

  /** An {@code application/json} entity holding what {@code body} writes. */
  static HttpEntity.Strict entity(Body body) {
    ByteArrayBuilder out = new ByteArrayBuilder(256);
    try (JsonGenerator json = FACTORY.createGenerator(out)) {
      body.writeTo(json);
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory failed", e);
    }
    return HttpEntities.create(ContentTypes.APPLICATION_JSON, out.toByteArray());
  }

  /** {@code {"error":code,"message":message}}, plus {@code "modRevision"} when it is not null. */
  static HttpEntity.Strict error(String code, String message, String field, Long value) {
    return entity(json -> {
      json.writeStartObject();
      json.writeStringField("error", code);
      json.writeStringField("message", message);
      if (field != null && value != null) {
        json.writeNumberField(field, value);
      }
      json.writeEndObject();
    });
  }

  /** PUT: {@code {"revision":R,"prevModRevision":M or null}}. */
  static HttpEntity.Strict putDone(KvResult.PutDone done) {
    return numbers("{\"revision\":" + done.revision() + ",\"prevModRevision\":" + done.prevModRevision() + '}');
  }

  /** DELETE: {@code {"revision":R,"deleted":n}}. */
  static HttpEntity.Strict deleteDone(KvResult.DeleteDone done) {
    return numbers("{\"revision\":" + done.revision() + ",\"deleted\":" + done.deleted() + '}');
  }

  /** GET /v1/leases/{id}: the remaining time in whole seconds (rounded up) when the leader knows it. */
  static HttpEntity.Strict lease(raftkv.kv.KvResult.LeaseInfo info) {
    return entity(json -> {
      json.writeStartObject();
      json.writeNumberField("id", info.id());
      json.writeNumberField("ttlSeconds", info.remainingMillis() < 0 ? info.ttlSeconds() : (info.remainingMillis() + 999) / 1000);
      json.writeNumberField("grantedTtlSeconds", info.ttlSeconds());
      json.writeArrayFieldStart("keys");
      for (String key : info.keys()) {
        json.writeString(key);
      }
      json.writeEndArray();
      json.writeEndObject();
    });
  }

  /** GET /v1/leases. */
  static HttpEntity.Strict leases(raftkv.kv.KvResult.Leases leases) {
    return entity(json -> {
      json.writeStartObject();
      json.writeArrayFieldStart("leases");
      for (raftkv.kv.KvResult.LeaseInfo info : leases.leases()) {
        json.writeStartObject();
        json.writeNumberField("id", info.id());
        json.writeNumberField("ttlSeconds", info.ttlSeconds());
        json.writeEndObject();
      }
      json.writeEndArray();
      json.writeEndObject();
    });
  }

  static HttpEntity.Strict numbers(String json) {
    // Only digits, "null" and ASCII punctuation: the chars are the bytes.
    return HttpEntities.create(ContentTypes.APPLICATION_JSON, json.getBytes(StandardCharsets.ISO_8859_1));
  }

  /** GET /v1/kv: {@code {"revision":R,"kvs":[...],"more":bool}}. */
  static HttpEntity.Strict range(KvResult.RangeDone done) {
    return entity(json -> {
      json.writeStartObject();
      json.writeNumberField("revision", done.revision());
      json.writeArrayFieldStart("kvs");
      for (KeyValue kv : done.kvs()) {
        keyValue(json, kv);
      }
      json.writeEndArray();
      json.writeBooleanField("more", done.more());
      json.writeEndObject();
    });
  }

  /**
   * POST /v1/txn: {@code {"succeeded":bool,"revision":R,"results":[...]}}, one result per op of
   * the branch taken: {@code {"put":{"revision","prevModRevision"}}},
   * {@code {"delete":{"revision","deleted"}}} or {@code {"get":{"kv":{...} or null}}}.
   */
  static HttpEntity.Strict txnDone(KvResult.TxnDone done) {
    return entity(json -> {
      json.writeStartObject();
      json.writeBooleanField("succeeded", done.succeeded());
      json.writeNumberField("revision", done.revision());
      json.writeArrayFieldStart("results");
      for (KvResult result : done.results()) {
        json.writeStartObject();
        if (result instanceof KvResult.PutDone put) {
          json.writeObjectFieldStart("put");
          json.writeNumberField("revision", put.revision());
          writeNullableNumber(json, "prevModRevision", put.prevModRevision());
        } else if (result instanceof KvResult.DeleteDone delete) {
          json.writeObjectFieldStart("delete");
          json.writeNumberField("revision", delete.revision());
          json.writeNumberField("deleted", delete.deleted());
        } else if (result instanceof KvResult.GetDone get) {
          json.writeObjectFieldStart("get");
          json.writeFieldName("kv");
          if (get.kv() == null) {
            json.writeNull();
          } else {
            keyValue(json, get.kv());
          }
        } else {
          throw new IllegalStateException("a transaction result holds a " + result.getClass().getSimpleName());
        }
        json.writeEndObject();
        json.writeEndObject();
      }
      json.writeEndArray();
      json.writeEndObject();
    });
  }

  /**
   * One key: {@code {"key","value" or "valueBase64","createRevision","modRevision","version"}};
   * {@code value} when the bytes are valid UTF-8, else {@code valueBase64}.
   */
  static void keyValue(JsonGenerator json, KeyValue kv) throws IOException {
    json.writeStartObject();
    keyValueFields(json, kv);
    json.writeEndObject();
  }

  /** The fields of {@link #keyValue}; a deletion's key (no value, version 0) has no value field. */
  private static void keyValueFields(JsonGenerator json, KeyValue kv) throws IOException {
    json.writeStringField("key", kv.key());
    if (kv.value() != null || kv.version() > 0) {
      byte[] value = kv.value() == null ? NO_BYTES : kv.value();
      String text = Utf8.decodeOrNull(value);
      if (text != null) {
        json.writeStringField("value", text);
      } else {
        json.writeStringField("valueBase64", Base64.getEncoder().encodeToString(value));
      }
    }
    json.writeNumberField("createRevision", kv.createRevision());
    json.writeNumberField("modRevision", kv.modRevision());
    json.writeNumberField("version", kv.version());
    if (kv.lease() != 0) {
      json.writeNumberField("lease", kv.lease());
    }
  }

  /**
   * One Server-Sent Events message of a watch (API.md §4): a change ({@code id: R}, {@code event:
   * change}, data the revision's events as one JSON array), a progress ({@code id: R}, data {@code
   * {}}) or the final compacted message (no id, data {@code {"compactRevision":C}}).
   */
  static ByteString sse(WatchMessage message) {
    if (message instanceof WatchMessage.Change change) {
      // the hub hands one Change to every watcher a revision matched whole: encode it once
      int slot = (int) (change.revision() & (SSE_CACHE.length() - 1));
      Object[] cached = SSE_CACHE.get(slot);
      if (cached != null && cached[0] == change) {
        return (ByteString) cached[1];
      }
      ByteString bytes = encodeSse(change);
      SSE_CACHE.set(slot, new Object[] {change, bytes});
      return bytes;
    }
    return encodeSse(message);
  }

  /** The last changes encoded, by revision modulo its size: a shared message is encoded once. */
  private static final java.util.concurrent.atomic.AtomicReferenceArray<Object[]> SSE_CACHE =
      new java.util.concurrent.atomic.AtomicReferenceArray<>(256);

  private static ByteString encodeSse(WatchMessage message) {
    if (message instanceof WatchMessage.Progress p) {
      return ByteString.fromString("id: " + p.revision() + "\nevent: progress\ndata: {}\n\n");
    } else if (message instanceof WatchMessage.Compacted c) {
      return ByteString.fromString("event: compacted\ndata: {\"compactRevision\":" + c.compactRevision() + "}\n\n");
    }
    WatchMessage.Change change = (WatchMessage.Change) message;
    ByteArrayBuilder out = new ByteArrayBuilder(256);
    try {
      out.write(("id: " + change.revision() + "\nevent: change\ndata: ").getBytes(StandardCharsets.US_ASCII));
      try (JsonGenerator json = FACTORY.createGenerator(out)) {
        json.writeStartArray();
        for (Event e : change.events().events()) {
          json.writeStartObject();
          json.writeStringField("type", e.type() == Event.Type.PUT ? "put" : "delete");
          keyValueFields(json, e.kv());
          if (e.prevKv() != null) {
            json.writeFieldName("prevKv");
            keyValue(json, e.prevKv());
          }
          json.writeEndObject();
        }
        json.writeEndArray();
      }
      out.write('\n');
      out.write('\n');
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory failed", e);
    }
    return ByteString.fromArrayUnsafe(out.toByteArray());
  }

  /** A JSON string literal of {@code s}. */
  static String string(String s) {
    ByteArrayBuilder out = new ByteArrayBuilder(s.length() + 16);
    try (JsonGenerator json = FACTORY.createGenerator(out)) {
      json.writeString(s);
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory failed", e);
    }
    return new String(out.toByteArray(), StandardCharsets.UTF_8);
  }

  /** An election's leader: {@code {"key","value"|"valueBase64","leaderRevision","lease"}}. */
  static HttpEntity.Strict leader(raftkv.recipes.LockQueue.Waiter leader) {
    return entity(json -> leaderFields(json, leader));
  }

  private static void leaderFields(JsonGenerator json, raftkv.recipes.LockQueue.Waiter leader) throws IOException {
    json.writeStartObject();
    json.writeStringField("key", leader.key());
    byte[] value = leader.value() == null ? NO_BYTES : leader.value();
    String text = Utf8.decodeOrNull(value);
    if (text != null) {
      json.writeStringField("value", text);
    } else {
      json.writeStringField("valueBase64", Base64.getEncoder().encodeToString(value));
    }
    json.writeNumberField("leaderRevision", leader.token());
    json.writeNumberField("lease", leader.lease());
    json.writeEndObject();
  }

  /**
   * One SSE message of an election's observe: {@code id: R}, {@code event: leader} with the leader
   * as {@link #leader}, or {@code event: vacant} with {@code {}} when nobody leads.
   */
  static ByteString leaderSse(raftkv.recipes.LockQueue.Observed observed) {
    if (observed.holder().isEmpty()) {
      return ByteString.fromString("id: " + observed.revision() + "\nevent: vacant\ndata: {}\n\n");
    }
    ByteArrayBuilder out = new ByteArrayBuilder(128);
    try {
      out.write(("id: " + observed.revision() + "\nevent: leader\ndata: ").getBytes(StandardCharsets.US_ASCII));
      try (JsonGenerator json = FACTORY.createGenerator(out)) {
        leaderFields(json, observed.holder().get());
      }
      out.write('\n');
      out.write('\n');
    } catch (IOException e) {
      throw new UncheckedIOException("writing JSON to memory failed", e);
    }
    return ByteString.fromArrayUnsafe(out.toByteArray());
  }

  /** POST /v1/cluster/snapshot (API.md §5). */
  static HttpEntity.Strict snapshot(raftkv.client.SnapshotInfo info) {
    return entity(json -> {
      json.writeStartObject();
      json.writeNumberField("index", info.index());
      json.writeNumberField("term", info.term());
      json.writeNumberField("bytes", info.bytes());
      json.writeEndObject();
    });
  }

  /** GET /v1/cluster/status, with the field names of API.md §5; a member's unknown progress is left out. */
  static HttpEntity.Strict status(ClusterStatus status) {
    return entity(json -> {
      json.writeStartObject();
      json.writeStringField("id", status.id());
      json.writeStringField("role", status.role());
      json.writeNumberField("term", status.term());
      json.writeStringField("leaderId", status.leaderId());
      json.writeNumberField("commitIndex", status.commitIndex());
      json.writeNumberField("appliedIndex", status.appliedIndex());
      json.writeNumberField("lastLogIndex", status.lastLogIndex());
      json.writeNumberField("snapshotIndex", status.snapshotIndex());
      json.writeNumberField("revision", status.revision());
      if (status.clusterId() != null) {
        json.writeStringField("clusterId", status.clusterId());
      }
      if (status.memberState() != null) {
        json.writeStringField("memberState", status.memberState());
      }
      writeMembers(json, status.members());
      json.writeEndObject();
    });
  }

  /** The answer to a membership change: {@code {"members":[...]}}, each member as in the status. */
  static HttpEntity.Strict members(List<ClusterStatus.Member> members) {
    return entity(json -> {
      json.writeStartObject();
      writeMembers(json, members);
      json.writeEndObject();
    });
  }

  private static void writeMembers(JsonGenerator json, List<ClusterStatus.Member> list) throws IOException {
    json.writeArrayFieldStart("members");
    List<ClusterStatus.Member> members = list == null ? List.of() : list;
    for (ClusterStatus.Member member : members) {
      json.writeStartObject();
      json.writeStringField("id", member.id());
      json.writeStringField("address", member.address());
      json.writeStringField("httpAddress", member.httpAddress());
      json.writeBooleanField("voter", member.voter());
      if (member.matchIndex() != null) {
        json.writeNumberField("matchIndex", member.matchIndex());
      }
      if (member.lastContactMillis() != null) {
        json.writeNumberField("lastContactMillis", member.lastContactMillis());
      }
      json.writeEndObject();
    }
    json.writeEndArray();
  }

  /** GET /health: {@code {"healthy","reason","leaderId","commitIndex","appliedIndex"}}. */
  static HttpEntity.Strict health(Health health) {
    return entity(json -> {
      json.writeStartObject();
      json.writeBooleanField("healthy", health.healthy());
      json.writeStringField("reason", health.reason());
      json.writeStringField("leaderId", health.leaderId());
      json.writeNumberField("commitIndex", health.commitIndex());
      json.writeNumberField("appliedIndex", health.appliedIndex());
      json.writeEndObject();
    });
  }

  private static void writeNullableNumber(JsonGenerator json, String field, Long value) throws IOException {
    if (value == null) {
      json.writeNullField(field);
    } else {
      json.writeNumberField(field, value);
    }
  }
}
