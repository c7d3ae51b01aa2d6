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
 * actor's thread, and {@code asyncReplayMessages} from the completion of the latter; LevelDB's
 * reads run on Akka's replay dispatcher. The database is reopened only when no read is in flight
 * (each is counted before it can start), else on a later call, so that no read runs on a
 * database that is being closed, whatever threads the dispatchers have.
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
    readsInFlight.incrementAndGet(); // counted before the read can start on another thread
    return tracked(() -> super.asyncReadHighestSequenceNr(persistenceId, fromSequenceNr));
  }

  @Override
  public Future<BoxedUnit> asyncReplayMessages(String persistenceId, long fromSequenceNr, long toSequenceNr, long max,
                                               scala.Function1<akka.persistence.PersistentRepr, BoxedUnit> replayCallback) {
    // called from the callback of the highest-sequence-number read: never reopens, only counted
    readsInFlight.incrementAndGet(); // counted before the replay can start on another thread
    return tracked(() -> super.asyncReplayMessages(persistenceId, fromSequenceNr, toSequenceNr, max, replayCallback));
  }

  /** Whether a reopen is pending (for tests). */
  boolean reopenPending() {
    return reopenNeeded;
  }

  /** Starts {@code read}, already counted in {@link #readsInFlight}, and uncounts it when it ends. */
  private <T> Future<T> tracked(java.util.function.Supplier<Future<T>> read) {
    Future<T> started;
    try {
      started = read.get();
    } catch (RuntimeException e) {
      readsInFlight.decrementAndGet();
      throw e;
    }
    started.onComplete(r -> readsInFlight.decrementAndGet(), SAME_THREAD);
    return started;
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
