package raftkv.multijvm;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Checks what watchers of every key from revision 1 ({@code GET /v1/watch/?prefix=true}, API.md
 * §4) received: each watcher's change messages must be revisions 1, 2, 3, ... up to the store's
 * final revision (or C+1, C+2, ... for a watcher whose node answered 410 with compact revision C,
 * {@link Kind#HISTORY_STARTS}), none missing, none twice, none out of order (every revision
 * changes some key, so a watch of every key sees them all); every event of a message must carry the message's
 * revision, and a put the create revision and version that the revisions before it imply; no
 * {@code progress} may claim a revision the watcher has not received; all watchers must have
 * received the same events for every revision; and replaying a watcher's events (put, delete)
 * must give exactly the final state of the store, as a linearizable range read returned it.
 *
 * <p>It reports the first problem of each kind, with the revision where it starts, the watcher, and
 * the node and connection the message came from; not every consequence of it.
 */
public final class WatchChecker {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int SHOWN_CHARS = 160;

  /** What a message of a watch stream was. */
  public enum Kind {
    /** {@code event: change}: {@code id} the revision, {@code data} its events as a JSON array. */
    CHANGE,
    /** {@code event: progress}: the watcher is caught up to {@code id}. */
    PROGRESS,
    /** A message the client could not make sense of; {@code data} says what was wrong. */
    MALFORMED,
    /**
     * Not a message: the node answered a watch from revision 1 with 410, its history starting
     * after {@code revision} (its compact revision), and the watcher stayed on that node to take
     * the revisions after it. Only first; such a watcher is compared with the others, not
     * replayed.
     */
    HISTORY_STARTS
  }

  /**
   * One message a watcher received, in order: its kind, revision ({@code id}), data (the JSON
   * text of a change), and where it came from: the node and the watcher's connection number.
   */
  public record Message(Kind kind, long revision, String data, String node, int connection) {

    /** A change message. */
    public static Message change(long revision, String data, String node, int connection) {
      return new Message(Kind.CHANGE, revision, data, node, connection);
    }

    /** A progress message. */
    public static Message progress(long revision, String node, int connection) {
      return new Message(Kind.PROGRESS, revision, "{}", node, connection);
    }

    /** The 410 of a node whose history starts after {@code compactRevision}. */
    public static Message historyStarts(long compactRevision, String node, int connection) {
      return new Message(Kind.HISTORY_STARTS, compactRevision, "", node, connection);
    }

    /** A message that could not be read; {@code what} says why. */
    public static Message malformed(String what, String node, int connection) {
      return new Message(Kind.MALFORMED, -1, what, node, connection);
    }

    /** "from n3 (connection #4)". */
    String origin() {
      return "from " + node + " (connection #" + connection + ")";
    }
  }

  /**
   * A key as the store holds it at the end: its value as {@code "utf8:" + value} or
   * {@code "base64:" + valueBase64}, and its revisions and version.
   */
  public record KeyState(String value, long createRevision, long modRevision, long version) {

    /** "v=... create 3 mod 9 version 4". */
    String describe() {
      return "value " + abbreviate(value, 60) + ", createRevision " + createRevision + ", modRevision "
          + modRevision + ", version " + version;
    }
  }

  /** What {@link #check} found: no problems, or one line per problem. */
  public record Report(List<String> problems, String summary) {

    /** True if nothing was wrong. */
    public boolean ok() {
      return problems.isEmpty();
    }

    /** The summary, then one line per problem. */
    public String describe() {
      StringBuilder text = new StringBuilder(summary);
      problems.forEach(p -> text.append("\n  - ").append(p));
      return text.toString();
    }
  }

  /**
   * Checks {@code watchers} (watcher name to the messages it received, in order) against the
   * store's {@code finalRevision} and {@code finalState} (every key, read linearizably at that
   * revision).
   */
  public Report check(Map<String, List<Message>> watchers, long finalRevision,
      Map<String, KeyState> finalState) {
    List<String> problems = new ArrayList<>();
    Map<String, Map<Long, Message>> accepted = new LinkedHashMap<>();
    long events = 0;
    for (Map.Entry<String, List<Message>> watcher : watchers.entrySet()) {
      Replay replay = replay(watcher.getKey(), watcher.getValue(), finalRevision, problems);
      accepted.put(watcher.getKey(), replay.byRevision);
      events += replay.events;
      if (replay.complete) { // else its replay would only repeat the problem already reported
        compareWithFinalState(watcher.getKey(), replay.state, finalState, problems);
      }
    }
    compareWatchers(accepted, finalRevision, problems);
    long later = watchers.values().stream()
        .filter(ms -> !ms.isEmpty() && ms.get(0).kind() == Kind.HISTORY_STARTS).count();
    String summary = String.format(Locale.ROOT,
        "watchers: %d watchers of every key%s, final revision %d, %d keys at the end, %d events replayed in all: %s",
        watchers.size(), later == 0 ? "" : " (" + later + " from a node's compact revision on)", finalRevision,
        finalState.size(), events,
        problems.isEmpty() ? "each got its revisions up to " + finalRevision
            + " once, in order, all the same events, replaying to the final state"
            : problems.size() + " problem(s)");
    return new Report(List.copyOf(problems), summary);
  }

  /** What one watcher's messages replay to, and its in-order changes by revision. */
  private static final class Replay {
    final Map<String, KeyState> state = new TreeMap<>();
    final Map<Long, Message> byRevision = new HashMap<>();
    long events;
    /** Revisions 1..final in order, nothing malformed, no progress ahead. */
    boolean complete;
  }

  /**
   * Walks one watcher's messages: the order of revisions (stopping at the first break: what
   * follows a gap or a repeat says nothing new), the events of each revision applied to the
   * replayed state with their create revisions and versions checked, and the progress messages.
   */
  private static Replay replay(String watcher, List<Message> messages, long finalRevision,
      List<String> problems) {
    Replay replay = new Replay();
    long last = 0; // the last revision received in order
    boolean eventProblemSeen = false;
    boolean fromTheStart = true;
    for (Message m : messages) {
      switch (m.kind()) {
        case HISTORY_STARTS -> {
          if (m != messages.get(0) || m.revision() < 0) {
            problems.add(watcher + ": its history starts after revision " + m.revision() + " " + m.origin()
                + ", after revision " + last + " came");
            return replay;
          }
          fromTheStart = false;
          last = m.revision();
        }
        case MALFORMED -> {
          problems.add(watcher + ": a malformed message after revision " + last + " " + m.origin() + ": "
              + abbreviate(m.data(), SHOWN_CHARS));
          return replay;
        }
        case PROGRESS -> {
          if (m.revision() > last) {
            problems.add(watcher + ": progress " + m.revision() + " " + m.origin() + " when it had received up to"
                + " revision " + last + " only: a client resuming from the progress would skip "
                + range(last + 1, m.revision()));
            return replay;
          }
        }
        case CHANGE -> {
          long r = m.revision();
          if (r != last + 1) {
            if (r > last + 1) {
              problems.add(watcher + ": gap: revision " + r + " " + m.origin() + " came after revision " + last
                  + "; missing " + range(last + 1, r - 1));
            } else {
              Message first = replay.byRevision.get(r);
              problems.add(watcher + ": revision " + r + " " + (r == last ? "twice" : "again, out of order,")
                  + ": " + m.origin() + " after revision " + last
                  + (first == null ? "" : "; it had come " + first.origin())
                  + (first != null && !first.data().equals(m.data()) ? ", with other events" : ""));
            }
            return replay;
          }
          String problem = fromTheStart ? apply(r, m.data(), replay) : null;
          if (problem != null && !eventProblemSeen) {
            eventProblemSeen = true;
            problems.add(watcher + ": revision " + r + " " + m.origin() + ": " + problem);
          }
          replay.byRevision.put(r, m);
          last = r;
        }
        default -> throw new IllegalStateException("unknown kind " + m.kind());
      }
    }
    if (last < finalRevision) {
      problems.add(watcher + ": received revisions up to " + last + " only; missing "
          + range(last + 1, finalRevision));
    } else if (last > finalRevision) {
      problems.add(watcher + ": received revision " + last + ", past the final revision " + finalRevision);
    } else {
      replay.complete = fromTheStart;
    }
    return replay;
  }

  /**
   * Applies the events of revision {@code r} to the replay; returns what is wrong with them, or
   * null. A put of a key sets its value, version (one more than before, 1 for a new key) and create
   * revision (r for a new key); a delete removes it.
   */
  private static String apply(long r, String data, Replay replay) {
    JsonNode events;
    try {
      events = JSON.readTree(data);
    } catch (IOException e) {
      return "data is not JSON (" + e.getMessage().lines().findFirst().orElse("") + "): " + abbreviate(data, SHOWN_CHARS);
    }
    if (events == null || !events.isArray() || events.isEmpty()) {
      return "data is not a non-empty array of events: " + abbreviate(data, SHOWN_CHARS);
    }
    String problem = null;
    for (JsonNode e : events) {
      replay.events++;
      String type = e.path("type").asText("");
      String key = e.path("key").isTextual() ? e.path("key").asText() : null;
      long mod = e.path("modRevision").asLong(-1);
      if (key == null) {
        problem = first(problem, "an event without a key: " + abbreviate(e.toString(), SHOWN_CHARS));
        continue;
      }
      if (mod != r) {
        problem = first(problem, "key " + abbreviate(key, 60) + " has modRevision " + mod + ", not the message's");
      }
      KeyState before = replay.state.get(key);
      if ("put".equals(type)) {
        String value = valueOf(e);
        if (value == null) {
          problem = first(problem, "a put of " + abbreviate(key, 60) + " without a value");
        }
        long create = before == null ? r : before.createRevision();
        long version = before == null ? 1 : before.version() + 1;
        long gotCreate = e.path("createRevision").asLong(-1);
        long gotVersion = e.path("version").asLong(-1);
        if (gotCreate != create || gotVersion != version) {
          problem = first(problem, "a put of " + abbreviate(key, 60) + " with createRevision " + gotCreate
              + " and version " + gotVersion + "; the revisions before it make them " + create + " and " + version);
        }
        // what the store says wins, so that one wrong field is not reported again at every later put
        replay.state.put(key, new KeyState(value, gotCreate, r, gotVersion));
      } else if ("delete".equals(type)) {
        if (before == null) {
          problem = first(problem, "a delete of " + abbreviate(key, 60) + ", which the revisions before it do not hold");
        }
        replay.state.remove(key);
      } else {
        problem = first(problem, "an event of type " + abbreviate(type, 30) + " for " + abbreviate(key, 60));
      }
    }
    return problem;
  }

  /** The value of a put event or a key of a range read: "utf8:..." or "base64:...", null if none. */
  static String valueOf(JsonNode kv) {
    if (kv.path("value").isTextual()) {
      return "utf8:" + kv.path("value").asText();
    }
    if (kv.path("valueBase64").isTextual()) {
      return "base64:" + kv.path("valueBase64").asText();
    }
    return null;
  }

  /**
   * The replayed state against the final one: the differing key whose change is earliest (by the
   * smaller of the two modRevisions) is reported, with the count of the others.
   */
  private static void compareWithFinalState(String watcher, Map<String, KeyState> replayed,
      Map<String, KeyState> finalState, List<String> problems) {
    TreeSet<String> keys = new TreeSet<>(replayed.keySet());
    keys.addAll(finalState.keySet());
    String firstKey = null;
    long firstRevision = Long.MAX_VALUE;
    int differing = 0;
    for (String key : keys) {
      KeyState mine = replayed.get(key);
      KeyState store = finalState.get(key);
      if (Objects.equals(mine, store)) {
        continue;
      }
      differing++;
      long at = Math.min(mine == null ? Long.MAX_VALUE : mine.modRevision(),
          store == null ? Long.MAX_VALUE : store.modRevision());
      if (at < firstRevision) {
        firstRevision = at;
        firstKey = key;
      }
    }
    if (firstKey == null) {
      return;
    }
    KeyState mine = replayed.get(firstKey);
    KeyState store = finalState.get(firstKey);
    problems.add(watcher + ": its replay differs from the final state in " + differing + " key(s), first at revision "
        + firstRevision + ": key " + abbreviate(firstKey, 60) + " is "
        + (mine == null ? "absent" : mine.describe()) + " in the replay, "
        + (store == null ? "absent" : store.describe()) + " in the store");
  }

  /**
   * The watchers against each other: the first revision (of those each received in order) whose
   * events differ between two watchers, and how many revisions differ.
   */
  private static void compareWatchers(Map<String, Map<Long, Message>> accepted, long finalRevision,
      List<String> problems) {
    long firstRevision = -1;
    String firstLine = null;
    int differing = 0;
    for (long r = 1; r <= finalRevision; r++) {
      String refWatcher = null;
      Message ref = null;
      for (Map.Entry<String, Map<Long, Message>> w : accepted.entrySet()) {
        Message m = w.getValue().get(r);
        if (m == null) {
          continue;
        }
        if (ref == null) {
          refWatcher = w.getKey();
          ref = m;
        } else if (!sameEvents(ref.data(), m.data())) {
          differing++;
          if (firstLine == null) {
            firstRevision = r;
            firstLine = refWatcher + " got " + abbreviate(ref.data(), SHOWN_CHARS) + " " + ref.origin() + ", "
                + w.getKey() + " got " + abbreviate(m.data(), SHOWN_CHARS) + " " + m.origin();
          }
          break;
        }
      }
    }
    if (firstLine != null) {
      problems.add("the watchers disagree on " + differing + " revision(s), first on revision " + firstRevision
          + ": " + firstLine);
    }
  }

  /** The same text, or the same JSON written differently. */
  private static boolean sameEvents(String a, String b) {
    if (a.equals(b)) {
      return true;
    }
    try {
      return Objects.equals(JSON.readTree(a), JSON.readTree(b));
    } catch (IOException e) {
      return false;
    }
  }

  private static String first(String problem, String another) {
    return problem != null ? problem : another;
  }

  private static String range(long from, long to) {
    return from == to ? "revision " + from : "revisions " + from + ".." + to + " (" + (to - from + 1) + ")";
  }

  /** {@code text} cut to {@code max} characters, with how long it was. */
  static String abbreviate(String text, int max) {
    if (text == null) {
      return "null";
    }
    return text.length() <= max ? text
        : text.substring(0, max) + "...(" + text.length() + " chars)";
  }
}
