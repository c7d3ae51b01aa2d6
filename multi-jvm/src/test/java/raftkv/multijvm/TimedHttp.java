package raftkv.multijvm;

import java.net.ConnectException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import raftkv.multijvm.LeaseIdempotencyChecker.Answer;

/**
 * One request at a time to a node on 127.0.0.1, as {@link KvHttpClient#send} does, but keeping
 * what the lease and idempotency checks need besides the status and body: the answer's headers
 * ({@code Idempotent-Replayed}, {@code X-Version}, ...) and when the request was sent and its
 * answer (or the failure) came, on the test JVM's {@link System#nanoTime()}.
 */
final class TimedHttp {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** Slack past the request timeout for the JDK's own timer before we stop waiting anyway. */
  private static final long GUARD_MILLIS = 1_000;

  private final HttpClient http;
  private final Duration timeout;

  TimedHttp(Duration timeout) {
    this.timeout = timeout;
    this.http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofMillis(Math.min(1_000, timeout.toMillis())))
        .followRedirects(HttpClient.Redirect.NEVER)
        .build();
  }

  /** What came back: the answer and its headers, or how it failed (status -1). */
  record Reply(Answer answer, HttpResponse<byte[]> response) {

    int status() {
      return answer.status();
    }

    /** The first value of header {@code name}, if the node answered with it. */
    Optional<String> header(String name) {
      return response == null ? Optional.empty() : response.headers().firstValue(name);
    }

    /** The body as JSON, if it is JSON. */
    Optional<JsonNode> json() {
      String body = answer.body();
      if (body == null || body.isEmpty()) {
        return Optional.empty();
      }
      try {
        return Optional.ofNullable(JSON.readTree(body));
      } catch (java.io.IOException e) {
        return Optional.empty();
      }
    }

    /** The {@code error} code of a JSON error body (API.md §6), or "". */
    String errorCode() {
      return json().map(j -> j.path("error").asText("")).orElse("");
    }
  }

  /** Sends one request to {@code node}; never throws for a network failure. */
  Reply send(NodeProcess node, String method, String pathAndQuery, byte[] body, String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(node.uri(pathAndQuery))
        .timeout(timeout)
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofByteArray(body));
    for (int i = 0; i + 1 < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    long sent = System.nanoTime();
    CompletableFuture<HttpResponse<byte[]>> call =
        http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    Throwable failure;
    try {
      HttpResponse<byte[]> response = call.get(timeout.toMillis() + GUARD_MILLIS, TimeUnit.MILLISECONDS);
      long end = System.nanoTime();
      String text = response.body() == null ? "" : new String(response.body(), StandardCharsets.UTF_8);
      boolean replayed = response.headers().firstValue("Idempotent-Replayed").map("true"::equalsIgnoreCase)
          .orElse(false);
      return new Reply(new Answer(node.id(), sent, end, response.statusCode(), replayed, text, null, false), response);
    } catch (ExecutionException e) {
      failure = e.getCause() == null ? e : e.getCause();
    } catch (TimeoutException e) {
      call.cancel(true);
      failure = e;
    } catch (InterruptedException e) {
      call.cancel(true);
      Thread.currentThread().interrupt();
      failure = e;
    }
    long end = System.nanoTime();
    boolean refused = failure instanceof ConnectException || failure instanceof HttpConnectTimeoutException;
    String message = failure.getMessage();
    return new Reply(new Answer(node.id(), sent, end, -1, false, null,
        failure.getClass().getSimpleName() + (message == null ? "" : ": " + message), refused), null);
  }
}
