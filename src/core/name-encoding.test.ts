import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodePath,
  decodeSegment,
  encodePath,
  encodeSegment,
  needsEncoding,
  QUOTE_CHAR,
  type EncodingCapabilities,
} from './name-encoding.js';

const FAT: EncodingCapabilities = { forbiddenChars: ':?*<>|"\\', forbidsTrailingDotOrSpace: true };
const POSIX: EncodingCapabilities = { forbiddenChars: '', forbidsTrailingDotOrSpace: false };
const COLON_ONLY: EncodingCapabilities = { forbiddenChars: ':', forbidsTrailingDotOrSpace: false };

/** Names mixing ordinary text, forbidden characters, replacements and the quote character. */
const trickyChar = fc.constantFrom(
  ...':?*<>|"\\. ',
  '：',
  '？',
  '＼',
  '．',
  '␠',
  QUOTE_CHAR,
  'a',
  'é',
  '名',
  '😀',
);
const trickyName = fc.oneof(
  fc.array(trickyChar, { minLength: 1, maxLength: 12 }).map((cs) => cs.join('')),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => !s.includes('/')),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => !s.includes('/')),
);
const caps = fc.record({
  forbiddenChars: fc.subarray([...':?*<>|"\\']).map((cs) => cs.join('')),
  forbidsTrailingDotOrSpace: fc.boolean(),
});

describe('name encoding', () => {
  it('maps FAT-forbidden characters to fullwidth look-alikes', () => {
    assert.equal(encodeSegment('a:b?c*d<e>f|g"h\\i', FAT), 'a：b？c＊d＜e＞f｜g＂h＼i');
    assert.equal(decodeSegment('a：b？c＊d＜e＞f｜g＂h＼i', FAT), 'a:b?c*d<e>f|g"h\\i');
  });

  it('replaces only a trailing dot or space', () => {
    assert.equal(encodeSegment('a.b.', FAT), 'a.b．');
    assert.equal(encodeSegment('a b ', FAT), 'a b␠');
    assert.equal(encodeSegment('x. ', FAT), 'x.␠');
    assert.equal(decodeSegment('x.␠', FAT), 'x. ');
  });

  it('quotes replacement characters the user typed', () => {
    assert.equal(encodeSegment('full：width', FAT), `full${QUOTE_CHAR}：width`);
    assert.equal(encodeSegment('end．', FAT), `end${QUOTE_CHAR}．`);
    assert.equal(encodeSegment('mid．dle', FAT), 'mid．dle');
    assert.equal(encodeSegment(`q${QUOTE_CHAR}`, FAT), `q${QUOTE_CHAR}${QUOTE_CHAR}`);
    assert.equal(decodeSegment(`full${QUOTE_CHAR}：width`, FAT), 'full：width');
  });

  it('leaves names alone when nothing is forbidden', () => {
    assert.equal(needsEncoding(POSIX), false);
    assert.equal(encodeSegment('a:b.', POSIX), 'a:b.');
    assert.equal(encodePath('x：/y', POSIX), 'x：/y');
  });

  it('encodes and decodes every segment of a path', () => {
    assert.equal(encodePath('a:/b./c', FAT), 'a：/b．/c');
    assert.equal(decodePath('a：/b．/c', FAT), 'a:/b./c');
    assert.equal(encodePath('a:b', COLON_ONLY), 'a：b');
    assert.equal(encodePath('a?.', COLON_ONLY), 'a?.');
  });

  it('decode(encode(x)) === x, and encoded names hold no forbidden character or trailing dot/space', () => {
    fc.assert(
      fc.property(trickyName, caps, (name, c) => {
        const encoded = encodeSegment(name, c);
        assert.equal(decodeSegment(encoded, c), name);
        for (const f of c.forbiddenChars) assert.ok(!encoded.includes(f), `${encoded} holds ${f}`);
        if (c.forbidsTrailingDotOrSpace) assert.ok(!/[. ]$/.test(encoded), `${encoded} ends in dot or space`);
      }),
      { numRuns: 2000 },
    );
  });

  it('encoding is injective: distinct names never share a stored name', () => {
    fc.assert(
      fc.property(trickyName, trickyName, caps, (a, b, c) => {
        fc.pre(a !== b);
        assert.notEqual(encodeSegment(a, c), encodeSegment(b, c));
      }),
      { numRuns: 2000 },
    );
  });
});
