package raftkv.http;

import akka.http.javadsl.model.HttpHeader;
import akka.http.javadsl.model.HttpResponse;
import akka.http.javadsl.model.StatusCode;
import akka.http.javadsl.model.StatusCodes;
import akka.http.javadsl.model.headers.RawHeader;

import java.util.List;

/**
 * An error answer of the HTTP API (API.md §6): a status, the code that goes with it and one
 * sentence for a human. Request parsing throws it; failed calls to the node are turned into one.
 * It carries no stack trace: it describes an expected condition, not a bug.
 */
final class ApiError extends RuntimeException {

  /** Every 503 tells the client when to retry (API.md §6). */
  static final HttpHeader RETRY_AFTER = RawHeader.create("Retry-After", "1");

  private final StatusCode status;
  private final String code;
  /** A number the body carries beside the message ({@code modRevision} of a 412, {@code compactRevision} of a 410), or null. */
  private final String field;
  private final Long value;

  private ApiError(StatusCode status, String code, String message, Long modRevision) {
    this(status, code, message, modRevision == null ? null : "modRevision", modRevision);
  }

  private ApiError(StatusCode status, String code, String message, String field, Long value) {
    super(message, null, false, false);
    this.status = status;
    this.code = code;
    this.field = field;
    this.value = value;
  }

  /** 422: an Idempotency-Key used before with a different request; nothing was applied. */
  static ApiError idempotencyKeyReused(String message) {
    return new ApiError(StatusCodes.UNPROCESSABLE_ENTITY, "idempotency_key_reused", message, null);
  }

  /** 410: a watch from a revision that compaction removed; the body names {@code compactRevision}. */
  static ApiError compacted(String message, long compactRevision) {
    return new ApiError(StatusCodes.GONE, "compacted", message, "compactRevision", compactRevision);
  }

  /** 400: a malformed key, body, JSON, header or parameter; nothing was applied. */
  static ApiError badRequest(String message) {
    return new ApiError(StatusCodes.BAD_REQUEST, "bad_request", message, null);
  }

  /** 404: an absent key, or a path that names no endpoint. */
  static ApiError notFound(String message) {
    return new ApiError(StatusCodes.NOT_FOUND, "not_found", message, null);
  }

  /** 409: refused in the cluster's present state (a membership change pending, a learner not caught up); nothing changed. */
  static ApiError conflict(String message) {
    return new ApiError(StatusCodes.CONFLICT, "conflict", message, null);
  }

  /** 405: the path exists, the method does not. */
  static ApiError methodNotAllowed(String message) {
    return new ApiError(StatusCodes.METHOD_NOT_ALLOWED, "method_not_allowed", message, null);
  }

  /** 412: a compare-and-set or create-only precondition did not hold; the body names the current modRevision. */
  static ApiError preconditionFailed(long currentModRevision) {
    return new ApiError(StatusCodes.PRECONDITION_FAILED, "precondition_failed",
        "the precondition did not hold: the key's modRevision is " + currentModRevision
            + (currentModRevision == 0 ? " (it does not exist)" : ""),
        currentModRevision);
  }

  /**
   * 412: an If-Fence (or a txn compare on a lock) named a token that no longer holds the lock; the
   * body names the current holder's {@code fencingToken}, 0 when nobody holds it.
   */
  static ApiError fenceFailed(String lock, long holderToken) {
    String name = lock.length() > 80 ? lock.substring(0, 80) + "..." : lock;
    return new ApiError(StatusCodes.PRECONDITION_FAILED, "precondition_failed",
        "the fencing token does not hold lock '" + name + "'"
            + (holderToken == 0 ? ": nobody holds it" : ": its holder's token is " + holderToken) + "; nothing was applied",
        "fencingToken", holderToken);
  }

  /** 412 for a condition other than a key's modRevision (a lock or election key that does not lead). */
  static ApiError precondition(String message) {
    return new ApiError(StatusCodes.PRECONDITION_FAILED, "precondition_failed", message, null);
  }

  /** 408: a lock or an election not won within waitSeconds; the waiter's key was removed. */
  static ApiError lockTimeout(String message) {
    return new ApiError(StatusCodes.REQUEST_TIMEOUT, "lock_timeout", message, null);
  }

  /** 413: a key, value or request over the limit. */
  static ApiError tooLarge(String message) {
    return new ApiError(StatusCodes.PAYLOAD_TOO_LARGE, "too_large", message, null);
  }

  /** 501: this node's handle cannot do what the endpoint asks (a backup from a handle that takes none). */
  static ApiError notImplemented(String message) {
    return new ApiError(StatusCodes.NOT_IMPLEMENTED, "not_implemented", message, null);
  }

  /** 503: the request was not applied; retry. */
  static ApiError unavailable(String message) {
    return new ApiError(StatusCodes.SERVICE_UNAVAILABLE, "unavailable", message, null);
  }

  /** 504: a write was proposed but is not known to be committed: its outcome is unknown. */
  static ApiError timeout(String message) {
    return new ApiError(StatusCodes.GATEWAY_TIMEOUT, "timeout", message, null);
  }

  /** 500: a bug; the cause is logged where it was caught, never sent to the client. */
  static ApiError internal() {
    return new ApiError(StatusCodes.INTERNAL_SERVER_ERROR, "internal", "the server failed to handle the request", null);
  }

  StatusCode status() {
    return status;
  }

  String code() {
    return code;
  }

  /** The JSON response: {@code {"error","message"}}, plus {@code modRevision} for a 412 and {@code compactRevision} for a 410. */
  HttpResponse toResponse() {
    HttpResponse response = HttpResponse.create()
        .withStatus(status)
        .withEntity(Json.error(code, getMessage(), field, value));
    return status.intValue() == 503 ? response.withHeaders(List.of(RETRY_AFTER)) : response;
  }
}
