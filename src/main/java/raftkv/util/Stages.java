package raftkv.util;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;

/**
 * CompletionStages that run their callbacks on the completing thread.
 *
 * <p>Akka's Java APIs (asks, {@code toStrict}, bindings) hand out Scala futures converted to
 * CompletionStages, and those run every non-async callback as if it were {@code ...Async}: on
 * {@code ForkJoinPool.commonPool()}, which on a 2-core machine has a parallelism of 1, so the JDK
 * starts <em>a new thread for every callback</em>. {@link #direct} turns such a stage into a plain
 * CompletableFuture whose callbacks run where it completes (an actor's or Akka's own thread).
 * Callbacks passed through it must be short and must not block.
 */
public final class Stages {
  private static final Executor SAME_THREAD = Runnable::run;

  private Stages() {}

  /** The same outcome as {@code stage}, as a plain CompletableFuture that runs callbacks synchronously. */
  public static <T> CompletableFuture<T> direct(CompletionStage<T> stage) {
    if (stage.getClass() == CompletableFuture.class) {
      return (CompletableFuture<T>) stage;
    }
    CompletableFuture<T> out = new CompletableFuture<>();
    // the ...Async variant with an explicit executor is the one that converted stages do not redirect
    stage.whenCompleteAsync((value, failure) -> {
      if (failure != null) {
        out.completeExceptionally(failure);
      } else {
        out.complete(value);
      }
    }, SAME_THREAD);
    return out;
  }
}
