package raftkv.client.remote;

import akka.actor.testkit.typed.javadsl.ActorTestKit;
import akka.http.javadsl.Http;
import akka.http.javadsl.ServerBinding;
import akka.http.javadsl.model.HttpEntities;
import akka.http.javadsl.model.HttpHeader;
import akka.http.javadsl.model.HttpRequest;
import akka.http.javadsl.model.HttpResponse;
import akka.http.javadsl.model.StatusCodes;
import akka.http.javadsl.model.ContentTypes;
import akka.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import raftkv.client.ClusterStatus;
import raftkv.client.RaftKv;
import raftkv.client.RaftKvException;
import raftkv.client.WatchMessage;
import raftkv.client.WatchRequest;
import raftkv.kv.Compare;
import raftkv.kv.KeyValue;
import raftkv.kv.KvCommand;
import raftkv.kv.KvQuery;
import raftkv.kv.KvResult;
import raftkv.kv.TxnOp;
import raftkv.recipes.LockQueue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static raftkv.testutil.RecordAssertions.assertFieldsEqual;

/**
 * RemoteRaftKv against a real 3-node cluster serving HTTP: what it answers equals what the embedded
 * node answers (KV, transactions, leases), idempotency keys (a write retried after a 504 is applied
 * once), fenced writes, watches from a revision, and the lock recipe over the remote client.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RemoteRaftKvTest {
  private static final Duration WAIT = Duration.ofSeconds(30);

  private RemoteTestCluster cluster;
  private final ActorTestKit clients = ActorTestKit.create("RemoteClients", RemoteTestCluster.CLIENT_CONFIG);
  private RemoteRaftKv remote;
  private int leader;

  @BeforeAll
  void startCluster() throws Exception {
    cluster = new RemoteTestCluster(3);
    leader = cluster.awaitLeader(WAIT);
    remote = RemoteRaftKv.create(clients.system(), cluster.endpoints(0, 1, 2), RemoteRaftKv.Settings.defaults());
  }

  @AfterAll
  void stopCluster() {
    if (remote != null) {
      remote.close();
    }
    clients.shutdownTestKit();
    if (cluster != null) {
      cluster.close();
    }
  }

  private static <T> T get(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static RaftKvException failure(CompletionStage<?> stage) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> stage.toCompletableFuture().get(20, TimeUnit.SECONDS));
    return assertInstanceOf(RaftKvException.class, e.getCause());
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private KvResult embedded(KvQuery query) throws Exception {
    return get(cluster.node(leader).read(query, RaftKv.Consistency.LINEARIZABLE));
  }

  private KvResult remoteRead(KvQuery query) throws Exception {
    return get(remote.read(query, RaftKv.Consistency.LINEARIZABLE));
  }

  @Test
  void putGetCasTxnDeleteAndRangeAnswerAsTheEmbeddedNode() throws Exception {
    String key = "kv/é and spaces/?&=%#";
    KvResult.PutDone first = (KvResult.PutDone) get(remote.write(KvCommand.Put.of(key, bytes("one"))));
    assertNull(first.prevModRevision());
    assertFieldsEqual(embedded(new KvQuery.Get(key)), remoteRead(new KvQuery.Get(key)), "get");
    KvResult.GetDone got = (KvResult.GetDone) remoteRead(new KvQuery.Get(key));
    assertArrayEquals(bytes("one"), got.kv().value());
    assertEquals(first.revision(), got.kv().modRevision());
    assertEquals(1, got.kv().version());
    // serializable: from the node's local state, possibly stale, still the same key once applied
    await().atMost(WAIT).until(() -> ((KvResult.GetDone) get(remote.read(new KvQuery.Get(key),
        RaftKv.Consistency.SERIALIZABLE))).kv() != null);

    // compare-and-set and create-only
    assertEquals(new KvResult.PreconditionFailed(first.revision()),
        get(remote.write(new KvCommand.Put(key, bytes("two"), 0, first.revision() - 1, false))));
    assertEquals(new KvResult.PreconditionFailed(first.revision()),
        get(remote.write(new KvCommand.Put(key, bytes("two"), 0, null, true))));
    KvResult.PutDone second = (KvResult.PutDone) get(remote.write(new KvCommand.Put(key, bytes("two"), 0, first.revision(), false)));
    assertEquals(first.revision(), second.prevModRevision());

    // bytes that are not UTF-8, in a put and in a transaction
    byte[] binary = {(byte) 0xff, 0, (byte) 0xc3, 0x28};
    get(remote.write(KvCommand.Put.of("kv/binary", binary)));
    KvResult.TxnDone txn = (KvResult.TxnDone) get(remote.write(new KvCommand.Txn(
        List.of(new Compare(key, Compare.Target.MOD_REVISION, Compare.Op.EQUAL, second.revision(), null),
            new Compare("kv/binary", Compare.Target.VALUE, Compare.Op.EQUAL, 0, binary),
            new Compare("kv/absent", Compare.Target.VERSION, Compare.Op.EQUAL, 0, null)),
        List.of(new TxnOp.Put("kv/t1", binary, 0), new TxnOp.Get("kv/t1"), new TxnOp.Get("kv/absent"),
            new TxnOp.Delete(key, false)),
        List.of(new TxnOp.Get(key)))));
    assertTrue(txn.succeeded());
    assertEquals(4, txn.results().size());
    assertEquals(new KvResult.PutDone(txn.revision(), null), txn.results().get(0));
    KeyValue t1 = ((KvResult.GetDone) txn.results().get(1)).kv();
    assertFieldsEqual(((KvResult.GetDone) embedded(new KvQuery.Get("kv/t1"))).kv(), t1, "txn get");
    assertNull(((KvResult.GetDone) txn.results().get(2)).kv());
    assertEquals(new KvResult.DeleteDone(txn.revision(), 1), txn.results().get(3));
    KvResult.TxnDone failed = (KvResult.TxnDone) get(remote.write(new KvCommand.Txn(
        List.of(new Compare("kv/t1", Compare.Target.VALUE, Compare.Op.EQUAL, 0, bytes("nope"))),
        List.of(), List.of(new TxnOp.Get("kv/t1")))));
    assertTrue(!failed.succeeded());
    assertFieldsEqual(((KvResult.GetDone) embedded(new KvQuery.Get("kv/t1"))).kv(),
        ((KvResult.GetDone) failed.results().get(0)).kv(), "failure branch get");

    // absent key: GetDone with no kv, at the store's revision
    KvResult.GetDone absent = (KvResult.GetDone) remoteRead(new KvQuery.Get(key));
    assertNull(absent.kv());
    assertTrue(absent.revision() >= txn.revision());

    // ranges, with limit and after, equal to the node's
    for (int i = 0; i < 5; i++) {
      get(remote.write(KvCommand.Put.of("kv/r/" + i, bytes("v" + i))));
    }
    for (KvQuery.Range range : List.of(new KvQuery.Range("kv/", null, 0), new KvQuery.Range("kv/r/", "kv/r/1", 2),
        new KvQuery.Range("nothing/", null, 0))) { // (no keys with leases: API.md v1 does not send them)
      assertFieldsEqual(embedded(range), remoteRead(range), range.toString());
    }
    KvResult.DeleteDone deleted = (KvResult.DeleteDone) get(remote.write(new KvCommand.Delete("kv/r/", true, null)));
    assertEquals(5, deleted.deleted());
    assertEquals(new KvResult.PreconditionFailed(t1.modRevision()),
        get(remote.write(new KvCommand.Delete("kv/t1", false, 1L))));
    assertEquals(new KvResult.DeleteDone(deleted.revision() + 1, 1),
        get(remote.write(new KvCommand.Delete("kv/t1", false, t1.modRevision()))));
    assertEquals(RaftKvException.Kind.BAD_REQUEST, failure(remote.read(new KvQuery.History("kv/", true, 1, 10), RaftKv.Consistency.LINEARIZABLE)).kind());
  }

  @Test
  void leasesAreGrantedKeptAliveReadAndRevoked() throws Exception {
    KvResult.LeaseGranted granted = get(remote.grantLease(20));
    assertEquals(20, granted.ttlSeconds());
    assertEquals(new KvResult.LeaseExists(granted.id()), get(remote.write(new KvCommand.LeaseGrant(granted.id(), 20))));
    assertInstanceOf(KvResult.PutDone.class, get(remote.write(new KvCommand.Put("lease/a", bytes("a"), granted.id(), null, false))));
    assertEquals(20L, get(remote.keepAliveLease(granted.id())));
    KvResult.LeaseInfo info = (KvResult.LeaseInfo) remoteRead(new KvQuery.LeaseGet(granted.id()));
    KvResult.LeaseInfo node = (KvResult.LeaseInfo) embedded(new KvQuery.LeaseGet(granted.id()));
    assertEquals(node.id(), info.id());
    assertEquals(node.ttlSeconds(), info.ttlSeconds());
    assertEquals(node.keys(), info.keys());
    assertTrue(((KvResult.Leases) remoteRead(new KvQuery.LeaseList(true))).leases().stream()
        .anyMatch(l -> l.id() == granted.id() && l.ttlSeconds() == 20));
    KvResult.LeaseRevoked revoked = get(remote.revokeLease(granted.id()));
    assertEquals(1, revoked.deleted());
    assertNull(((KvResult.GetDone) remoteRead(new KvQuery.Get("lease/a"))).kv());
    assertEquals(new KvResult.LeaseNotFound(granted.id()), remoteRead(new KvQuery.LeaseGet(granted.id())));
    assertEquals(new KvResult.LeaseNotFound(granted.id()), remoteRead(new KvQuery.LeaseKeepAlive(granted.id())));
    assertEquals(RaftKvException.Kind.NOT_FOUND, failure(remote.keepAliveLease(granted.id())).kind());
    assertEquals(new KvResult.LeaseNotFound(granted.id()), get(remote.write(new KvCommand.LeaseRevoke(granted.id(), 0))));
    assertEquals(new KvResult.LeaseNotFound(granted.id()),
        get(remote.write(new KvCommand.Put("lease/b", bytes("b"), granted.id(), null, false))));
    assertEquals(new KvResult.LeaseNotFound(granted.id()), get(remote.write(new KvCommand.Txn(List.of(),
        List.of(new TxnOp.Put("lease/c", bytes("c"), granted.id())), List.of()))));
    assertEquals(RaftKvException.Kind.BAD_REQUEST,
        failure(remote.write(new KvCommand.LeaseCheckpoint(granted.id(), 1000, 1))).kind());
  }

  @Test
  void idempotencyKeysReplayTheFirstAnswerAndRefuseAnotherRequest() throws Exception {
    KvCommand put = new KvCommand.Idempotent("key-1", new byte[0], KvCommand.Put.of("idem/a", bytes("a")));
    KvResult.PutDone first = (KvResult.PutDone) get(remote.write(put));
    assertEquals(new KvResult.Replayed(first), get(remote.write(put)));
    assertEquals(new KvResult.IdempotencyKeyReused("key-1"), get(remote.write(
        new KvCommand.Idempotent("key-1", new byte[0], KvCommand.Put.of("idem/a", bytes("other"))))));
    // a replayed precondition failure is a replay too
    KvCommand cas = new KvCommand.Idempotent("key-2", new byte[0], new KvCommand.Put("idem/a", bytes("b"), 0, 0L, false));
    assertEquals(new KvResult.PreconditionFailed(first.revision()), get(remote.write(cas)));
    assertEquals(new KvResult.Replayed(new KvResult.PreconditionFailed(first.revision())), get(remote.write(cas)));
    assertEquals(1, ((KvResult.GetDone) remoteRead(new KvQuery.Get("idem/a"))).kv().version());
  }

  /**
   * A proxy in front of node {@code to} that forwards each request and answers 504 (the outcome is
   * unknown to the client) once the node has applied it.
   */
  private ServerBinding applyingButTimingOutProxy(int to, AtomicInteger forwarded) throws Exception {
    Http http = Http.get(clients.system());
    String target = "http://" + cluster.endpoint(to);
    akka.japi.function.Function<HttpRequest, CompletionStage<HttpResponse>> handler = request -> {
      forwarded.incrementAndGet();
      List<HttpHeader> headers = new ArrayList<>();
      for (HttpHeader h : request.getHeaders()) {
        if (List.of("idempotency-key", "if-match", "if-none-match", "if-fence").contains(h.lowercaseName())) {
          headers.add(h);
        }
      }
      return request.entity().toStrict(5_000, akka.stream.Materializer.matFromSystem(clients.system()))
          .thenCompose(body -> http.singleRequest(HttpRequest.create(target + request.getUri().getPathString()
                  + request.getUri().rawQueryString().map(q -> "?" + q).orElse(""))
              .withMethod(request.method()).withEntity(body).addHeaders(headers)))
          .thenCompose(response -> response.entity().toStrict(5_000, akka.stream.Materializer.matFromSystem(clients.system())))
          .thenApply(applied -> HttpResponse.create().withStatus(StatusCodes.GATEWAY_TIMEOUT)
              .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON,
                  "{\"error\":\"timeout\",\"message\":\"outcome unknown\"}")));
    };
    return http.newServerAt("127.0.0.1", 0).bind(handler).toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void aWriteWhoseOutcomeIsUnknownIsRetriedUnderItsAutomaticKeyAndAppliedOnce() throws Exception {
    AtomicInteger forwarded = new AtomicInteger();
    ServerBinding proxy = applyingButTimingOutProxy(leader, forwarded);
    String proxyEndpoint = "127.0.0.1:" + proxy.localAddress().getPort();
    try (RemoteRaftKv client = RemoteRaftKv.create(clients.system(), List.of(proxyEndpoint, cluster.endpoint(leader)),
        RemoteRaftKv.Settings.defaults())) {
      KvResult result = get(client.write(KvCommand.Put.of("retry/a", bytes("a"))));
      KvResult.PutDone done = assertInstanceOf(KvResult.PutDone.class, result, "the replay unwrapped to the first answer");
      assertEquals(1, forwarded.get());
      KeyValue kv = ((KvResult.GetDone) embedded(new KvQuery.Get("retry/a"))).kv();
      assertEquals(1, kv.version(), "applied once");
      assertEquals(done.revision(), kv.modRevision());
    }
    // without automatic keys, an unknown outcome is the caller's: TIMEOUT, not sent again
    try (RemoteRaftKv client = RemoteRaftKv.create(clients.system(), List.of(proxyEndpoint, cluster.endpoint(leader)),
        RemoteRaftKv.Settings.defaults().withAutoIdempotency(false))) {
      assertEquals(RaftKvException.Kind.TIMEOUT, failure(client.write(KvCommand.Put.of("retry/b", bytes("b")))).kind());
      assertEquals(2, forwarded.get());
      assertEquals(1, ((KvResult.GetDone) embedded(new KvQuery.Get("retry/b"))).kv().version());
      // reads are always retried
      assertEquals(1, ((KvResult.GetDone) get(client.read(new KvQuery.Get("retry/b"), RaftKv.Consistency.LINEARIZABLE)))
          .kv().version());
    } finally {
      proxy.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void watchesFromARevisionDeliverTheExactChangesInOrder() throws Exception {
    long start = ((KvResult.PutDone) get(remote.write(KvCommand.Put.of("w/a", bytes("1"))))).revision();
    get(remote.write(KvCommand.Put.of("w/b", bytes("2"))));
    get(remote.write(KvCommand.Put.of("other", bytes("x"))));
    get(remote.write(new KvCommand.Txn(List.of(), List.of(new TxnOp.Put("w/a", bytes("3"), 0),
        new TxnOp.Put("w/c", new byte[] {(byte) 0xfe}, 0)), List.of())));
    long last = ((KvResult.DeleteDone) get(remote.write(new KvCommand.Delete("w/", true, null)))).revision();
    WatchRequest request = WatchRequest.prefix("w/").from(start).withPrevKv();
    List<WatchMessage.Change> expected = changes(get(cluster.node(leader).watch(request)), last);
    for (int via = 0; via < 3; via++) {
      try (RemoteRaftKv client = RemoteRaftKv.create(clients.system(), List.of(cluster.endpoint(via)))) {
        List<WatchMessage.Change> seen = changes(get(client.watch(request)), last);
        assertEquals(4, seen.size());
        assertFieldsEqual(expected, seen, "changes via node " + via);
      }
    }
    assertEquals(RaftKvException.Kind.BAD_REQUEST, failure(remote.watch(new WatchRequest("", false, 1, false))).kind());

    // from 0: after the current revision, pinned to a revision so that a resumption skips nothing
    CompletableFuture<WatchMessage.Change> next = get(remote.watch(WatchRequest.key("w/next")))
        .filter(m -> m instanceof WatchMessage.Change).map(m -> (WatchMessage.Change) m)
        .runWith(Sink.head(), clients.system()).toCompletableFuture();
    long put = ((KvResult.PutDone) get(remote.write(KvCommand.Put.of("w/next", bytes("n"))))).revision();
    assertEquals(put, next.get(20, TimeUnit.SECONDS).revision());
  }

  /** The changes of {@code source} up to revision {@code last}. */
  private List<WatchMessage.Change> changes(akka.stream.javadsl.Source<WatchMessage, akka.NotUsed> source, long last)
      throws Exception {
    return source.filter(m -> m instanceof WatchMessage.Change).map(m -> (WatchMessage.Change) m)
        .takeWhile(c -> c.revision() < last, true)
        .runWith(Sink.seq(), clients.system()).toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  @Test
  void statusHealthAndSnapshotComeFromTheNodes() throws Exception {
    ClusterStatus status = get(remote.status());
    assertEquals(3, status.members().size());
    assertTrue(status.leaderId() != null);
    assertTrue(get(remote.health()).healthy());
    assertTrue(get(remote.snapshot()).index() > 0);
  }

  @Test
  void theLockRecipeWorksOverTheRemoteClientWithFencedWrites() throws Exception {
    List<RemoteRaftKv> viaEach = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      viaEach.add(RemoteRaftKv.create(clients.system(), List.of(cluster.endpoint(i))));
    }
    try {
      long[] leases = new long[4];
      for (int i = 0; i < 4; i++) {
        leases[i] = get(viaEach.get(i % 3).grantLease(30)).id();
      }
      LockQueue.Waiter first = get(LockQueue.create(viaEach.get(0), clients.system())
          .acquire("jobs", leases[0], new byte[0], Duration.ZERO));
      List<CompletableFuture<LockQueue.Waiter>> waiting = new ArrayList<>();
      for (int i = 1; i < 4; i++) {
        waiting.add(LockQueue.create(viaEach.get(i % 3), clients.system())
            .acquire("jobs", leases[i], new byte[0], Duration.ofSeconds(20)).toCompletableFuture());
        String key = LockQueue.waiterKey("jobs", leases[i]);
        await().atMost(WAIT).until(() -> ((KvResult.GetDone) remoteRead(new KvQuery.Get(key))).kv() != null);
      }
      assertTrue(waiting.stream().noneMatch(CompletableFuture::isDone), "nobody gets a held lock");
      // a retry with the same lease (through another endpoint) keeps its place
      LockQueue.Waiter again = get(LockQueue.create(viaEach.get(2), clients.system())
          .acquire("jobs", leases[0], new byte[0], Duration.ZERO));
      assertEquals(first.token(), again.token());
      assertEquals(first.key(), again.key());
      assertInstanceOf(KvResult.PutDone.class, get(remote.write(new KvCommand.Fenced("jobs", first.token(),
          KvCommand.Put.of("counter", bytes("1"))))));
      LockQueue.Waiter holder = first;
      for (CompletableFuture<LockQueue.Waiter> next : waiting) {
        long released = get(LockQueue.create(remote, clients.system()).release("jobs", holder.key(), holder.token()));
        assertTrue(released > holder.token());
        LockQueue.Waiter now = next.get(20, TimeUnit.SECONDS);
        assertTrue(now.token() > holder.token());
        assertEquals(new KvResult.FenceFailed("jobs", now.token()), get(remote.write(new KvCommand.Fenced("jobs",
            holder.token(), KvCommand.Put.of("counter", bytes("late"))))));
        assertEquals(new KvResult.FenceFailed("jobs", now.token()), get(remote.write(new KvCommand.Fenced("jobs",
            holder.token(), KvCommand.Delete.of("counter")))));
        assertInstanceOf(KvResult.PutDone.class, get(remote.write(new KvCommand.Fenced("jobs", now.token(),
            KvCommand.Put.of("counter", bytes("ok"))))));
        holder = now;
      }
      assertEquals(holder.key(), get(LockQueue.create(remote, clients.system()).holder("jobs")).orElseThrow().key());
      assertEquals(RaftKvException.Kind.NOT_FOUND,
          failure(LockQueue.create(remote, clients.system()).release("jobs", first.key(), 0)).kind());
      // a waiter that times out leaves no key behind
      long late = get(remote.grantLease(30)).id();
      assertEquals(RaftKvException.Kind.LOCK_TIMEOUT, failure(LockQueue.create(remote, clients.system())
          .acquire("jobs", late, new byte[0], Duration.ofMillis(300))).kind());
      assertNull(((KvResult.GetDone) remoteRead(new KvQuery.Get(LockQueue.waiterKey("jobs", late)))).kv());
    } finally {
      viaEach.forEach(RemoteRaftKv::close);
    }
  }
}
