package raftkv.http;

import akka.event.LoggingAdapter;
import akka.http.ParsingErrorHandler;
import akka.http.javadsl.model.HttpResponse;
import akka.http.scaladsl.model.ErrorInfo;
import akka.http.scaladsl.model.StatusCode;
import akka.http.scaladsl.settings.ServerSettings;

/**
 * Answers requests that Akka cannot even parse (a malformed percent-encoding such as
 * {@code /v1/kv/%zz}, a bad request line or header) with the JSON errors of API.md §6 instead of
 * Akka's plain text: a URI or body over Akka's limits is a 413 too_large, anything else a 400
 * bad_request.
 *
 * <p>Enabled by {@code akka.http.server.parsing.error-handler = "raftkv.http.JsonParsingErrorHandler"};
 * Akka instantiates it reflectively (public no-arg constructor), once per connection.
 */
public final class JsonParsingErrorHandler extends ParsingErrorHandler {

  public JsonParsingErrorHandler() {}

  @Override
  public HttpResponse handle(StatusCode status, ErrorInfo info, LoggingAdapter log, ServerSettings settings) {
    int code = status.intValue();
    String problem = info.formatPretty();
    log.debug("Unparsable request answered with {}: {}", code, problem);
    ApiError error = code == 413 || code == 414
        ? ApiError.tooLarge("the request is too large: " + problem)
        : ApiError.badRequest("the request is malformed: " + problem);
    return error.toResponse();
  }
}
