package raftkv.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Guards a node's data dir: creates it, and refuses one that belongs to another node or holds a
 * journal of unknown origin, so that a mix-up stops the node instead of silently diverging.
 */
public final class DataDir {
  static final String ID_FILE = "raftkv-node-id";

  private DataDir() {}

  /** Claims {@code dir} for {@code nodeId}; throws IllegalStateException with a one-line reason. */
  public static void claim(Path dir, String nodeId) {
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
  }
}
