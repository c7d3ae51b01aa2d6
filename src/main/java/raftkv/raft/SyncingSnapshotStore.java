package raftkv.raft;

import akka.persistence.SnapshotMetadata;
import akka.persistence.snapshot.local.LocalSnapshotStore;
import com.typesafe.config.Config;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * Akka's local snapshot store, with each snapshot file fsynced (and its directory) before the save
 * counts as done. The journal deletes its older events once a snapshot is saved: without the
 * fsync, a power cut could leave neither the events nor the snapshot, and the node would forget
 * its term and vote.
 */
public class SyncingSnapshotStore extends LocalSnapshotStore {
  public SyncingSnapshotStore(Config config) {
    super(config);
  }

  @Override
  public void save(SnapshotMetadata metadata, Object snapshot) {
    super.save(metadata, snapshot);
    File file = snapshotFileForWrite(metadata, "");
    try {
      SnapshotFile.fsync(file.toPath());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot fsync snapshot " + file, e);
    }
    SnapshotFile.fsyncDir(file.toPath().getParent());
  }
}
