package raftkv.client.remote;

import akka.NotUsed;
import akka.stream.javadsl.Flow;
import akka.stream.javadsl.Framing;
import akka.stream.javadsl.FramingTruncation;
import akka.util.ByteString;
import com.fasterxml.jackson.databind.JsonNode;
import raftkv.client.WatchMessage;
import raftkv.kv.Event;
import raftkv.kv.RevisionEvents;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a watch's Server-Sent Events (API.md §4) into {@link WatchMessage}s: {@code event: change}
 * (data: the revision's events as a JSON array), the older one-event-per-message form ({@code event:
 * put|delete}, data one object), {@code progress} and {@code compacted}. Comments and unknown events
 * are skipped; a message is dispatched at its blank line, as the SSE spec says.
 */
final class Sse {

  /** The longest line: one revision's events (a prefix delete of many keys) come on one data line. */
  private static final int MAX_LINE_BYTES = 256 * 1024 * 1024;

  private Sse() {}

  static Flow<ByteString, WatchMessage, NotUsed> messages() {
    return Flow.<ByteString>create()
        .via(Framing.delimiter(ByteString.fromString("\n"), MAX_LINE_BYTES, FramingTruncation.ALLOW))
        .statefulMapConcat(() -> {
          Parser parser = new Parser();
          return parser::line;
        });
  }

  /** The fields of the message being read. */
  private static final class Parser {
    private String id;
    private String event;
    private StringBuilder data;

    List<WatchMessage> line(ByteString bytes) {
      String line = bytes.decodeString(StandardCharsets.UTF_8);
      if (line.endsWith("\r")) {
        line = line.substring(0, line.length() - 1);
      }
      if (line.isEmpty()) {
        WatchMessage message = dispatch();
        id = null;
        event = null;
        data = null;
        return message == null ? List.of() : List.of(message);
      }
      if (line.startsWith(":")) {
        return List.of();
      }
      int colon = line.indexOf(':');
      String field = colon < 0 ? line : line.substring(0, colon);
      String value = colon < 0 ? "" : line.substring(colon + 1);
      if (value.startsWith(" ")) {
        value = value.substring(1);
      }
      switch (field) {
        case "id" -> id = value;
        case "event" -> event = value;
        case "data" -> {
          if (data == null) {
            data = new StringBuilder(value);
          } else {
            data.append('\n').append(value);
          }
        }
        default -> { }
      }
      return List.of();
    }

    private WatchMessage dispatch() {
      String type = event == null ? "change" : event;
      try {
        switch (type) {
          case "progress" -> {
            return id == null ? null : new WatchMessage.Progress(Long.parseLong(id.trim()));
          }
          case "compacted" -> {
            JsonNode json = HttpCodec.MAPPER.readTree(data == null ? "{}" : data.toString());
            return new WatchMessage.Compacted(json.path("compactRevision").asLong());
          }
          case "change", "put", "delete" -> {
            if (id == null || data == null) {
              return null;
            }
            long revision = Long.parseLong(id.trim());
            JsonNode json = HttpCodec.MAPPER.readTree(data.toString());
            List<Event> events = new ArrayList<>();
            if (json.isArray()) {
              for (JsonNode e : json) {
                events.add(HttpCodec.event(e, "put"));
              }
            } else {
              events.add(HttpCodec.event(json, type));
            }
            return new WatchMessage.Change(new RevisionEvents(revision, events));
          }
          default -> {
            return null;
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException("a watch message is not valid JSON", e);
      } catch (NumberFormatException e) {
        throw new IllegalStateException("a watch message's id is not a revision: " + id, e);
      }
    }
  }
}
