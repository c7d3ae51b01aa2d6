package raftkv.kv;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The binary form of what crosses the state-machine seam ({@code raftkv.raft.StateMachine}, which
 * knows commands, queries and replies only as bytes): {@link KvCommand}s in the Raft log, {@link
 * KvQuery}s and the {@link KvResult}s that answer both. Every encoding starts with a one-byte
 * format version ({@value #VERSION}), then fields in a fixed order; no Jackson, because reflection
 * and a type name per value cost more than the rest of a follower's work.
 *
 * <p>A command's layout after the version byte is the one the Raft serializer has always used for
 * the commands inside log entries: varint lengths and counts, big-endian longs, strings in
 * modified UTF-8 (as {@code DataOutput.writeUTF}, so every Java string comes back the same,
 * unpaired surrogates included), a presence byte before a nullable long or byte array.
 *
 * <p>Decoders trust nothing: truncated, corrupt or trailing bytes give an IllegalArgumentException
 * with a one-line reason, and no length or count is believed beyond the bytes that are left, so a
 * huge length prefix cannot exhaust the heap. Encoders expect commands that passed the client's
 * KvLimits (no null keys, lists or targets) and results as the stores make them.
 */
public final class KvCodec {
  /** The format version, the first byte of every encoding. */
  static final byte VERSION = 1;

  private static final byte PUT = 1;
  private static final byte DELETE = 2;
  private static final byte TXN = 3;
  private static final byte IDEMPOTENT = 4;
  private static final byte LEASE_GRANT = 5;
  private static final byte LEASE_REVOKE = 6;
  private static final byte LEASE_CHECKPOINT = 7;
  private static final byte FENCED = 8;
  private static final byte OP_PUT = 1;
  private static final byte OP_GET = 2;
  private static final byte OP_DELETE = 3;

  private static final byte QUERY_GET = 1;
  private static final byte QUERY_RANGE = 2;
  private static final byte QUERY_HISTORY = 3;
  private static final byte QUERY_LEASE_GET = 4;
  private static final byte QUERY_LEASE_LIST = 5;
  private static final byte QUERY_LEASE_KEEPALIVE = 6;

  private static final byte PUT_DONE = 1;
  private static final byte DELETE_DONE = 2;
  private static final byte TXN_DONE = 3;
  private static final byte PRECONDITION_FAILED = 4;
  private static final byte GET_DONE = 5;
  private static final byte RANGE_DONE = 6;
  private static final byte HISTORY_DONE = 7;
  private static final byte REPLAYED = 8;
  private static final byte IDEMPOTENCY_KEY_REUSED = 9;
  private static final byte LEASE_GRANTED = 10;
  private static final byte LEASE_EXISTS = 11;
  private static final byte LEASE_NOT_FOUND = 12;
  private static final byte LEASE_REVOKED = 13;
  private static final byte LEASE_CHECKPOINTED = 14;
  private static final byte LEASE_INFO = 15;
  private static final byte LEASES = 16;
  private static final byte LEASE_KEPT_ALIVE = 17;
  private static final byte UNAVAILABLE = 18;
  private static final byte FENCE_FAILED = 19;

  private static final byte EVENT_PUT = 0;
  private static final byte EVENT_DELETE = 1;

  /** Results nest only in a TxnDone, one level deep; a deeper nesting is refused before it can overflow the stack. */
  private static final int MAX_RESULT_DEPTH = 4;

  private static final Compare.Target[] TARGETS = Compare.Target.values();
  private static final Compare.Op[] OPS = Compare.Op.values();

  private KvCodec() {}

  // ---------------------------------------------------------------- commands

  /** The command's bytes: the version, then the Raft serializer's command layout. */
  public static byte[] encode(KvCommand command) {
    Out out = new Out(commandBytes(command));
    out.b(VERSION);
    command(out, command);
    return out.toBytes();
  }

  /**
   * Reads what {@link #encode(KvCommand)} wrote.
   *
   * @throws IllegalArgumentException with a one-line reason for bytes that are not exactly one command
   */
  public static KvCommand decodeCommand(byte[] bytes) {
    In in = In.open(bytes, "command");
    KvCommand command = command(in);
    in.end();
    return command;
  }

  /**
   * {@code encode(command).length}, computed without encoding: what bounds a log entry under the
   * transport's frame. Saturates at Integer.MAX_VALUE.
   */
  public static int commandBytes(KvCommand command) {
    long n;
    if (command instanceof KvCommand.Put p) {
      n = 1 + stringBytes(p.key()) + bytesBytes(p.value()) + 8 + (p.ifModRevision() == null ? 1 : 9) + 1;
    } else if (command instanceof KvCommand.Delete d) {
      n = 1 + stringBytes(d.key()) + 1 + (d.ifModRevision() == null ? 1 : 9);
    } else if (command instanceof KvCommand.Txn t) {
      n = 1 + varintBytes(t.compare().size());
      for (Compare c : t.compare()) {
        n += stringBytes(c.key()) + stringBytes(c.target().name()) + stringBytes(c.op().name()) + 8
            + (c.value() == null ? 1 : 1 + bytesBytes(c.value()));
      }
      n += opsBytes(t.success()) + opsBytes(t.failure());
    } else if (command instanceof KvCommand.Idempotent i) {
      n = 1 + stringBytes(i.key()) + bytesBytes(i.fingerprint()) + (commandBytes(i.command()) - 1L);
    } else if (command instanceof KvCommand.Fenced f) {
      n = 1 + stringBytes(f.lock()) + 8 + (commandBytes(f.command()) - 1L);
    } else if (command instanceof KvCommand.LeaseGrant || command instanceof KvCommand.LeaseRevoke) {
      n = 1 + 16;
    } else if (command instanceof KvCommand.LeaseCheckpoint) {
      n = 1 + 24;
    } else {
      throw new IllegalArgumentException("unknown command " + command);
    }
    return (int) Math.min(Integer.MAX_VALUE, 1 + n);
  }

  private static long opsBytes(List<TxnOp> ops) {
    long n = varintBytes(ops.size());
    for (TxnOp op : ops) {
      if (op instanceof TxnOp.Put p) {
        n += 1 + stringBytes(p.key()) + bytesBytes(p.value()) + 8;
      } else if (op instanceof TxnOp.Get g) {
        n += 1 + stringBytes(g.key());
      } else if (op instanceof TxnOp.Delete d) {
        n += 1 + stringBytes(d.key()) + 1;
      } else {
        throw new IllegalArgumentException("unknown transaction op " + op);
      }
    }
    return n;
  }

  private static long bytesBytes(byte[] v) {
    return varintBytes(v.length) + (long) v.length;
  }

  private static long stringBytes(String v) {
    long len = modifiedUtf8Length(v);
    return (len > Integer.MAX_VALUE ? 5 : varintBytes((int) len)) + len;
  }

  private static int varintBytes(int v) {
    return v < 1 << 7 ? 1 : v < 1 << 14 ? 2 : v < 1 << 21 ? 3 : v < 1 << 28 ? 4 : 5;
  }

  private static void command(Out out, KvCommand command) {
    if (command instanceof KvCommand.Put p) {
      out.b(PUT).s(p.key()).bytes(p.value()).l(p.lease()).nl(p.ifModRevision()).bool(p.ifAbsent());
    } else if (command instanceof KvCommand.Delete d) {
      out.b(DELETE).s(d.key()).bool(d.prefix()).nl(d.ifModRevision());
    } else if (command instanceof KvCommand.Txn t) {
      out.b(TXN).i(t.compare().size());
      for (Compare c : t.compare()) {
        out.s(c.key()).s(c.target().name()).s(c.op().name()).l(c.number()).nbytes(c.value());
      }
      ops(out, t.success());
      ops(out, t.failure());
    } else if (command instanceof KvCommand.Idempotent i) {
      if (i.command() instanceof KvCommand.Idempotent) {
        throw new IllegalArgumentException("an idempotent command cannot hold another");
      }
      out.b(IDEMPOTENT).s(i.key()).bytes(i.fingerprint());
      command(out, i.command());
    } else if (command instanceof KvCommand.Fenced f) {
      if (!fenceable(f.command())) {
        throw new IllegalArgumentException("a fenced command holds a put, a delete or a transaction");
      }
      out.b(FENCED).s(f.lock()).l(f.token());
      command(out, f.command());
    } else if (command instanceof KvCommand.LeaseGrant g) {
      out.b(LEASE_GRANT).l(g.id()).l(g.ttlSeconds());
    } else if (command instanceof KvCommand.LeaseRevoke r) {
      out.b(LEASE_REVOKE).l(r.id()).l(r.expiryTerm());
    } else if (command instanceof KvCommand.LeaseCheckpoint c) {
      out.b(LEASE_CHECKPOINT).l(c.id()).l(c.remainingMillis()).l(c.term());
    } else {
      throw new IllegalArgumentException("unknown command " + command);
    }
  }

  private static KvCommand command(In in) {
    byte kind = in.b();
    if (kind == IDEMPOTENT) {
      String key = in.s();
      byte[] fingerprint = in.bytes();
      byte inner = in.peek();
      if (inner == IDEMPOTENT) {
        throw in.corrupt("an idempotent command holds another");
      }
      return new KvCommand.Idempotent(key, fingerprint, command(in));
    }
    if (kind == FENCED) {
      String lock = in.s();
      long token = in.l();
      byte inner = in.peek();
      if (inner != PUT && inner != DELETE && inner != TXN) {
        throw in.corrupt("a fenced command holds command kind " + inner);
      }
      return new KvCommand.Fenced(lock, token, command(in));
    }
    return switch (kind) {
      case LEASE_GRANT -> new KvCommand.LeaseGrant(in.l(), in.l());
      case LEASE_REVOKE -> new KvCommand.LeaseRevoke(in.l(), in.l());
      case LEASE_CHECKPOINT -> new KvCommand.LeaseCheckpoint(in.l(), in.l(), in.l());
      case PUT -> new KvCommand.Put(in.s(), in.bytes(), in.l(), in.nl(), in.bool());
      case DELETE -> new KvCommand.Delete(in.s(), in.bool(), in.nl());
      case TXN -> {
        int n = in.count();
        List<Compare> compares = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
          compares.add(new Compare(in.s(), target(in), op(in), in.l(), in.nbytes()));
        }
        List<TxnOp> success = ops(in);
        yield new KvCommand.Txn(compares, success, ops(in));
      }
      default -> throw in.corrupt("unknown command kind " + kind);
    };
  }

  /** What a {@link KvCommand.Fenced} may hold. */
  static boolean fenceable(KvCommand command) {
    return command instanceof KvCommand.Put || command instanceof KvCommand.Delete || command instanceof KvCommand.Txn;
  }

  private static Compare.Target target(In in) {
    String name = in.s();
    for (Compare.Target target : TARGETS) {
      if (target.name().equals(name)) {
        return target;
      }
    }
    throw in.corrupt("unknown compare target '" + printable(name) + "'");
  }

  private static Compare.Op op(In in) {
    String name = in.s();
    for (Compare.Op op : OPS) {
      if (op.name().equals(name)) {
        return op;
      }
    }
    throw in.corrupt("unknown compare op '" + printable(name) + "'");
  }

  /** A bounded, single-line rendering of a string read from untrusted bytes, for a message. */
  private static String printable(String s) {
    String cut = s.length() > 40 ? s.substring(0, 40) + "..." : s;
    return cut.replaceAll("\\p{Cntrl}", "?");
  }

  private static void ops(Out out, List<TxnOp> ops) {
    out.i(ops.size());
    for (TxnOp op : ops) {
      if (op instanceof TxnOp.Put p) {
        out.b(OP_PUT).s(p.key()).bytes(p.value()).l(p.lease());
      } else if (op instanceof TxnOp.Get g) {
        out.b(OP_GET).s(g.key());
      } else if (op instanceof TxnOp.Delete d) {
        out.b(OP_DELETE).s(d.key()).bool(d.prefix());
      } else {
        throw new IllegalArgumentException("unknown transaction op " + op);
      }
    }
  }

  private static List<TxnOp> ops(In in) {
    int n = in.count();
    List<TxnOp> ops = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      byte kind = in.b();
      ops.add(switch (kind) {
        case OP_PUT -> new TxnOp.Put(in.s(), in.bytes(), in.l());
        case OP_GET -> new TxnOp.Get(in.s());
        case OP_DELETE -> new TxnOp.Delete(in.s(), in.bool());
        default -> throw in.corrupt("unknown transaction op kind " + kind);
      });
    }
    return ops;
  }

  // ---------------------------------------------------------------- queries

  /**
   * The query's bytes: the version, a kind, then for a Get its key; for a Range its prefix and
   * after (each nullable) and its limit as a four-byte int.
   */
  public static byte[] encode(KvQuery query) {
    Out out = new Out(32);
    out.b(VERSION);
    if (query instanceof KvQuery.Get g) {
      out.b(QUERY_GET).s(g.key());
    } else if (query instanceof KvQuery.Range r) {
      out.b(QUERY_RANGE).ns(r.prefix()).ns(r.after()).i4(r.limit());
    } else if (query instanceof KvQuery.History h) {
      out.b(QUERY_HISTORY).s(h.key()).bool(h.prefix()).l(h.fromRevision()).i4(h.maxRevisions());
    } else if (query instanceof KvQuery.LeaseGet g) {
      out.b(QUERY_LEASE_GET).l(g.id());
    } else if (query instanceof KvQuery.LeaseList l) {
      out.b(QUERY_LEASE_LIST).bool(l.all());
    } else if (query instanceof KvQuery.LeaseKeepAlive k) {
      out.b(QUERY_LEASE_KEEPALIVE).l(k.id());
    } else {
      throw new IllegalArgumentException("unknown query " + query);
    }
    return out.toBytes();
  }

  /**
   * Reads what {@link #encode(KvQuery)} wrote.
   *
   * @throws IllegalArgumentException with a one-line reason for bytes that are not exactly one query
   */
  public static KvQuery decodeQuery(byte[] bytes) {
    In in = In.open(bytes, "query");
    byte kind = in.b();
    KvQuery query = switch (kind) {
      case QUERY_GET -> new KvQuery.Get(in.s());
      case QUERY_RANGE -> new KvQuery.Range(in.ns(), in.ns(), in.i4());
      case QUERY_HISTORY -> new KvQuery.History(in.s(), in.bool(), in.l(), in.i4());
      case QUERY_LEASE_GET -> new KvQuery.LeaseGet(in.l());
      case QUERY_LEASE_LIST -> new KvQuery.LeaseList(in.bool());
      case QUERY_LEASE_KEEPALIVE -> new KvQuery.LeaseKeepAlive(in.l());
      default -> throw in.corrupt("unknown query kind " + kind);
    };
    in.end();
    return query;
  }

  // ---------------------------------------------------------------- results

  /**
   * The result's bytes: the version, then the result as a kind and its fields. A TxnDone holds its
   * results the same way, without their own version byte; a KeyValue is its key, nullable value,
   * createRevision, modRevision, version and lease; a null KeyValue (a missing key) is one byte.
   */
  public static byte[] encode(KvResult result) {
    Out out = new Out(64);
    out.b(VERSION);
    result(out, result);
    return out.toBytes();
  }

  /**
   * Reads what {@link #encode(KvResult)} wrote.
   *
   * @throws IllegalArgumentException with a one-line reason for bytes that are not exactly one result
   */
  public static KvResult decodeResult(byte[] bytes) {
    In in = In.open(bytes, "result");
    KvResult result = result(in, 0);
    in.end();
    return result;
  }

  private static void result(Out out, KvResult result) {
    if (result instanceof KvResult.PutDone p) {
      out.b(PUT_DONE).l(p.revision()).nl(p.prevModRevision());
    } else if (result instanceof KvResult.DeleteDone d) {
      out.b(DELETE_DONE).l(d.revision()).l(d.deleted());
    } else if (result instanceof KvResult.TxnDone t) {
      out.b(TXN_DONE).bool(t.succeeded()).l(t.revision()).i(t.results().size());
      for (KvResult r : t.results()) {
        result(out, r);
      }
    } else if (result instanceof KvResult.PreconditionFailed f) {
      out.b(PRECONDITION_FAILED).l(f.currentModRevision());
    } else if (result instanceof KvResult.FenceFailed f) {
      out.b(FENCE_FAILED).s(f.lock()).l(f.holderToken());
    } else if (result instanceof KvResult.GetDone g) {
      out.b(GET_DONE).l(g.revision());
      if (g.kv() == null) {
        out.bool(false);
      } else {
        keyValue(out.bool(true), g.kv());
      }
    } else if (result instanceof KvResult.RangeDone r) {
      out.b(RANGE_DONE).l(r.revision()).i(r.kvs().size());
      for (KeyValue kv : r.kvs()) {
        keyValue(out, kv);
      }
      out.bool(r.more());
    } else if (result instanceof KvResult.Replayed r) {
      out.b(REPLAYED);
      if (r.first() == null) {
        out.bool(false);
      } else {
        result(out.bool(true), r.first());
      }
    } else if (result instanceof KvResult.IdempotencyKeyReused k) {
      out.b(IDEMPOTENCY_KEY_REUSED).s(k.key());
    } else if (result instanceof KvResult.LeaseGranted g) {
      out.b(LEASE_GRANTED).l(g.id()).l(g.ttlSeconds());
    } else if (result instanceof KvResult.LeaseExists e) {
      out.b(LEASE_EXISTS).l(e.id());
    } else if (result instanceof KvResult.LeaseNotFound n) {
      out.b(LEASE_NOT_FOUND).l(n.id());
    } else if (result instanceof KvResult.LeaseRevoked r) {
      out.b(LEASE_REVOKED).l(r.revision()).l(r.deleted());
    } else if (result instanceof KvResult.LeaseCheckpointed c) {
      out.b(LEASE_CHECKPOINTED).l(c.id());
    } else if (result instanceof KvResult.LeaseInfo info) {
      leaseInfo(out.b(LEASE_INFO), info);
    } else if (result instanceof KvResult.Leases leases) {
      out.b(LEASES).i(leases.leases().size());
      for (KvResult.LeaseInfo info : leases.leases()) {
        leaseInfo(out, info);
      }
    } else if (result instanceof KvResult.LeaseKeptAlive k) {
      out.b(LEASE_KEPT_ALIVE).l(k.id()).l(k.ttlSeconds());
    } else if (result instanceof KvResult.Unavailable u) {
      out.b(UNAVAILABLE).s(u.reason());
    } else if (result instanceof KvResult.HistoryDone h) {
      out.b(HISTORY_DONE).l(h.compactRevision()).l(h.scannedTo()).l(h.revision()).i(h.events().size());
      for (RevisionEvents r : h.events()) {
        out.l(r.revision());
        events(out, r.events());
      }
    } else {
      throw new IllegalArgumentException("unknown result " + result);
    }
  }

  private static KvResult result(In in, int depth) {
    if (depth >= MAX_RESULT_DEPTH) {
      throw in.corrupt("results nested more than " + MAX_RESULT_DEPTH + " deep");
    }
    byte kind = in.b();
    return switch (kind) {
      case PUT_DONE -> new KvResult.PutDone(in.l(), in.nl());
      case DELETE_DONE -> new KvResult.DeleteDone(in.l(), in.l());
      case TXN_DONE -> {
        boolean succeeded = in.bool();
        long revision = in.l();
        int n = in.count();
        KvResult[] results = new KvResult[n];
        for (int i = 0; i < n; i++) {
          results[i] = result(in, depth + 1);
        }
        yield new KvResult.TxnDone(succeeded, revision, List.of(results));
      }
      case PRECONDITION_FAILED -> new KvResult.PreconditionFailed(in.l());
      case FENCE_FAILED -> new KvResult.FenceFailed(in.s(), in.l());
      case GET_DONE -> new KvResult.GetDone(in.l(), in.bool() ? keyValue(in) : null);
      case RANGE_DONE -> {
        long revision = in.l();
        int n = in.count();
        KeyValue[] kvs = new KeyValue[n];
        for (int i = 0; i < n; i++) {
          kvs[i] = keyValue(in);
        }
        yield new KvResult.RangeDone(revision, List.of(kvs), in.bool());
      }
      case REPLAYED -> new KvResult.Replayed(in.bool() ? result(in, depth + 1) : null);
      case IDEMPOTENCY_KEY_REUSED -> new KvResult.IdempotencyKeyReused(in.s());
      case LEASE_GRANTED -> new KvResult.LeaseGranted(in.l(), in.l());
      case LEASE_EXISTS -> new KvResult.LeaseExists(in.l());
      case LEASE_NOT_FOUND -> new KvResult.LeaseNotFound(in.l());
      case LEASE_REVOKED -> new KvResult.LeaseRevoked(in.l(), in.l());
      case LEASE_CHECKPOINTED -> new KvResult.LeaseCheckpointed(in.l());
      case LEASE_INFO -> leaseInfo(in);
      case LEASES -> {
        int n = in.count();
        KvResult.LeaseInfo[] leases = new KvResult.LeaseInfo[n];
        for (int i = 0; i < n; i++) {
          leases[i] = leaseInfo(in);
        }
        yield new KvResult.Leases(List.of(leases));
      }
      case LEASE_KEPT_ALIVE -> new KvResult.LeaseKeptAlive(in.l(), in.l());
      case UNAVAILABLE -> new KvResult.Unavailable(in.s());
      case HISTORY_DONE -> {
        long compact = in.l();
        long scannedTo = in.l();
        long revision = in.l();
        int n = in.count();
        RevisionEvents[] revisions = new RevisionEvents[n];
        for (int i = 0; i < n; i++) {
          revisions[i] = new RevisionEvents(in.l(), events(in));
        }
        yield new KvResult.HistoryDone(compact, scannedTo, revision, List.of(revisions));
      }
      default -> throw in.corrupt("unknown result kind " + kind);
    };
  }

  private static void keyValue(Out out, KeyValue kv) {
    out.s(kv.key()).nbytes(kv.value()).l(kv.createRevision()).l(kv.modRevision()).l(kv.version()).l(kv.lease());
  }

  private static KeyValue keyValue(In in) {
    return new KeyValue(in.s(), in.nbytes(), in.l(), in.l(), in.l(), in.l());
  }

  private static void leaseInfo(Out out, KvResult.LeaseInfo info) {
    out.l(info.id()).l(info.ttlSeconds()).l(info.remainingMillis()).i(info.keys().size());
    for (String key : info.keys()) {
      out.s(key);
    }
  }

  private static KvResult.LeaseInfo leaseInfo(In in) {
    long id = in.l();
    long ttl = in.l();
    long remaining = in.l();
    int n = in.count();
    String[] keys = new String[n];
    for (int i = 0; i < n; i++) {
      keys[i] = in.s();
    }
    return new KvResult.LeaseInfo(id, ttl, remaining, List.of(keys));
  }

  /** Events: their count, then each one's type, its KeyValue, and its prevKv when present. */
  private static void events(Out out, List<Event> events) {
    out.i(events.size());
    for (Event e : events) {
      keyValue(out.b(e.type() == Event.Type.PUT ? EVENT_PUT : EVENT_DELETE), e.kv());
      if (e.prevKv() == null) {
        out.bool(false);
      } else {
        keyValue(out.bool(true), e.prevKv());
      }
    }
  }

  private static List<Event> events(In in) {
    int n = in.count();
    Event[] events = new Event[n];
    for (int i = 0; i < n; i++) {
      byte type = in.b();
      if (type != EVENT_PUT && type != EVENT_DELETE) {
        throw in.corrupt("unknown event type " + type);
      }
      KeyValue kv = keyValue(in);
      events[i] = new Event(type == EVENT_PUT ? Event.Type.PUT : Event.Type.DELETE, kv, in.bool() ? keyValue(in) : null);
    }
    return List.of(events);
  }

  /**
   * A revision's record in the store's history: the codec's version byte, the time stamped into the entry
   * that made it (milliseconds), then its events as a result carries them.
   */
  static byte[] encodeHistoryRecord(long time, List<Event> events) {
    Out out = new Out(64);
    out.b(VERSION).l(time);
    events(out, events);
    return out.toBytes();
  }

  /** An idempotency record: the fingerprint, time, sequence and the first result when kept. */
  static byte[] encodeIdempotencyRecord(KvDb.IdempotencyRecord r) {
    Out out = new Out(64);
    out.b(VERSION).bytes(r.fingerprint()).l(r.time()).l(r.seq());
    if (r.result() == null) {
      out.bool(false);
    } else {
      result(out.bool(true), r.result());
    }
    return out.toBytes();
  }

  static KvDb.IdempotencyRecord decodeIdempotencyRecord(byte[] bytes) {
    In in = In.open(bytes, "idempotency record");
    byte[] fingerprint = in.bytes();
    long time = in.l();
    long seq = in.l();
    KvResult result = in.bool() ? result(in, 0) : null;
    in.end();
    return new KvDb.IdempotencyRecord(fingerprint, time, seq, result);
  }

  /** The time of a history record, reading nothing else. */
  static long historyRecordTime(byte[] record) {
    In in = In.open(record, "history record");
    return in.l();
  }

  /** The events of a history record. */
  static List<Event> decodeHistoryRecord(byte[] record) {
    In in = In.open(record, "history record");
    in.l();
    List<Event> events = events(in);
    in.end();
    return events;
  }

  // ---------------------------------------------------------------- primitives

  /** Bytes of {@code v} in modified UTF-8: 1 for U+0001..U+007F, 2 up to U+07FF and for U+0000, else 3 per char. */
  private static long modifiedUtf8Length(String v) {
    int n = v.length();
    long len = 0;
    for (int k = 0; k < n; k++) {
      char c = v.charAt(k);
      len += c >= 1 && c <= 0x7F ? 1 : c <= 0x7FF ? 2 : 3;
    }
    return len;
  }

  /** A growable big-endian buffer; sized exactly up front where the size is known. */
  private static final class Out {
    private byte[] buf;
    private int pos;

    Out(int capacity) {
      buf = new byte[Math.max(16, capacity)];
    }

    private void room(int n) {
      if (pos + n > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, pos + n));
      }
    }

    Out b(byte v) {
      room(1);
      buf[pos++] = v;
      return this;
    }

    Out bool(boolean v) {
      return b(v ? (byte) 1 : (byte) 0);
    }

    Out l(long v) {
      room(8);
      for (int shift = 56; shift >= 0; shift -= 8) {
        buf[pos++] = (byte) (v >>> shift);
      }
      return this;
    }

    Out i4(int v) {
      room(4);
      for (int shift = 24; shift >= 0; shift -= 8) {
        buf[pos++] = (byte) (v >>> shift);
      }
      return this;
    }

    /** A non-negative int in 1-5 bytes, seven bits at a time, low bits first. */
    Out i(int v) {
      if (v < 0) {
        throw new IllegalArgumentException("negative length " + v);
      }
      room(5);
      while ((v & ~0x7F) != 0) {
        buf[pos++] = (byte) ((v & 0x7F) | 0x80);
        v >>>= 7;
      }
      buf[pos++] = (byte) v;
      return this;
    }

    Out nl(Long v) {
      return v == null ? b((byte) 0) : b((byte) 1).l(v);
    }

    Out bytes(byte[] v) {
      i(v.length);
      room(v.length);
      System.arraycopy(v, 0, buf, pos, v.length);
      pos += v.length;
      return this;
    }

    Out nbytes(byte[] v) {
      return v == null ? b((byte) 0) : b((byte) 1).bytes(v);
    }

    /** Modified UTF-8 of every char, so that any Java string comes back the same. */
    Out s(String v) {
      long bytes = modifiedUtf8Length(v);
      if (bytes > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("a string of " + bytes + " bytes cannot be encoded");
      }
      int len = (int) bytes;
      i(len);
      room(len);
      int n = v.length();
      for (int k = 0; k < n; k++) {
        char c = v.charAt(k);
        if (c >= 1 && c <= 0x7F) {
          buf[pos++] = (byte) c;
        } else if (c <= 0x7FF) {
          buf[pos++] = (byte) (0xC0 | (c >> 6));
          buf[pos++] = (byte) (0x80 | (c & 0x3F));
        } else {
          buf[pos++] = (byte) (0xE0 | (c >> 12));
          buf[pos++] = (byte) (0x80 | ((c >> 6) & 0x3F));
          buf[pos++] = (byte) (0x80 | (c & 0x3F));
        }
      }
      return this;
    }

    Out ns(String v) {
      return v == null ? b((byte) 0) : b((byte) 1).s(v);
    }

    byte[] toBytes() {
      return pos == buf.length ? buf : Arrays.copyOf(buf, pos);
    }
  }

  /**
   * Reads what {@link Out} wrote. Every failure is an IllegalArgumentException naming what was
   * read ("KV command", ...) and where: a read past the end, a length or count larger than the
   * bytes left, a byte no writer writes.
   */
  private static final class In {
    private final byte[] buf;
    private final String what;
    private int pos;

    private In(byte[] buf, String what) {
      this.buf = buf;
      this.what = what;
    }

    /** Checks the version byte. */
    static In open(byte[] bytes, String what) {
      if (bytes == null) {
        throw new IllegalArgumentException("no KV " + what + ": the bytes are null");
      }
      In in = new In(bytes, what);
      if (bytes.length == 0) {
        throw in.corrupt("empty");
      }
      byte version = in.b();
      if (version != VERSION) {
        throw in.corrupt("format version " + version + ", this build reads version " + VERSION);
      }
      return in;
    }

    IllegalArgumentException corrupt(String reason) {
      return new IllegalArgumentException("corrupt KV " + what + " (" + buf.length + " bytes): " + reason);
    }

    void end() {
      if (pos != buf.length) {
        throw corrupt((buf.length - pos) + " bytes follow its end at " + pos);
      }
    }

    private int remaining() {
      return buf.length - pos;
    }

    private void need(int n) {
      if (n > remaining()) {
        throw corrupt("truncated: " + n + " bytes needed at " + pos);
      }
    }

    /** The next byte, not consumed. */
    byte peek() {
      need(1);
      return buf[pos];
    }

    byte b() {
      need(1);
      return buf[pos++];
    }

    boolean bool() {
      byte v = b();
      if (v != 0 && v != 1) {
        throw corrupt("bad boolean " + v + " at " + (pos - 1));
      }
      return v == 1;
    }

    long l() {
      need(8);
      long v = 0;
      for (int k = 0; k < 8; k++) {
        v = (v << 8) | (buf[pos++] & 0xFF);
      }
      return v;
    }

    int i4() {
      need(4);
      int v = 0;
      for (int k = 0; k < 4; k++) {
        v = (v << 8) | (buf[pos++] & 0xFF);
      }
      return v;
    }

    /** A varint length, at most 31 bits. */
    int i() {
      int v = 0;
      for (int shift = 0; shift < 35; shift += 7) {
        byte x = b();
        if (shift == 28 && (x & 0xF8) != 0) {
          throw corrupt("a length over 31 bits at " + (pos - 1));
        }
        v |= (x & 0x7F) << shift;
        if ((x & 0x80) == 0) {
          return v;
        }
      }
      throw new AssertionError("the fifth byte ends every varint");
    }

    /** A length of bytes that follow: bounded by what is left. */
    private int length() {
      int n = i();
      need(n);
      return n;
    }

    /** A count of items that follow, each at least one byte: bounded by what is left. */
    int count() {
      int n = i();
      if (n > remaining()) {
        throw corrupt("a count of " + n + " exceeds the " + remaining() + " bytes left");
      }
      return n;
    }

    Long nl() {
      return bool() ? l() : null;
    }

    byte[] bytes() {
      int n = length();
      byte[] v = Arrays.copyOfRange(buf, pos, pos + n);
      pos += n;
      return v;
    }

    byte[] nbytes() {
      return bool() ? bytes() : null;
    }

    String s() {
      int len = length();
      int end = pos + len;
      char[] chars = new char[len];
      int n = 0;
      while (pos < end) {
        int c = buf[pos++] & 0xFF;
        if (c < 0x80) {
          chars[n++] = (char) c;
        } else if ((c & 0xE0) == 0xC0) {
          chars[n++] = (char) (((c & 0x1F) << 6) | continuation(end));
        } else if ((c & 0xF0) == 0xE0) {
          int high = continuation(end);
          chars[n++] = (char) (((c & 0x0F) << 12) | (high << 6) | continuation(end));
        } else {
          throw corrupt("bad string byte " + c + " at " + (pos - 1));
        }
      }
      return new String(chars, 0, n);
    }

    private int continuation(int end) {
      if (pos >= end) {
        throw corrupt("a string's last character overruns its length at " + pos);
      }
      int b = buf[pos++] & 0xFF;
      if ((b & 0xC0) != 0x80) {
        throw corrupt("bad string continuation byte " + b + " at " + (pos - 1));
      }
      return b & 0x3F;
    }

    String ns() {
      return bool() ? s() : null;
    }
  }
}
