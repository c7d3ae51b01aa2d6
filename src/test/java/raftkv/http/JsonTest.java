package raftkv.http;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Json#readTree}: the depth limit on request bodies, and the checks of {@link Json#MAPPER} behind it. */
class JsonTest {

  @Test
  void aBodyAtTheDepthLimitIsRead() {
    JsonNode tree = Json.readTree(bytes("{\"a\":[{\"b\":[]}],\"c\":{}}"), 4);
    assertEquals(1, tree.get("a").size());
    assertTrue(tree.get("c").isObject());
  }

  @Test
  void objectsAndArraysBothCountTowardsTheDepth() {
    assertRefusedForDepth("{\"a\":[{\"b\":[]}]}", 3);
    assertRefusedForDepth("[[[[]]]]", 3);
    assertRefusedForDepth("{\"a\":{\"b\":{\"c\":{}}}}", 3);
  }

  @Test
  void depthIsCheckedWithoutRecursion() {
    assertRefusedForDepth("[".repeat(1_000_000) + "]".repeat(1_000_000), 64);
    assertRefusedForDepth("{\"a\":".repeat(1_000_000), 64);
  }

  @Test
  void siblingsDoNotAddUpToDepth() {
    JsonNode tree = Json.readTree(bytes("[" + "[[]],".repeat(1000) + "[[]]]"), 3);
    assertEquals(1001, tree.size());
  }

  @Test
  void invalidJsonIsStillABadRequestSayingSo() {
    for (String body : new String[] {"{\"a\":[}", "not json", "{} {}", "{\"a\":1,\"a\":2}"}) {
      ApiError error = assertThrows(ApiError.class, () -> Json.readTree(bytes(body), 64));
      assertEquals("bad_request", error.code());
      assertTrue(error.getMessage().startsWith("the body is not valid JSON: "), error.getMessage());
    }
  }

  private static void assertRefusedForDepth(String body, int maxDepth) {
    ApiError error = assertThrows(ApiError.class, () -> Json.readTree(bytes(body), maxDepth));
    assertEquals(400, error.status().intValue());
    assertEquals("bad_request", error.code());
    assertEquals("the JSON body is nested deeper than " + maxDepth + " levels", error.getMessage());
  }

  private static byte[] bytes(String json) {
    return json.getBytes(StandardCharsets.UTF_8);
  }
}
