package raftkv.recipes;

import raftkv.client.RaftKvException;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;

/**
 * Small pieces the recipes share for stages: the cause inside a completion's wrappers, a failure's
 * kind, and moving a stage's callbacks onto the actor system's dispatcher (a stage converted from a
 * Scala future would otherwise run them on the common pool, which starts threads of its own).
 */
final class Completions {
  private Completions() {}

  /** {@code stage}'s outcome, completing on {@code executor}, so that callbacks on it run there. */
  static <T> CompletableFuture<T> on(Executor executor, CompletionStage<T> stage) {
    CompletableFuture<T> out = new CompletableFuture<>();
    stage.whenCompleteAsync((value, failure) -> {
      if (failure != null) {
        out.completeExceptionally(unwrap(failure));
      } else {
        out.complete(value);
      }
    }, executor);
    return out;
  }

  static Throwable unwrap(Throwable failure) {
    Throwable cause = failure;
    while ((cause instanceof CompletionException || cause instanceof ExecutionException) && cause.getCause() != null) {
      cause = cause.getCause();
    }
    return cause;
  }

  /** Whether {@code failure} is (or wraps) a {@link RaftKvException} of {@code kind}. */
  static boolean is(Throwable failure, RaftKvException.Kind kind) {
    return unwrap(failure) instanceof RaftKvException e && e.kind() == kind;
  }
}
