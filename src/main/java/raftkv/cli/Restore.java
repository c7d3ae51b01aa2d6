package raftkv.cli;

import raftkv.kv.KvDb;
import raftkv.node.DataDir;
import raftkv.raft.Peer;
import raftkv.raft.SnapshotFile;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * {@code raftkv restore --from FILE --data-dir D --id ID --peers ...} (API.md §1 and §5): seeds a
 * node of a <em>new</em> cluster from a backup ({@code GET /v1/cluster/backup}, or any snapshot
 * file). Every node of the new cluster is restored from the same file, then started with {@code
 * raftkv node} on its data dir.
 *
 * <p>The file is read whole and its SHA-256 checked before anything is written, so a truncated or
 * damaged backup is refused, never half restored; a data dir that exists and is not empty is
 * refused too (restoring never overwrites a node). The data dir then gets its {@code
 * raftkv-node-id} file (as a node's first start writes it) and the KV database ({@code kv/})
 * restored from the backup's state machine bytes, with no journal.
 *
 * <p>The database keeps the backup's index {@code I} with term 0: at its first start the node
 * sees a state machine ahead of its (empty) log and starts the log after {@code I}, as after an
 * installed snapshot, so the new cluster's first entry is {@code I + 1} and its first term is 1
 * (term 0 keeps the log's terms below every term the new cluster will use). Every node restored
 * from the same file starts equal; a node that starts on an empty data dir instead is sent the
 * state as a snapshot (its next entry, 1, is before every log's start), never the log from index
 * 1 onto an empty store. What clients see, the store revision (and each key's create and mod
 * revisions and version), is kept in the KV data, so the new cluster's revisions go on from the
 * backup's.
 */
public final class Restore {

  /**
   * What a restore wrote: the key count and store revision, the backup's index and term in its old
   * cluster, and the new cluster's id.
   */
  public record Restored(long keys, long revision, long backupIndex, long backupTerm, long clusterId) {}

  /** The cluster token of a node started without {@code --cluster-token} (reference.conf's). */
  public static final String DEFAULT_CLUSTER_TOKEN = "raftkv";

  private Restore() {}

  /**
   * Checks {@code backup}, then restores it into {@code dataDir} for node {@code id} of a cluster
   * whose voters are {@code peers} (which must name {@code id}; they are not written: the node's
   * first start takes them from its own {@code --peers}).
   *
   * @throws IllegalArgumentException with a one-line reason when the id or peers are malformed, or
   *     the file is missing, truncated, corrupt or not a backup
   * @throws IllegalStateException with a one-line reason when the data dir exists and is not empty,
   *     or cannot be written; what this call wrote into it is removed again
   */
  public static Restored restore(Path backup, Path dataDir, String id, List<Peer> peers) {
    return restore(backup, dataDir, id, peers, DEFAULT_CLUSTER_TOKEN);
  }

  /**
   * As {@link #restore(Path, Path, String, List)}, for a cluster of token {@code token}. The new
   * cluster's id follows from the backup's checksum, the peers and the token: every node restored
   * from the same file with the same peers gets the same id, and it is not the id of the cluster
   * the backup came from, whose nodes it will never accept messages from.
   */
  public static Restored restore(Path backup, Path dataDir, String id, List<Peer> peers, String token) {
    Objects.requireNonNull(backup, "backup");
    Objects.requireNonNull(dataDir, "dataDir");
    if (!Peer.isValidId(id)) {
      throw new IllegalArgumentException("--id must be a name of 1 to 64 letters, digits, '.', '_' or '-'");
    }
    if (peers == null || peers.stream().noneMatch(p -> p.id().equals(id))) {
      throw new IllegalArgumentException("--peers does not list this node's id '" + id + "'");
    }
    SnapshotFile.Header header = check(backup);
    checkEmpty(dataDir);
    boolean created = !Files.exists(dataDir);
    try {
      DataDir.claim(dataDir, id);
      long clusterId = DataDir.restoredClusterId(trailer(backup), peers, token);
      DataDir.writeClusterId(dataDir, clusterId);
      try (KvDb db = KvDb.open(dataDir.resolve("kv"));
           InputStream in = SnapshotFile.openData(backup, header)) {
        db.restore(in);
        if (db.appliedIndex() != header.index()) {
          throw new IllegalArgumentException("backup " + backup + " is inconsistent: its header says index "
              + header.index() + ", its data index " + db.appliedIndex());
        }
        db.rebase(header.index(), 0);
        return new Restored(db.keyCount(), db.revision(), header.index(), header.term(), clusterId);
      }
    } catch (IOException e) {
      undo(dataDir, created);
      throw new IllegalStateException("cannot restore into data dir " + dataDir + ": " + oneLine(e));
    } catch (RuntimeException e) {
      undo(dataDir, created);
      throw e;
    }
  }

  /** The header of a complete, intact backup file. */
  private static SnapshotFile.Header check(Path backup) {
    if (!Files.isRegularFile(backup)) {
      throw new IllegalArgumentException("backup file " + backup + " does not exist or is not a file");
    }
    try {
      return SnapshotFile.verify(backup);
    } catch (IOException e) {
      throw new IllegalArgumentException("backup file " + backup + " cannot be read: " + oneLine(e));
    }
  }

  /** The backup's SHA-256, its last bytes (checked by {@link SnapshotFile#verify} before). */
  private static byte[] trailer(Path backup) throws IOException {
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(backup)) {
      java.nio.ByteBuffer hash = java.nio.ByteBuffer.allocate(32);
      long at = ch.size() - hash.capacity();
      while (hash.hasRemaining()) {
        if (ch.read(hash, at + hash.position()) < 0) {
          throw new IOException("backup " + backup + " ended while its checksum was read");
        }
      }
      return hash.array();
    }
  }

  private static void checkEmpty(Path dataDir) {
    if (!Files.exists(dataDir)) {
      return;
    }
    if (!Files.isDirectory(dataDir)) {
      throw new IllegalStateException("data dir " + dataDir + " exists and is not a directory");
    }
    try (Stream<Path> entries = Files.list(dataDir)) {
      if (entries.findAny().isPresent()) {
        throw new IllegalStateException("data dir " + dataDir
            + " is not empty: restore seeds a new node and never overwrites one; give it an empty or new dir");
      }
    } catch (IOException e) {
      throw new IllegalStateException("data dir " + dataDir + " cannot be read: " + oneLine(e));
    }
  }

  /** Removes what a failed restore wrote into the (empty or absent) data dir, so that it can be run again. */
  private static void undo(Path dataDir, boolean created) {
    if (!Files.exists(dataDir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dataDir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        if (created || !p.equals(dataDir)) {
          Files.deleteIfExists(p);
        }
      }
    } catch (IOException | RuntimeException e) {
      // best effort: the reason of the failure matters more than its leftovers
    }
  }

  private static String oneLine(Throwable e) {
    String message = e.getMessage() != null ? e.getMessage() : e.toString();
    return message.replace('\n', ' ');
  }
}
