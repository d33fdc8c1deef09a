import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { visible } from './visible.js';

describe('visible', () => {
  it('writes control characters as escapes and leaves everything else alone', () => {
    assert.equal(visible('a\nb.txt'), 'a\\nb.txt');
    assert.equal(visible('tab\there\r'), 'tab\\there\\r');
    assert.equal(visible('\u001b[31mred'), '\\x1b[31mred');
    assert.equal(visible('del\u007f and c1\u0085'), 'del\\x7f and c1\\x85');
    assert.equal(visible('naïve → ü/日本語 .txt'), 'naïve → ü/日本語 .txt');
  });
});
