package raftkv.http;

import com.fasterxml.jackson.databind.JsonNode;
import raftkv.kv.Compare;
import raftkv.kv.KvCommand;
import raftkv.kv.TxnOp;

import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the body of {@code POST /v1/txn} (API.md §3) into a {@link KvCommand.Txn}:
 *
 * <pre>
 * {"compare":[{"key","target":"value|version|createRevision|modRevision|lease|lock","op":"=|!=|&lt;|&gt;","value":...}],
 *  "success":[{"put":{"key","value","lease"}} | {"get":{"key"}} | {"delete":{"key","prefix"}}],
 *  "failure":[...]}
 * </pre>
 *
 * A compare on {@code value} takes a string or null, other targets an integer. Where a value is
 * expected, {@code "valueBase64"} may replace {@code "value"} for bytes that are not UTF-8. Absent
 * lists are empty. Anything else (unknown fields, wrong types, bad base64) is a bad_request whose
 * message names the place, like {@code success[1].put.lease}. Limits are {@code KvLimits}' job.
 */
final class TxnRequest {

  private static final Set<String> TOP = Set.of("compare", "success", "failure");
  private static final Set<String> COMPARE = Set.of("key", "target", "op", "value", "valueBase64");
  private static final Set<String> PUT = Set.of("key", "value", "valueBase64", "lease");
  private static final Set<String> GET = Set.of("key");
  private static final Set<String> DELETE = Set.of("key", "prefix");

  private TxnRequest() {}

  /**
   * The transaction in {@code body}, a JSON document nested at most {@code maxDepth} levels deep.
   *
   * @throws ApiError bad_request naming the first problem found
   */
  static KvCommand.Txn parse(byte[] body, int maxDepth) {
    JsonNode root = Json.readTree(body, maxDepth);
    if (root == null || root.isMissingNode()) {
      throw ApiError.badRequest("the body is empty, a transaction is a JSON object");
    }
    requireObject(root, "the transaction", TOP);
    List<Compare> compares = new ArrayList<>();
    for (JsonNode item : list(root, "compare")) {
      compares.add(compare(item, "compare[" + compares.size() + "]"));
    }
    return new KvCommand.Txn(List.copyOf(compares), ops(root, "success"), ops(root, "failure"));
  }

  private static Iterable<JsonNode> list(JsonNode parent, String field) {
    JsonNode node = parent.get(field);
    if (node == null || node.isNull()) {
      return List.of();
    }
    if (!node.isArray()) {
      throw ApiError.badRequest(field + " must be an array, not " + kind(node));
    }
    return node;
  }

  private static List<TxnOp> ops(JsonNode root, String branch) {
    List<TxnOp> ops = new ArrayList<>();
    for (JsonNode item : list(root, branch)) {
      ops.add(op(item, branch + "[" + ops.size() + "]"));
    }
    return List.copyOf(ops);
  }

  private static Compare compare(JsonNode node, String where) {
    requireObject(node, where, COMPARE);
    String key = requiredString(node, "key", where);
    Compare.Target target = switch (requiredString(node, "target", where)) {
      case "value" -> Compare.Target.VALUE;
      case "version" -> Compare.Target.VERSION;
      case "createRevision" -> Compare.Target.CREATE_REVISION;
      case "modRevision" -> Compare.Target.MOD_REVISION;
      case "lease" -> Compare.Target.LEASE;
      case "lock" -> Compare.Target.LOCK;
      default -> throw ApiError.badRequest(where + ".target is \"" + node.get("target").textValue()
          + "\", it must be one of value, version, createRevision, modRevision, lease, lock");
    };
    Compare.Op op = switch (requiredString(node, "op", where)) {
      case "=" -> Compare.Op.EQUAL;
      case "!=" -> Compare.Op.NOT_EQUAL;
      case "<" -> Compare.Op.LESS;
      case ">" -> Compare.Op.GREATER;
      default -> throw ApiError.badRequest(where + ".op is \"" + node.get("op").textValue()
          + "\", it must be one of =, !=, <, >");
    };
    if (target == Compare.Target.VALUE) {
      return new Compare(key, target, op, 0, value(node, where, true));
    }
    if (node.has("valueBase64")) {
      throw ApiError.badRequest(where + " compares " + node.get("target").textValue()
          + ", which takes an integer value, not valueBase64");
    }
    JsonNode value = node.get("value");
    if (value == null) {
      throw ApiError.badRequest(where + ".value is missing");
    }
    if (!value.isIntegralNumber() || !value.canConvertToLong()) {
      throw ApiError.badRequest(where + ".value must be an integer when the target is "
          + node.get("target").textValue() + ", not " + kind(value));
    }
    return new Compare(key, target, op, value.longValue(), null);
  }

  private static TxnOp op(JsonNode node, String where) {
    if (!node.isObject() || node.size() != 1) {
      throw ApiError.badRequest(where + " must be an object with exactly one of put, get, delete");
    }
    Map.Entry<String, JsonNode> entry = node.fields().next();
    String at = where + "." + entry.getKey();
    JsonNode body = entry.getValue();
    switch (entry.getKey()) {
      case "put" -> {
        requireObject(body, at, PUT);
        return new TxnOp.Put(requiredString(body, "key", at), value(body, at, false), lease(body, at));
      }
      case "get" -> {
        requireObject(body, at, GET);
        return new TxnOp.Get(requiredString(body, "key", at));
      }
      case "delete" -> {
        requireObject(body, at, DELETE);
        JsonNode prefix = body.get("prefix");
        if (prefix != null && !prefix.isNull() && !prefix.isBoolean()) {
          throw ApiError.badRequest(at + ".prefix must be true or false, not " + kind(prefix));
        }
        return new TxnOp.Delete(requiredString(body, "key", at), prefix != null && prefix.booleanValue());
      }
      default -> throw ApiError.badRequest(where + " has the unknown operation \"" + entry.getKey()
          + "\", it must be put, get or delete");
    }
  }

  /** The bytes of exactly one of {@code value} (a string) and {@code valueBase64}; null only where allowed. */
  private static byte[] value(JsonNode node, String where, boolean nullAllowed) {
    JsonNode text = node.get("value");
    JsonNode base64 = node.get("valueBase64");
    if ((text == null) == (base64 == null)) {
      throw ApiError.badRequest(where + " needs exactly one of value and valueBase64");
    }
    JsonNode given = text != null ? text : base64;
    String field = text != null ? "value" : "valueBase64";
    if (given.isNull()) {
      if (nullAllowed) {
        return null;
      }
      throw ApiError.badRequest(where + "." + field + " must be a string, not null");
    }
    if (!given.isTextual()) {
      throw ApiError.badRequest(where + "." + field + " must be a string, not " + kind(given));
    }
    if (text != null) {
      byte[] bytes = Utf8.encodeOrNull(given.textValue());
      if (bytes == null) {
        throw ApiError.badRequest(where + ".value has an unpaired surrogate and is not valid Unicode");
      }
      return bytes;
    }
    try {
      return Base64.getDecoder().decode(given.textValue());
    } catch (IllegalArgumentException e) {
      throw ApiError.badRequest(where + ".valueBase64 is not valid base64");
    }
  }

  private static long lease(JsonNode node, String where) {
    JsonNode lease = node.get("lease");
    if (lease == null || lease.isNull()) {
      return 0;
    }
    if (!lease.isIntegralNumber() || !lease.canConvertToLong() || lease.longValue() < 0) {
      throw ApiError.badRequest(where + ".lease must be a lease id (a positive integer) or 0 for none");
    }
    return lease.longValue();
  }

  private static void requireObject(JsonNode node, String where, Set<String> fields) {
    if (!node.isObject()) {
      throw ApiError.badRequest(where + " must be a JSON object, not " + kind(node));
    }
    for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!fields.contains(name)) {
        throw ApiError.badRequest(where + " has the unknown field \"" + name + "\"");
      }
    }
  }

  private static String requiredString(JsonNode node, String field, String where) {
    JsonNode value = node.get(field);
    if (value == null || value.isNull()) {
      throw ApiError.badRequest(where + "." + field + " is missing");
    }
    if (!value.isTextual()) {
      throw ApiError.badRequest(where + "." + field + " must be a string, not " + kind(value));
    }
    return value.textValue();
  }

  private static String kind(JsonNode node) {
    return switch (node.getNodeType()) {
      case ARRAY -> "an array";
      case OBJECT, POJO -> "an object";
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case NULL -> "null";
      default -> "something else";
    };
  }
}
