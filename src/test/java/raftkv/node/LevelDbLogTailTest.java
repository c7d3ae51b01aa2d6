package raftkv.node;

import org.fusesource.leveldbjni.JniDBFactory;
import org.iq80.leveldb.DB;
import org.iq80.leveldb.Options;
import org.iq80.leveldb.WriteOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A node killed while its journal appends a large record must start again (the record was never
 * acknowledged, LevelDB drops it), while a journal damaged anywhere else must not. The unfinished
 * record is made the way a kill leaves it on LevelDB 1.8: the bytes written so far, then zeros up
 * to the end of the region LevelDB had mapped (seen in MixedFaultsIT: a node killed during a 1 MB
 * write could not restart, "Corruption: checksum mismatch").
 */
class LevelDbLogTailTest {

  @TempDir
  Path dir;

  private static final byte[] LARGE = filled(200_000, 'L');

  /** A journal of 20 small synced writes and three 200 KB ones, closed; returns its newest log. */
  private Path journalWithLargeWrites() throws IOException {
    Files.writeString(dir.resolve(DataDir.ID_FILE), "n1\n");
    Path journal = dir.resolve("journal");
    try (DB db = JniDBFactory.factory.open(journal.toFile(), new Options().createIfMissing(true))) {
      WriteOptions sync = new WriteOptions().sync(true);
      for (int i = 0; i < 20; i++) {
        db.put(key("small-" + i), filled(300, 's'), sync);
      }
      for (int i = 0; i < 3; i++) {
        db.put(key("large-" + i), LARGE, sync);
      }
    }
    try (var files = Files.list(journal)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".log")).sorted().reduce((a, b) -> b).orElseThrow();
    }
  }

  /** As a kill during the last write leaves it: cut inside that record, zeros to a 64 KiB boundary. */
  private static void cutShortInTheLastRecord(Path log) throws IOException {
    byte[] bytes = Files.readAllBytes(log);
    int cut = bytes.length - 50_000;
    int mapped = ((cut / 65536) + 1) * 65536;
    byte[] torn = Arrays.copyOf(Arrays.copyOf(bytes, cut), mapped);
    Files.write(log, torn);
  }

  private static boolean opensWithParanoidChecks(Path journal) {
    try (DB db = JniDBFactory.factory.open(journal.toFile(), new Options().paranoidChecks(true))) {
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  @Test
  void aWriteCutShortAtTheEndIsDroppedAndTheNodeStarts() throws IOException {
    // given
    Path log = journalWithLargeWrites();
    cutShortInTheLastRecord(log);
    Path journal = log.getParent();
    assertFalse(opensWithParanoidChecks(journal), "the premise: LevelDB's paranoid checks refuse it");
    // then
    assertTrue(LevelDbLogTail.onlyAnUnfinishedWriteAtTheEnd(journal));
    assertDoesNotThrow(() -> DataDir.claim(dir, "n1"));
    try (DB db = JniDBFactory.factory.open(journal.toFile(), new Options())) {
      for (int i = 0; i < 20; i++) {
        assertArrayEquals(filled(300, 's'), db.get(key("small-" + i)), "acknowledged write " + i);
      }
      assertArrayEquals(LARGE, db.get(key("large-0")));
      assertArrayEquals(LARGE, db.get(key("large-1")));
      assertNull(db.get(key("large-2")), "the unfinished write is gone");
    }
  }

  @Test
  void aDamagedRecordIsNotMistakenForAnUnfinishedWrite() throws IOException {
    // given: one byte changed in the first record, the end intact
    Path log = journalWithLargeWrites();
    byte[] bytes = Files.readAllBytes(log);
    bytes[20] ^= 0x40;
    Files.write(log, bytes);
    // then
    assertFalse(LevelDbLogTail.onlyAnUnfinishedWriteAtTheEnd(log.getParent()));
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> DataDir.claim(dir, "n1"));
    assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
  }

  @Test
  void damageBeforeAnUnfinishedWriteIsStillDamage() throws IOException {
    // given: a kill cut the last write short, and a byte in the middle of the log is wrong too
    Path log = journalWithLargeWrites();
    cutShortInTheLastRecord(log);
    byte[] bytes = Files.readAllBytes(log);
    bytes[40_000] ^= 0x01;
    Files.write(log, bytes);
    // then
    assertFalse(LevelDbLogTail.onlyAnUnfinishedWriteAtTheEnd(log.getParent()));
    assertThrows(IllegalStateException.class, () -> DataDir.claim(dir, "n1"));
  }

  @Test
  void aCleanLogHasNoBadRecord() throws IOException {
    Path log = journalWithLargeWrites();
    assertTrue(LevelDbLogTail.firstBadRecord(Files.readAllBytes(log)) < 0);
    assertDoesNotThrow(() -> DataDir.claim(dir, "n1"));
  }

  private static byte[] key(String k) {
    return k.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] filled(int n, char c) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) c);
    return b;
  }
}
