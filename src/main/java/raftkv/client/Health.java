package raftkv.client;

/** GET /health: {@code healthy} decides 200 or 503; {@code reason} says why not. */
public record Health(boolean healthy, String reason, String leaderId, long commitIndex, long appliedIndex) {}
