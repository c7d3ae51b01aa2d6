package raftkv.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import raftkv.multijvm.WatchChecker.KeyState;
import raftkv.multijvm.WatchChecker.Message;
import raftkv.multijvm.WatchChecker.Report;

/**
 * The {@link WatchChecker} on made-up watch streams: a correct history passes, and a gap, a
 * duplicate, a revision out of order, a wrong value, a wrong version, a progress ahead of the
 * changes and a watcher that stops short are each reported, at the revision where they are.
 */
class WatchCheckerTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** A store that makes the change messages of its revisions and knows its final state. */
  private static final class Store {
    final List<Message> changes = new ArrayList<>();
    final Map<String, KeyState> state = new TreeMap<>();
    long revision;

    /** One revision: puts (key, value pairs), or deletes of keys given with a null value. */
    Store txn(String... keysAndValues) {
      revision++;
      ArrayNode events = JSON.createArrayNode();
      for (int i = 0; i < keysAndValues.length; i += 2) {
        String key = keysAndValues[i];
        String value = keysAndValues[i + 1];
        ObjectNode e = events.addObject();
        if (value == null) {
          e.put("type", "delete").put("key", key).put("createRevision", 0).put("modRevision", revision)
              .put("version", 0);
          state.remove(key);
        } else {
          KeyState before = state.get(key);
          KeyState after = new KeyState("utf8:" + value, before == null ? revision : before.createRevision(),
              revision, before == null ? 1 : before.version() + 1);
          e.put("type", "put").put("key", key).put("value", value).put("createRevision", after.createRevision())
              .put("modRevision", revision).put("version", after.version());
          state.put(key, after);
        }
      }
      changes.add(Message.change(revision, events.toString(), "n1", 1));
      return this;
    }

    /** Ten revisions of puts and deletes on three keys, one of them a transaction of two puts. */
    static Store sample() {
      return new Store().txn("a", "1").txn("b", "1").txn("a", "2").txn("c", "1").txn("b", null)
          .txn("a", "3", "c", "2").txn("b", "2").txn("c", null).txn("b", "3").txn("a", "4");
    }
  }

  private static Map<String, List<Message>> watchers(List<Message> n1, List<Message> n2, List<Message> n3) {
    Map<String, List<Message>> watchers = new LinkedHashMap<>();
    watchers.put("w-n1", n1);
    watchers.put("w-n2", n2);
    watchers.put("w-n3", n3);
    return watchers;
  }

  private static Report check(Store store, List<Message> n1, List<Message> n2, List<Message> n3) {
    Report report = new WatchChecker().check(watchers(n1, n2, n3), store.revision, store.state);
    System.out.println(report.describe());
    return report;
  }

  private static List<Message> copy(List<Message> messages) {
    return new ArrayList<>(messages);
  }

  private static void assertReported(Report report, String... fragments) {
    assertFalse(report.ok(), "a problem must be found");
    String text = report.describe();
    for (String fragment : fragments) {
      assertTrue(text.contains(fragment), "the report names \"" + fragment + "\":\n" + text);
    }
  }

  @Test
  void aCorrectHistoryPasses() {
    Store store = Store.sample();
    List<Message> withProgress = copy(store.changes);
    withProgress.add(4, Message.progress(4, "n2", 1)); // caught up to 4, resuming from it skips nothing
    withProgress.add(0, Message.progress(0, "n2", 1));
    Report report = check(store, store.changes, withProgress, copy(store.changes));
    assertTrue(report.ok(), report.describe());
    assertTrue(report.summary().contains("final revision 10"), report.summary());
  }

  @Test
  void aGapIsReportedWithTheMissingRevision() {
    Store store = Store.sample();
    List<Message> gap = copy(store.changes);
    gap.remove(4); // revision 5
    Report report = check(store, store.changes, gap, store.changes);
    assertReported(report, "w-n2: gap: revision 6", "missing revision 5");
    assertEquals(1, report.problems().stream().filter(p -> p.contains("gap")).count());
  }

  @Test
  void aDuplicateAcrossAReconnectIsReported() {
    Store store = Store.sample();
    List<Message> twice = copy(store.changes);
    Message again = store.changes.get(3); // revision 4, once more on the next connection to n3
    twice.add(4, Message.change(again.revision(), again.data(), "n3", 2));
    Report report = check(store, twice, store.changes, store.changes);
    assertReported(report, "w-n1: revision 4 twice", "from n3 (connection #2)", "it had come from n1 (connection #1)");
  }

  @Test
  void aRevisionOutOfOrderIsReported() {
    Store store = Store.sample();
    List<Message> swapped = copy(store.changes);
    swapped.set(6, store.changes.get(7));
    swapped.set(7, store.changes.get(6));
    Report report = check(store, store.changes, store.changes, swapped);
    assertReported(report, "w-n3: gap: revision 8", "missing revision 7");
  }

  @Test
  void aWrongValueIsReportedAtItsRevision() {
    Store store = Store.sample();
    List<Message> wrong = copy(store.changes);
    Message seventh = store.changes.get(6); // revision 7 puts b=2; no later revision... b=3 follows at 9
    wrong.set(6, Message.change(7, seventh.data().replace("\"value\":\"2\"", "\"value\":\"X\""), "n2", 1));
    Report report = check(store, store.changes, wrong, store.changes);
    assertReported(report, "the watchers disagree on 1 revision(s), first on revision 7", "\"value\":\"X\"");
  }

  @Test
  void aWrongFinalValueIsReportedByTheReplay() {
    Store store = Store.sample();
    List<Message> wrong = copy(store.changes);
    Message last = store.changes.get(9); // revision 10 puts a=4, the last value of a
    wrong.set(9, Message.change(10, last.data().replace("\"value\":\"4\"", "\"value\":\"5\""), "n1", 1));
    Report report = check(store, wrong, store.changes, store.changes);
    assertReported(report, "w-n1: its replay differs from the final state in 1 key(s), first at revision 10",
        "key a is value utf8:5", "value utf8:4");
    assertReported(report, "first on revision 10");
  }

  @Test
  void aWrongVersionIsReported() {
    Store store = Store.sample();
    List<Message> wrong = copy(store.changes);
    Message third = store.changes.get(2); // revision 3: a's second version
    wrong.set(2, Message.change(3, third.data().replace("\"version\":2", "\"version\":1"), "n1", 1));
    Report report = check(store, wrong, wrong, wrong);
    assertReported(report, "w-n1: revision 3 from n1 (connection #1): a put of a with createRevision 1 and version 1;"
        + " the revisions before it make them 1 and 2");
  }

  @Test
  void aProgressAheadOfTheChangesIsReported() {
    Store store = Store.sample();
    List<Message> ahead = copy(store.changes);
    ahead.add(3, Message.progress(5, "n1", 1)); // after revision 3
    Report report = check(store, ahead, store.changes, store.changes);
    assertReported(report, "w-n1: progress 5", "up to revision 3 only", "would skip revisions 4..5");
  }

  @Test
  void aWatcherThatStopsShortIsReported() {
    Store store = Store.sample();
    Report report = check(store, store.changes, store.changes.subList(0, 8), store.changes);
    assertReported(report, "w-n2: received revisions up to 8 only; missing revisions 9..10");
  }

  @Test
  void aWatcherFromACompactRevisionIsComparedNotReplayed() {
    Store store = Store.sample();
    List<Message> later = new ArrayList<>(List.of(Message.historyStarts(6, "n2", 1)));
    later.addAll(store.changes.subList(6, 10));
    Report report = check(store, store.changes, later, store.changes);
    assertTrue(report.ok(), report.describe());
    assertTrue(report.summary().contains("1 from a node's compact revision on"), report.summary());

    List<Message> gap = new ArrayList<>(List.of(Message.historyStarts(6, "n2", 1)));
    gap.addAll(store.changes.subList(7, 10));
    assertReported(check(store, store.changes, gap, store.changes), "w-n2: gap: revision 8", "missing revision 7");

    List<Message> wrong = new ArrayList<>(later);
    Message eighth = store.changes.get(7); // revision 8 deletes c
    wrong.set(2, Message.change(8, eighth.data().replace("\"key\":\"c\"", "\"key\":\"a\""), "n2", 1));
    assertReported(check(store, store.changes, wrong, store.changes), "first on revision 8");
  }

  @Test
  void aMalformedMessageIsReported() {
    Store store = Store.sample();
    List<Message> bad = copy(store.changes);
    bad.add(2, Message.malformed("a change message with id null: []", "n1", 1));
    assertReported(check(store, store.changes, store.changes, bad), "w-n3: a malformed message after revision 2");
  }
}
