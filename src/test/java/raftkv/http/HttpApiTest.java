package raftkv.http;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.http.javadsl.Http;
import akka.http.javadsl.ServerBinding;
import akka.http.javadsl.settings.ServerSettings;
import akka.pattern.AskTimeoutException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import raftkv.client.ClusterStatus;
import raftkv.client.Health;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.kv.KvCommand;
import raftkv.client.KvLimits;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.raft.RaftNode;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HTTP endpoint against an in-memory node, over real sockets: every KV endpoint of API.md §3,
 * status and health of §5, and each error of §6 with its status, code and body.
 */
class HttpApiTest {

  /** The lines that reference.conf carries for the HTTP endpoint, and a short request timeout. */
  private static final Config HTTP_CONFIG = ConfigFactory.parseString("""
      akka.actor.provider = local
      akka.http.server.request-timeout = 3s
      akka.http.server.raw-request-uri-header = on
      akka.http.server.parsing.error-handler = "raftkv.http.JsonParsingErrorHandler"
      akka.http.server.parsing.max-uri-length = 8k
      akka.http.server.parsing.ignore-illegal-header-for = ["if-match", "if-none-match"]
      """);

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MIB = 1024 * 1024;

  private static ActorTestKit testKit;
  private static ServerBinding binding;
  private static HttpClient client;
  private static final FakeRaftKv kv = new FakeRaftKv();

  @BeforeAll
  static void start() throws Exception {
    testKit = ActorTestKit.create("HttpApiTest", HTTP_CONFIG.withFallback(ConfigFactory.load()));
    binding = HttpApi.create(testKit.system(), kv, KvLimits.defaults())
        .bind("127.0.0.1", 0).toCompletableFuture().get(10, TimeUnit.SECONDS);
    client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  }

  @AfterAll
  static void stop() throws Exception {
    binding.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
    testKit.shutdownTestKit();
  }

  @BeforeEach
  void freshNode() {
    kv.reset();
  }

  // ---- GET and PUT of one key

  @Test
  void putThenGetReturnsTheRawValueWithItsRevisions() throws Exception {
    Reply created = send("PUT", "/v1/kv/greeting", "hello".getBytes(StandardCharsets.UTF_8));
    assertEquals(200, created.status);
    assertEquals("application/json", created.contentType());
    assertEquals(1, created.json().get("revision").asLong());
    assertTrue(created.json().get("prevModRevision").isNull());
    assertEquals("\"1\"", created.header("ETag"));

    Reply updated = send("PUT", "/v1/kv/greeting", "hi".getBytes(StandardCharsets.UTF_8));
    assertEquals(2, updated.json().get("revision").asLong());
    assertEquals(1, updated.json().get("prevModRevision").asLong());

    Reply read = send("GET", "/v1/kv/greeting", null);
    assertEquals(200, read.status);
    assertEquals("application/octet-stream", read.contentType());
    assertEquals("hi", read.text());
    assertEquals("\"2\"", read.header("ETag"));
    assertEquals("1", read.header("X-Create-Revision"));
    assertEquals("2", read.header("X-Mod-Revision"));
    assertEquals("2", read.header("X-Version"));
    assertEquals("2", read.header("X-Revision"));
    assertEquals(RaftKv.Consistency.LINEARIZABLE, kv.lastConsistency());
  }

  @Test
  void binaryValuesAndEmptyValuesComeBackByteForByte() throws Exception {
    byte[] binary = {0, (byte) 0xff, (byte) 0xfe, 10, 13};
    assertEquals(200, send("PUT", "/v1/kv/bin", binary).status);
    assertArrayEquals(binary, send("GET", "/v1/kv/bin", null).body);
    assertEquals(200, send("PUT", "/v1/kv/empty", new byte[0]).status);
    Reply empty = send("GET", "/v1/kv/empty", null);
    assertEquals(200, empty.status);
    assertEquals(0, empty.body.length);
  }

  @Test
  void anAbsentKeyIsNotFound() throws Exception {
    Reply reply = send("GET", "/v1/kv/nothing-here", null);
    assertError(reply, 404, "not_found");
    assertEquals("0", reply.header("X-Revision"));
  }

  @Test
  void serializableReadsAreAskedForWithTheQueryParameter() throws Exception {
    send("PUT", "/v1/kv/k", "v".getBytes(StandardCharsets.UTF_8));
    assertEquals(200, send("GET", "/v1/kv/k?consistency=serializable", null).status);
    assertEquals(RaftKv.Consistency.SERIALIZABLE, kv.lastConsistency());
    assertEquals(200, send("GET", "/v1/kv/k?consistency=linearizable", null).status);
    assertEquals(RaftKv.Consistency.LINEARIZABLE, kv.lastConsistency());
    assertError(send("GET", "/v1/kv/k?consistency=eventual", null), 400, "bad_request");
    assertError(send("GET", "/v1/kv?consistency=SERIALIZABLE", null), 400, "bad_request");
  }

  // ---- keys in URLs (API.md §2)

  @Test
  void slashesInsideAKeyArePartOfTheKeyWhetherEncodedOrNot() throws Exception {
    assertEquals(200, send("PUT", "/v1/kv/config/app/db", "pg".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals("pg", send("GET", "/v1/kv/config%2Fapp%2Fdb", null).text());
    assertEquals(200, send("PUT", "/v1/kv/a%2Fb", "1".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals("1", send("GET", "/v1/kv/a/b", null).text());

    JsonNode kvs = send("GET", "/v1/kv", null).json().get("kvs");
    assertEquals("a/b", kvs.get(0).get("key").asText());
    assertEquals("config/app/db", kvs.get(1).get("key").asText());
  }

  @Test
  void unicodeKeysArePercentEncodedUtf8() throws Exception {
    String key = "κλειδί/日本/🔑 x+y";
    assertEquals(200, send("PUT", "/v1/kv/" + encode(key), "u".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals("u", send("GET", "/v1/kv/" + encode(key), null).text());
    JsonNode kvs = send("GET", "/v1/kv?prefix=" + encode("κλειδί/"), null).json().get("kvs");
    assertEquals(1, kvs.size());
    assertEquals(key, kvs.get(0).get("key").asText());
    // In the path, '+' is a plus sign; in the query it is a space, as in forms.
    assertEquals(200, send("PUT", "/v1/kv/a+b", "p".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals("a+b", send("GET", "/v1/kv?prefix=a%2B", null).json().get("kvs").get(0).get("key").asText());
  }

  @ParameterizedTest
  @ValueSource(strings = {"/v1/kv/%FF", "/v1/kv/%C3%28", "/v1/kv/%ED%A0%80", "/v1/kv/%C0%AF", "/v1/kv?prefix=%FF"})
  void percentEncodedBytesThatAreNotUtf8AreABadRequest(String path) throws Exception {
    assertError(send("GET", path, null), 400, "bad_request");
  }

  @ParameterizedTest
  @ValueSource(strings = {"/v1/kv/%zz", "/v1/kv/abc%", "/v1/kv/%4", "/v1/kv?prefix=%zz"})
  void malformedPercentEncodingIsAJsonBadRequest(String target) throws Exception {
    Reply reply = raw("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assertError(reply, 400, "bad_request");
  }

  @Test
  void aRequestLineAkkaCannotParseIsAJsonBadRequest() throws Exception {
    assertError(raw("GET /v1/kv/a b HTTP/1.1\r\nHost: localhost\r\n\r\n"), 400, "bad_request");
    assertError(raw("GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n"), 400, "bad_request");
  }

  @ParameterizedTest
  @ValueSource(strings = {"GET", "PUT", "DELETE"})
  void anEmptyKeyIsABadRequest(String method) throws Exception {
    assertError(send(method, "/v1/kv/", method.equals("PUT") ? new byte[] {1} : null), 400, "bad_request");
  }

  @Test
  void aKeyOver1024BytesIsTooLarge() throws Exception {
    String longest = "k".repeat(1024);
    assertEquals(200, send("PUT", "/v1/kv/" + longest, new byte[] {1}).status);
    assertEquals(200, send("GET", "/v1/kv/" + longest, null).status);
    String tooLong = "k".repeat(1025);
    assertError(send("PUT", "/v1/kv/" + tooLong, new byte[] {1}), 413, "too_large");
    assertError(send("GET", "/v1/kv/" + tooLong, null), 413, "too_large");
    assertError(send("DELETE", "/v1/kv/" + tooLong, null), 413, "too_large");
    // 342 three-byte characters: 1026 bytes, a URI of over 3 KB.
    assertError(send("GET", "/v1/kv/" + encode("€".repeat(342)), null), 413, "too_large");
    // Over max-uri-length (8k): refused by Akka's parser, still as JSON.
    assertError(raw("GET /v1/kv/" + "k".repeat(9000) + " HTTP/1.1\r\nHost: localhost\r\n\r\n"), 413, "too_large");
  }

  // ---- PUT bodies and preconditions

  @Test
  void aValueOfOneMibIsAcceptedAndOneByteMoreIsTooLarge() throws Exception {
    byte[] largest = new byte[MIB];
    Arrays.fill(largest, (byte) 'v');
    assertEquals(200, send("PUT", "/v1/kv/big", largest).status);
    assertEquals(MIB, send("GET", "/v1/kv/big", null).body.length);

    Reply tooLarge = send("PUT", "/v1/kv/big", new byte[MIB + 1]);
    assertError(tooLarge, 413, "too_large");
    assertEquals("1", send("GET", "/v1/kv/big", null).header("X-Version"));
  }

  @Test
  void aChunkedValueIsCutOffAtTheLimit() throws Exception {
    byte[] tooLarge = new byte[MIB + 1];
    HttpRequest request = HttpRequest.newBuilder(uri("/v1/kv/chunked"))
        .PUT(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(tooLarge)))
        .build();
    Reply reply = Reply.of(client.send(request, BodyHandlers.ofByteArray()));
    assertError(reply, 413, "too_large");
    assertError(send("GET", "/v1/kv/chunked", null), 404, "not_found");

    byte[] fits = "chunks".getBytes(StandardCharsets.UTF_8);
    HttpRequest small = HttpRequest.newBuilder(uri("/v1/kv/chunked"))
        .PUT(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(fits)))
        .build();
    assertEquals(200, client.send(small, BodyHandlers.ofByteArray()).statusCode());
    assertEquals("chunks", send("GET", "/v1/kv/chunked", null).text());
  }

  @Test
  void ifMatchIsACompareAndSet() throws Exception {
    send("PUT", "/v1/kv/cas", "a".getBytes(StandardCharsets.UTF_8));
    Reply swapped = send("PUT", "/v1/kv/cas", "b".getBytes(StandardCharsets.UTF_8), "If-Match", "\"1\"");
    assertEquals(200, swapped.status);
    assertEquals(2, swapped.json().get("revision").asLong());
    assertEquals("\"2\"", swapped.header("ETag"));

    Reply stale = send("PUT", "/v1/kv/cas", "c".getBytes(StandardCharsets.UTF_8), "If-Match", "\"1\"");
    assertError(stale, 412, "precondition_failed");
    assertEquals(2, stale.json().get("modRevision").asLong());
    assertEquals("b", send("GET", "/v1/kv/cas", null).text());

    assertEquals(200, send("PUT", "/v1/kv/cas", "d".getBytes(StandardCharsets.UTF_8), "If-Match", "2").status);
    assertEquals(2L, ((KvCommand.Put) kv.lastWrite()).ifModRevision());

    Reply absent = send("PUT", "/v1/kv/nope", "x".getBytes(StandardCharsets.UTF_8), "If-Match", "\"5\"");
    assertError(absent, 412, "precondition_failed");
    assertEquals(0, absent.json().get("modRevision").asLong());
  }

  @ParameterizedTest
  @ValueSource(strings = {"\"abc\"", "W/\"1\"", "\"\"", "\"-1\"", "-1", "*", "\"1\", \"2\"", "\"99999999999999999999\"", "1.5"})
  void aMalformedIfMatchIsABadRequest(String ifMatch) throws Exception {
    send("PUT", "/v1/kv/m", "a".getBytes(StandardCharsets.UTF_8));
    assertError(send("PUT", "/v1/kv/m", "b".getBytes(StandardCharsets.UTF_8), "If-Match", ifMatch), 400, "bad_request");
    assertError(send("DELETE", "/v1/kv/m", null, "If-Match", ifMatch), 400, "bad_request");
    assertEquals("a", send("GET", "/v1/kv/m", null).text());
  }

  @Test
  void anEmptyIfMatchIsABadRequest() throws Exception {
    Reply reply = raw("PUT /v1/kv/m HTTP/1.1\r\nHost: localhost\r\nIf-Match:\r\nContent-Length: 1\r\n\r\nx");
    assertError(reply, 400, "bad_request");
  }

  @Test
  void ifNoneMatchStarCreatesOnly() throws Exception {
    Reply created = send("PUT", "/v1/kv/once", "1".getBytes(StandardCharsets.UTF_8), "If-None-Match", "*");
    assertEquals(200, created.status);
    Reply again = send("PUT", "/v1/kv/once", "2".getBytes(StandardCharsets.UTF_8), "If-None-Match", "*");
    assertError(again, 412, "precondition_failed");
    assertEquals(1, again.json().get("modRevision").asLong());
    assertEquals("1", send("GET", "/v1/kv/once", null).text());

    assertError(send("PUT", "/v1/kv/once", "3".getBytes(StandardCharsets.UTF_8), "If-None-Match", "\"1\""), 400, "bad_request");
    assertError(send("PUT", "/v1/kv/once", "3".getBytes(StandardCharsets.UTF_8), "If-None-Match", "*", "If-Match", "\"1\""),
        400, "bad_request");
  }

  @Test
  void aLeaseIsAttachedWithTheQueryParameter() throws Exception {
    assertEquals(404, send("PUT", "/v1/kv/leased?lease=7", "v".getBytes(StandardCharsets.UTF_8)).status,
        "no such lease: nothing applied");
    assertEquals(404, send("GET", "/v1/kv/leased", null).status);
    assertEquals(201, send("POST", "/v1/leases", "{\"ttlSeconds\":10,\"id\":7}".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals(200, send("PUT", "/v1/kv/leased?lease=7", "v".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals(7, ((KvCommand.Put) kv.lastWrite()).lease());
    assertEquals("7", send("GET", "/v1/kv/leased", null).header("X-Lease"), "a key's lease on GET");
    assertEquals(7, send("GET", "/v1/kv?prefix=lea", null).json().get("kvs").get(0).get("lease").asLong(), "and in JSON");
    assertEquals(200, send("PUT", "/v1/kv/plain", "v".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals(null, send("GET", "/v1/kv/plain", null).header("X-Lease"), "none without one");
    for (String bad : List.of("0", "-3", "abc", "", "1e3", "99999999999999999999")) {
      assertError(send("PUT", "/v1/kv/leased?lease=" + bad, "v".getBytes(StandardCharsets.UTF_8)), 400, "bad_request");
    }
  }

  // ---- DELETE

  @Test
  void deleteRemovesOneKeyAndSaysHowMany() throws Exception {
    send("PUT", "/v1/kv/gone", "v".getBytes(StandardCharsets.UTF_8));
    Reply deleted = send("DELETE", "/v1/kv/gone", null);
    assertEquals(200, deleted.status);
    assertEquals(2, deleted.json().get("revision").asLong());
    assertEquals(1, deleted.json().get("deleted").asLong());
    assertError(send("GET", "/v1/kv/gone", null), 404, "not_found");

    Reply nothing = send("DELETE", "/v1/kv/gone", null);
    assertEquals(200, nothing.status);
    assertEquals(2, nothing.json().get("revision").asLong());
    assertEquals(0, nothing.json().get("deleted").asLong());
  }

  @Test
  void deleteWithIfMatchDeletesOnlyThatRevision() throws Exception {
    send("PUT", "/v1/kv/d", "v".getBytes(StandardCharsets.UTF_8));
    send("PUT", "/v1/kv/d", "w".getBytes(StandardCharsets.UTF_8));
    Reply stale = send("DELETE", "/v1/kv/d", null, "If-Match", "\"1\"");
    assertError(stale, 412, "precondition_failed");
    assertEquals(2, stale.json().get("modRevision").asLong());
    assertEquals(1, send("DELETE", "/v1/kv/d", null, "If-Match", "\"2\"").json().get("deleted").asLong());
    assertError(send("DELETE", "/v1/kv/d", null, "If-None-Match", "*"), 400, "bad_request");
  }

  @Test
  void deleteWithPrefixRemovesEveryKeyUnderIt() throws Exception {
    for (String key : List.of("app/a", "app/b", "app/c/d", "apple", "other")) {
      send("PUT", "/v1/kv/" + key, "v".getBytes(StandardCharsets.UTF_8));
    }
    Reply deleted = send("DELETE", "/v1/kv/app/?prefix=true", null);
    assertEquals(200, deleted.status);
    assertEquals(3, deleted.json().get("deleted").asLong());
    assertEquals(new KvCommand.Delete("app/", true, null), kv.lastWrite());
    JsonNode kvs = send("GET", "/v1/kv", null).json().get("kvs");
    assertEquals(List.of("apple", "other"), keys(kvs));

    assertError(send("DELETE", "/v1/kv/app?prefix=true", null, "If-Match", "\"1\""), 400, "bad_request");
    assertError(send("DELETE", "/v1/kv/app?prefix=yes", null), 400, "bad_request");
    assertEquals(200, send("DELETE", "/v1/kv/apple?prefix=false", null).status);
    assertEquals(List.of("other"), keys(send("GET", "/v1/kv", null).json().get("kvs")));
  }

  // ---- GET /v1/kv

  @Test
  void rangePagesThroughAPrefixInKeyOrder() throws Exception {
    for (String key : List.of("p/e", "p/a", "p/d", "p/b", "p/c", "q", "o")) {
      send("PUT", "/v1/kv/" + key, key.getBytes(StandardCharsets.UTF_8));
    }
    JsonNode first = send("GET", "/v1/kv?prefix=p/&limit=2", null).json();
    assertEquals(7, first.get("revision").asLong());
    assertEquals(List.of("p/a", "p/b"), keys(first.get("kvs")));
    assertTrue(first.get("more").asBoolean());
    JsonNode entry = first.get("kvs").get(0);
    assertEquals("p/a", entry.get("value").asText());
    assertEquals(2, entry.get("createRevision").asLong());
    assertEquals(2, entry.get("modRevision").asLong());
    assertEquals(1, entry.get("version").asLong());
    assertFalse(entry.has("valueBase64"));

    JsonNode second = send("GET", "/v1/kv?prefix=p%2F&limit=2&after=p%2Fb", null).json();
    assertEquals(List.of("p/c", "p/d"), keys(second.get("kvs")));
    assertTrue(second.get("more").asBoolean());
    JsonNode last = send("GET", "/v1/kv?prefix=p/&limit=2&after=p/d", null).json();
    assertEquals(List.of("p/e"), keys(last.get("kvs")));
    assertFalse(last.get("more").asBoolean());

    JsonNode all = send("GET", "/v1/kv", null).json();
    assertEquals(List.of("o", "p/a", "p/b", "p/c", "p/d", "p/e", "q"), keys(all.get("kvs")));
    assertFalse(all.get("more").asBoolean());
    assertEquals(List.of("p/a", "p/b", "p/c", "p/d", "p/e"),
        keys(send("GET", "/v1/kv?prefix=p/&limit=0", null).json().get("kvs")));
    assertEquals(0, send("GET", "/v1/kv?prefix=zzz", null).json().get("kvs").size());
  }

  @Test
  void rangeGivesValuesThatAreNotUtf8AsBase64() throws Exception {
    send("PUT", "/v1/kv/b/bin", new byte[] {(byte) 0xff, 0});
    send("PUT", "/v1/kv/b/overlong", new byte[] {(byte) 0xc0, (byte) 0xaf});
    send("PUT", "/v1/kv/b/text", "żółw \"q\"\n".getBytes(StandardCharsets.UTF_8));
    JsonNode kvs = send("GET", "/v1/kv?prefix=b/", null).json().get("kvs");
    assertEquals("/wA=", kvs.get(0).get("valueBase64").asText());
    assertFalse(kvs.get(0).has("value"));
    assertEquals("wK8=", kvs.get(1).get("valueBase64").asText());
    assertEquals("żółw \"q\"\n", kvs.get(2).get("value").asText());
    assertFalse(kvs.get(2).has("valueBase64"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"-1", "abc", "2147483648", "", "1.0"})
  void aMalformedLimitIsABadRequest(String limit) throws Exception {
    assertError(send("GET", "/v1/kv?limit=" + limit, null), 400, "bad_request");
  }

  @Test
  void aPrefixOver1024BytesIsTooLarge() throws Exception {
    assertError(send("GET", "/v1/kv?prefix=" + "p".repeat(1025), null), 413, "too_large");
  }

  // ---- POST /v1/txn

  @Test
  void aTransactionWhoseComparesHoldRunsItsSuccessBranch() throws Exception {
    send("PUT", "/v1/kv/t/old", "x".getBytes(StandardCharsets.UTF_8));
    kv.write(new KvCommand.LeaseGrant(9, 10));
    Reply reply = send("POST", "/v1/txn", """
        {"compare":[{"key":"t/new","target":"version","op":"=","value":0},
                    {"key":"t/old","target":"value","op":"=","value":"x"},
                    {"key":"t/old","target":"modRevision","op":"<","value":2}],
         "success":[{"put":{"key":"t/new","value":"fresh"}},
                    {"get":{"key":"t/old"}},
                    {"delete":{"key":"t/old"}},
                    {"get":{"key":"t/missing"}},
                    {"put":{"key":"t/new","valueBase64":"/wA=","lease":9}}],
         "failure":[{"put":{"key":"t/failed","value":"no"}}]}
        """.getBytes(StandardCharsets.UTF_8));
    assertEquals(200, reply.status);
    assertEquals("application/json", reply.contentType());
    JsonNode body = reply.json();
    assertTrue(body.get("succeeded").asBoolean());
    assertEquals(2, body.get("revision").asLong());
    JsonNode results = body.get("results");
    assertEquals(5, results.size());
    assertEquals(2, results.get(0).get("put").get("revision").asLong());
    assertTrue(results.get(0).get("put").get("prevModRevision").isNull());
    JsonNode got = results.get(1).get("get").get("kv");
    assertEquals("t/old", got.get("key").asText());
    assertEquals("x", got.get("value").asText());
    assertEquals(1, got.get("modRevision").asLong());
    assertEquals(1, results.get(2).get("delete").get("deleted").asLong());
    assertEquals(2, results.get(2).get("delete").get("revision").asLong());
    assertTrue(results.get(3).get("get").get("kv").isNull());
    assertEquals(2, results.get(4).get("put").get("prevModRevision").asLong());

    assertArrayEquals(new byte[] {(byte) 0xff, 0}, send("GET", "/v1/kv/t/new", null).body);
    assertError(send("GET", "/v1/kv/t/old", null), 404, "not_found");
    assertError(send("GET", "/v1/kv/t/failed", null), 404, "not_found");
  }

  @Test
  void aTransactionWhoseCompareFailsRunsItsFailureBranch() throws Exception {
    send("PUT", "/v1/kv/f", new byte[] {(byte) 0xff});
    Reply reply = send("POST", "/v1/txn", """
        {"compare":[{"key":"f","target":"value","op":"=","valueBase64":"/w=="},
                    {"key":"absent","target":"value","op":"!=","value":null}],
         "success":[{"put":{"key":"s","value":"yes"}}],
         "failure":[{"get":{"key":"f"}},{"delete":{"key":"f","prefix":true}}]}
        """.getBytes(StandardCharsets.UTF_8));
    JsonNode body = reply.json();
    assertEquals(200, reply.status);
    assertFalse(body.get("succeeded").asBoolean());
    assertEquals("/w==", body.get("results").get(0).get("get").get("kv").get("valueBase64").asText());
    assertEquals(1, body.get("results").get(1).get("delete").get("deleted").asLong());
    assertError(send("GET", "/v1/kv/s", null), 404, "not_found");
  }

  @Test
  void anEmptyTransactionSucceedsAndChangesNothing() throws Exception {
    for (String body : List.of("{}", "{\"compare\":[],\"success\":[],\"failure\":null}")) {
      Reply reply = send("POST", "/v1/txn", body.getBytes(StandardCharsets.UTF_8));
      assertEquals(200, reply.status);
      assertTrue(reply.json().get("succeeded").asBoolean());
      assertEquals(0, reply.json().get("revision").asLong());
      assertEquals(0, reply.json().get("results").size());
    }
  }

  static Stream<Arguments> malformedTransactions() {
    return Stream.of(
        Arguments.of("", "empty"),
        Arguments.of("{\"compare\":[}", "not valid JSON"),
        Arguments.of("not json", "not valid JSON"),
        Arguments.of("{} {}", "not valid JSON"),
        Arguments.of("{\"success\":[],\"success\":[]}", "not valid JSON"),
        Arguments.of("[]", "must be a JSON object"),
        Arguments.of("{\"sucess\":[]}", "unknown field \"sucess\""),
        Arguments.of("{\"compare\":{}}", "compare must be an array"),
        Arguments.of("{\"success\":\"put\"}", "success must be an array"),
        Arguments.of("{\"compare\":[7]}", "compare[0] must be a JSON object"),
        Arguments.of("{\"compare\":[{\"target\":\"version\",\"op\":\"=\",\"value\":1}]}", "compare[0].key is missing"),
        Arguments.of("{\"compare\":[{\"key\":1,\"target\":\"version\",\"op\":\"=\",\"value\":1}]}", "compare[0].key must be a string"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"op\":\"=\",\"value\":1}]}", "compare[0].target is missing"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"size\",\"op\":\"=\",\"value\":1}]}", "compare[0].target is \"size\""),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"version\",\"op\":\"==\",\"value\":1}]}", "compare[0].op is \"==\""),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"version\",\"value\":1}]}", "compare[0].op is missing"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"version\",\"op\":\"=\"}]}", "compare[0].value is missing"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"version\",\"op\":\"=\",\"value\":\"1\"}]}", "must be an integer"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"modRevision\",\"op\":\"=\",\"value\":1.5}]}", "must be an integer"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"lease\",\"op\":\"=\",\"valueBase64\":\"AA==\"}]}", "not valueBase64"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"value\",\"op\":\"=\",\"value\":1}]}", "compare[0].value must be a string"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"value\",\"op\":\"=\"}]}", "exactly one of value and valueBase64"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"value\",\"op\":\"=\",\"value\":\"a\",\"valueBase64\":\"AA==\"}]}",
            "exactly one of value and valueBase64"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"value\",\"op\":\"=\",\"valueBase64\":\"***\"}]}", "not valid base64"),
        Arguments.of("{\"compare\":[{\"key\":\"k\",\"target\":\"value\",\"op\":\"=\",\"value\":\"a\",\"extra\":1}]}", "unknown field \"extra\""),
        Arguments.of("{\"success\":[{}]}", "success[0] must be an object with exactly one of put, get, delete"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":\"b\"},\"get\":{\"key\":\"a\"}}]}", "exactly one of put, get, delete"),
        Arguments.of("{\"failure\":[{\"range\":{\"key\":\"a\"}}]}", "failure[0] has the unknown operation \"range\""),
        Arguments.of("{\"success\":[{\"put\":[]}]}", "success[0].put must be a JSON object"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\"}}]}", "success[0].put needs exactly one of value and valueBase64"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":null}}]}", "success[0].put.value must be a string, not null"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":5}}]}", "success[0].put.value must be a string"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":\"\\ud800\"}}]}", "unpaired surrogate"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":\"b\",\"lease\":-1}}]}", "success[0].put.lease"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"a\",\"value\":\"b\",\"lease\":\"7\"}}]}", "success[0].put.lease"),
        Arguments.of("{\"success\":[{\"put\":{\"key\":\"\",\"value\":\"b\"}}]}", "empty"),
        Arguments.of("{\"success\":[{\"get\":{\"key\":\"a\",\"prefix\":true}}]}", "success[0].get has the unknown field \"prefix\""),
        Arguments.of("{\"success\":[{\"get\":{}}]}", "success[0].get.key is missing"),
        Arguments.of("{\"success\":[{\"delete\":{\"key\":\"a\",\"prefix\":\"yes\"}}]}", "success[0].delete.prefix must be true or false"),
        Arguments.of("{\"success\":[{\"delete\":{\"key\":\"\\udc00\"}}]}", "not valid Unicode"));
  }

  @ParameterizedTest
  @MethodSource("malformedTransactions")
  void aMalformedTransactionIsABadRequestThatNamesTheProblem(String body, String problem) throws Exception {
    Reply reply = send("POST", "/v1/txn", body.getBytes(StandardCharsets.UTF_8));
    assertError(reply, 400, "bad_request");
    String message = reply.json().get("message").asText();
    assertTrue(message.contains(problem), () -> "\"" + message + "\" should mention " + problem);
    assertEquals(null, kv.lastWrite());
  }

  @Test
  void aTransactionOverTheLimitsIsTooLarge() throws Exception {
    String longKey = "k".repeat(1025);
    assertError(send("POST", "/v1/txn", ("{\"success\":[{\"get\":{\"key\":\"" + longKey + "\"}}]}")
        .getBytes(StandardCharsets.UTF_8)), 413, "too_large");
    String bigValue = "v".repeat(MIB + 1);
    assertError(send("POST", "/v1/txn", ("{\"success\":[{\"put\":{\"key\":\"k\",\"value\":\"" + bigValue + "\"}}]}")
        .getBytes(StandardCharsets.UTF_8)), 413, "too_large");
    assertEquals(null, kv.lastWrite());
  }

  @Test
  void aTransactionOfMoreThan128ComparesAndOperationsIsABadRequest() throws Exception {
    Reply over = send("POST", "/v1/txn", txnOfGets(129));
    assertError(over, 400, "bad_request");
    assertEquals("the transaction has 129 compares and operations, the limit is 128 (raftkv.limits.max-txn-ops)",
        over.json().get("message").asText());
    assertEquals(null, kv.lastWrite());

    Reply atLimit = send("POST", "/v1/txn", txnOfGets(128));
    assertEquals(200, atLimit.status, atLimit::text);
    assertEquals(128, atLimit.json().get("results").size());
  }

  @Test
  void aBodyNestedTooDeepIsABadRequestNotAStackOverflow() throws Exception {
    String message = "the JSON body is nested deeper than 64 levels";
    Reply unclosed = send("POST", "/v1/txn", "[".repeat(100_000).getBytes(StandardCharsets.UTF_8));
    assertError(unclosed, 400, "bad_request");
    assertEquals(message, unclosed.json().get("message").asText());
    Reply balanced = send("POST", "/v1/txn",
        ("{\"compare\":" + "[".repeat(100_000) + "]".repeat(100_000) + "}").getBytes(StandardCharsets.UTF_8));
    assertError(balanced, 400, "bad_request");
    assertEquals(message, balanced.json().get("message").asText());
    assertEquals(null, kv.lastWrite());
  }

  @Test
  void aBodyNested64DeepIsReadAnd65DeepIsRefused() throws Exception {
    // the object is level 1, so 63 arrays in it make 64 levels
    Reply deepest = send("POST", "/v1/txn", nestedTxn(64));
    assertError(deepest, 400, "bad_request");
    String message = deepest.json().get("message").asText();
    assertTrue(message.contains("compare[0] must be a JSON object"), message);
    assertFalse(message.contains("nested"), message);

    Reply tooDeep = send("POST", "/v1/txn", nestedTxn(65));
    assertError(tooDeep, 400, "bad_request");
    assertEquals("the JSON body is nested deeper than 64 levels", tooDeep.json().get("message").asText());
    assertEquals(null, kv.lastWrite());
  }

  @Test
  void theRouteDecodesKeysWithoutTheRawRequestUriHeaderToo() throws Exception {
    ServerBinding plain = Http.get(testKit.system()).newServerAt("127.0.0.1", 0)
        .withSettings(ServerSettings.create(testKit.system().classicSystem()).withRawRequestUriHeader(false))
        .bind(HttpApi.create(testKit.system(), kv, KvLimits.defaults()).route())
        .toCompletableFuture().get(10, TimeUnit.SECONDS);
    try {
      String key = "dir/κ +%";
      assertEquals(200, send(plain, "PUT", "/v1/kv/dir%2F%CE%BA%20+%25", "v".getBytes(StandardCharsets.UTF_8)).status);
      assertEquals("v", send("GET", "/v1/kv/" + encode(key), null).text());
      assertEquals(List.of(key), keys(send(plain, "GET", "/v1/kv?prefix=dir%2F%CE%BA+", null).json().get("kvs")));
      assertError(send(plain, "GET", "/v1/kv/", null), 400, "bad_request");
      assertError(send(plain, "GET", "/v1/kv/x?consistency=strong", null), 400, "bad_request");
    } finally {
      plain.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  // ---- leases (API.md §4)

  @Test
  void aLeaseIsGrantedKeptAliveListedReadAndRevokedWithItsKeys() throws Exception {
    Reply granted = send("POST", "/v1/leases", "{\"ttlSeconds\":30}".getBytes(StandardCharsets.UTF_8));
    assertEquals(201, granted.status, granted.text());
    long id = granted.json().get("id").asLong();
    assertTrue(id > 0);
    assertEquals(30, granted.json().get("ttlSeconds").asLong());
    assertEquals(200, send("PUT", "/v1/kv/svc/a?lease=" + id, "1".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals(200, send("PUT", "/v1/kv/svc/b?lease=" + id, "2".getBytes(StandardCharsets.UTF_8)).status);
    assertEquals(200, send("PUT", "/v1/kv/svc/c", "3".getBytes(StandardCharsets.UTF_8)).status);

    Reply kept = send("POST", "/v1/leases/" + id + "/keepalive", new byte[0]);
    assertEquals(200, kept.status);
    assertEquals(30, kept.json().get("ttlSeconds").asLong());
    Reply info = send("GET", "/v1/leases/" + id, null);
    assertEquals(200, info.status);
    assertEquals("[\"svc/a\",\"svc/b\"]", info.json().get("keys").toString());
    assertEquals(30, info.json().get("grantedTtlSeconds").asLong());
    Reply list = send("GET", "/v1/leases", null);
    assertEquals(id, list.json().get("leases").get(0).get("id").asLong());

    Reply revoked = send("DELETE", "/v1/leases/" + id, null);
    assertEquals(200, revoked.status);
    assertEquals(2, revoked.json().get("deleted").asLong());
    assertEquals(404, send("GET", "/v1/kv/svc/a", null).status);
    assertEquals(200, send("GET", "/v1/kv/svc/c", null).status);
    for (Reply gone : List.of(send("GET", "/v1/leases/" + id, null), send("DELETE", "/v1/leases/" + id, null),
        send("POST", "/v1/leases/" + id + "/keepalive", new byte[0]))) {
      assertEquals(404, gone.status);
      assertEquals("not_found", gone.json().get("error").asText());
    }
  }

  @Test
  void aTransactionPutUnderAnUnknownLeaseIs404AndAppliesNothing() throws Exception {
    Reply reply = send("POST", "/v1/txn", """
        {"compare":[],"success":[{"put":{"key":"x","value":"1"}},{"put":{"key":"y","value":"2","lease":424242}}]}"""
        .getBytes(StandardCharsets.UTF_8));
    assertEquals(404, reply.status);
    assertTrue(reply.json().get("message").asText().contains("424242"));
    assertEquals(404, send("GET", "/v1/kv/x", null).status);
  }

  @ParameterizedTest
  @ValueSource(strings = {"{}", "{\"ttlSeconds\":-5}", "{\"ttlSeconds\":0}", "{\"ttlSeconds\":\"10\"}",
      "{\"ttlSeconds\":1.5}", "{\"ttlSeconds\":99999999999}", "{\"ttlSeconds\":10,\"id\":-1}",
      "{\"ttlSeconds\":10,\"owner\":\"me\"}", "[]", "not json"})
  void aMalformedLeaseGrantIsA400(String body) throws Exception {
    Reply reply = send("POST", "/v1/leases", body.getBytes(StandardCharsets.UTF_8));
    assertEquals(400, reply.status, body + " -> " + reply.text());
    assertEquals(null, kv.lastWrite());
  }

  @Test
  void aMalformedLeaseIdIsA400AndAGrantOfATakenIdA409() throws Exception {
    assertEquals(400, send("GET", "/v1/leases/abc", null).status);
    assertEquals(400, send("DELETE", "/v1/leases/0", null).status);
    assertEquals(400, send("POST", "/v1/leases/-1/keepalive", new byte[0]).status);
    assertEquals(201, send("POST", "/v1/leases", "{\"ttlSeconds\":5,\"id\":11}".getBytes(StandardCharsets.UTF_8)).status);
    Reply taken = send("POST", "/v1/leases", "{\"ttlSeconds\":5,\"id\":11}".getBytes(StandardCharsets.UTF_8));
    assertEquals(409, taken.status);
  }

  // ---- Idempotency-Key (API.md §3)

  @Test
  void aRetryWithTheSameIdempotencyKeyGetsTheFirstAnswerAndAppliesNothing() throws Exception {
    Reply first = send("PUT", "/v1/kv/counter", "a".getBytes(StandardCharsets.UTF_8), "Idempotency-Key", "op-1");
    assertEquals(200, first.status);
    assertEquals(null, first.header("Idempotent-Replayed"));
    Reply retry = send("PUT", "/v1/kv/counter", "a".getBytes(StandardCharsets.UTF_8), "Idempotency-Key", "op-1");
    assertEquals(200, retry.status);
    assertEquals("true", retry.header("Idempotent-Replayed"));
    assertEquals(first.text(), retry.text());
    assertEquals(first.header("ETag"), retry.header("ETag"));
    assertEquals("1", send("GET", "/v1/kv/counter", null).header("X-Version"), "applied once");

    Reply other = send("PUT", "/v1/kv/counter", "b".getBytes(StandardCharsets.UTF_8), "Idempotency-Key", "op-1");
    assertEquals(422, other.status);
    assertEquals("idempotency_key_reused", other.json().get("error").asText());
    assertEquals(422, send("PUT", "/v1/kv/counter?lease=5", "a".getBytes(StandardCharsets.UTF_8),
        "Idempotency-Key", "op-1").status, "the query is part of the request");
    assertEquals(422, send("PUT", "/v1/kv/counter", "a".getBytes(StandardCharsets.UTF_8),
        "Idempotency-Key", "op-1", "If-Match", "\"1\"").status, "so are the preconditions");
    assertEquals(422, send("DELETE", "/v1/kv/counter", null, "Idempotency-Key", "op-1").status);
    assertEquals("1", send("GET", "/v1/kv/counter", null).header("X-Version"));
  }

  @Test
  void deletesAndTransactionsTakeAnIdempotencyKeyToo() throws Exception {
    send("PUT", "/v1/kv/a", "1".getBytes(StandardCharsets.UTF_8));
    Reply deleted = send("DELETE", "/v1/kv/a", null, "Idempotency-Key", "del-1");
    assertEquals(1, deleted.json().get("deleted").asLong());
    Reply again = send("DELETE", "/v1/kv/a", null, "Idempotency-Key", "del-1");
    assertEquals(deleted.text(), again.text(), "the retry says it deleted one, as the first did");
    assertEquals("true", again.header("Idempotent-Replayed"));

    byte[] txn = "{\"compare\":[],\"success\":[{\"put\":{\"key\":\"t\",\"value\":\"v\"}}],\"failure\":[]}"
        .getBytes(StandardCharsets.UTF_8);
    Reply t1 = send("POST", "/v1/txn", txn, "Idempotency-Key", "txn-1");
    Reply t2 = send("POST", "/v1/txn", txn, "Idempotency-Key", "txn-1");
    assertEquals(200, t2.status);
    assertEquals(t1.text(), t2.text());
    assertEquals("1", send("GET", "/v1/kv/t", null).header("X-Version"));
  }

  @Test
  void anIdempotencyKeyOver256BytesIsA400AndNothingIsApplied() throws Exception {
    Reply reply = send("PUT", "/v1/kv/k", "v".getBytes(StandardCharsets.UTF_8), "Idempotency-Key", "x".repeat(257));
    assertEquals(400, reply.status);
    assertTrue(reply.json().get("message").asText().contains("256"), reply.text());
    assertEquals(null, kv.lastWrite());
    assertEquals(200, send("PUT", "/v1/kv/k", "v".getBytes(StandardCharsets.UTF_8), "Idempotency-Key",
        "x".repeat(256)).status);
  }

  // ---- GET /v1/watch (API.md §4)

  private static raftkv.kv.KeyValue kv(String key, byte[] value, long create, long mod, long version) {
    return new raftkv.kv.KeyValue(key, value, create, mod, version, 0);
  }

  @Test
  void aWatchIsServerSentEventsOneMessagePerRevisionWithProgressAndAFinalCompacted() throws Exception {
    byte[] notUtf8 = {(byte) 0xff, 0};
    raftkv.kv.Event put = new raftkv.kv.Event(raftkv.kv.Event.Type.PUT, kv("cfg/a", "2".getBytes(StandardCharsets.UTF_8), 3, 5, 2),
        kv("cfg/a", "1".getBytes(StandardCharsets.UTF_8), 3, 3, 1));
    raftkv.kv.Event delete = new raftkv.kv.Event(raftkv.kv.Event.Type.DELETE, kv("cfg/b", null, 0, 5, 0),
        kv("cfg/b", notUtf8, 4, 4, 1));
    kv.watchAnswers(List.of(
        new raftkv.client.WatchMessage.Change(new raftkv.kv.RevisionEvents(5, List.of(put, delete))),
        new raftkv.client.WatchMessage.Progress(7),
        new raftkv.client.WatchMessage.Compacted(9)), null);
    Reply reply = send("GET", "/v1/watch/cfg/?prefix=true&prevKv=true", null);
    assertEquals(200, reply.status);
    assertTrue(reply.contentType().startsWith("text/event-stream"), reply.contentType());
    assertEquals(new raftkv.client.WatchRequest("cfg/", true, 0, true), kv.lastWatch());
    assertEquals("id: 5\nevent: change\ndata: ["
        + "{\"type\":\"put\",\"key\":\"cfg/a\",\"value\":\"2\",\"createRevision\":3,\"modRevision\":5,\"version\":2,"
        + "\"prevKv\":{\"key\":\"cfg/a\",\"value\":\"1\",\"createRevision\":3,\"modRevision\":3,\"version\":1}},"
        + "{\"type\":\"delete\",\"key\":\"cfg/b\",\"createRevision\":0,\"modRevision\":5,\"version\":0,"
        + "\"prevKv\":{\"key\":\"cfg/b\",\"valueBase64\":\"/wA=\",\"createRevision\":4,\"modRevision\":4,\"version\":1}}]\n\n"
        + "id: 7\nevent: progress\ndata: {}\n\n"
        + "event: compacted\ndata: {\"compactRevision\":9}\n\n", reply.text());
  }

  @Test
  void aWatchStartsAtFromRevisionOrAfterLastEventIdWhichWins() throws Exception {
    kv.watchAnswers(List.of(new raftkv.client.WatchMessage.Compacted(1)), null);
    assertEquals(200, send("GET", "/v1/watch/k?fromRevision=12", null).status);
    assertEquals(new raftkv.client.WatchRequest("k", false, 12, false), kv.lastWatch());
    assertEquals(200, send("GET", "/v1/watch/k?fromRevision=12", null, "Last-Event-ID", "20").status);
    assertEquals(new raftkv.client.WatchRequest("k", false, 21, false), kv.lastWatch());
    assertEquals(200, send("GET", "/v1/watch/a%2Fb", null).status);
    assertEquals(new raftkv.client.WatchRequest("a/b", false, 0, false), kv.lastWatch());
    assertEquals(200, send("GET", "/v1/watch?prefix=true", null).status);
    assertEquals(new raftkv.client.WatchRequest("", true, 0, false), kv.lastWatch());
  }

  @ParameterizedTest
  @ValueSource(strings = {"/v1/watch/k?fromRevision=abc", "/v1/watch/k?fromRevision=-1", "/v1/watch/k?fromRevision=0",
      "/v1/watch/k?fromRevision=99999999999999999999", "/v1/watch/k?prefix=maybe", "/v1/watch/k?prevKv=1",
      "/v1/watch/", "/v1/watch"})
  void aMalformedWatchIsA400AndOpensNothing(String path) throws Exception {
    Reply reply = send("GET", path, null);
    assertEquals(400, reply.status, reply.text());
    assertEquals("bad_request", reply.json().get("error").asText());
    assertEquals(null, kv.lastWatch());
  }

  @Test
  void aMalformedLastEventIdIsA400() throws Exception {
    Reply reply = send("GET", "/v1/watch/k", null, "Last-Event-ID", "five");
    assertEquals(400, reply.status);
    assertTrue(reply.json().get("message").asText().contains("Last-Event-ID"));
    assertEquals(null, kv.lastWatch());
  }

  @Test
  void aWatchFromACompactedRevisionIsA410NamingTheCompactRevision() throws Exception {
    kv.watchAnswers(List.of(), RaftKvException.compacted(30, 5));
    Reply reply = send("GET", "/v1/watch/k?fromRevision=5", null);
    assertEquals(410, reply.status);
    assertEquals("compacted", reply.json().get("error").asText());
    assertEquals(30, reply.json().get("compactRevision").asLong());
  }

  @Test
  void aWatchWithAnotherMethodIs405() throws Exception {
    assertEquals(405, send("POST", "/v1/watch/k", new byte[0]).status);
  }

  // ---- locks, fenced writes and elections (API.md §3, §4)

  private static final byte[] NO_BODY = new byte[0];

  private static void grant(long id) throws Exception {
    assertEquals(201, send("POST", "/v1/leases", ("{\"ttlSeconds\":30,\"id\":" + id + "}").getBytes(StandardCharsets.UTF_8)).status);
  }

  @Test
  void aLockIsHeldByItsFirstWaiterAndFencesWritesWithItsToken() throws Exception {
    grant(7);
    grant(10);
    Reply held = send("POST", "/v1/locks/jobs?lease=7&waitSeconds=0", NO_BODY);
    assertEquals(200, held.status, held::text);
    assertEquals("jobs/7", held.json().get("key").asText());
    long token = held.json().get("fencingToken").asLong();
    assertTrue(token > 0);
    Reply holder = send("GET", "/v1/locks/jobs", null);
    assertEquals("jobs/7", holder.json().get("key").asText());
    assertEquals(token, holder.json().get("fencingToken").asLong());
    assertEquals(7, holder.json().get("lease").asLong());
    // a retry with the same lease keeps its place and its token
    assertEquals(token, send("POST", "/v1/locks/jobs?lease=7&waitSeconds=0", NO_BODY).json().get("fencingToken").asLong());

    // fenced writes: PUT, DELETE and txn, with the holder's token and with another
    assertEquals(200, send("PUT", "/v1/kv/counter", bytes("1"), "If-Fence", "jobs=" + token).status);
    Reply stale = send("PUT", "/v1/kv/counter", bytes("2"), "If-Fence", "jobs=" + (token + 1));
    assertError(stale, 412, "precondition_failed");
    assertEquals(token, stale.json().get("fencingToken").asLong());
    assertEquals("1", send("GET", "/v1/kv/counter", null).text(), "nothing applied");
    assertError(send("DELETE", "/v1/kv/counter", null, "If-Fence", "jobs=" + (token + 1)), 412, "precondition_failed");
    String txn = "{\"compare\":[{\"key\":\"jobs\",\"target\":\"lock\",\"op\":\"=\",\"value\":" + token + "}],"
        + "\"success\":[{\"put\":{\"key\":\"counter\",\"value\":\"3\"}}]}";
    assertTrue(send("POST", "/v1/txn", bytes(txn)).json().get("succeeded").asBoolean());
    assertError(send("POST", "/v1/txn", bytes("{\"success\":[]}"), "If-Fence", "jobs=" + (token + 1)), 412, "precondition_failed");

    // another lease that cannot wait: 408, and its waiter key is gone
    assertError(send("POST", "/v1/locks/jobs?lease=10&waitSeconds=0", NO_BODY), 408, "lock_timeout");
    assertEquals(404, send("GET", "/v1/kv/jobs/a", null).status);
    // releases: a foreign key, an absent key, then the holder's
    assertError(send("DELETE", "/v1/locks/jobs?key=other/7", null), 400, "bad_request");
    assertError(send("DELETE", "/v1/locks/jobs?key=jobs/a", null), 404, "not_found");
    assertError(send("DELETE", "/v1/locks/jobs?key=jobs/7&fencingToken=" + (token + 1), null), 412, "precondition_failed");
    assertEquals(200, send("DELETE", "/v1/locks/jobs?key=jobs/7", null).status);
    assertError(send("GET", "/v1/locks/jobs", null), 404, "not_found");
    Reply late = send("PUT", "/v1/kv/counter", bytes("4"), "If-Fence", "jobs=" + token);
    assertError(late, 412, "precondition_failed");
    assertEquals(0, late.json().get("fencingToken").asLong(), "nobody holds it");
    // the next holder's token is larger
    Reply next = send("POST", "/v1/locks/jobs?lease=10&waitSeconds=0", NO_BODY);
    assertEquals("jobs/a", next.json().get("key").asText());
    assertTrue(next.json().get("fencingToken").asLong() > token);
  }

  @Test
  void badLockAndFenceRequestsAre4xxAndChangeNothing() throws Exception {
    grant(7);
    for (String query : new String[] {"", "?lease=", "?lease=abc", "?lease=-1", "?lease=7&waitSeconds=-1",
        "?lease=7&waitSeconds=61", "?lease=7&waitSeconds=x"}) {
      assertError(send("POST", "/v1/locks/jobs" + query, NO_BODY), 400, "bad_request");
    }
    assertError(send("POST", "/v1/locks/?lease=7", NO_BODY), 400, "bad_request");
    assertError(send("POST", "/v1/locks/" + "k".repeat(1100) + "?lease=7", NO_BODY), 413, "too_large");
    assertError(send("POST", "/v1/locks/jobs?lease=99&waitSeconds=0", NO_BODY), 404, "not_found");
    assertError(send("DELETE", "/v1/locks/jobs", null), 400, "bad_request");
    assertError(send("DELETE", "/v1/locks/jobs?key=jobs/7&fencingToken=0", null), 400, "bad_request");
    assertError(send("PUT", "/v1/locks/jobs?lease=7", NO_BODY), 405, "method_not_allowed");
    for (String fence : new String[] {"jobs", "jobs=", "=5", "jobs=0", "jobs=abc", "jobs=-3", "jobs=99999999999999999999"}) {
      assertError(send("PUT", "/v1/kv/x", bytes("v"), "If-Fence", fence), 400, "bad_request");
      assertError(send("DELETE", "/v1/kv/x", null, "If-Fence", fence), 400, "bad_request");
      assertError(send("POST", "/v1/txn", bytes("{}"), "If-Fence", fence), 400, "bad_request");
    }
    assertError(send("POST", "/v1/txn", bytes("{\"compare\":[{\"key\":\"jobs\",\"target\":\"lock\",\"op\":\"=\",\"value\":\"x\"}]}")),
        400, "bad_request");
    assertEquals(404, send("GET", "/v1/kv/x", null).status);
    assertEquals(404, send("GET", "/v1/kv/jobs/7", null).status);
  }

  @Test
  void anElectionCampaignsProclaimsAndResigns() throws Exception {
    grant(7);
    grant(8);
    Reply won = send("POST", "/v1/elections/db/campaign?lease=7&waitSeconds=0", bytes("n1:5432"));
    assertEquals(200, won.status, won::text);
    assertEquals("db/7", won.json().get("key").asText());
    long revision = won.json().get("leaderRevision").asLong();
    Reply leader = send("GET", "/v1/elections/db", null);
    assertEquals("n1:5432", leader.json().get("value").asText());
    assertEquals(revision, leader.json().get("leaderRevision").asLong());
    assertError(send("POST", "/v1/elections/db/campaign?lease=8&waitSeconds=0", bytes("n2")), 408, "lock_timeout");
    assertEquals(200, send("PUT", "/v1/elections/db/proclaim?key=db/7", bytes("n1:6543")).status);
    assertEquals("n1:6543", send("GET", "/v1/elections/db", null).json().get("value").asText());
    assertEquals(revision, send("GET", "/v1/elections/db", null).json().get("leaderRevision").asLong(), "the same term");
    // only the leader proclaims: a waiter that does not lead gets 412
    assertEquals(200, send("PUT", "/v1/kv/db/8?lease=8", bytes("n2")).status);
    assertError(send("PUT", "/v1/elections/db/proclaim?key=db/8", bytes("n2!")), 412, "precondition_failed");
    assertError(send("PUT", "/v1/elections/db/proclaim?key=db/9", bytes("x")), 404, "not_found");
    assertError(send("PUT", "/v1/elections/db/proclaim?key=elsewhere/7", bytes("x")), 400, "bad_request");
    assertEquals(200, send("DELETE", "/v1/elections/db?key=db/7", null).status);
    assertEquals("n2", send("GET", "/v1/elections/db", null).json().get("value").asText(), "the next candidate leads");
    assertError(send("GET", "/v1/elections/none", null), 404, "not_found");
    assertError(send("POST", "/v1/elections/db/campaign", bytes("x")), 400, "bad_request");
    assertError(send("GET", "/v1/elections/db/campaign", null), 405, "method_not_allowed");
  }

  @Test
  void anElectionsObserversGetItsLeaderThenEveryChangeAsServerSentEvents() throws Exception {
    grant(7);
    grant(8);
    assertEquals(200, send("PUT", "/v1/kv/e/7?lease=7", bytes("a")).status); // revision 1
    assertEquals(200, send("PUT", "/v1/kv/e/8?lease=8", bytes("b")).status); // revision 2
    kv.watchAnswers(List.of(
        new raftkv.client.WatchMessage.Change(new raftkv.kv.RevisionEvents(3, List.of(new raftkv.kv.Event(
            raftkv.kv.Event.Type.DELETE, kv("e/7", null, 0, 3, 0), null)))),
        new raftkv.client.WatchMessage.Change(new raftkv.kv.RevisionEvents(4, List.of(new raftkv.kv.Event(
            raftkv.kv.Event.Type.PUT, new raftkv.kv.KeyValue("e/8", bytes("b2"), 2, 4, 2, 8), null)))),
        new raftkv.client.WatchMessage.Change(new raftkv.kv.RevisionEvents(5, List.of(new raftkv.kv.Event(
            raftkv.kv.Event.Type.DELETE, kv("e/8", null, 0, 5, 0), null)))),
        new raftkv.client.WatchMessage.Compacted(6)), null);
    Reply reply = send("GET", "/v1/elections/e/observe", null);
    assertEquals(200, reply.status, reply::text);
    assertTrue(reply.contentType().startsWith("text/event-stream"), reply.contentType());
    assertEquals(new raftkv.client.WatchRequest("e/", true, 3, false), kv.lastWatch(), "watches from after its read");
    assertEquals("id: 2\nevent: leader\ndata: {\"key\":\"e/7\",\"value\":\"a\",\"leaderRevision\":1,\"lease\":7}\n\n"
        + "id: 3\nevent: leader\ndata: {\"key\":\"e/8\",\"value\":\"b\",\"leaderRevision\":2,\"lease\":8}\n\n"
        + "id: 4\nevent: leader\ndata: {\"key\":\"e/8\",\"value\":\"b2\",\"leaderRevision\":2,\"lease\":8}\n\n"
        + "id: 5\nevent: vacant\ndata: {}\n\n", reply.text(), "then the stream ends: it fell behind compaction");
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  // ---- routes, methods

  @ParameterizedTest
  @ValueSource(strings = {"/", "/v2/kv/a", "/v1", "/v1/kvx", "/v1/kvx/a", "/v1/txn/", "/v1/cluster", "/v1/cluster/status/x", "/healthz"})
  void anUnknownPathIsNotFound(String path) throws Exception {
    assertError(send("GET", path, null), 404, "not_found");
  }

  @Test
  void aWrongMethodIsNotAllowed() throws Exception {
    Reply onKey = send("POST", "/v1/kv/a", new byte[] {1});
    assertError(onKey, 405, "method_not_allowed");
    assertEquals(List.of("DELETE", "GET", "PUT"), allowed(onKey));
    Reply onTxn = send("GET", "/v1/txn", null);
    assertError(onTxn, 405, "method_not_allowed");
    assertEquals(List.of("POST"), allowed(onTxn));
    assertError(send("PUT", "/v1/kv", new byte[] {1}), 405, "method_not_allowed");
    assertError(send("DELETE", "/health", null), 405, "method_not_allowed");
    assertError(send("POST", "/v1/cluster/status", new byte[0]), 405, "method_not_allowed");
  }

  // ---- failures of the node

  @Test
  void anUnavailableNodeIs503WithRetryAfter() throws Exception {
    kv.failWith(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "no leader is known"), false);
    Reply read = send("GET", "/v1/kv/a", null);
    assertError(read, 503, "unavailable");
    assertEquals("1", read.header("Retry-After"));
    assertEquals("no leader is known", read.json().get("message").asText());
    Reply write = send("PUT", "/v1/kv/a", new byte[] {1});
    assertError(write, 503, "unavailable");
    assertEquals("1", write.header("Retry-After"));
    assertError(send("POST", "/v1/txn", "{}".getBytes(StandardCharsets.UTF_8)), 503, "unavailable");
    assertError(send("GET", "/v1/kv", null), 503, "unavailable");

    kv.failWith(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "no leader is known"), true);
    Reply thrown = send("DELETE", "/v1/kv/a", null);
    assertError(thrown, 503, "unavailable");
    assertEquals("1", thrown.header("Retry-After"));
  }

  @Test
  void aTimedOutWriteIs504() throws Exception {
    kv.failWith(new RaftKvException(RaftKvException.Kind.TIMEOUT, "not committed in time"), false);
    assertError(send("PUT", "/v1/kv/a", new byte[] {1}), 504, "timeout");
    assertError(send("DELETE", "/v1/kv/a", null), 504, "timeout");
    assertError(send("POST", "/v1/txn", "{}".getBytes(StandardCharsets.UTF_8)), 504, "timeout");
  }

  @Test
  void anAskTimeoutIs504ForWritesAnd503ForReads() throws Exception {
    kv.failWith(new AskTimeoutException("no answer"), false);
    Reply write = send("PUT", "/v1/kv/a", new byte[] {1});
    assertError(write, 504, "timeout");
    assertEquals(null, write.header("Retry-After"));
    Reply read = send("GET", "/v1/kv/a", null);
    assertError(read, 503, "unavailable");
    assertEquals("1", read.header("Retry-After"));
    assertError(send("GET", "/v1/kv?prefix=a", null), 503, "unavailable");
  }

  @Test
  void aBadRequestOrTooLargeFromTheNodeKeepsItsKind() throws Exception {
    kv.failWith(new RaftKvException(RaftKvException.Kind.BAD_REQUEST, "odd"), false);
    assertError(send("PUT", "/v1/kv/a", new byte[] {1}), 400, "bad_request");
    kv.failWith(new RaftKvException(RaftKvException.Kind.TOO_LARGE, "huge"), false);
    assertError(send("PUT", "/v1/kv/a", new byte[] {1}), 413, "too_large");
  }

  @Test
  void anUnexpectedFailureIsAnInternalError() throws Exception {
    kv.failWith(new IllegalStateException("bug in the node"), false);
    Reply reply = send("GET", "/v1/kv/a", null);
    assertError(reply, 500, "internal");
    assertFalse(reply.json().get("message").asText().contains("bug"));
    kv.failWith(new IllegalStateException("bug in the node"), true);
    assertError(send("PUT", "/v1/kv/a", new byte[] {1}), 500, "internal");
  }

  @Test
  void aRequestTheNodeNeverAnswersTimesOutAsJson() throws Exception {
    kv.hang();
    Reply read = send("GET", "/v1/kv/a", null);
    assertError(read, 503, "unavailable");
    assertEquals("1", read.header("Retry-After"));
    assertEquals("close", read.header("Connection"));
    Reply write = send("PUT", "/v1/kv/a", new byte[] {1});
    assertError(write, 504, "timeout");
    assertEquals("close", write.header("Connection"));
  }

  @Test
  void aTooLargeValueIsRefusedBeforeTheClientSendsIt() throws Exception {
    Reply reply = raw("PUT /v1/kv/big HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
        + "Content-Length: " + (2 * MIB) + "\r\n\r\n");
    assertError(reply, 413, "too_large");
  }

  // ---- cluster status and health (API.md §5)

  @Test
  void aSnapshotOnRequestAnswersItsIndexTermAndBytes() throws Exception {
    Reply reply = send("POST", "/v1/cluster/snapshot", new byte[0]);
    assertEquals(200, reply.status);
    JsonNode info = reply.json();
    assertEquals(List.of("index", "term", "bytes"), fieldNames(info));
    assertEquals(7, info.get("index").asLong());
    assertEquals(2, info.get("term").asLong());
    assertEquals(1234, info.get("bytes").asLong());
    assertError(send("GET", "/v1/cluster/snapshot", null), 405, "method_not_allowed");
  }

  // ---- backup (API.md §5)

  @Test
  void aBackupStreamsWhatTheNodeWroteAsAnAttachmentNamedAfterItsIndex() throws Exception {
    Reply reply = send("GET", "/v1/cluster/backup", null);
    assertEquals(200, reply.status);
    assertEquals("application/octet-stream", reply.contentType());
    String disposition = reply.header("Content-Disposition");
    assertTrue(disposition != null && disposition.startsWith("attachment")
        && disposition.contains("filename=\"raftkv-backup-" + FakeRaftKv.BACKUP_INDEX + ".snap\""), disposition);
    assertArrayEquals(FakeRaftKv.BACKUP, reply.body);
    assertEquals(Boolean.TRUE, kv.lastBackupLinearizable());
    assertError(send("POST", "/v1/cluster/backup", new byte[0]), 405, "method_not_allowed");
  }

  @Test
  void aStaleBackupAsksForThisNodesLocalState() throws Exception {
    Reply reply = send("GET", "/v1/cluster/backup?stale=true", null);
    assertEquals(200, reply.status);
    assertArrayEquals(FakeRaftKv.BACKUP, reply.body);
    assertEquals(Boolean.FALSE, kv.lastBackupLinearizable());
    assertEquals(200, send("GET", "/v1/cluster/backup?stale=false", null).status);
    assertEquals(Boolean.TRUE, kv.lastBackupLinearizable());
    assertError(send("GET", "/v1/cluster/backup?stale=yes", null), 400, "bad_request");
  }

  @Test
  void aFollowerThatKnowsTheLeaderRedirectsALinearizableBackupToIt() throws Exception {
    kv.failWith(new RaftNode.NotLeader("127.0.0.1:8082", "a linearizable backup is taken by the leader, n2"), false);
    Reply reply = send("GET", "/v1/cluster/backup", null);
    assertEquals(307, reply.status);
    assertEquals("http://127.0.0.1:8082/v1/cluster/backup", reply.header("Location"));
    kv.failWith(new RaftNode.NotLeader("127.0.0.1:8083", "a linearizable backup is taken by the leader, n3"), true);
    Reply thrown = send("GET", "/v1/cluster/backup", null);
    assertEquals(307, thrown.status);
    assertEquals("http://127.0.0.1:8083/v1/cluster/backup", thrown.header("Location"));
  }

  @Test
  void aBackupWithoutAKnownLeaderIs503WithRetryAfter() throws Exception {
    kv.failWith(new RaftNode.NotLeader(null, "no leader is known at the moment; retry shortly"), false);
    Reply reply = send("GET", "/v1/cluster/backup", null);
    assertError(reply, 503, "unavailable");
    assertEquals("1", reply.header("Retry-After"));
    assertEquals("no leader is known at the moment; retry shortly", reply.json().get("message").asText());
    kv.failWith(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "no leader is reachable"), false);
    assertError(send("GET", "/v1/cluster/backup", null), 503, "unavailable");
  }

  @Test
  void aBackupThatFailsMidwayCutsTheBodyShort() throws Exception {
    kv.failBackupsMidway(new IOException("the disk went away"));
    assertThrows(IOException.class, () -> send("GET", "/v1/cluster/backup", null),
        "the chunked body ends without its last chunk");
    kv.failBackupsMidway(null);
    Reply next = send("GET", "/v1/cluster/backup", null);
    assertEquals(200, next.status);
    assertArrayEquals(FakeRaftKv.BACKUP, next.body);
  }

  @Test
  void aHandleThatTakesNoBackupsIs501() throws Exception {
    RaftKv noBackups = new RaftKv() {
      @Override
      public java.util.concurrent.CompletionStage<KvResult> write(KvCommand command) {
        return kv.write(command);
      }

      @Override
      public java.util.concurrent.CompletionStage<KvResult> read(KvQuery query, Consistency consistency) {
        return kv.read(query, consistency);
      }

      @Override
      public java.util.concurrent.CompletionStage<raftkv.client.SnapshotInfo> snapshot() {
        return kv.snapshot();
      }

      @Override
      public java.util.concurrent.CompletionStage<ClusterStatus> status() {
        return kv.status();
      }

      @Override
      public java.util.concurrent.CompletionStage<Health> health() {
        return kv.health();
      }
    };
    ServerBinding other = HttpApi.create(testKit.system(), noBackups, KvLimits.defaults()).bind("127.0.0.1", 0)
        .toCompletableFuture().get(10, TimeUnit.SECONDS);
    try {
      assertError(send(other, "GET", "/v1/cluster/backup", null), 501, "not_implemented");
    } finally {
      other.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  // ---- membership (API.md §5)

  private static byte[] utf8(String s) {
    return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  private static List<String> memberIds(JsonNode body) {
    List<String> ids = new java.util.ArrayList<>();
    body.get("members").forEach(m -> ids.add(m.get("id").asText() + (m.get("voter").asBoolean() ? "" : "(learner)")));
    return ids;
  }

  @Test
  void aLearnerIsAddedPromotedAndRemovedAndEachAnswerListsTheMembers() throws Exception {
    Reply added = send("POST", "/v1/cluster/members",
        utf8("{\"id\":\"n4\",\"address\":\"127.0.0.1:2555\",\"httpAddress\":\"127.0.0.1:8084\",\"learner\":true}"));
    assertEquals(200, added.status, new String(added.body()));
    assertEquals(List.of("n1", "n2", "n3", "n4(learner)"), memberIds(added.json()));
    JsonNode n4 = added.json().get("members").get(3);
    assertEquals(List.of("id", "address", "httpAddress", "voter"), fieldNames(n4));
    assertEquals("127.0.0.1:2555", n4.get("address").asText());
    assertEquals("127.0.0.1:8084", n4.get("httpAddress").asText());
    Reply promoted = send("POST", "/v1/cluster/members/n4/promote", new byte[0]);
    assertEquals(200, promoted.status, new String(promoted.body()));
    assertEquals(List.of("n1", "n2", "n3", "n4"), memberIds(promoted.json()));
    Reply removed = send("DELETE", "/v1/cluster/members/n2", null);
    assertEquals(200, removed.status, new String(removed.body()));
    assertEquals(List.of("n1", "n3", "n4"), memberIds(removed.json()));
    // a voter by default, and httpAddress is optional
    Reply voter = send("POST", "/v1/cluster/members", utf8("{\"id\":\"n5\",\"address\":\"h5:2556\"}"));
    assertEquals(200, voter.status, new String(voter.body()));
    assertEquals(List.of("n1", "n3", "n4", "n5"), memberIds(voter.json()));
  }

  @Test
  void membershipConflictsAndUnknownMembersAre409And404AndChangeNothing() throws Exception {
    List<raftkv.client.ClusterStatus.Member> before = kv.members();
    assertError(send("POST", "/v1/cluster/members", utf8("{\"id\":\"n2\",\"address\":\"127.0.0.1:9999\"}")),
        409, "conflict");
    assertError(send("POST", "/v1/cluster/members", utf8("{\"id\":\"n9\",\"address\":\"127.0.0.1:2553\"}")),
        409, "conflict");
    assertError(send("POST", "/v1/cluster/members/n2/promote", new byte[0]), 409, "conflict");
    assertError(send("POST", "/v1/cluster/members/nope/promote", new byte[0]), 404, "not_found");
    assertError(send("DELETE", "/v1/cluster/members/nope", null), 404, "not_found");
    assertEquals(before, kv.members());
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "", "[]", "{}", "not json", "{\"id\":\"n9\"}", "{\"address\":\"h:1\"}",
      "{\"id\":7,\"address\":\"h:1\"}", "{\"id\":\"n 9\",\"address\":\"h:1\"}",
      "{\"id\":\"n9\",\"address\":\"h\"}", "{\"id\":\"n9\",\"address\":\"h:0\"}",
      "{\"id\":\"n9\",\"address\":\"h:65536\"}", "{\"id\":\"n9\",\"address\":\":80\"}",
      "{\"id\":\"n9\",\"address\":\"h:x\"}", "{\"id\":\"n9\",\"address\":\"h:1\",\"learner\":\"yes\"}",
      "{\"id\":\"n9\",\"address\":\"h:1\",\"httpAddress\":\"nope\"}",
      "{\"id\":\"n9\",\"address\":\"h:1\",\"voter\":true}"})
  void aMalformedMemberIsABadRequestAndChangesNothing(String body) throws Exception {
    List<raftkv.client.ClusterStatus.Member> before = kv.members();
    assertError(send("POST", "/v1/cluster/members", utf8(body)), 400, "bad_request");
    assertEquals(before, kv.members());
  }

  @Test
  void aMalformedMemberIdInThePathIsABadRequest() throws Exception {
    assertError(send("DELETE", "/v1/cluster/members/n%20x", null), 400, "bad_request");
    assertError(send("POST", "/v1/cluster/members/" + "x".repeat(65) + "/promote", new byte[0]), 400, "bad_request");
    assertError(send("GET", "/v1/cluster/members", null), 405, "method_not_allowed");
    assertError(send("PUT", "/v1/cluster/members/n2", new byte[] {1}), 405, "method_not_allowed");
  }

  @Test
  void leadershipTransferAnswersTheNewLeaderWithOrWithoutATarget() throws Exception {
    Reply to = send("POST", "/v1/cluster/leadership-transfer", utf8("{\"to\":\"n3\"}"));
    assertEquals(200, to.status, new String(to.body()));
    assertEquals("n3", to.json().get("leaderId").asText());
    Reply any = send("POST", "/v1/cluster/leadership-transfer", null);
    assertEquals(200, any.status, new String(any.body()));
    assertNotEquals("n3", any.json().get("leaderId").asText());
    assertError(send("POST", "/v1/cluster/leadership-transfer", utf8("{\"to\":\"nope\"}")), 409, "conflict");
    assertError(send("POST", "/v1/cluster/leadership-transfer", utf8("{\"to\":3}")), 400, "bad_request");
    assertError(send("POST", "/v1/cluster/leadership-transfer", utf8("{\"too\":\"n2\"}")), 400, "bad_request");
    assertError(send("GET", "/v1/cluster/leadership-transfer", null), 405, "method_not_allowed");
  }

  @Test
  void aMembershipChangeWhoseOutcomeIsUnknownIs504AndAnUnavailableOne503() throws Exception {
    kv.failWith(new RaftKvException(RaftKvException.Kind.TIMEOUT, "unknown"), false);
    assertError(send("POST", "/v1/cluster/members", utf8("{\"id\":\"n9\",\"address\":\"h:1\"}")), 504, "timeout");
    kv.failWith(new RaftKvException(RaftKvException.Kind.UNAVAILABLE, "transfer in progress"), false);
    Reply unavailable = send("POST", "/v1/cluster/leadership-transfer", null);
    assertError(unavailable, 503, "unavailable");
    assertEquals("1", unavailable.header("Retry-After"));
  }

  @Test
  void aLearnersStatusSaysSo() throws Exception {
    kv.answer(new ClusterStatus("n4", "learner", 3, "n1", 40, 40, 40, 10, 17, List.of(
            new ClusterStatus.Member("n4", "127.0.0.1:2555", null, false, null, null)), "00c0ffee00c0ffee", "learner"),
        new Health(true, null, "n1", 40, 40));
    JsonNode status = send("GET", "/v1/cluster/status", null).json();
    assertEquals("learner", status.get("role").asText());
    assertEquals("learner", status.get("memberState").asText());
    assertFalse(status.get("members").get(0).get("voter").asBoolean());
  }

  @Test
  void clusterStatusHasTheFieldsOfTheContract() throws Exception {
    kv.answer(new ClusterStatus("n1", "leader", 3, "n1", 40, 39, 41, 10, 17, List.of(
            new ClusterStatus.Member("n1", "127.0.0.1:2552", "127.0.0.1:8080", true, 41L, 0L),
            new ClusterStatus.Member("n2", "127.0.0.1:2553", "127.0.0.1:8081", false, null, null)),
            "00c0ffee00c0ffee"),
        new Health(true, null, "n1", 40, 39));
    Reply reply = send("GET", "/v1/cluster/status", null);
    assertEquals(200, reply.status);
    assertEquals("application/json", reply.contentType());
    JsonNode status = reply.json();
    assertEquals(List.of("id", "role", "term", "leaderId", "commitIndex", "appliedIndex", "lastLogIndex",
        "snapshotIndex", "revision", "clusterId", "members"), fieldNames(status));
    assertEquals("00c0ffee00c0ffee", status.get("clusterId").asText());
    assertEquals("leader", status.get("role").asText());
    assertEquals(3, status.get("term").asLong());
    assertEquals(41, status.get("lastLogIndex").asLong());
    assertEquals(17, status.get("revision").asLong());
    JsonNode leader = status.get("members").get(0);
    assertEquals(List.of("id", "address", "httpAddress", "voter", "matchIndex", "lastContactMillis"), fieldNames(leader));
    assertEquals(41, leader.get("matchIndex").asLong());
    JsonNode learner = status.get("members").get(1);
    assertEquals(List.of("id", "address", "httpAddress", "voter"), fieldNames(learner));
    assertFalse(learner.get("voter").asBoolean());
  }

  @Test
  void clusterStatusWithoutAnAnswerIs503() throws Exception {
    kv.failWith(new AskTimeoutException("no answer"), false);
    Reply reply = send("GET", "/v1/cluster/status", null);
    assertError(reply, 503, "unavailable");
    assertEquals("1", reply.header("Retry-After"));
    kv.failWith(new RaftKvException(RaftKvException.Kind.TIMEOUT, "slow"), false);
    assertError(send("GET", "/v1/cluster/status", null), 503, "unavailable");
  }

  @Test
  void healthIs200WhenHealthyAnd503WithTheReasonOtherwise() throws Exception {
    Reply healthy = send("GET", "/health", null);
    assertEquals(200, healthy.status);
    assertTrue(healthy.json().get("healthy").asBoolean());
    assertEquals("n1", healthy.json().get("leaderId").asText());

    kv.answer(new ClusterStatus("n1", "follower", 1, null, 0, 0, 0, 0, 0, List.of()),
        new Health(false, "no leader is known", null, 5, 3));
    Reply sick = send("GET", "/health", null);
    assertEquals(503, sick.status);
    assertEquals("application/json", sick.contentType());
    assertEquals("1", sick.header("Retry-After"));
    assertFalse(sick.json().get("healthy").asBoolean());
    assertEquals("no leader is known", sick.json().get("reason").asText());
    assertTrue(sick.json().get("leaderId").isNull());
    assertEquals(5, sick.json().get("commitIndex").asLong());
    assertEquals(3, sick.json().get("appliedIndex").asLong());
    assertTrue(send("GET", "/v1/cluster/status", null).json().get("leaderId").isNull());

    kv.failWith(new AskTimeoutException("no answer"), false);
    assertError(send("GET", "/health", null), 503, "unavailable");
  }

  // ---- plumbing

  /** One answer, whatever client produced it. */
  private record Reply(int status, Map<String, List<String>> headers, byte[] body) {

    static Reply of(java.net.http.HttpResponse<byte[]> response) {
      Map<String, List<String>> headers = new HashMap<>();
      response.headers().map().forEach((name, values) -> headers.put(name.toLowerCase(Locale.ROOT), values));
      return new Reply(response.statusCode(), headers, response.body());
    }

    String header(String name) {
      List<String> values = headers.get(name.toLowerCase(Locale.ROOT));
      return values == null || values.isEmpty() ? null : values.get(0);
    }

    String contentType() {
      return header("Content-Type");
    }

    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    JsonNode json() throws IOException {
      return JSON.readTree(body);
    }
  }

  private static URI uri(String pathAndQuery) {
    return uri(binding, pathAndQuery);
  }

  private static URI uri(ServerBinding server, String pathAndQuery) {
    return URI.create("http://127.0.0.1:" + server.localAddress().getPort() + pathAndQuery);
  }

  /** Sends a request; {@code headers} are name, value pairs. */
  private static Reply send(String method, String pathAndQuery, byte[] body, String... headers) throws Exception {
    return send(binding, method, pathAndQuery, body, headers);
  }

  private static Reply send(ServerBinding server, String method, String pathAndQuery, byte[] body, String... headers)
      throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(uri(server, pathAndQuery))
        .timeout(Duration.ofSeconds(10))
        .method(method, body == null ? BodyPublishers.noBody() : BodyPublishers.ofByteArray(body));
    for (int i = 0; i < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    return Reply.of(client.send(request.build(), BodyHandlers.ofByteArray()));
  }

  /** Writes {@code request} to a fresh socket as is, for what the JDK client refuses to send. */
  private static Reply raw(String request) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", binding.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(request.getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = socket.getInputStream();
      ByteArrayOutputStream head = new ByteArrayOutputStream();
      while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
        int b = in.read();
        if (b < 0) {
          throw new IOException("the server closed the connection before the end of the headers: " + head);
        }
        head.write(b);
      }
      String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
      int status = Integer.parseInt(lines[0].split(" ")[1]);
      Map<String, List<String>> headers = new HashMap<>();
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        headers.computeIfAbsent(lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT), k -> new ArrayList<>())
            .add(lines[i].substring(colon + 1).trim());
      }
      int length = Integer.parseInt(headers.get("content-length").get(0));
      return new Reply(status, headers, in.readNBytes(length));
    }
  }

  private static void assertError(Reply reply, int status, String code) throws IOException {
    assertEquals(status, reply.status, () -> "status of a reply with body " + reply.text());
    assertEquals("application/json", reply.contentType(), "Content-Type");
    JsonNode body = reply.json();
    assertEquals(code, body.path("error").asText(), () -> "error code in " + reply.text());
    assertTrue(body.path("message").isTextual() && !body.path("message").asText().isBlank(),
        () -> "message in " + reply.text());
  }

  /** A transaction body whose success branch gets {@code n} keys. */
  private static byte[] txnOfGets(int n) {
    StringBuilder body = new StringBuilder("{\"success\":[");
    for (int i = 0; i < n; i++) {
      body.append(i == 0 ? "" : ",").append("{\"get\":{\"key\":\"k").append(i).append("\"}}");
    }
    return body.append("]}").toString().getBytes(StandardCharsets.UTF_8);
  }

  /** {@code {"compare":[[...[]...]]}}, {@code depth} levels deep counting the object. */
  private static byte[] nestedTxn(int depth) {
    int arrays = depth - 1;
    return ("{\"compare\":" + "[".repeat(arrays) + "]".repeat(arrays) + "}").getBytes(StandardCharsets.UTF_8);
  }

  /** Percent-encodes every byte of the UTF-8 key except unreserved characters and '/'. */
  private static String encode(String key) {
    StringBuilder encoded = new StringBuilder();
    for (byte b : key.getBytes(StandardCharsets.UTF_8)) {
      char c = (char) (b & 0xff);
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-._~/".indexOf(c) >= 0) {
        encoded.append(c);
      } else {
        encoded.append('%').append(String.format("%02X", b & 0xff));
      }
    }
    return encoded.toString();
  }

  private static List<String> keys(JsonNode kvs) {
    List<String> keys = new ArrayList<>();
    kvs.forEach(kv -> keys.add(kv.get("key").asText()));
    return keys;
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }

  private static List<String> allowed(Reply reply) {
    List<String> methods = new ArrayList<>();
    for (String method : reply.header("Allow").split(",")) {
      methods.add(method.trim());
    }
    methods.sort(null);
    return methods;
  }
}
