package raftkv.http;

import akka.http.javadsl.model.HttpRequest;
import akka.http.javadsl.model.headers.RawRequestURI;

import java.util.Optional;

/**
 * The request-target exactly as the client sent it, with strict percent-decoding of its parts.
 *
 * <p>Akka decodes the path while parsing, replacing malformed UTF-8 with U+FFFD; a key must not
 * change that way, so keys and query parameters are decoded here, from the {@code Raw-Request-URI}
 * header that {@code akka.http.server.raw-request-uri-header = on} adds. Without that header the
 * target is re-rendered from the parsed URI, which keeps {@code %2F} but cannot detect malformed
 * UTF-8 any more.
 */
final class RequestTarget {

  private final String path;
  private final String query;

  private RequestTarget(String path, String query) {
    this.path = path;
    this.query = query;
  }

  /** The raw path, percent-encoded as it came. */
  String path() {
    return path;
  }

  /** The raw query, or null. */
  String query() {
    return query;
  }

  static RequestTarget of(HttpRequest request) {
    Optional<RawRequestURI> raw = request.getHeader(RawRequestURI.class);
    return parse(raw.isPresent() ? raw.get().uri() : request.getUri().toRelative().toString());
  }

  /** Splits a raw request-target (origin-form or absolute-form) into its raw path and query. */
  static RequestTarget parse(String target) {
    int hash = target.indexOf('#');
    if (hash >= 0) {
      target = target.substring(0, hash);
    }
    int question = target.indexOf('?');
    String path = question < 0 ? target : target.substring(0, question);
    String query = question < 0 ? null : target.substring(question + 1);
    if (!path.startsWith("/")) {
      int scheme = path.indexOf("://");
      int slash = scheme < 0 ? -1 : path.indexOf('/', scheme + 3);
      path = slash < 0 ? "/" : path.substring(slash);
    }
    return new RequestTarget(path, query);
  }

  /**
   * The decoded rest of the path after its first {@code segments} segments: for
   * {@code /v1/kv/config%2Fapp/db} and 2 segments, {@code config/app/db}. Empty when nothing follows.
   *
   * @throws ApiError bad_request when the rest is not percent-encoded UTF-8
   */
  String pathAfter(int segments, String what) {
    int slash = 0;
    for (int i = 0; i < segments; i++) {
      slash = path.indexOf('/', slash + 1);
      if (slash < 0) {
        return "";
      }
    }
    return decode(path.substring(slash + 1), false, what);
  }

  /**
   * The decoded value of the first query parameter named {@code name} ({@code +} is a space, as in
   * forms); "" when it has no {@code =}; null when it is absent.
   *
   * @throws ApiError bad_request when the value is not percent-encoded UTF-8
   */
  String param(String name) {
    if (query == null) {
      return null;
    }
    int start = 0;
    while (start <= query.length()) {
      int end = query.indexOf('&', start);
      if (end < 0) {
        end = query.length();
      }
      int equals = query.indexOf('=', start);
      int nameEnd = equals < 0 || equals > end ? end : equals;
      String rawName = query.substring(start, nameEnd);
      if (rawName.equals(name) || (needsDecoding(rawName, true) && name.equals(decodeOrNull(rawName)))) {
        return nameEnd == end ? "" : decode(query.substring(nameEnd + 1, end), true, "query parameter " + name);
      }
      start = end + 1;
    }
    return null;
  }

  private static String decodeOrNull(String raw) {
    try {
      return decode(raw, true, "");
    } catch (ApiError e) {
      return null;
    }
  }

  private static boolean needsDecoding(String raw, boolean plusIsSpace) {
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%' || c >= 0x80 || (plusIsSpace && c == '+')) {
        return true;
      }
    }
    return false;
  }

  /** Percent-decodes {@code raw} into bytes and reads them as strict UTF-8. */
  static String decode(String raw, boolean plusIsSpace, String what) {
    if (!needsDecoding(raw, plusIsSpace)) {
      return raw;
    }
    byte[] bytes = new byte[raw.length()];
    int n = 0;
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%') {
        int high = i + 2 < raw.length() ? hex(raw.charAt(i + 1)) : -1;
        int low = high < 0 ? -1 : hex(raw.charAt(i + 2));
        if (low < 0) {
          throw ApiError.badRequest(what + " has a malformed percent-encoding at position " + i);
        }
        bytes[n++] = (byte) (high << 4 | low);
        i += 2;
      } else if (c == '+' && plusIsSpace) {
        bytes[n++] = ' ';
      } else if (c < 0x80) {
        bytes[n++] = (byte) c;
      } else {
        throw ApiError.badRequest(what + " has a character that is not percent-encoded at position " + i);
      }
    }
    String text = Utf8.decodeOrNull(bytes, 0, n);
    if (text == null) {
      throw ApiError.badRequest(what + " is not valid UTF-8 once percent-decoded");
    }
    return text;
  }

  private static int hex(char c) {
    if (c >= '0' && c <= '9') {
      return c - '0';
    } else if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  }
}
