package raftkv.client;

import raftkv.kv.RevisionEvents;

/** What a watch delivers (API.md §4, "What a watch sends"). */
public sealed interface WatchMessage {
  /** The revision this message is about: the SSE {@code id}. */
  long revision();

  /** The watched keys' events of one revision, all of them, in the order they were made. */
  record Change(RevisionEvents events) implements WatchMessage {
    @Override
    public long revision() {
      return events.revision();
    }
  }

  /** Caught up to {@code revision}: every change up to it has been delivered. */
  record Progress(long revision) implements WatchMessage {}

  /**
   * The watcher fell behind the history's compaction: revisions up to {@code compactRevision} are
   * gone. The last message of its stream.
   */
  record Compacted(long compactRevision) implements WatchMessage {
    @Override
    public long revision() {
      return compactRevision;
    }
  }
}
