/**
 * Converted models carry their structure (metadata_props gpt.structure): analyze and profile place
 * the nodes of the blocks a pass built in the right stages, and an edited graph falls back to rules.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyze } from '../../src/analysis/analyze';
import { recognize } from '../../src/analysis/structure';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { fixturePath } from '../helpers';

const cases: [string, 'prn' | 'csp' | 'elan', number[]][] = [
  ['resnet18-w25.onnx', 'prn', [2, 2, 2, 2]],
  ['darknet53-w25.onnx', 'csp', [1, 2, 8, 8, 4]],
  ['vovnet57-w25-bn.onnx', 'elan', [1, 1, 4, 3]],
];

for (const [file, to, sourceBlocks] of cases) {
  test(`${file} -> ${to}: every data node of the converted model sits in the stem, a stage or the head`, () => {
    const { model } = convert(loadModel(fixturePath(file)), { to });
    const reloaded = loadModel(saveModelToBuffer(model)); // the record travels in the file
    const s = recognize(reloaded);
    assert.equal(s.unmatched, []);
    assert.is(s.stages.length, sourceBlocks.length);
    const r = analyze(reloaded);
    assert.equal(r.unmatched, []);
    // every weight layer of the converted model is attributed to the stem, a stage or the head
    const placed = new Set([...s.stem, ...s.head, ...s.stages.flatMap((st) => [...st.entry, ...st.blocks.flatMap((b) => b.nodes)])]);
    // (a layer PRN's parts form writes as partial convs is placed where they are)
    for (const l of r.layers) assert.ok(placed.has(l.name) || (!!l.members && l.members.every((m) => placed.has(m))), `${l.name} placed`);
  });
}

test('an edited converted model falls back to the rules', () => {
  const { model } = convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'prn', emit: 'split' });
  const fromRecord = (st: ReturnType<typeof recognize>) => st.stages.some((x) => x.blocks.some((b) => b.rule === 'gpt prn'));
  assert.ok(fromRecord(recognize(model)), 'the record is used while it fits');
  // remove a node the record names: the record no longer describes the graph
  model.graph.removeNode(model.graph.nodes.find((n) => n.opType === 'Concat')!);
  assert.not.ok(fromRecord(recognize(model)), 'the rules are used instead');
  // and the passes never use a record
  assert.not.ok(fromRecord(recognize(convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'prn' }).model, { recorded: false })));
});

test('a gpt.structure record that is not what convert writes is ignored, not a crash', () => {
  // hand-edited or written by another tool: valid JSON of the wrong shape
  for (const text of ['{"stages": [{}]}', '{"stages": []}', '[]', 'null', '{"family": "resnet", "stem": [], "head": [], "stages": [{"index": 0, "entry": [], "blocks": [null]}]}']) {
    const m = loadModel(fixturePath('resnet18-w25.onnx'));
    m.setMetadata('gpt.structure', text);
    const s = recognize(m);
    assert.is(s.family, 'resnet', text);
    assert.equal(s.stages.map((st) => st.blocks.length), [2, 2, 2, 2], text);
  }
});

test.run();
