package raftkv.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import raftkv.raft.Peer;
import raftkv.raft.RaftNode;

import org.slf4j.LoggerFactory;

/**
 * Guards a node's data dir: creates it, and refuses one that belongs to another node or holds a
 * journal of unknown origin, so that a mix-up stops the node instead of silently diverging.
 */
public final class DataDir {
  static final String ID_FILE = "raftkv-node-id";
  /** Where a node keeps the id of its cluster (16 hex digits and a newline). */
  public static final String CLUSTER_ID_FILE = "raftkv-cluster-id";
  /**
   * Written at the first start of a node started with --join, and kept: the members it was told to
   * contact (id@host:port,... and a newline). A dir that has it never bootstraps from --peers and
   * never derives a cluster id: it takes the id of the leader that adds it.
   */
  public static final String JOIN_FILE = "raftkv-join";

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

  /**
   * The id of the cluster this node belongs to: the one {@code dir} keeps, else (a first start)
   * the id of a cluster bootstrapped with {@code peers} and {@code token}, written there now. Like
   * etcd's, it is derived from the initial membership (every address, sorted) and a token, so
   * the nodes of one cluster agree on it without talking, and two clusters on different machines,
   * or with different tokens, differ. A restored cluster gets a fresh one ({@link #restoredClusterId}).
   *
   * @throws IllegalStateException with a one-line reason when the file cannot be read or written, or is malformed
   */
  public static long clusterId(Path dir, List<Peer> peers, String token) {
    Path file = dir.resolve(CLUSTER_ID_FILE);
    try {
      if (Files.exists(file)) {
        String text = Files.readString(file, StandardCharsets.UTF_8).trim();
        if (!text.matches("[0-9a-f]{16}")) {
          throw new IllegalStateException("data dir " + dir + " has a malformed " + CLUSTER_ID_FILE + " file: '"
              + (text.length() > 40 ? text.substring(0, 40) + "..." : text).replaceAll("\\s+", " ") + "'");
        }
        return Long.parseUnsignedLong(text, 16);
      }
      boolean journal = Files.exists(dir.resolve("journal"));
      if (!journal && Files.exists(dir.resolve("kv"))) {
        // restore writes the id before the database: a database without an id and without a
        // journal is a restore that was cut short (or one by a version without cluster ids)
        throw new IllegalStateException("data dir " + dir + " holds a state machine but no journal and no "
            + CLUSTER_ID_FILE + " file: an unfinished restore; empty the dir and run bin/raftkv restore again");
      }
      long id = bootstrapClusterId(peers, token);
      if (journal) {
        LoggerFactory.getLogger(DataDir.class).warn("Data dir {} was made by a version without cluster ids: its"
            + " cluster id {} is derived from --peers and --cluster-token now; every node of the cluster must be"
            + " given the same ones", dir, RaftNode.clusterIdText(id));
      }
      writeClusterId(dir, id);
      return id;
    } catch (IOException e) {
      throw new IllegalStateException("data dir " + dir + ": cannot read or write " + CLUSTER_ID_FILE + ": "
          + String.valueOf(e.getMessage()).replace('\n', ' '));
    }
  }

  /** Whether {@code dir} holds a journal: the node has started on it before. */
  public static boolean hasJournal(Path dir) {
    return Files.exists(dir.resolve("journal"));
  }

  /**
   * The cluster id {@code dir} keeps, or null when it keeps none (a node started with --join that
   * has not heard from a leader yet).
   *
   * @throws IllegalStateException with a one-line reason when the file cannot be read or is malformed
   */
  public static Long storedClusterId(Path dir) {
    if (!Files.exists(dir.resolve(CLUSTER_ID_FILE))) {
      return null;
    }
    return clusterId(dir, List.of(), "");
  }

  /** Writes {@code id} as the cluster id of the node whose data dir is {@code dir}: atomically and durably. */
  public static void writeClusterId(Path dir, long id) throws IOException {
    writeDurably(dir, CLUSTER_ID_FILE, RaftNode.clusterIdText(id) + "\n");
  }

  /** Writes {@code dir/name} through a temporary file, fsyncs it, renames it and fsyncs the dir. */
  private static void writeDurably(Path dir, String name, String text) throws IOException {
    Path tmp = dir.resolve(name + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.UTF_8);
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp,
        java.nio.file.StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(name), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir,
        java.nio.file.StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // not every file system lets a directory be opened for fsync; the rename is still atomic
    }
  }

  /**
   * Refuses --join with --peers on a first start (no journal in the data dir yet): one bootstraps a
   * new cluster, the other adds this node to a running one (API.md §1). On a restart both are
   * allowed, and the membership in the node's log rules.
   *
   * @throws IllegalArgumentException with a one-line reason naming both flags
   */
  public static void checkFirstStart(NodeSettings settings) {
    if (settings.joins() && !settings.peers().isEmpty() && !hasJournal(settings.dataDir())) {
      throw new IllegalArgumentException("--join and --peers are both given for a first start (data dir "
          + settings.dataDir() + " holds no journal yet): --peers bootstraps a new cluster, --join adds this node"
          + " to a running one; give one of them");
    }
  }

  /**
   * How the Raft node starts on its data dir ({@code RaftNode.create}'s arguments).
   *
   * @param initialVoters what a first start bootstraps (ignored once the log holds a membership);
   *                      empty for a node that joins
   * @param join          the members to contact, and how to store an adopted cluster id when the dir
   *                      has none yet; null without --join and without a {@value #JOIN_FILE} file
   * @param clusterId     the dir's cluster id; 0 for a node that joins and has not been added yet
   */
  public record Start(List<Peer> initialVoters, RaftNode.Join join, long clusterId) {
    /** Whether the node bootstraps nothing and (unless its log says otherwise) waits to be added. */
    public boolean joining() {
      return join != null && initialVoters.isEmpty();
    }
  }

  /**
   * Decides how the node of {@code settings} starts on its data dir, after {@link #claim} and
   * {@link #checkFirstStart}; writes the {@value #JOIN_FILE} file of a node that joins, and for a
   * node that bootstraps, its cluster id ({@link #clusterId}). The node joins (no initial voters, no
   * cluster id of its own until the leader that adds it replicates to it) when
   * <ul>
   *   <li>it is given --join and not --peers, whatever the dir holds;</li>
   *   <li>the dir has a {@value #JOIN_FILE} file: it joined before, and --peers is ignored (its
   *       contacts are --join's, else the file's);</li>
   *   <li>it is given --join and the dir holds a journal but no cluster id (no other node leaves one so).</li>
   * </ul>
   * Otherwise it starts as a node bootstrapped with --peers (as before --join existed), and a --join
   * given on a restart only names the contacts.
   *
   * @throws IllegalStateException with a one-line reason when a file cannot be read or written
   */
  public static Start start(NodeSettings settings, String clusterToken) {
    Path dir = settings.dataDir();
    boolean journal = hasJournal(dir);
    Long stored = storedClusterId(dir);
    List<Peer> recorded = recordedJoin(dir);
    try {
      if (recorded != null && !journal && stored == null && !settings.joins()) {
        // started with --join once but stopped before its journal was even opened: a fresh dir,
        // and now it is given --peers only
        Files.delete(dir.resolve(JOIN_FILE));
        recorded = null;
      }
      boolean joining = (settings.joins() && settings.peers().isEmpty()) || recorded != null
          || (settings.joins() && journal && stored == null);
      if (!joining) {
        return new Start(settings.peers(), settings.joins() ? new RaftNode.Join(settings.join(), null) : null,
            clusterId(dir, settings.peers(), clusterToken));
      }
      List<Peer> contacts = settings.joins() ? settings.join() : recorded;
      if (!contacts.equals(recorded)) {
        writeDurably(dir, JOIN_FILE, joinText(contacts) + "\n");
      }
      java.util.function.LongConsumer store = stored != null ? null : id -> {
        try {
          writeClusterId(dir, id);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException("cannot write " + dir.resolve(CLUSTER_ID_FILE) + ": " + e.getMessage(), e);
        }
      };
      return new Start(List.of(), new RaftNode.Join(contacts, store), stored == null ? 0 : stored);
    } catch (IOException e) {
      throw new IllegalStateException("data dir " + dir + ": cannot write " + JOIN_FILE + ": "
          + String.valueOf(e.getMessage()).replace('\n', ' '));
    }
  }

  /** The contacts in the dir's {@value #JOIN_FILE} file, or null when it has none. */
  static List<Peer> recordedJoin(Path dir) {
    Path file = dir.resolve(JOIN_FILE);
    if (!Files.exists(file)) {
      return null;
    }
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      throw new IllegalStateException("data dir " + dir + ": cannot read " + JOIN_FILE + ": "
          + String.valueOf(e.getMessage()).replace('\n', ' '));
    }
    try {
      return Peer.parseList(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("data dir " + dir + " has a malformed " + JOIN_FILE + " file ("
          + e.getMessage() + "); it holds the --join list the node was first started with");
    }
  }

  private static String joinText(List<Peer> contacts) {
    return String.join(",", contacts.stream().map(p -> p.id() + "@" + p.address()).toList());
  }

  /** The id of a cluster bootstrapped with {@code peers} and {@code token}. */
  public static long bootstrapClusterId(List<Peer> peers, String token) {
    return hash("bootstrap", token, peers, new byte[0]);
  }

  /**
   * The id of a cluster restored with {@code peers} and {@code token} from the backup whose
   * SHA-256 is {@code backupHash}: every node restored from the same file agrees on it, and it
   * differs from the id of the cluster the backup was taken from.
   */
  public static long restoredClusterId(byte[] backupHash, List<Peer> peers, String token) {
    return hash("restored", token, peers, backupHash);
  }

  private static long hash(String kind, String token, List<Peer> peers, byte[] extra) {
    java.security.MessageDigest digest;
    try {
      digest = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    // every field with its length in front: no token or peer list can pass for another
    String t = token == null ? "" : token;
    StringBuilder text = new StringBuilder("raftkv cluster\n").append(kind).append('\n')
        .append(t.length()).append(':').append(t).append('\n');
    peers.stream().map(p -> p.id() + "@" + p.host() + ":" + p.port()).sorted()
        .forEach(p -> text.append(p.length()).append(':').append(p).append('\n'));
    digest.update(text.toString().getBytes(StandardCharsets.UTF_8));
    digest.update(extra);
    long id = java.nio.ByteBuffer.wrap(digest.digest()).getLong();
    return id == 0 ? 1 : id; // 0 is the cluster of nodes run without a data dir (tests)
  }
}
