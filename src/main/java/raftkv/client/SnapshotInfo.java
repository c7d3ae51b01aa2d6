package raftkv.client;

/**
 * A snapshot of the state machine (POST /v1/cluster/snapshot, API.md §5): the last log index and
 * term it holds, and its size in bytes (the state machine's database on disk).
 */
public record SnapshotInfo(long index, long term, long bytes) {}
