package raftkv.raft;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A state machine for Raft's own tests, with no KV at all (DESIGN.md §2): a map of strings. A
 * command is {@code key=value} in UTF-8 and replies with the value it replaced (empty when none);
 * a command without '=' is refused. A query is a key and answers its value (empty when none).
 * "Durable" means kept in this object, which a test hands to every incarnation of a node.
 */
public class MemoryStateMachine implements StateMachine {
  private TreeMap<String, String> map = new TreeMap<>();
  private long index;
  private long term;
  /** How many times restore ran (tests check a snapshot was installed). */
  public volatile int restores;

  public static byte[] put(String key, String value) {
    return (key + "=" + value).getBytes(StandardCharsets.UTF_8);
  }

  public static byte[] get(String key) {
    return key.getBytes(StandardCharsets.UTF_8);
  }

  public static String text(byte[] reply) {
    return new String(reply, StandardCharsets.UTF_8);
  }

  @Override
  public synchronized long appliedIndex() {
    return index;
  }

  @Override
  public synchronized long appliedTerm() {
    return term;
  }

  @Override
  public synchronized List<Result> apply(List<Entry> entries) {
    List<Result> results = new ArrayList<>(entries.size());
    for (Entry e : entries) {
      if (e.index() != index + 1) {
        throw new IllegalStateException("entry " + e.index() + " applied after " + index);
      }
      index = e.index();
      term = e.term();
      if (e.command() == null) {
        results.add(Result.ok(null));
        continue;
      }
      String c = text(e.command());
      int eq = c.indexOf('=');
      if (eq < 0) {
        results.add(Result.refused("no '=' in " + c));
        continue;
      }
      String previous = map.put(c.substring(0, eq), c.substring(eq + 1));
      results.add(Result.ok((previous == null ? "" : previous).getBytes(StandardCharsets.UTF_8)));
    }
    return results;
  }

  @Override
  public synchronized byte[] query(byte[] query) {
    return map.getOrDefault(text(query), "").getBytes(StandardCharsets.UTF_8);
  }

  public synchronized Map<String, String> contents() {
    return new TreeMap<>(map);
  }

  @Override
  public synchronized long sync() {
    return index;
  }

  @Override
  public synchronized Snapshot snapshot() {
    TreeMap<String, String> copy = new TreeMap<>(map);
    long i = index;
    long t = term;
    return new Snapshot() {
      @Override
      public long index() {
        return i;
      }

      @Override
      public long term() {
        return t;
      }

      @Override
      public void writeTo(OutputStream out) throws IOException {
        DataOutputStream data = new DataOutputStream(out);
        data.writeLong(i);
        data.writeLong(t);
        data.writeInt(copy.size());
        for (Map.Entry<String, String> e : copy.entrySet()) {
          data.writeUTF(e.getKey());
          data.writeUTF(e.getValue());
        }
        data.flush();
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public synchronized void restore(InputStream in) throws IOException {
    DataInputStream data = new DataInputStream(in);
    try {
      long i = data.readLong();
      long t = data.readLong();
      int n = data.readInt();
      TreeMap<String, String> m = new TreeMap<>();
      for (int k = 0; k < n; k++) {
        m.put(data.readUTF(), data.readUTF());
      }
      map = m;
      index = i;
      term = t;
      restores++;
    } catch (EOFException e) {
      throw new IllegalArgumentException("snapshot is truncated");
    }
  }

  @Override
  public synchronized long sizeBytes() {
    long n = 0;
    for (Map.Entry<String, String> e : map.entrySet()) {
      n += e.getKey().length() + e.getValue().length() + 16;
    }
    return n;
  }

  @Override
  public void close() {}
}
