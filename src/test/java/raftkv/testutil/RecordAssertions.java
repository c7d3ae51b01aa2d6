package raftkv.testutil;

import java.lang.reflect.RecordComponent;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

/** Field-by-field equality of records, for serialization tests. */
public final class RecordAssertions {
  private RecordAssertions() {}

  /** Equality through records and lists, with byte arrays compared by content. */
  public static void assertFieldsEqual(Object expected, Object actual, String path) {
    if (expected == null) {
      assertNull(actual, path);
    } else if (expected instanceof byte[] bytes) {
      assertInstanceOf(byte[].class, actual, path);
      assertArrayEquals(bytes, (byte[]) actual, path);
    } else if (expected instanceof List<?> list) {
      assertInstanceOf(List.class, actual, path);
      List<?> other = (List<?>) actual;
      assertEquals(list.size(), other.size(), path + ".size");
      for (int i = 0; i < list.size(); i++) {
        assertFieldsEqual(list.get(i), other.get(i), path + "[" + i + "]");
      }
    } else if (expected.getClass().isRecord()) {
      assertNotNull(actual, path);
      assertSame(expected.getClass(), actual.getClass(), path);
      for (RecordComponent component : expected.getClass().getRecordComponents()) {
        assertFieldsEqual(read(component, expected), read(component, actual), path + "." + component.getName());
      }
    } else {
      assertEquals(expected, actual, path);
    }
  }

  private static Object read(RecordComponent component, Object record) {
    try {
      return component.getAccessor().invoke(record);
    } catch (ReflectiveOperationException e) {
      throw new AssertionError("cannot read " + component, e);
    }
  }
}
