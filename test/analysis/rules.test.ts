import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Ajv from 'ajv';
import { GptError } from '../../src/errors';
import { SHIPPED_RULES_DIR, listRules, loadRules, validateRuleFile } from '../../src/analysis/rules';
import { repoRoot, tmpDir } from '../helpers';

const GROUPED_BASIC = path.join(repoRoot, 'test', 'fixtures', 'grouped-basic.rule.json');

/** The E_RULE error a broken rule file gives. */
function ruleError(json: unknown): GptError {
  const file = path.join(tmpDir(), 'broken.json');
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  try {
    validateRuleFile(file);
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, 'E_RULE');
    assert.ok((e as GptError).message.includes(file), `names the file: ${(e as GptError).message}`);
    return e as GptError;
  }
  throw new Error('expected E_RULE');
}

const minimal = (pattern: unknown[]) => ({ name: 'broken-rule', kind: 'plain', pattern });

test('the shipped rule folder is found from dist/src/analysis', () => {
  assert.is(SHIPPED_RULES_DIR, path.join(repoRoot, 'rules'));
  assert.ok(fs.existsSync(path.join(SHIPPED_RULES_DIR, 'rule.schema.json')));
});

test('the schema compiles under ajv strict mode', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'rule.schema.json'), 'utf8'));
  new Ajv({ strict: true, strictRequired: false }).compile(schema);
});

test('every file in rules/ validates against the schema and compiles', () => {
  const files = fs.readdirSync(SHIPPED_RULES_DIR).filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json'));
  assert.ok(files.length >= 7, `found ${files.length} rule files`);
  for (const f of files) {
    const rule = validateRuleFile(path.join(SHIPPED_RULES_DIR, f));
    assert.ok(rule.name, f);
    if (rule.kind !== 'units') assert.ok(rule.pattern.length > 0, `${f} has a pattern`);
  }
});

test('loadRules: the shipped block and boundary rules, units files left out', () => {
  const names = loadRules().filter((r) => r.part === 'backbone').map((r) => r.name).sort();
  assert.equal(names, ['csp-transition', 'darknet-residual', 'downsample-conv', 'downsample-pool', 'elan', 'plain-conv', 'resnet-basic', 'resnet-bottleneck', 'resnext-bottleneck', 'vovnet-osa']);
  // a detector's neck blocks (detector.ts), kept out of the backbone's stages
  assert.equal(loadRules().filter((r) => r.part === 'neck').map((r) => r.name).sort(), ['csp-c3', 'spp', 'spp-torch', 'sppf', 'yolo-conv-set', 'yolo-tiny-conv-set']);
  const listed = listRules();
  assert.ok(listed.every((r) => r.description.length > 0 && fs.existsSync(r.file)));
});

test('loadRules: extra files are added to the shipped ones, units resolve across files', () => {
  const rules = loadRules([GROUPED_BASIC]);
  assert.ok(rules.some((r) => r.name === 'grouped-basic'));
  assert.ok(rules.some((r) => r.name === 'resnet-basic'));
  const grouped = rules.find((r) => r.name === 'grouped-basic')!.pattern.find((e) => e.id === 'grouped1')!;
  const unit = grouped.alternatives[0];
  assert.ok('unit' in unit && unit.unit === 'convBnAct');
  // the use's attrs went to the unit's conv
  assert.equal('unit' in unit && unit.pattern[0].attrs, { kernel: 3, stride: [1, 2], group: 'grouped' });
});

test('loadRules: a folder of extra rules, and a name clash with a shipped rule', () => {
  const dir = tmpDir();
  fs.copyFileSync(GROUPED_BASIC, path.join(dir, 'grouped-basic.json'));
  assert.ok(loadRules([dir]).some((r) => r.name === 'grouped-basic'));
  const clash = path.join(dir, 'clash.json');
  fs.writeFileSync(clash, JSON.stringify({ ...minimal([{ op: 'Relu' }]), name: 'resnet-basic' }));
  try {
    loadRules([clash]);
    assert.unreachable();
  } catch (e) {
    assert.is((e as GptError).code, 'E_RULE');
    assert.match((e as GptError).message, /resnet-basic.*already defined/);
  }
});

test('loadRules: a missing path is E_IO naming it', () => {
  try {
    loadRules(['/no/such/rules']);
    assert.unreachable();
  } catch (e) {
    assert.is((e as GptError).code, 'E_IO');
    assert.is((e as GptError).subject, '/no/such/rules');
  }
});

test('broken rule: unknown attribute -> pointer and the allowed names', () => {
  const e = ruleError(minimal([{ op: 'Conv', attrs: { kernal: 3 } }]));
  assert.match(e.message, / at \/pattern\/0\/attrs: unknown property 'kernal' \(allowed: kernel, stride, group, constant\)/);
});

test('broken rule: bad enum value -> what was expected', () => {
  const e = ruleError(minimal([{ op: 'Conv', role: 'branch' }]));
  assert.match(e.message, /at \/pattern\/0\/role: expected one of "conv", .*got "branch"/);
  const k = ruleError({ ...minimal([{ op: 'Relu' }]), kind: 'block' });
  assert.match(k.message, /at \/kind: expected one of "residual"/);
});

test('broken rule: wrong type and missing property', () => {
  assert.match(ruleError(minimal([{ op: 'Conv', attrs: { kernel: '3' } }])).message, /at \/pattern\/0\/attrs\/kernel: expected integer or array, got string/);
  assert.match(ruleError({ name: 'x', kind: 'plain' }).message, /at \/: missing property 'pattern'/);
  assert.match(ruleError(minimal([{ id: 'a' }])).message, /at \/pattern\/0: missing property 'op'/);
});

test('broken rule: unknown ONNX op, unknown unit, dangling reference', () => {
  assert.match(ruleError(minimal([{ op: 'Relu|Cnv' }])).message, /at \/pattern\/0\/op: unknown ONNX op 'Cnv'/);
  assert.match(ruleError(minimal([{ op: 'convBnActt' }])).message, /at \/pattern\/0\/op: unknown unit 'convBnActt' \(known: .*convBnAct/);
  assert.match(
    ruleError(minimal([{ id: 'a', op: 'Relu' }, { op: 'Add', inputs: ['a', 'b'] }])).message,
    /at \/pattern\/1\/inputs\/1: 'b' does not name an earlier element/,
  );
  assert.match(ruleError(minimal([{ id: 'a', op: 'Relu' }, { op: 'Concat', inputs: ['$in', 'a*'] }])).message, /'a\*' spreads the repeats of 'a', which has no repeat/);
});

test('broken rule: not JSON, and a residual section naming no element', () => {
  assert.match(ruleError('{ "name": ').message, /at \/: not valid JSON/);
  const e = ruleError({ ...minimal([{ id: 'a', op: 'Relu' }]), kind: 'residual', residual: { add: 'add', shortcut: '$in', branch: 'a' } });
  assert.match(e.message, /at \/residual\/add: 'add' names no element/);
});

test('broken rule: attrs on a unit without attrsTo, and an override of a missing unit element', () => {
  assert.match(ruleError(minimal([{ op: 'act', attrs: { kernel: 1 } }])).message, /at \/pattern\/0\/attrs: unit 'act' takes no attrs/);
  assert.match(ruleError(minimal([{ op: 'convBn', with: { norm: { optional: false } } }])).message, /at \/pattern\/0\/with: unit 'convBn' has no element 'norm' \(it has: conv, bn\)/);
});

test.run();
