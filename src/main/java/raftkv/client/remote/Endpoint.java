package raftkv.client.remote;

import java.net.URI;
import java.util.Locale;

/**
 * One node's HTTP address: {@code host:port}, or a URL like {@code http://host:port} (a path, if
 * any, is ignored). Only {@code http} is supported.
 */
record Endpoint(String host, int port) {

  Endpoint {
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("an endpoint needs a host");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("an endpoint's port runs from 1 to 65535, not " + port);
    }
  }

  /** Parses {@code host:port}, {@code [v6]:port} or {@code http://host:port[/...]}. */
  static Endpoint parse(String text) {
    if (text == null || text.isBlank()) {
      throw new IllegalArgumentException("an endpoint is host:port or http://host:port, not an empty string");
    }
    String s = text.trim();
    String lower = s.toLowerCase(Locale.ROOT);
    if (lower.startsWith("https://")) {
      throw new IllegalArgumentException("https endpoints are not supported yet: " + s);
    }
    URI uri;
    try {
      uri = URI.create(lower.startsWith("http://") ? s : "http://" + s);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("an endpoint is host:port or http://host:port, not '" + s + "'", e);
    }
    if (uri.getHost() == null || uri.getPort() < 0) {
      throw new IllegalArgumentException("an endpoint is host:port or http://host:port (with the port), not '" + s + "'");
    }
    String host = uri.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new Endpoint(host, uri.getPort());
  }

  /** {@code http://host:port}, the base of request URIs. */
  String base() {
    return "http://" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }

  @Override
  public String toString() {
    return host + ":" + port;
  }
}
