/**
 * The package as a dependent gets it: `npm pack`, then the README's "Use as a library" section
 * followed to the letter in a fresh project, with no network. npm is pointed at a registry on
 * 127.0.0.1 that this test serves (our tarball plus the dependency closure, taken from this
 * checkout's node_modules) and at an empty cache, so an install that needs anything else, or a
 * package with an install script that downloads, fails here.
 *
 *   repo --npm pack--> gpt-gradient-path-X.tgz ─┐
 *   node_modules/{@oclif/core, ajv, ...} -tar-> ├─> loopback registry <── npm install (fresh project)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixturePath, repoRoot, tmpDir } from '../helpers';

interface Pkg {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  scripts?: Record<string, string>;
  license?: string;
  repository?: { url?: string };
  keywords?: string[];
}
const readPkg = (dir: string): Pkg => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const ours = readPkg(repoRoot);
const work = tmpDir('gpt-pack-');

/** The README's "Use as a library" section: its fenced blocks, by language. */
function librarySection(): { sh: string[]; js: string[] } {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use as a library');
  assert.ok(start >= 0, 'README has a "Use as a library" section');
  const end = readme.indexOf('\n## ', start + 3);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const out = { sh: [] as string[], js: [] as string[] };
  for (const m of section.matchAll(/```(\w+)\n([\s\S]*?)```/g)) if (m[1] === 'sh' || m[1] === 'js') out[m[1]].push(m[2]);
  return out;
}

/** Where node would find `name` when required from `fromDir` inside this checkout. */
function resolveDir(name: string, fromDir: string): string {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const cand = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return cand;
    if (d === path.dirname(d)) throw new Error(`${name} is not installed (from ${fromDir})`);
  }
}

/** Every package a dependent's install needs: runtime and optional dependencies, transitively (not optional peers). */
function closure(): { name: string; dir: string }[] {
  const seen = new Map<string, string>();
  const visit = (dir: string) => {
    const p = readPkg(dir);
    for (const name of Object.keys({ ...p.dependencies, ...p.optionalDependencies })) {
      let depDir: string;
      try {
        depDir = resolveDir(name, dir);
      } catch {
        if (p.optionalDependencies?.[name]) continue; // an optional dependency for another platform
        throw new Error(`${p.name} needs ${name}, which is not installed here`);
      }
      const key = `${name}@${readPkg(depDir).version}`;
      if (seen.has(key)) continue;
      seen.set(key, depDir);
      visit(depDir);
    }
  };
  visit(repoRoot);
  return [...seen.values()].map((dir) => ({ name: readPkg(dir).name, dir }));
}

/** An installed package folder as a registry tarball (package/ prefix, no nested node_modules). */
function tarball(dir: string, file: string): void {
  const r = spawnSync('tar', ['-czf', file, '--exclude=./node_modules', '--transform', 's,^\\.,package,', '-C', dir, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${dir}: ${r.stderr}`);
}

/** A read-only npm registry on 127.0.0.1: packuments and tarballs from a folder of .tgz files. */
async function serveRegistry(tarballs: { pkg: Pkg; file: string }[]): Promise<{ url: string; close: () => void; requests: string[] }> {
  const requests: string[] = [];
  const byName = new Map<string, { pkg: Pkg; file: string }[]>();
  for (const t of tarballs) byName.set(t.pkg.name, [...(byName.get(t.pkg.name) ?? []), t]);
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '/');
    requests.push(url);
    const file = /^\/-\/tarball\/(.+\.tgz)$/.exec(url)?.[1];
    if (file) {
      const t = tarballs.find((x) => path.basename(x.file) === file);
      if (!t) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return void res.end(fs.readFileSync(t.file));
    }
    const versions = byName.get(url.slice(1));
    if (!versions) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    const base = `http://${req.headers.host}`;
    const doc = {
      name: versions[0].pkg.name,
      'dist-tags': { latest: versions[versions.length - 1].pkg.version },
      versions: Object.fromEntries(versions.map(({ pkg, file }) => {
        const bytes = fs.readFileSync(file);
        const dist = { tarball: `${base}/-/tarball/${path.basename(file)}`, integrity: `sha512-${crypto.createHash('sha512').update(bytes).digest('base64')}` };
        return [pkg.version, { ...pkg, dist }];
      })),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close(), requests };
}

/** A shell line run in the project, without blocking the registry this process serves. */
function sh(line: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', line], { cwd, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (status) => resolve({ status, out, err }));
  });
}

let packed: string;

test('npm pack: no dangling source map, no stale build output, LICENSE and metadata present', () => {
  const r = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repoRoot, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stderr, /npm warn/i, 'npm pack prints no warning from our configuration');
  const info = JSON.parse(r.stdout)[0] as { filename: string; files: { path: string }[] };
  packed = path.join(work, info.filename);
  const files = new Set(info.files.map((f) => f.path));
  assert.ok(files.has('LICENSE') && files.has('README.md') && files.has('package.json'));
  assert.match(fs.readFileSync(path.join(repoRoot, 'LICENSE'), 'utf8'), /^MIT License/);
  assert.is(ours.license, 'MIT');
  assert.ok(ours.repository?.url, 'repository');
  assert.ok((ours.keywords ?? []).length >= 3, 'keywords');
  let maps = 0;
  for (const f of files) {
    if (f.endsWith('.js.map')) {
      maps++;
      const map = JSON.parse(fs.readFileSync(path.join(repoRoot, f), 'utf8')) as { sources: string[] };
      for (const s of map.sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), s));
        assert.ok(files.has(target), `${f} points at ${target}, which the package must ship`);
      }
    }
    // a .js under dist/src with no source beside it is left over from an old build
    const m = /^dist\/(src\/.*)\.js$/.exec(f);
    if (m) assert.ok(files.has(`${m[1]}.ts`), `${f} has no ${m[1]}.ts: stale build output (npm pack cleans dist in prepack)`);
  }
  assert.ok(maps > 10, `source maps shipped and checked: ${maps}`);
  assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('test/')), 'tests are not shipped');
});

test('negative: the map check catches a map whose source is not shipped', () => {
  const files = new Set(['dist/src/a.js', 'dist/src/a.js.map']);
  const target = path.posix.normalize(path.posix.join('dist/src', '../../src/a.ts'));
  assert.is(target, 'src/a.ts');
  assert.not.ok(files.has(target));
});

test("README's library section, to the letter, in a fresh project with no network", async () => {
  assert.ok(packed, 'the pack test ran first');
  const deps = closure();
  const names = deps.map((d) => d.name);
  assert.ok(names.includes('@oclif/core') && names.includes('ajv'));
  assert.not.ok(names.includes('onnxruntime-node'), 'onnxruntime-node is not installed with gpt (optional peer)');
  assert.not.ok(names.includes('onnx-proto') || names.includes('protobufjs'), 'test-only packages stay out');
  const tarDir = path.join(work, 'tarballs');
  fs.mkdirSync(tarDir);
  const tarballs = deps.map((d, i) => {
    const file = path.join(tarDir, `${i}-${d.name.replace('/', '-')}.tgz`);
    tarball(d.dir, file);
    return { pkg: readPkg(d.dir), file };
  });
  tarballs.push({ pkg: ours, file: packed });
  const registry = await serveRegistry(tarballs);
  try {
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'dependent', version: '1.0.0', private: true }, null, 2));
    fs.copyFileSync(fixturePath('resnet18-w25.onnx'), path.join(project, 'model.onnx'));
    // the registry above and an empty cache: nothing can come from anywhere else
    const env = {
      ...process.env, npm_config_registry: registry.url, npm_config_cache: path.join(work, 'npm-cache'),
      npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false',
      npm_config_fetch_retries: '0', npm_config_userconfig: path.join(work, 'npmrc'),
    };
    const { sh: shells, js } = librarySection();
    const lines = shells.flatMap((b) => b.split('\n')).map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    const install = lines.find((l) => l === 'npm install gpt-gradient-path');
    const inspectLine = lines.find((l) => l.startsWith('npx gpt inspect'));
    assert.ok(install && inspectLine, `the section shows the install and a command: ${lines.join(' | ')}`);

    const i = await sh(install!, project, env);
    assert.is(i.status, 0, `${install}: ${i.err}`);
    assert.not.match(i.err, /npm warn/i, i.err);
    assert.ok(fs.existsSync(path.join(project, 'node_modules', 'gpt-gradient-path', 'dist', 'src', 'index.js')));
    assert.not.ok(fs.existsSync(path.join(project, 'node_modules', 'onnxruntime-node')));
    assert.ok(registry.requests.some((u) => u.startsWith('/-/tarball/')), 'the install went through the loopback registry');

    const cli = await sh(inspectLine!, project, env);
    assert.is(cli.status, 0, cli.err);
    assert.match(cli.out, /params/);
    const json = await sh(`${inspectLine} --json`, project, env);
    assert.is(json.status, 0, json.err);
    const report = JSON.parse(json.out) as { params: number; macs: number };

    assert.is(js.length, 1, 'one JavaScript example');
    fs.writeFileSync(path.join(project, 'example.js'), js[0]);
    const ex = await sh('node example.js', project, env);
    assert.is(ex.status, 0, ex.err);
    // the library call and the installed CLI agree, and the numbers are the fixture's
    assert.ok(ex.out.includes(`params ${report.params}, MACs ${report.macs}`), ex.out);
    assert.match(ex.out, /max shortest gradient path \d+/);

    // the exports map: the schemas by name, deep paths into dist closed
    const probe = await sh(`node -e "require('gpt-gradient-path/schemas/inspect.schema.json'); require('gpt-gradient-path/rules/rule.schema.json'); try { require('gpt-gradient-path/dist/src/errors'); console.log('open') } catch (e) { console.log(e.code) }"`, project, env);
    assert.is(probe.status, 0, probe.err);
    assert.is(probe.out.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED');

    // profiling without the optional peer: one line naming the fix, not a stack trace
    const prof = await sh('npx gpt profile model.onnx', project, env);
    assert.is(prof.status, 1);
    assert.match(prof.err, /^gpt: onnxruntime-node is not installed.*ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node/);
    assert.is(prof.err.trim().split('\n').length, 1, prof.err);
  } finally {
    registry.close();
  }
});

test.after(() => fs.rmSync(work, { recursive: true, force: true }));

test.run();
