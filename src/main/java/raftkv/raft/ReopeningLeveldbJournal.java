package raftkv.raft;

import akka.persistence.AtomicWrite;
import akka.persistence.journal.leveldb.LeveldbJournal;
import com.typesafe.config.Config;
import org.iq80.leveldb.CompressionType;
import scala.Option;
import scala.collection.immutable.Seq;
import scala.concurrent.Future;
import scala.runtime.BoxedUnit;
import scala.util.Try;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Akka's LevelDB journal, which closes and reopens its database on the first call after a write
 * that failed. LevelDB keeps a background error (a compaction or a log write that failed, on a
 * full disk say) and fails every later write with it until the database is reopened, while Akka's
 * journal opens it only when the plugin actor starts: without this, a node whose disk filled up
 * once would fail every write until the process restarts.
 *
 * <p>The class of {@code raftkv.journal} (reference.conf).
 *
 * <p>Akka calls {@code asyncWriteMessages} and {@code asyncReadHighestSequenceNr} on the plugin
 * actor's thread, but runs the replay of events (and the read of the highest sequence number)
 * on its replay dispatcher: the database is reopened only when no such read is in flight, else
 * on a later call, so that no read runs on a database that is being closed.
 */
@SuppressWarnings("deprecation") // Akka deprecated its LevelDB journal (2.6.15); raftkv uses it
public class ReopeningLeveldbJournal extends LeveldbJournal {

  /** Runs the bookkeeping of a completed read on the thread that completed it. */
  private static final scala.concurrent.ExecutionContext SAME_THREAD = akka.dispatch.ExecutionContexts.fromExecutor(Runnable::run);

  /** A write failed since the database was last opened (the plugin actor's thread only). */
  private boolean reopenNeeded;
  /** Reads running on the replay dispatcher. */
  private final AtomicInteger readsInFlight = new AtomicInteger();

  public ReopeningLeveldbJournal(Config config) {
    super(config);
  }

  @Override
  public Future<Seq<Try<BoxedUnit>>> asyncWriteMessages(Seq<AtomicWrite> messages) {
    Future<Seq<Try<BoxedUnit>>> reopen = reopenIfNeeded();
    if (reopen != null) {
      return reopen;
    }
    Future<Seq<Try<BoxedUnit>>> result = super.asyncWriteMessages(messages);
    // LevelDB writes synchronously: the future is complete, failed when the batch was not written
    Option<Try<Seq<Try<BoxedUnit>>>> done = result.value();
    if (done.isEmpty() || done.get().isFailure()) {
      reopenNeeded = true;
    }
    return result;
  }

  @Override
  public Future<Object> asyncReadHighestSequenceNr(String persistenceId, long fromSequenceNr) {
    Future<Object> reopen = reopenIfNeeded();
    if (reopen != null) {
      return reopen;
    }
    return tracked(super.asyncReadHighestSequenceNr(persistenceId, fromSequenceNr));
  }

  @Override
  public Future<BoxedUnit> asyncReplayMessages(String persistenceId, long fromSequenceNr, long toSequenceNr, long max,
                                               scala.Function1<akka.persistence.PersistentRepr, BoxedUnit> replayCallback) {
    // called from a future's callback, not on the actor's thread: never reopens, only counted
    return tracked(super.asyncReplayMessages(persistenceId, fromSequenceNr, toSequenceNr, max, replayCallback));
  }

  /** Whether a reopen is pending (for tests). */
  boolean reopenPending() {
    return reopenNeeded;
  }

  private <T> Future<T> tracked(Future<T> read) {
    readsInFlight.incrementAndGet();
    read.onComplete(r -> readsInFlight.decrementAndGet(), SAME_THREAD);
    return read;
  }

  /**
   * Reopens the database when a write failed since it was opened and no read is in flight; null
   * when the call may go on, a failed future when the database could not be opened (the next call
   * tries again).
   */
  private <T> Future<T> reopenIfNeeded() {
    if (!reopenNeeded || readsInFlight.get() > 0) {
      return null;
    }
    try {
      leveldb().close();
      leveldb_$eq(leveldbFactory().open(leveldbDir(),
          nativeLeveldb() ? leveldbOptions() : leveldbOptions().compressionType(CompressionType.NONE)));
      reopenNeeded = false;
      log().warning("Reopened the LevelDB journal in {} after a failed write", leveldbDir());
      return null;
    } catch (Exception e) {
      log().error("Cannot reopen the LevelDB journal in {}: {}", leveldbDir(), e.getMessage());
      return akka.dispatch.Futures.failed(e);
    }
  }
}
