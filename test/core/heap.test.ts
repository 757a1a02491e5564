import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TimeHeap } from '../../src/core/index.ts';

test('TimeHeap pops items in time order, interleaved with pushes', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(null)), { maxLength: 200 }), (ops) => {
      const heap = new TimeHeap<number>();
      const model: number[] = [];
      for (const op of ops) {
        if (op === null) {
          if (model.length === 0) {
            assert.equal(heap.peek(), Number.POSITIVE_INFINITY);
            continue;
          }
          model.sort((a, b) => a - b);
          const want = model.shift() as number;
          assert.equal(heap.peek(), want);
          assert.equal(heap.pop(), want); // the item is its own time here
        } else {
          heap.push(op, op);
          model.push(op);
        }
        assert.equal(heap.size, model.length);
      }
    }),
  );
});
