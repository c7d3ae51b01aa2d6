/**
 * The remote client: {@link raftkv.client.remote.RemoteRaftKv}, the {@link raftkv.client.RaftKv}
 * interface over the HTTP API of API.md, for applications that do not run a node.
 */
package raftkv.client.remote;
