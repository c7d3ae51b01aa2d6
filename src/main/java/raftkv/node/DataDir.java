package raftkv.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.slf4j.LoggerFactory;

/**
 * Guards a node's data dir: creates it, and refuses one that belongs to another node or holds a
 * journal of unknown origin, so that a mix-up stops the node instead of silently diverging.
 */
public final class DataDir {
  static final String ID_FILE = "raftkv-node-id";

  private DataDir() {}

  /** Claims {@code dir} for {@code nodeId}; throws IllegalStateException with a one-line reason. */
  public static void claim(Path dir, String nodeId) {
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new IllegalStateException("data dir " + dir + " exists and is not a directory");
    }
    try {
      Files.createDirectories(dir);
    } catch (IOException | SecurityException e) {
      throw new IllegalStateException("data dir " + dir + " cannot be created: " + e.getMessage());
    }
    if (!Files.isDirectory(dir) || !Files.isWritable(dir) || !Files.isReadable(dir)) {
      throw new IllegalStateException("data dir " + dir + " is not a readable and writable directory");
    }
    Path idFile = dir.resolve(ID_FILE);
    try {
      if (Files.exists(idFile)) {
        String owner = Files.readString(idFile, StandardCharsets.UTF_8).trim();
        if (!owner.equals(nodeId)) {
          throw new IllegalStateException("data dir " + dir + " belongs to node '" + owner + "', not '" + nodeId + "'");
        }
      } else {
        if (Files.exists(dir.resolve("journal"))) {
          throw new IllegalStateException("data dir " + dir + " holds a journal but no " + ID_FILE
              + " file: not a raftkv data dir of node '" + nodeId + "'");
        }
        Path tmp = dir.resolve(ID_FILE + ".tmp");
        Files.writeString(tmp, nodeId + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, idFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      }
    } catch (IOException e) {
      throw new IllegalStateException("data dir " + dir + " cannot be read: " + e.getMessage());
    }
    checkJournal(dir.resolve("journal"), "journal");
    // the state machine's own LevelDB: written without fsync (the journal is the record), so a
    // power cut may leave its last write cut short the same way
    checkJournal(dir.resolve("kv"), "state machine database");
  }

  /**
   * Opens the LevelDB journal once with paranoid checks, so that a corrupt or locked journal is
   * reported now, with LevelDB's own reason, rather than as a replay time-out later. A journal
   * whose only fault is a write that a kill cut short at its end ({@link LevelDbLogTail}) is
   * opened without them, which drops that write (never acknowledged) as LevelDB's recovery does.
   */
  private static void checkJournal(Path journal, String what) {
    if (!Files.exists(journal)) {
      return;
    }
    String reason = open(journal, true);
    if (reason == null) {
      return;
    }
    if (reason.contains("lock")) {
      throw new IllegalStateException(what + " " + journal + " is in use by another process: " + reason);
    }
    boolean unfinishedWrite;
    try {
      unfinishedWrite = reason.contains("Corruption") && LevelDbLogTail.onlyAnUnfinishedWriteAtTheEnd(journal);
    } catch (IOException e) {
      unfinishedWrite = false;
    }
    if (unfinishedWrite && open(journal, false) == null) {
      LoggerFactory.getLogger(DataDir.class).warn("The {} {} ended in a write that a crash cut short ({}); "
          + "it was never acknowledged and is dropped", what, journal, reason);
      return;
    }
    throw new IllegalStateException(what + " " + journal + " is corrupt or unreadable: " + reason);
  }

  /** Opens and closes the journal; null when that worked, else LevelDB's reason on one line. */
  private static String open(Path journal, boolean paranoid) {
    org.iq80.leveldb.Options options = new org.iq80.leveldb.Options().createIfMissing(false).paranoidChecks(paranoid);
    try (org.iq80.leveldb.DB db = org.fusesource.leveldbjni.JniDBFactory.factory.open(journal.toFile(), options)) {
      return null; // opened and closed: readable
    } catch (IOException | RuntimeException e) {
      return String.valueOf(e.getMessage()).replace('\n', ' ');
    }
  }
}
