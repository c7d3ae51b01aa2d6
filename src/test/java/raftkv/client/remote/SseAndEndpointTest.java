package raftkv.client.remote;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.stream.javadsl.Sink;
import akka.stream.javadsl.Source;
import akka.util.ByteString;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import raftkv.client.WatchMessage;
import raftkv.kv.Event;
import raftkv.kv.KeyValue;
import raftkv.kv.RevisionEvents;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static raftkv.testutil.RecordAssertions.assertFieldsEqual;

/** The SSE reader of watches, however the bytes are cut into chunks, and the endpoint forms. */
class SseAndEndpointTest {
  private static final ActorTestKit kit = ActorTestKit.create("SseTest", RemoteTestCluster.CLIENT_CONFIG);

  @AfterAll
  static void stop() {
    kit.shutdownTestKit();
  }

  private static final String STREAM = """
      : a comment\r
      id: 7\r
      event: change\r
      data: [{"type":"put","key":"a","value":"x","createRevision":7,"modRevision":7,"version":1},\r
      data: {"type":"delete","key":"b","createRevision":0,"modRevision":7,"version":0,"prevKv":{"key":"b","valueBase64":"/wA=","createRevision":3,"modRevision":5,"version":2}}]\r
      \r
      id: 9
      event: progress
      data: {}

      id: 10
      event: put
      data: {"key":"c","value":"","createRevision":10,"modRevision":10,"version":1}

      event: unknown
      data: 1

      event: compacted
      data: {"compactRevision":12}

      """;

  @Test
  void messagesAreReadWhateverTheChunks() throws Exception {
    List<WatchMessage> expected = List.of(
        new WatchMessage.Change(new RevisionEvents(7, List.of(
            new Event(Event.Type.PUT, new KeyValue("a", "x".getBytes(), 7, 7, 1, 0), null),
            new Event(Event.Type.DELETE, new KeyValue("b", null, 0, 7, 0, 0),
                new KeyValue("b", new byte[] {(byte) 0xff, 0}, 3, 5, 2, 0))))),
        new WatchMessage.Progress(9),
        new WatchMessage.Change(new RevisionEvents(10, List.of(
            new Event(Event.Type.PUT, new KeyValue("c", new byte[0], 10, 10, 1, 0), null)))),
        new WatchMessage.Compacted(12));
    byte[] bytes = STREAM.getBytes(java.nio.charset.StandardCharsets.UTF_8); // its first lines end in \r\n
    for (int chunk : new int[] {1, 3, 17, bytes.length}) {
      List<ByteString> chunks = new ArrayList<>();
      for (int i = 0; i < bytes.length; i += chunk) {
        chunks.add(ByteString.fromArray(bytes, i, Math.min(chunk, bytes.length - i)));
      }
      List<WatchMessage> read = Source.from(chunks).via(Sse.messages()).runWith(Sink.seq(), kit.system())
          .toCompletableFuture().get(10, TimeUnit.SECONDS);
      assertFieldsEqual(expected, read, "chunks of " + chunk);
    }
  }

  @Test
  void endpointsAreHostPortOrHttpUrls() {
    assertEquals(new Endpoint("127.0.0.1", 8080), Endpoint.parse("127.0.0.1:8080"));
    assertEquals(new Endpoint("node-1.example", 80), Endpoint.parse("http://node-1.example:80/ignored"));
    assertEquals(new Endpoint("::1", 8080), Endpoint.parse("[::1]:8080"));
    assertEquals("http://[::1]:8080", Endpoint.parse("[::1]:8080").base());
    for (String bad : new String[] {"", "host", "https://h:1", "h:0", "h:99999"}) {
      assertThrows(IllegalArgumentException.class, () -> Endpoint.parse(bad), bad);
    }
    assertEquals("/v1/kv/a/b%20c/%C3%A9%3F%25", HttpCodec.keyPath("a/b c/é?%"));
    assertEquals("?prefix=a%2Fb&after=x", HttpCodec.query("prefix", "a/b", "limit", null, "after", "x"));
  }
}
