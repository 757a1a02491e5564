import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { type ErrorCode, TributaryError } from '../core/index.ts';
import type {
  GroupDescription,
  JoinGroupRequest,
  JoinGroupResult,
  OffsetAndMetadata,
  TopicPartition,
  TxnOffsetSink,
} from './api.ts';
import { OffsetStore } from './groups-store.ts';

export interface GroupCoordinatorOptions {
  dataDir: string;
  /** Clock in ms; tests inject one and call `tick()`. */
  now?: () => number;
  /** How often session and rebalance timeouts are checked; 0 disables the timer (tests call `tick()`). */
  tickIntervalMs?: number;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
}

type GroupState = GroupDescription['state'];
type SyncResult = { protocolType: string; protocolName: string; assignment: Buffer };

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: { name: string; metadata: Buffer }[];
  assignment: Buffer;
  lastHeartbeat: number;
  awaitingJoin: Waiter<JoinGroupResult> | null;
  awaitingSync: Waiter<SyncResult> | null;
}

interface Group {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string;
  protocolName: string;
  leaderId: string | null;
  /** Insertion order is join order: the first member becomes leader. */
  members: Map<string, Member>;
  staticMembers: Map<string, string>;
  /** Ids handed out with MEMBER_ID_REQUIRED, valid until the deadline. */
  pendingMembers: Map<string, number>;
  rebalanceDeadline: number;
  syncDeadline: number;
}

/** Kafka error names, for messages. */
const KAFKA_NAMES: Record<number, string> = {
  15: 'COORDINATOR_NOT_AVAILABLE',
  22: 'ILLEGAL_GENERATION',
  23: 'INCONSISTENT_GROUP_PROTOCOL',
  24: 'INVALID_GROUP_ID',
  25: 'UNKNOWN_MEMBER_ID',
  26: 'INVALID_SESSION_TIMEOUT',
  27: 'REBALANCE_IN_PROGRESS',
  68: 'NON_EMPTY_GROUP',
  69: 'GROUP_ID_NOT_FOUND',
  79: 'MEMBER_ID_REQUIRED',
  82: 'FENCED_INSTANCE_ID',
};

const TRIBUTARY_CODES: Record<number, ErrorCode> = {
  15: 'UNAVAILABLE',
  22: 'FENCED',
  23: 'INVALID_ARGUMENT',
  24: 'INVALID_ARGUMENT',
  25: 'NOT_FOUND',
  26: 'INVALID_ARGUMENT',
  27: 'CONFLICT',
  68: 'CONFLICT',
  69: 'NOT_FOUND',
  79: 'CONFLICT',
  82: 'FENCED',
};

/** A TributaryError carrying a Kafka group error code; MEMBER_ID_REQUIRED also carries the assigned id. */
export function groupError(kafkaErrorCode: number, message: string, field?: string): TributaryError {
  return new TributaryError(
    TRIBUTARY_CODES[kafkaErrorCode] ?? 'INTERNAL',
    `${KAFKA_NAMES[kafkaErrorCode] ?? kafkaErrorCode}: ${message}`,
    {
      kafkaErrorCode,
      field,
      retriable: kafkaErrorCode === 27 || kafkaErrorCode === 15 || kafkaErrorCode === 79,
    },
  );
}

function memberIdRequired(groupId: string, memberId: string): TributaryError & { memberId: string } {
  const err = groupError(79, `group ${JSON.stringify(groupId)}: rejoin with the assigned member id ${memberId}`);
  return Object.assign(err, { memberId });
}

function sameProtocols(a: Member['protocols'], b: Member['protocols']): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}

/**
 * Kafka's classic group membership protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) and the
 * group's durable committed offsets, including offsets staged by transactions (visible only on commit).
 */
export class GroupCoordinator implements TxnOffsetSink {
  readonly #groups = new Map<string, Group>();
  readonly #store: OffsetStore;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout | null;
  readonly #minSession: number;
  readonly #maxSession: number;
  #closed = false;

  constructor(options: GroupCoordinatorOptions) {
    this.#now = options.now ?? Date.now;
    this.#minSession = options.minSessionTimeoutMs ?? 100;
    this.#maxSession = options.maxSessionTimeoutMs ?? 1_800_000;
    this.#store = new OffsetStore(path.join(options.dataDir, '__consumer_offsets'));
    const interval = options.tickIntervalMs ?? 100;
    this.#timer = interval > 0 ? setInterval(() => this.tick(), interval) : null;
    this.#timer?.unref();
  }

  // ---- membership ----

  joinGroup(request: JoinGroupRequest, signal?: AbortSignal): Promise<JoinGroupResult> {
    try {
      return this.#join(request, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  syncGroup(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    signal?: AbortSignal,
  ): Promise<SyncResult> {
    try {
      return this.#sync(groupId, generationId, memberId, assignments, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #join(request: JoinGroupRequest, signal?: AbortSignal): Promise<JoinGroupResult> {
    this.#checkOpen();
    const { groupId } = request;
    if (!groupId) throw groupError(24, 'groupId must be a non-empty string', 'groupId');
    if (request.sessionTimeoutMs < this.#minSession || request.sessionTimeoutMs > this.#maxSession) {
      throw groupError(
        26,
        `sessionTimeoutMs must be between ${this.#minSession} and ${this.#maxSession}, got ${request.sessionTimeoutMs}`,
        'sessionTimeoutMs',
      );
    }
    if (!request.protocolType || request.protocols.length === 0) {
      throw groupError(23, 'a join needs a protocolType and at least one protocol', 'protocols');
    }
    let group = this.#groups.get(groupId);
    if (!group) {
      group = {
        groupId,
        state: 'Empty',
        generationId: 0,
        protocolType: '',
        protocolName: '',
        leaderId: null,
        members: new Map(),
        staticMembers: new Map(),
        pendingMembers: new Map(),
        rebalanceDeadline: 0,
        syncDeadline: 0,
      };
      this.#groups.set(groupId, group);
    }
    if (group.members.size > 0) {
      const candidates = this.#candidateProtocols(group);
      if (request.protocolType !== group.protocolType || !request.protocols.some((p) => candidates.has(p.name))) {
        throw groupError(
          23,
          `group ${JSON.stringify(groupId)} uses protocol type ${JSON.stringify(group.protocolType)} with protocols ` +
            `${[...candidates].join(', ')}; the member offers ${request.protocolType}: ${request.protocols.map((p) => p.name).join(', ')}`,
        );
      }
    }

    const now = this.#now();
    let member: Member | undefined;
    let isNew = false;
    if (request.memberId === '') {
      const staticId = request.groupInstanceId === null ? undefined : group.staticMembers.get(request.groupInstanceId);
      const newId = `${request.groupInstanceId ?? request.clientId}-${randomUUID()}`;
      if (staticId !== undefined) {
        // A static member restarted: it takes over its old identity (and assignment) under a new id.
        member = this.#replaceStaticMember(group, staticId, newId);
      } else if (request.requireKnownMemberId && request.groupInstanceId === null) {
        group.pendingMembers.set(newId, now + request.sessionTimeoutMs);
        throw memberIdRequired(groupId, newId);
      } else {
        isNew = true;
        member = this.#newMember(group, newId, request, now);
      }
    } else if (group.pendingMembers.has(request.memberId)) {
      group.pendingMembers.delete(request.memberId);
      isNew = true;
      member = this.#newMember(group, request.memberId, request, now);
    } else {
      member = group.members.get(request.memberId);
      if (!member) {
        throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(request.memberId)}`);
      }
      if (request.groupInstanceId !== null && group.staticMembers.get(request.groupInstanceId) !== member.memberId) {
        throw groupError(82, `instance ${request.groupInstanceId} now belongs to another member`);
      }
    }
    const changed = !sameProtocols(member.protocols, request.protocols);
    member.protocols = request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.clientId = request.clientId;
    member.clientHost = request.clientHost;
    member.lastHeartbeat = now;
    if (member.groupInstanceId !== null) group.staticMembers.set(member.groupInstanceId, member.memberId);
    group.protocolType = request.protocolType;

    const current = member;
    const promise = new Promise<JoinGroupResult>((resolve, reject) => {
      current.awaitingJoin?.reject(groupError(25, `member ${current.memberId} joined again`));
      current.awaitingJoin = { resolve, reject };
    });
    if (signal) this.#onAbort(signal, current, 'awaitingJoin');

    const isLeader = group.leaderId === member.memberId;
    if (group.state === 'PreparingRebalance') {
      this.#maybeCompleteJoin(group);
    } else if (
      !isNew &&
      !changed &&
      ((group.state === 'Stable' && !isLeader) || group.state === 'CompletingRebalance')
    ) {
      // The member lost the answer to a join of this generation: answer again without a rebalance.
      const waiter = member.awaitingJoin!;
      member.awaitingJoin = null;
      waiter.resolve(this.#joinResult(group, member));
    } else {
      this.#prepareRebalance(group);
    }
    return promise;
  }

  #sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    signal?: AbortSignal,
  ): Promise<SyncResult> {
    this.#checkOpen();
    const { group, member } = this.#member(groupId, memberId);
    if (generationId !== group.generationId) throw this.#illegalGeneration(group, generationId);
    switch (group.state) {
      case 'Empty':
      case 'Dead':
        throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(memberId)}`);
      case 'PreparingRebalance':
        throw groupError(27, `group ${JSON.stringify(groupId)} is rebalancing; join again`);
      case 'Stable':
        return Promise.resolve(this.#syncResult(group, member));
      case 'CompletingRebalance': {
        member.lastHeartbeat = this.#now();
        const promise = new Promise<SyncResult>((resolve, reject) => {
          member.awaitingSync?.reject(groupError(25, `member ${memberId} synced again`));
          member.awaitingSync = { resolve, reject };
        });
        if (signal) this.#onAbort(signal, member, 'awaitingSync');
        if (memberId === group.leaderId) {
          const given = new Map(assignments.map((a) => [a.memberId, a.assignment]));
          for (const m of group.members.values()) m.assignment = Buffer.from(given.get(m.memberId) ?? Buffer.alloc(0));
          group.state = 'Stable';
          for (const m of group.members.values()) {
            const waiter = m.awaitingSync;
            m.awaitingSync = null;
            waiter?.resolve(this.#syncResult(group, m));
          }
        }
        return promise;
      }
    }
  }

  async heartbeat(groupId: string, generationId: number, memberId: string): Promise<void> {
    this.#checkOpen();
    const { group, member } = this.#member(groupId, memberId);
    if (group.state === 'Empty') {
      throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(memberId)}`);
    }
    if (generationId !== group.generationId) throw this.#illegalGeneration(group, generationId);
    member.lastHeartbeat = this.#now();
    if (group.state === 'PreparingRebalance') {
      throw groupError(27, `group ${JSON.stringify(groupId)} is rebalancing; join again`);
    }
  }

  async leaveGroup(groupId: string, memberId: string): Promise<void> {
    this.#checkOpen();
    const group = this.#groups.get(groupId);
    if (group?.pendingMembers.delete(memberId)) return;
    const { member } = this.#member(groupId, memberId);
    this.#removeMember(group!, member, groupError(25, `member ${memberId} left the group`));
  }

  // ---- offsets ----

  async commitOffsets(
    groupId: string,
    generationId: number,
    memberId: string,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    this.#checkOpen();
    if (!groupId) throw groupError(24, 'groupId must be a non-empty string', 'groupId');
    validateOffsets(offsets);
    const group = this.#groups.get(groupId);
    // generation -1 is a "simple" commit from a consumer that assigns partitions itself: allowed while the
    // group has no members, as in Kafka.
    const simple = generationId < 0 && (!group || group.members.size === 0);
    if (!simple) {
      if (!group) throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(memberId)}`);
      if (group.state === 'CompletingRebalance') {
        throw groupError(27, `group ${JSON.stringify(groupId)} is rebalancing; join again`);
      }
      const member = group.members.get(memberId);
      if (!member) throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(memberId)}`);
      if (generationId !== group.generationId) throw this.#illegalGeneration(group, generationId);
      member.lastHeartbeat = this.#now();
    }
    await this.#store.commit(groupId, offsets);
  }

  /** Committed offsets; a requested partition without one is answered with offset -1n (as Kafka does). */
  async fetchOffsets(groupId: string, partitions?: TopicPartition[]): Promise<(TopicPartition & OffsetAndMetadata)[]> {
    this.#checkOpen();
    const toResult = (o: {
      topic: string;
      partition: number;
      offset: bigint;
      leaderEpoch: number;
      metadata: string | null;
    }) => ({
      topic: o.topic,
      partition: o.partition,
      offset: o.offset,
      leaderEpoch: o.leaderEpoch,
      metadata: o.metadata,
    });
    if (!partitions) return this.#store.get(groupId).map(toResult);
    return partitions.map((tp) =>
      toResult(
        this.#store.getOne(groupId, tp.topic, tp.partition) ?? {
          topic: tp.topic,
          partition: tp.partition,
          offset: -1n,
          leaderEpoch: -1,
          metadata: '',
        },
      ),
    );
  }

  /** Stages offsets committed inside a transaction; they become visible when `complete(producerId, true)`. */
  async stage(groupId: string, producerId: bigint, offsets: (TopicPartition & OffsetAndMetadata)[]): Promise<void> {
    this.#checkOpen();
    validateOffsets(offsets);
    await this.#store.stage(groupId, producerId, offsets);
  }

  /** Ends a transaction's staged offsets: commit makes them the group's committed offsets, abort drops them. */
  async complete(producerId: bigint, commit: boolean): Promise<void> {
    this.#checkOpen();
    await this.#store.complete(producerId, commit);
  }

  describeGroup(groupId: string): GroupDescription {
    const group = this.#groups.get(groupId);
    if (!group) {
      return {
        groupId,
        state: this.#store.has(groupId) ? 'Empty' : 'Dead',
        protocolType: '',
        protocol: '',
        members: [],
      };
    }
    return {
      groupId,
      state: group.state,
      protocolType: group.protocolType,
      protocol: group.state === 'Stable' || group.state === 'CompletingRebalance' ? group.protocolName : '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
        assignment: m.assignment,
      })),
    };
  }

  listGroups(): { groupId: string; protocolType: string; state: GroupState }[] {
    const out = new Map<string, { groupId: string; protocolType: string; state: GroupState }>();
    for (const groupId of this.#store.groups()) out.set(groupId, { groupId, protocolType: '', state: 'Empty' });
    for (const g of this.#groups.values()) {
      if (g.members.size === 0 && !this.#store.has(g.groupId)) continue;
      out.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType, state: g.state });
    }
    return [...out.values()];
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.#checkOpen();
    const group = this.#groups.get(groupId);
    if (group && group.members.size > 0) {
      throw groupError(68, `group ${JSON.stringify(groupId)} still has ${group.members.size} member(s)`);
    }
    if (!this.#store.has(groupId) && !this.#store.hasStaged(groupId) && !group) {
      throw groupError(69, `group ${JSON.stringify(groupId)} does not exist`);
    }
    this.#groups.delete(groupId);
    await this.#store.deleteGroup(groupId);
  }

  /** Expires sessions and ends rebalances whose timeouts passed. Runs on a timer; tests call it directly. */
  tick(): void {
    if (this.#closed) return;
    const now = this.#now();
    for (const group of this.#groups.values()) {
      for (const [id, deadline] of group.pendingMembers) if (now >= deadline) group.pendingMembers.delete(id);
      for (const m of [...group.members.values()]) {
        // A member waiting in a join or sync is alive: its heartbeats resume when it is answered.
        if (m.awaitingJoin || m.awaitingSync) continue;
        if (now - m.lastHeartbeat >= m.sessionTimeoutMs) {
          this.#removeMember(group, m, groupError(25, `member ${m.memberId}'s session timed out`));
        }
      }
      if (group.state === 'PreparingRebalance' && now >= group.rebalanceDeadline) this.#completeJoin(group);
      if (group.state === 'CompletingRebalance' && now >= group.syncDeadline) {
        // The leader never sent its assignment: drop the members that did not sync, and rebalance.
        for (const m of [...group.members.values()]) {
          if (!m.awaitingSync) this.#removeMember(group, m, groupError(25, `member ${m.memberId} did not sync`), false);
        }
        this.#prepareRebalance(group);
      }
      // An empty group keeps nothing in memory (its committed offsets live in the store).
      if (group.state === 'Empty' && group.members.size === 0 && group.pendingMembers.size === 0) {
        this.#groups.delete(group.groupId);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const err = groupError(15, 'the group coordinator is shutting down');
    for (const group of this.#groups.values()) {
      for (const m of group.members.values()) {
        m.awaitingJoin?.reject(err);
        m.awaitingSync?.reject(err);
        m.awaitingJoin = m.awaitingSync = null;
      }
    }
    await this.#store.close();
  }

  // ---- internals ----

  #checkOpen(): void {
    if (this.#closed) throw groupError(15, 'the group coordinator is closed');
  }

  #member(groupId: string, memberId: string): { group: Group; member: Member } {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) {
      throw groupError(25, `group ${JSON.stringify(groupId)} has no member ${JSON.stringify(memberId)}`);
    }
    return { group, member };
  }

  #illegalGeneration(group: Group, generationId: number): TributaryError {
    return groupError(
      22,
      `group ${JSON.stringify(group.groupId)} is at generation ${group.generationId}, got ${generationId}`,
      'generationId',
    );
  }

  #newMember(group: Group, memberId: string, request: JoinGroupRequest, now: number): Member {
    const member: Member = {
      memberId,
      groupInstanceId: request.groupInstanceId,
      clientId: request.clientId,
      clientHost: request.clientHost,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      protocols: [],
      assignment: Buffer.alloc(0),
      lastHeartbeat: now,
      awaitingJoin: null,
      awaitingSync: null,
    };
    group.members.set(memberId, member);
    return member;
  }

  #replaceStaticMember(group: Group, oldId: string, newId: string): Member {
    const old = group.members.get(oldId)!;
    const fenced = groupError(82, `instance ${old.groupInstanceId} rejoined as another member`);
    old.awaitingJoin?.reject(fenced);
    old.awaitingSync?.reject(fenced);
    const member: Member = { ...old, memberId: newId, awaitingJoin: null, awaitingSync: null };
    // Rebuild the map to keep the member's place in join order.
    const entries = [...group.members.entries()].map(([id, m]): [string, Member] =>
      id === oldId ? [newId, member] : [id, m],
    );
    group.members.clear();
    for (const [id, m] of entries) group.members.set(id, m);
    if (group.leaderId === oldId) group.leaderId = newId;
    return member;
  }

  #onAbort(signal: AbortSignal, member: Member, slot: 'awaitingJoin' | 'awaitingSync'): void {
    const waiter = member[slot];
    const onAbort = () => {
      if (member[slot] !== waiter || !waiter) return;
      member[slot] = null;
      member.lastHeartbeat = this.#now();
      waiter.reject(signal.reason ?? new TributaryError('TIMEOUT', 'the request was aborted'));
      // It no longer counts as rejoined; the rebalance finishes at its deadline.
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  #removeMember(group: Group, member: Member, reason: TributaryError, rebalance = true): void {
    group.members.delete(member.memberId);
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
      group.staticMembers.delete(member.groupInstanceId);
    }
    member.awaitingJoin?.reject(reason);
    member.awaitingSync?.reject(reason);
    member.awaitingJoin = member.awaitingSync = null;
    if (group.leaderId === member.memberId) group.leaderId = null;
    if (!rebalance) return;
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') this.#prepareRebalance(group);
    else if (group.state === 'PreparingRebalance') this.#maybeCompleteJoin(group);
  }

  #prepareRebalance(group: Group): void {
    if (group.state === 'CompletingRebalance') {
      const err = groupError(27, `group ${JSON.stringify(group.groupId)} is rebalancing; join again`);
      for (const m of group.members.values()) {
        m.awaitingSync?.reject(err);
        m.awaitingSync = null;
      }
    }
    if (group.state !== 'PreparingRebalance') {
      let timeout = 0;
      for (const m of group.members.values()) timeout = Math.max(timeout, m.rebalanceTimeoutMs);
      group.rebalanceDeadline = this.#now() + timeout;
      group.state = 'PreparingRebalance';
    }
    this.#maybeCompleteJoin(group);
  }

  #maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    for (const m of group.members.values()) if (!m.awaitingJoin) return;
    this.#completeJoin(group);
  }

  #completeJoin(group: Group): void {
    // Members that did not rejoin in time are out of the new generation.
    for (const m of [...group.members.values()]) {
      if (!m.awaitingJoin) this.#removeMember(group, m, groupError(25, `member ${m.memberId} did not rejoin`), false);
    }
    group.generationId++;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = '';
      group.leaderId = null;
      return;
    }
    group.protocolName = this.#selectProtocol(group);
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      group.leaderId = group.members.keys().next().value!;
    }
    group.state = 'CompletingRebalance';
    let timeout = 0;
    const now = this.#now();
    for (const m of group.members.values()) timeout = Math.max(timeout, m.rebalanceTimeoutMs);
    group.syncDeadline = now + timeout;
    for (const m of group.members.values()) {
      m.assignment = Buffer.alloc(0);
      m.lastHeartbeat = now;
      const waiter = m.awaitingJoin!;
      m.awaitingJoin = null;
      waiter.resolve(this.#joinResult(group, m));
    }
  }

  #joinResult(group: Group, member: Member): JoinGroupResult {
    const leader = group.leaderId === member.memberId;
    return {
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      members: leader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
          }))
        : [],
    };
  }

  #syncResult(group: Group, member: Member): SyncResult {
    return { protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment };
  }

  /** Protocols every member supports. */
  #candidateProtocols(group: Group): Set<string> {
    const members = [...group.members.values()];
    const common = new Set<string>(members[0]?.protocols.map((p) => p.name) ?? []);
    for (const m of members) {
      const names = new Set(m.protocols.map((p) => p.name));
      for (const n of common) if (!names.has(n)) common.delete(n);
    }
    return common;
  }

  /** As Kafka: among the protocols all members support, each member votes for its most preferred; most votes wins. */
  #selectProtocol(group: Group): string {
    const candidates = this.#candidateProtocols(group);
    const votes = new Map<string, number>();
    for (const m of group.members.values()) {
      const choice = m.protocols.find((p) => candidates.has(p.name));
      if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = '';
    let bestVotes = -1;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    return best;
  }
}

function validateOffsets(offsets: (TopicPartition & OffsetAndMetadata)[]): void {
  offsets.forEach((o, i) => {
    if (typeof o.topic !== 'string' || o.topic === '') {
      throw new TributaryError('INVALID_ARGUMENT', `offsets[${i}].topic: expected a non-empty string`, {
        field: `offsets[${i}].topic`,
      });
    }
    if (!Number.isInteger(o.partition) || o.partition < 0) {
      throw new TributaryError('INVALID_ARGUMENT', `offsets[${i}].partition: expected an integer >= 0`, {
        field: `offsets[${i}].partition`,
      });
    }
    if (typeof o.offset !== 'bigint') {
      throw new TributaryError('INVALID_ARGUMENT', `offsets[${i}].offset: expected a bigint`, {
        field: `offsets[${i}].offset`,
      });
    }
  });
}
