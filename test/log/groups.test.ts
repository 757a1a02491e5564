import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isMemberIdRequired, type JoinGroupRequest, type JoinGroupResult } from '../../src/log/api.ts';
import { GroupCoordinator } from '../../src/log/groups.ts';

let dir: string;
let clock: number;
let coord: GroupCoordinator;
const open = () => new GroupCoordinator({ dataDir: dir, now: () => clock, tickIntervalMs: 0 });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-groups-'));
  clock = 1_000_000;
  coord = open();
});
afterEach(async () => {
  await coord.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function request(over: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId: 'g',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('m') }],
    clientId: 'c',
    clientHost: '/127.0.0.1',
    requireKnownMemberId: false,
    ...over,
  };
}

function kafkaCode(code: number): (err: unknown) => boolean {
  return (err) => {
    assert.equal((err as { kafkaErrorCode?: number }).kafkaErrorCode, code, String(err));
    return true;
  };
}

/** Joins a single member and syncs it: a Stable group of one at generation 1. */
async function joinAlone(over: Partial<JoinGroupRequest> = {}): Promise<JoinGroupResult> {
  const r = await coord.joinGroup(request(over));
  await coord.syncGroup('g', r.generationId, r.memberId, [{ memberId: r.memberId, assignment: Buffer.from('a') }]);
  return r;
}

/** Resolves true if the promise settles within a few event-loop turns. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('GroupCoordinator membership', () => {
  it('answers MEMBER_ID_REQUIRED with an id, then admits the member under that id', async () => {
    let assigned = '';
    await assert.rejects(coord.joinGroup(request({ requireKnownMemberId: true, clientId: 'app' })), (err) => {
      assert.ok(isMemberIdRequired(err));
      assigned = err.memberId;
      return true;
    });
    assert.match(assigned, /^app-/);
    const r = await coord.joinGroup(request({ memberId: assigned, requireKnownMemberId: true }));
    assert.equal(r.memberId, assigned);
    assert.equal(r.leader, assigned);
    assert.equal(r.generationId, 1);
    assert.equal(r.protocolName, 'range');
    assert.deepEqual(
      r.members.map((m) => [m.memberId, m.metadata.toString()]),
      [[assigned, 'm']],
    );
    const s = await coord.syncGroup('g', 1, assigned, [{ memberId: assigned, assignment: Buffer.from('p0') }]);
    assert.equal(s.assignment.toString(), 'p0');
    await coord.heartbeat('g', 1, assigned);
    const d = coord.describeGroup('g');
    assert.equal(d.state, 'Stable');
    assert.equal(d.members[0]?.assignment.toString(), 'p0');
  });

  it('rebalances when a second member joins: the first learns by heartbeat, both get the new generation', async () => {
    const a = await joinAlone();
    const bJoin = coord.joinGroup(request({ clientId: 'b' }));
    assert.equal(await settled(bJoin), false, 'the join waits for the known member to rejoin');
    assert.equal(coord.describeGroup('g').state, 'PreparingRebalance');
    await assert.rejects(coord.heartbeat('g', 1, a.memberId), kafkaCode(27));
    const aJoin = await coord.joinGroup(request({ memberId: a.memberId }));
    const b = await bJoin;
    assert.equal(aJoin.generationId, 2);
    assert.equal(b.generationId, 2);
    assert.equal(aJoin.leader, a.memberId, 'the leader stays the leader');
    assert.equal(aJoin.members.length, 2);
    assert.deepEqual(b.members, [], 'only the leader gets the member list');
    const bSync = coord.syncGroup('g', 2, b.memberId, []);
    assert.equal(await settled(bSync), false, "a follower's sync waits for the leader");
    const aSync = await coord.syncGroup('g', 2, a.memberId, [
      { memberId: a.memberId, assignment: Buffer.from('A') },
      { memberId: b.memberId, assignment: Buffer.from('B') },
    ]);
    assert.equal(aSync.assignment.toString(), 'A');
    assert.equal((await bSync).assignment.toString(), 'B');
    await assert.rejects(coord.heartbeat('g', 1, a.memberId), kafkaCode(22));
    await coord.heartbeat('g', 2, b.memberId);
  });

  it('completes a rebalance at the rebalance timeout without members that did not rejoin', async () => {
    const a = await joinAlone({ rebalanceTimeoutMs: 5_000 });
    const bJoin = coord.joinGroup(request({ rebalanceTimeoutMs: 5_000 }));
    clock += 4_999;
    coord.tick();
    assert.equal(await settled(bJoin), false);
    clock += 1;
    coord.tick();
    const b = await bJoin;
    assert.equal(b.generationId, 2);
    assert.equal(b.leader, b.memberId);
    assert.deepEqual(
      b.members.map((m) => m.memberId),
      [b.memberId],
    );
    await assert.rejects(coord.heartbeat('g', 1, a.memberId), kafkaCode(25));
  });

  it('removes a member whose session times out and rebalances the rest', async () => {
    const a = await joinAlone({ sessionTimeoutMs: 1_000 });
    const bJoin = coord.joinGroup(request({ sessionTimeoutMs: 1_000 }));
    const aJoin = coord.joinGroup(request({ memberId: a.memberId, sessionTimeoutMs: 1_000 }));
    const [a2, b2] = await Promise.all([aJoin, bJoin]);
    await coord.syncGroup('g', 2, a2.memberId, []);
    await coord.syncGroup('g', 2, b2.memberId, []);
    clock += 600;
    await coord.heartbeat('g', 2, a2.memberId);
    clock += 600;
    coord.tick();
    assert.equal(coord.describeGroup('g').members.length, 1, 'b missed its session');
    await assert.rejects(coord.heartbeat('g', 2, b2.memberId), kafkaCode(25));
    await assert.rejects(coord.heartbeat('g', 2, a2.memberId), kafkaCode(27));
    const a3 = await coord.joinGroup(request({ memberId: a2.memberId, sessionTimeoutMs: 1_000 }));
    assert.equal(a3.generationId, 3);
  });

  it('rebalances on leave and becomes Empty when the last member leaves', async () => {
    const a = await joinAlone();
    const bJoin = coord.joinGroup(request());
    const aJoin = coord.joinGroup(request({ memberId: a.memberId }));
    const [, b] = await Promise.all([aJoin, bJoin]);
    await coord.leaveGroup('g', a.memberId);
    assert.equal(coord.describeGroup('g').state, 'PreparingRebalance');
    const b3 = await coord.joinGroup(request({ memberId: b.memberId }));
    assert.equal(b3.generationId, 3);
    assert.equal(b3.leader, b.memberId, 'a new leader is chosen when the leader leaves');
    await coord.leaveGroup('g', b.memberId);
    assert.equal(coord.describeGroup('g').state, 'Empty');
    await assert.rejects(coord.leaveGroup('g', b.memberId), kafkaCode(25));
    coord.tick();
    assert.equal(coord.describeGroup('g').state, 'Dead', 'an empty group without offsets is forgotten');
  });

  it('answers SyncGroup with REBALANCE_IN_PROGRESS during a join and ILLEGAL_GENERATION for old generations', async () => {
    const a = await joinAlone();
    const bJoin = coord.joinGroup(request());
    await assert.rejects(coord.syncGroup('g', 1, a.memberId, []), kafkaCode(27));
    await coord.joinGroup(request({ memberId: a.memberId }));
    await bJoin;
    await assert.rejects(coord.syncGroup('g', 1, a.memberId, []), kafkaCode(22));
    await assert.rejects(coord.syncGroup('g', 2, 'nobody', []), kafkaCode(25));
  });

  it('picks the protocol every member supports by preference and rejects members with none in common', async () => {
    const p = (...names: string[]) => names.map((name) => ({ name, metadata: Buffer.from(name) }));
    const a = await coord.joinGroup(request({ protocols: p('x', 'y') }));
    assert.equal(a.protocolName, 'x');
    await coord.syncGroup('g', 1, a.memberId, []);
    const bJoin = coord.joinGroup(request({ protocols: p('z', 'y') }));
    const a2 = await coord.joinGroup(request({ memberId: a.memberId, protocols: p('x', 'y') }));
    assert.equal(a2.protocolName, 'y');
    assert.deepEqual(
      a2.members.map((m) => m.metadata.toString()),
      ['y', 'y'],
    );
    await bJoin;
    await assert.rejects(coord.joinGroup(request({ protocols: p('w') })), kafkaCode(23));
    await assert.rejects(coord.joinGroup(request({ protocolType: 'connect', protocols: p('y') })), kafkaCode(23));
  });

  it('lets a static member restart under a new id without a rebalance, fencing the old id', async () => {
    const a = await joinAlone();
    const bJoin = coord.joinGroup(request({ groupInstanceId: 'inst-b' }));
    await coord.joinGroup(request({ memberId: a.memberId }));
    const b = await bJoin;
    await Promise.all([
      coord.syncGroup('g', 2, b.memberId, []),
      coord.syncGroup('g', 2, a.memberId, [{ memberId: b.memberId, assignment: Buffer.from('B') }]),
    ]);
    const b2 = await coord.joinGroup(request({ groupInstanceId: 'inst-b' }));
    assert.notEqual(b2.memberId, b.memberId);
    assert.equal(b2.generationId, 2, 'no rebalance for a returning static follower');
    assert.equal(coord.describeGroup('g').state, 'Stable');
    const s = await coord.syncGroup('g', 2, b2.memberId, []);
    assert.equal(s.assignment.toString(), 'B', 'it keeps its assignment');
    await assert.rejects(coord.heartbeat('g', 2, b.memberId), kafkaCode(25));
    await assert.rejects(coord.joinGroup(request({ memberId: b.memberId, groupInstanceId: 'inst-b' })), kafkaCode(25));
  });

  it('drops a join whose request is aborted; the rebalance then ends at its deadline', async () => {
    const opts = { rebalanceTimeoutMs: 1_000 };
    const a = await joinAlone(opts);
    const bJoin = coord.joinGroup(request(opts));
    await coord.joinGroup(request({ ...opts, memberId: a.memberId }));
    const b = await bJoin;
    await Promise.all([coord.syncGroup('g', 2, b.memberId, []), coord.syncGroup('g', 2, a.memberId, [])]);
    const cJoin = coord.joinGroup(request(opts));
    const ac = new AbortController();
    const aJoin = coord.joinGroup(request({ ...opts, memberId: a.memberId }), ac.signal);
    const aborted = new Error('connection closed');
    ac.abort(aborted);
    await assert.rejects(aJoin, (err) => err === aborted);
    const bJoin2 = coord.joinGroup(request({ ...opts, memberId: b.memberId }));
    assert.equal(await settled(bJoin2), false, 'a no longer counts as rejoined');
    clock += 1_000;
    coord.tick();
    const [b3, c] = await Promise.all([bJoin2, cJoin]);
    assert.equal(c.generationId, 3);
    assert.deepEqual(
      b3.members.map((m) => m.memberId),
      [b.memberId, c.memberId],
      'b leads now, a is gone',
    );
  });

  it('validates the session timeout and group id', async () => {
    await assert.rejects(coord.joinGroup(request({ sessionTimeoutMs: 1 })), kafkaCode(26));
    await assert.rejects(coord.joinGroup(request({ groupId: '' })), kafkaCode(24));
  });
});

describe('GroupCoordinator offsets', () => {
  const tp = (partition: number, offset: bigint, metadata: string | null = null) => ({
    topic: 't',
    partition,
    offset,
    metadata,
  });

  it('commits from the current generation, rejects stale generations, allows simple commits on an empty group', async () => {
    await coord.commitOffsets('simple', -1, '', [tp(0, 5n, 'meta')]);
    const a = await joinAlone();
    await coord.commitOffsets('g', 1, a.memberId, [tp(0, 10n), tp(1, 20n)]);
    await assert.rejects(coord.commitOffsets('g', 0, a.memberId, [tp(0, 11n)]), kafkaCode(22));
    await assert.rejects(coord.commitOffsets('g', -1, '', [tp(0, 11n)]), kafkaCode(25));
    await assert.rejects(coord.commitOffsets('g', 1, 'other', [tp(0, 11n)]), kafkaCode(25));
    const got = await coord.fetchOffsets('g', [
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
      { topic: 't', partition: 2 },
    ]);
    assert.deepEqual(
      got.map((o) => [o.partition, o.offset]),
      [
        [0, 10n],
        [1, 20n],
        [2, -1n],
      ],
    );
    assert.deepEqual(
      (await coord.fetchOffsets('simple')).map((o) => [o.offset, o.metadata]),
      [[5n, 'meta']],
    );
  });

  it('keeps committed offsets across a restart and compacts the file on open', async () => {
    for (let i = 0; i < 50; i++) await coord.commitOffsets('g', -1, '', [tp(i % 3, BigInt(i), `m${i}`)]);
    await coord.commitOffsets('h', -1, '', [tp(0, 7n)]);
    const file = path.join(dir, '__consumer_offsets', 'offsets.log');
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 51);
    await coord.close();
    // A torn write at the tail (never acknowledged) is ignored.
    fs.appendFileSync(file, '{"c":"g","o":[["t",0,"99');
    coord = open();
    const got = (await coord.fetchOffsets('g')).sort((x, y) => x.partition - y.partition);
    assert.deepEqual(
      got.map((o) => [o.partition, o.offset, o.metadata]),
      [
        [0, 48n, 'm48'],
        [1, 49n, 'm49'],
        [2, 47n, 'm47'],
      ],
    );
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 2, 'one line per group after compaction');
    assert.deepEqual(
      coord
        .listGroups()
        .map((g) => g.groupId)
        .sort(),
      ['g', 'h'],
    );
    assert.equal(coord.describeGroup('h').state, 'Empty');
    assert.equal(coord.describeGroup('nope').state, 'Dead');
  });

  it('makes transactional offsets visible only on commit, also across a restart', async () => {
    await coord.stage('g', 7n, [tp(0, 100n)]);
    await coord.stage('g', 8n, [tp(1, 200n)]);
    assert.deepEqual(await coord.fetchOffsets('g'), []);
    await coord.complete(8n, false);
    await coord.close();
    coord = open();
    assert.deepEqual(await coord.fetchOffsets('g'), [], 'still staged after restart');
    await coord.complete(7n, true);
    assert.deepEqual(
      (await coord.fetchOffsets('g')).map((o) => [o.partition, o.offset]),
      [[0, 100n]],
    );
    await coord.close();
    coord = open();
    assert.deepEqual(
      (await coord.fetchOffsets('g')).map((o) => [o.partition, o.offset]),
      [[0, 100n]],
    );
  });

  it('deletes only empty groups, durably', async () => {
    const a = await joinAlone();
    await coord.commitOffsets('g', 1, a.memberId, [tp(0, 3n)]);
    await assert.rejects(coord.deleteGroup('g'), kafkaCode(68));
    await assert.rejects(coord.deleteGroup('missing'), kafkaCode(69));
    await coord.leaveGroup('g', a.memberId);
    await coord.deleteGroup('g');
    await coord.close();
    coord = open();
    assert.deepEqual(await coord.fetchOffsets('g'), []);
    assert.deepEqual(coord.listGroups(), []);
  });

  it('rejects malformed offsets with a precise error', async () => {
    await assert.rejects(coord.commitOffsets('g', -1, '', [{ topic: 't', partition: -1, offset: 1n }]), /partition/);
  });
});

describe('GroupCoordinator invariants', () => {
  it('after any sequence of joins, leaves and expiries, a full rejoin yields one consistent generation', async () => {
    const fc = (await import('fast-check')).default;
    const op = fc.oneof(
      fc.constant({ kind: 'join' as const, who: 0 }),
      fc.record({ kind: fc.constant('leave' as const), who: fc.nat(5) }),
      fc.record({ kind: fc.constant('expire' as const), who: fc.nat(5) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        await coord.close();
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir);
        coord = open();
        const opts = { sessionTimeoutMs: 1_000, rebalanceTimeoutMs: 1_000 };
        let members: string[] = [];
        let gen = 0;
        /** Every known member rejoins; resolves with the results once the generation completes. */
        const rejoinAll = async (extra: Promise<JoinGroupResult>[] = []) => {
          const joins = [...members.map((memberId) => coord.joinGroup(request({ ...opts, memberId }))), ...extra];
          return Promise.all(joins);
        };
        for (const o of ops) {
          if (o.kind === 'join') {
            const results = await rejoinAll([coord.joinGroup(request(opts))]);
            members = results.map((r) => r.memberId);
          } else if (members.length > 0) {
            const victim = members[o.who % members.length]!;
            members = members.filter((m) => m !== victim);
            if (o.kind === 'leave') {
              await coord.leaveGroup('g', victim);
            } else {
              // Everyone else heartbeats; the victim stays silent past its session.
              clock += 600;
              for (const m of members) await coord.heartbeat('g', gen, m);
              clock += 600;
              coord.tick();
              assert.equal(coord.describeGroup('g').members.length, members.length, 'the victim expired');
            }
            if (members.length > 0) members = (await rejoinAll()).map((r) => r.memberId);
          }
          if (members.length === 0) continue;
          const results = await rejoinAll();
          const gens = new Set(results.map((r) => r.generationId));
          assert.equal(gens.size, 1, 'one generation');
          const leaders = new Set(results.map((r) => r.leader));
          assert.equal(leaders.size, 1, 'one leader');
          const leader = [...leaders][0]!;
          assert.ok(members.includes(leader), 'the leader is a member');
          const leaderResult = results.find((r) => r.memberId === leader)!;
          assert.deepEqual(leaderResult.members.map((m) => m.memberId).sort(), [...members].sort());
          gen = [...gens][0]!;
          const syncs = await Promise.all(
            members.map((m) =>
              coord.syncGroup(
                'g',
                gen,
                m,
                m === leader ? members.map((id) => ({ memberId: id, assignment: Buffer.from(id) })) : [],
              ),
            ),
          );
          for (const [i, s] of syncs.entries()) assert.equal(s.assignment.toString(), members[i]);
          assert.equal(coord.describeGroup('g').state, 'Stable');
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('GroupCoordinator transactional offsets, concurrently', () => {
  it('a commit that races the staging write still applies the staged offsets', async () => {
    const staged = coord.stage('g', 9n, [{ topic: 't', partition: 0, offset: 42n }]);
    const completed = coord.complete(9n, true);
    await Promise.all([staged, completed]);
    assert.deepEqual(
      (await coord.fetchOffsets('g')).map((o) => o.offset),
      [42n],
    );
  });
});
