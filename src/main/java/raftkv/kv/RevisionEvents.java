package raftkv.kv;

import java.util.List;

/**
 * The events of one revision, in the order the command made them: one for a put or the deletion of
 * one key, one per key for a prefix deletion or a transaction. A watch delivers them together.
 */
public record RevisionEvents(long revision, List<Event> events) {
  public RevisionEvents {
    events = List.copyOf(events);
  }
}
