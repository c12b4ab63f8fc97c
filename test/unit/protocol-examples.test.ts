/**
 * The hex examples of docs/PROTOCOL.md, checked against the encoder and the
 * decoder: the document and the code cannot drift apart unnoticed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { concatParts, encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { encodeCallHeader, encodeKindIdHeader } from '../../src/core/protocol/fast-heads.js';
import { decodeHead, Kind } from '../../src/core/protocol/heads.js';
import { hex, toHex } from '../fixtures/golden.js';

const ext = (head: unknown[], payload?: unknown) => toHex(concatParts(encodeExtended(cbor.encode(head), payload === undefined ? new Uint8Array(0) : cbor.encode(payload))));
const flat = (h: string) => h.replace(/\s+/g, '');

const fired = { eventType: 'on_echo_fired', payload: { message: 'hi', echoCount: 1 } };

const examples: [string, string, string][] = [
  ['hello request', toHex(concatParts(encodeRequest('$ipcbor.hello', cbor.encode({ version: 1, maxFrameBytes: 16777216, window: 64 })))), '0000000d 24697063626f722e68656c6c6f 00000026 a36776657273696f6e016d6d61784672616d6542797465731a010000006677696e646f771840'],
  [
    'hello answer',
    toHex(concatParts(encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 16777216, window: 64, maxInflight: 1024, server: 'ipcbor' })))),
    '00000000 00000043 a56776657273696f6e016d6d61784672616d6542797465731a010000006677696e646f7718406b6d6178496e666c696768741904006673657276657266697063626f72',
  ],
  ['CALL', ext([1, 1, 'echo'], { req: { message: 'hi', delayMs: 0 } }), '00000008 830101646563686f 0000001a a163726571a2676d6573736167656268696764656c61794d7300'],
  ['CALL with timeout', ext([1, 2, 'echo', { timeout: 5000 }], { req: { message: 'hi', delayMs: 9000 } }), '00000014 840102646563686fa16774696d656f7574191388 0000001c a163726571a2676d6573736167656268696764656c61794d73192328'],
  ['RESULT', ext([4, 1], { echoed: 'hi', timerName: 'ipc-server' }), '00000003 820401 00000020 a2666563686f65646268696974696d65724e616d656a6970632d736572766572'],
  ['ERROR', ext([5, 3, 'IPCBOR_ERR_UNKNOWN_METHOD', 'unknown method: nope']), '00000033 8405037819495043424f525f4552525f554e4b4e4f574e5f4d4554484f4474756e6b6e6f776e206d6574686f643a206e6f7065 00000000'],
  ['NOTIFY', ext([2, 'log'], { line: 'x' }), '00000006 8202636c6f67 00000008 a1646c696e656178'],
  ['CANCEL', ext([3, 2]), '00000003 820302 00000000'],
  ['subscribe', ext([1, 4, '$ipcbor.subscribe'], { event: 'on_echo_fired' }), '00000015 8301047124697063626f722e737562736372696265 00000015 a1656576656e746d6f6e5f6563686f5f6669726564'],
  ['subscribe answer', ext([4, 4], null), '00000003 820404 00000001 f6'],
  [
    'EVENT of the default service',
    ext([9, 'timer.on_echo_fired', 0, 'on_echo_fired'], fired),
    '00000025 84097374696d65722e6f6e5f6563686f5f6669726564006d6f6e5f6563686f5f6669726564 00000038 a2696576656e74547970656d6f6e5f6563686f5f6669726564677061796c6f6164a2676d657373616765626869696563686f436f756e7401',
  ],
  ['hello refusal', toHex(cbor.encode({ refused: { code: 'IPCBOR_ERR_OVERLOADED', message: 'too many connections' } })), 'a16772656675736564a264636f646575495043424f525f4552525f4f5645524c4f41444544676d65737361676574746f6f206d616e7920636f6e6e656374696f6e73'],
  ['EVENT', ext([9, 'on_echo_fired'], fired), '00000010 82096d6f6e5f6563686f5f6669726564 00000038 a2696576656e74547970656d6f6e5f6563686f5f6669726564677061796c6f6164a2676d657373616765626869696563686f436f756e7401'],
  ['EVENT dropped', ext([9, 'on_echo_fired', 5], fired).slice(0, 50), '00000011 83096d6f6e5f6563686f5f666972656405 00000038'],
  ['CALL stream', ext([1, 8, 'upload', { stream: true }]), '00000013 8401086675706c6f6164a16673747265616df5 00000000'],
  ['ITEM', ext([6, 8], 1), '00000003 820608 00000001 01'],
  ['END', ext([7, 8]), '00000003 820708 00000000'],
  ['CREDIT', ext([8, 8, 32]), '00000005 8308081820 00000000'],
];

describe('docs/PROTOCOL.md examples', () => {
  for (const [name, actual, documented] of examples) {
    it(`${name} is byte for byte what the encoder produces`, () => {
      assert.equal(actual, flat(documented));
    });
  }

  it('the hand-written headers produce the documented bytes too', () => {
    assert.equal(toHex(encodeKindIdHeader(Kind.Result, 1, 32)), flat('00000003 820401 00000020'));
    assert.equal(toHex(encodeCallHeader(1, new TextEncoder().encode('echo'), 26)), flat('00000008 830101646563686f 0000001a'));
  });

  it('the documented heads decode to what they say', () => {
    assert.deepEqual(decodeHead(cbor, hex('83096d6f6e5f6563686f5f666972656405')), { kind: Kind.Event, name: 'on_echo_fired', dropped: 5, alias: undefined });
    assert.deepEqual(decodeHead(cbor, cbor.encode([9, 'timer.on_echo_fired', 0, 'on_echo_fired'])), { kind: Kind.Event, name: 'timer.on_echo_fired', dropped: 0, alias: 'on_echo_fired' });
    assert.deepEqual(decodeHead(cbor, hex('8308081820')), { kind: Kind.Credit, id: 8, n: 32 });
  });
});
