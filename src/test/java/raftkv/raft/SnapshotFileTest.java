package raftkv.raft;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Snapshot files: complete or refused, never restored from a torn or flipped copy. */
class SnapshotFileTest {
  @TempDir
  Path dir;

  private static final List<Peer> VOTERS = List.of(new Peer("n1", "127.0.0.1", 2552), new Peer("n\u00e9", "h", 2553));

  private Path write(MemoryStateMachine sm) throws Exception {
    try (StateMachine.Snapshot view = sm.snapshot()) {
      return SnapshotFile.write(dir, view, VOTERS, 2);
    }
  }

  private static MemoryStateMachine machine(int keys) {
    MemoryStateMachine sm = new MemoryStateMachine();
    for (int i = 0; i < keys; i++) {
      sm.apply(List.of(new StateMachine.Entry(i + 1, 2, MemoryStateMachine.put("k" + i, "v" + i))));
    }
    return sm;
  }

  @Test
  void aWrittenFileVerifiesAndRestoresTheSameState() throws Exception {
    MemoryStateMachine sm = machine(500);
    Path file = write(sm);
    SnapshotFile.Header header = SnapshotFile.verify(file);
    assertEquals(500, header.index());
    assertEquals(2, header.term());
    assertEquals(VOTERS, header.voters(), "the membership as of the snapshot");
    MemoryStateMachine restored = new MemoryStateMachine();
    try (InputStream in = SnapshotFile.openData(file, header)) {
      restored.restore(in);
    }
    assertEquals(sm.contents(), restored.contents());
    assertEquals(500, restored.appliedIndex());
    assertFalse(Files.exists(dir.resolve(file.getFileName() + ".tmp")), "the temporary file was renamed");
  }

  @Test
  void aTruncatedFileIsRefusedInOneLine() throws Exception {
    Path file = write(machine(200));
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(f.length() - 10);
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SnapshotFile.verify(file));
    assertFalse(e.getMessage().contains("\n"));
  }

  @Test
  void aFlippedByteAnywhereIsRefused() throws Exception {
    Path file = write(machine(200));
    long size = Files.size(file);
    for (long at : new long[] {0, 9, size / 2, size - 40, size - 1}) {
      byte[] bytes = Files.readAllBytes(file);
      bytes[(int) at] ^= 0x10;
      Path bad = dir.resolve("bad-" + at);
      Files.write(bad, bytes);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SnapshotFile.verify(bad),
          "a flip at " + at);
      assertFalse(e.getMessage().contains("\n"));
    }
  }

  @Test
  void theNewestTwoAreKept() throws Exception {
    MemoryStateMachine sm = machine(10);
    for (int i = 0; i < 3; i++) {
      sm.apply(List.of(new StateMachine.Entry(sm.appliedIndex() + 1, 2, MemoryStateMachine.put("x", "" + i))));
      write(sm);
    }
    List<Path> files = SnapshotFile.list(dir);
    assertEquals(2, files.size());
    assertTrue(files.get(0).getFileName().toString().contains(String.format("%020d", 13)), "newest first");
  }

  @Test
  void aStreamedBackupIsTheSameAsAFile() throws Exception {
    MemoryStateMachine sm = machine(50);
    Path file = write(sm);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (StateMachine.Snapshot view = sm.snapshot()) {
      SnapshotFile.stream(out, view, VOTERS);
    }
    assertTrue(java.util.Arrays.equals(Files.readAllBytes(file), out.toByteArray()));
  }
}
