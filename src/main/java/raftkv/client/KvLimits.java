package raftkv.client;

import raftkv.client.RaftKvException.Kind;
import raftkv.kv.Compare;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.TxnOp;

import java.util.List;

/**
 * The checks a command or query passes before it reaches the log or the store (API.md §2): keys
 * are non-empty, well-formed Unicode and at most {@code maxKeyBytes} in UTF-8; values are present
 * and at most {@code maxValueBytes}; a transaction holds at most {@code maxTxnOps} compares and
 * operations, counted together (API.md §3). A failed check throws a {@link RaftKvException} of kind
 * {@link Kind#BAD_REQUEST} or {@link Kind#TOO_LARGE} whose message is one sentence a client can show.
 *
 * @param maxKeyBytes   the largest key, in bytes of its UTF-8 encoding
 * @param maxValueBytes the largest value, in bytes
 * @param maxTxnOps     the most compares, success ops and failure ops one transaction may hold in all
 */
public record KvLimits(int maxKeyBytes, int maxValueBytes, int maxTxnOps, long minLeaseTtlSeconds,
                       long maxLeaseTtlSeconds) {

  /** The shortest lease with the default election timeout of 1 s (1.5 x, rounded up), and the longest (90 days). */
  public static final long DEFAULT_MIN_LEASE_TTL_SECONDS = 2;
  public static final long DEFAULT_MAX_LEASE_TTL_SECONDS = 90L * 24 * 3600;

  /** The default of {@code raftkv.limits.max-txn-ops}, as etcd's {@code --max-txn-ops}. */
  public static final int DEFAULT_MAX_TXN_OPS = 128;

  /** Rejects limits that would refuse every key, value or transaction. */
  public KvLimits {
    if (maxKeyBytes < 1 || maxValueBytes < 0 || maxTxnOps < 1) {
      throw new IllegalArgumentException(
          "limits must allow a key of 1 byte, an empty value and a transaction of 1 operation, got maxKeyBytes="
              + maxKeyBytes + ", maxValueBytes=" + maxValueBytes + ", maxTxnOps=" + maxTxnOps);
    }
    if (minLeaseTtlSeconds < 1 || maxLeaseTtlSeconds < minLeaseTtlSeconds) {
      throw new IllegalArgumentException("lease TTLs must run from at least 1 s to at least the minimum, got "
          + minLeaseTtlSeconds + " to " + maxLeaseTtlSeconds);
    }
  }

  /** These limits, with the default lease TTLs. */
  public KvLimits(int maxKeyBytes, int maxValueBytes, int maxTxnOps) {
    this(maxKeyBytes, maxValueBytes, maxTxnOps, DEFAULT_MIN_LEASE_TTL_SECONDS, DEFAULT_MAX_LEASE_TTL_SECONDS);
  }

  /**
   * The TTL a lease asked for {@code ttlSeconds} gets: at least the minimum (API.md §4: 1.5 x the
   * election timeout, rounded up to a second).
   *
   * @throws RaftKvException BAD_REQUEST for a TTL below 1 s or over the maximum
   */
  public long leaseTtl(long ttlSeconds) {
    if (ttlSeconds < 1) {
      throw badRequest("ttlSeconds is " + ttlSeconds + ", it must be 1 or more (a lease shorter than "
          + minLeaseTtlSeconds + " s is granted " + minLeaseTtlSeconds + " s)");
    }
    if (ttlSeconds > maxLeaseTtlSeconds) {
      throw badRequest("ttlSeconds is " + ttlSeconds + ", the most is " + maxLeaseTtlSeconds);
    }
    return Math.max(ttlSeconds, minLeaseTtlSeconds);
  }

  /** These key and value limits, with transactions of at most {@value #DEFAULT_MAX_TXN_OPS} compares and ops. */
  public KvLimits(int maxKeyBytes, int maxValueBytes) {
    this(maxKeyBytes, maxValueBytes, DEFAULT_MAX_TXN_OPS);
  }

  /**
   * The limits of API.md §2 and §3: keys up to 1024 bytes, values up to 1 MiB, transactions of up
   * to 128 compares and operations.
   */
  public static KvLimits defaults() {
    return new KvLimits(1024, 1024 * 1024, DEFAULT_MAX_TXN_OPS);
  }

  /**
   * Checks every key and value of {@code command}, those inside a transaction included. A
   * transaction's count of compares and operations is checked first, before any of them.
   *
   * @throws RaftKvException BAD_REQUEST for a missing or malformed part or a transaction of more
   *     than {@code maxTxnOps} compares and operations, TOO_LARGE for a key or value over the limit
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
      checkSize(txn);
      checkCompares(txn.compare());
      checkOps(txn.success(), "success");
      checkOps(txn.failure(), "failure");
    } else if (command instanceof KvCommand.LeaseGrant grant) {
      if (grant.id() < 1) {
        throw badRequest("a lease id is a positive integer, not " + grant.id());
      }
      leaseTtl(grant.ttlSeconds());
    } else if (command instanceof KvCommand.LeaseRevoke revoke) {
      if (revoke.id() < 1) {
        throw badRequest("a lease id is a positive integer, not " + revoke.id());
      }
    } else if (command instanceof KvCommand.Fenced fenced) {
      checkKey(fenced.lock(), "lock name");
      if (fenced.token() < 1) {
        throw badRequest("a fencing token is a positive revision, not " + fenced.token());
      }
      if (!(fenced.command() instanceof KvCommand.Put || fenced.command() instanceof KvCommand.Delete
          || fenced.command() instanceof KvCommand.Txn)) {
        throw badRequest("only a put, a delete or a transaction can be fenced");
      }
      validate(fenced.command());
    } else if (command instanceof KvCommand.Idempotent idem) {
      checkIdempotencyKey(idem.key());
      if (idem.fingerprint() == null || idem.fingerprint().length > MAX_FINGERPRINT_BYTES) {
        throw badRequest("an idempotent request's fingerprint is missing or over " + MAX_FINGERPRINT_BYTES + " bytes");
      }
      if (idem.command() instanceof KvCommand.Idempotent) {
        throw badRequest("an idempotent command cannot hold another");
      }
      validate(idem.command());
    }
  }

  /** API.md §3: an Idempotency-Key is at most this many bytes (of UTF-8). */
  public static final int MAX_IDEMPOTENCY_KEY_BYTES = 256;
  private static final int MAX_FINGERPRINT_BYTES = 64;

  /** Checks an {@code Idempotency-Key}: not empty, at most 256 bytes of UTF-8. */
  public static void checkIdempotencyKey(String key) {
    if (key == null || key.isEmpty()) {
      throw badRequest("the Idempotency-Key is empty");
    }
    int bytes = key.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    if (bytes > MAX_IDEMPOTENCY_KEY_BYTES) {
      throw badRequest("the Idempotency-Key is " + bytes + " bytes, the limit is " + MAX_IDEMPOTENCY_KEY_BYTES);
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
    } else if (query instanceof KvQuery.History history) {
      if (history.key() == null) {
        throw badRequest("the key is missing");
      }
      if (!history.prefix() || !history.key().isEmpty()) {
        checkKey(history.key(), history.prefix() ? "prefix" : "key");
      }
      if (history.fromRevision() < 1) {
        throw badRequest("fromRevision is " + history.fromRevision() + ", it must be 1 or more");
      }
    }
  }

  /** Compares, success ops and failure ops count together; a missing list counts 0 (it is refused later). */
  private void checkSize(KvCommand.Txn txn) {
    long count = (long) size(txn.compare()) + size(txn.success()) + size(txn.failure());
    if (count > maxTxnOps) {
      throw badRequest("the transaction has " + count + " compares and operations, the limit is " + maxTxnOps
          + " (raftkv.limits.max-txn-ops)");
    }
  }

  private static int size(List<?> list) {
    return list == null ? 0 : list.size();
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
    int bytes = key.getBytes(java.nio.charset.StandardCharsets.UTF_8).length; // (well-formed: checked above)
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
