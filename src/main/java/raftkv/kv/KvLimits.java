package raftkv.kv;

import raftkv.client.RaftKvException;
import raftkv.client.RaftKvException.Kind;

import java.util.List;

/**
 * The checks a command or query passes before it reaches the log or the store (API.md §2): keys
 * are non-empty, well-formed Unicode and at most {@code maxKeyBytes} in UTF-8; values are present
 * and at most {@code maxValueBytes}. A failed check throws a {@link RaftKvException} of kind
 * {@link Kind#BAD_REQUEST} or {@link Kind#TOO_LARGE} whose message is one sentence a client can show.
 *
 * @param maxKeyBytes   the largest key, in bytes of its UTF-8 encoding
 * @param maxValueBytes the largest value, in bytes
 */
public record KvLimits(int maxKeyBytes, int maxValueBytes) {

  /** Rejects limits that would refuse every key or value. */
  public KvLimits {
    if (maxKeyBytes < 1 || maxValueBytes < 0) {
      throw new IllegalArgumentException(
          "limits must allow a key of 1 byte and an empty value, got maxKeyBytes=" + maxKeyBytes
              + ", maxValueBytes=" + maxValueBytes);
    }
  }

  /** The limits of API.md §2: keys up to 1024 bytes, values up to 1 MiB. */
  public static KvLimits defaults() {
    return new KvLimits(1024, 1024 * 1024);
  }

  /**
   * Checks every key and value of {@code command}, those inside a transaction included.
   *
   * @throws RaftKvException BAD_REQUEST for a missing or malformed part, TOO_LARGE for a key or
   *     value over the limit
   */
  public void validate(KvCommand command) {
    if (command == null) {
      throw badRequest("the command is missing");
    }
    if (command instanceof KvCommand.Put put) {
      checkKey(put.key(), "key");
      checkValue(put.value(), "value");
      checkModRevision(put.ifModRevision());
    } else if (command instanceof KvCommand.Delete delete) {
      checkKey(delete.key(), delete.prefix() ? "prefix" : "key");
      checkModRevision(delete.ifModRevision());
      if (delete.prefix() && delete.ifModRevision() != null) {
        throw badRequest("a delete by prefix cannot carry a modRevision precondition");
      }
    } else if (command instanceof KvCommand.Txn txn) {
      checkCompares(txn.compare());
      checkOps(txn.success(), "success");
      checkOps(txn.failure(), "failure");
    }
  }

  /**
   * Checks the key of a Get, or the prefix (which may be empty: all keys) and limit of a Range.
   *
   * @throws RaftKvException BAD_REQUEST for a missing or malformed part or a negative limit,
   *     TOO_LARGE for a key or prefix over the limit
   */
  public void validate(KvQuery query) {
    if (query == null) {
      throw badRequest("the query is missing");
    }
    if (query instanceof KvQuery.Get get) {
      checkKey(get.key(), "key");
    } else if (query instanceof KvQuery.Range range) {
      if (range.prefix() != null && !range.prefix().isEmpty()) {
        checkKey(range.prefix(), "prefix");
      }
      if (range.limit() < 0) {
        throw badRequest("limit is " + range.limit() + ", it must be 0 (no limit) or more");
      }
    }
  }

  private void checkCompares(List<Compare> compares) {
    if (compares == null) {
      throw badRequest("the compare list of the transaction is missing");
    }
    for (int i = 0; i < compares.size(); i++) {
      Compare compare = compares.get(i);
      String where = "compare " + (i + 1);
      if (compare == null) {
        throw badRequest(where + " is missing");
      }
      checkKey(compare.key(), "key of " + where);
      if (compare.target() == null || compare.op() == null) {
        throw badRequest(where + " needs both a target and an op");
      }
      if (compare.value() != null) {
        checkValue(compare.value(), "value of " + where);
      }
    }
  }

  private void checkOps(List<TxnOp> ops, String branch) {
    if (ops == null) {
      throw badRequest("the " + branch + " branch of the transaction is missing");
    }
    for (int i = 0; i < ops.size(); i++) {
      TxnOp op = ops.get(i);
      String where = branch + " op " + (i + 1);
      if (op == null) {
        throw badRequest(where + " is missing");
      }
      if (op instanceof TxnOp.Put put) {
        checkKey(put.key(), "key of " + where);
        checkValue(put.value(), "value of " + where);
      } else if (op instanceof TxnOp.Get get) {
        checkKey(get.key(), "key of " + where);
      } else if (op instanceof TxnOp.Delete delete) {
        checkKey(delete.key(), (delete.prefix() ? "prefix of " : "key of ") + where);
      }
    }
  }

  private void checkKey(String key, String what) {
    if (key == null) {
      throw badRequest(what + " is missing");
    }
    if (key.isEmpty()) {
      throw badRequest(what + " is empty");
    }
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < key.length() && Character.isLowSurrogate(key.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw badRequest(what + " has an unpaired surrogate at index " + i + " and is not valid Unicode");
      }
    }
    int bytes = KvStore.utf8Length(key);
    if (bytes > maxKeyBytes) {
      throw tooLarge(what + " is " + bytes + " bytes, the limit is " + maxKeyBytes);
    }
  }

  private void checkValue(byte[] value, String what) {
    if (value == null) {
      throw badRequest(what + " is missing");
    }
    if (value.length > maxValueBytes) {
      throw tooLarge(what + " is " + value.length + " bytes, the limit is " + maxValueBytes);
    }
  }

  private static void checkModRevision(Long ifModRevision) {
    if (ifModRevision != null && ifModRevision < 0) {
      throw badRequest("the expected modRevision is " + ifModRevision + ", it must be 0 (absent) or more");
    }
  }

  private static RaftKvException badRequest(String message) {
    return new RaftKvException(Kind.BAD_REQUEST, message);
  }

  private static RaftKvException tooLarge(String message) {
    return new RaftKvException(Kind.TOO_LARGE, message);
  }
}
