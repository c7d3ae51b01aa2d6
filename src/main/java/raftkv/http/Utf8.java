package raftkv.http;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Strict UTF-8 in both directions: malformed bytes and unpaired surrogates are refused instead of
 * being replaced, so a key or value never changes silently on its way through the API.
 */
final class Utf8 {

  private Utf8() {}

  /** The text that {@code bytes[offset, offset + length)} encode, or null when they are not valid UTF-8. */
  static String decodeOrNull(byte[] bytes, int offset, int length) {
    int end = offset + length;
    int i = offset;
    while (i < end && bytes[i] >= 0) {
      i++;
    }
    if (i == end) {
      // Only ASCII: every byte is its own character.
      return new String(bytes, offset, length, StandardCharsets.ISO_8859_1);
    }
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes, offset, length))
          .toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  /** The text that {@code bytes} encode, or null when they are not valid UTF-8. */
  static String decodeOrNull(byte[] bytes) {
    return decodeOrNull(bytes, 0, bytes.length);
  }

  /** The UTF-8 encoding of {@code text}, or null when it holds an unpaired surrogate. */
  static byte[] encodeOrNull(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return null;
      }
    }
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
