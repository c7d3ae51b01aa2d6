package raftkv.history;

import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * What the {@link SetChecker} found; {@link #toString()} is the text for an assertion message.
 *
 * @param attempted           distinct elements some client tried to add
 * @param acknowledged        of those, added with an OK response
 * @param failed              definitely not added (every attempt FAIL)
 * @param unknown             may or may not have been added (no OK, some UNKNOWN attempt)
 * @param recoveredUnknowns   unknown adds present in the final read
 * @param unrecoveredUnknowns unknown adds absent from it (legal: they never took effect)
 * @param read                distinct elements in the final read
 * @param lost                acknowledged adds missing from the final read
 * @param phantoms            elements in the final read that nobody tried to add
 * @param revived             elements in the final read whose every add definitely failed
 * @param duplicated          elements the final read returned more than once
 */
public record SetCheckResult(
    int attempted,
    int acknowledged,
    int failed,
    int unknown,
    int recoveredUnknowns,
    int unrecoveredUnknowns,
    int read,
    SortedSet<String> lost,
    SortedSet<String> phantoms,
    SortedSet<String> revived,
    SortedSet<String> duplicated) {

  /** Freezes the sets. */
  public SetCheckResult {
    lost = Collections.unmodifiableSortedSet(new TreeSet<>(lost));
    phantoms = Collections.unmodifiableSortedSet(new TreeSet<>(phantoms));
    revived = Collections.unmodifiableSortedSet(new TreeSet<>(revived));
    duplicated = Collections.unmodifiableSortedSet(new TreeSet<>(duplicated));
  }

  /**
   * True when nothing was lost and nothing appeared from nowhere: no lost, phantom, revived (a
   * 503 promises the add was not applied) or duplicated element.
   */
  public boolean ok() {
    return lost.isEmpty() && phantoms.isEmpty() && revived.isEmpty() && duplicated.isEmpty();
  }

  @Override
  public String toString() {
    StringBuilder text = new StringBuilder()
        .append(ok() ? "set: ok" : "set: NOT ok")
        .append(": ").append(attempted).append(" attempted, ")
        .append(acknowledged).append(" acknowledged, ")
        .append(failed).append(" failed, ")
        .append(unknown).append(" unknown (").append(recoveredUnknowns).append(" recovered, ")
        .append(unrecoveredUnknowns).append(" not), ")
        .append(read).append(" in the final read");
    appendList(text, "lost (acknowledged, missing from the final read)", lost);
    appendList(text, "phantom (in the final read, never attempted)", phantoms);
    appendList(text, "revived (in the final read, every add failed)", revived);
    appendList(text, "duplicated (more than once in the final read)", duplicated);
    return text.toString();
  }

  private static void appendList(StringBuilder text, String title, SortedSet<String> elements) {
    if (elements.isEmpty()) {
      return;
    }
    text.append("\n  ").append(elements.size()).append(' ').append(title).append(": ");
    int shown = 0;
    for (String element : elements) {
      if (shown++ == 50) {
        text.append(", ... ").append(elements.size() - 50).append(" more");
        break;
      }
      text.append(shown > 1 ? ", " : "").append(element);
    }
  }
}
