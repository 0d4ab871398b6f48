/**
 * Every type that an exported signature mentions is exported too, so a user can name it
 * (`const opts: AnalyzeOptions = …`). Read from the emitted declarations (dist/src/index.d.ts, what
 * the package's `types` points at) with the TypeScript compiler: from each export, every type
 * reference is followed, transitively, and each one declared in gpt must be among the exports.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ts from 'typescript';
import { repoRoot, tmpDir } from './helpers';

/** Names of types declared under `ownDir` that exported declarations of `entry` reference but `entry` does not export. */
function unexportedTypes(entry: string, ownDir: string): string[] {
  const program = ts.createProgram([entry], { skipLibCheck: true, types: [], noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 });
  // a module that does not resolve would make its types look absent, not missing
  const unresolved = ts.getPreEmitDiagnostics(program).filter((d) => d.code === 2307).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
  if (unresolved.length) throw new Error(unresolved.join('; '));
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error(`cannot read ${entry}`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${entry} is not a module`);
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set(checker.getExportsOfModule(moduleSymbol).map(resolve));
  const own = (d: ts.Declaration) => path.resolve(d.getSourceFile().fileName).startsWith(ownDir);
  const missing = new Set<string>();
  const seen = new Set<ts.Symbol>();
  const queue = [...exported];
  while (queue.length) {
    const sym = queue.pop()!;
    if (seen.has(sym)) continue;
    seen.add(sym);
    for (const decl of sym.declarations ?? []) {
      if (!own(decl)) continue;
      const visit = (node: ts.Node): void => {
        // private members carry no type in declarations; skip them anyway
        if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)) return;
        let name: ts.Node | undefined;
        if (ts.isTypeReferenceNode(node)) name = node.typeName;
        else if (ts.isExpressionWithTypeArguments(node)) name = node.expression;
        else if (ts.isImportTypeNode(node)) name = node.qualifier;
        else if (ts.isTypeQueryNode(node)) name = node.exprName;
        if (name) {
          const target = checker.getSymbolAtLocation(ts.isQualifiedName(name) ? name.right : name);
          if (target) {
            const real = resolve(target);
            const typeLike = real.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Class | ts.SymbolFlags.Enum);
            if (typeLike && (real.declarations ?? []).some(own)) {
              if (!exported.has(real)) missing.add(real.getName());
              queue.push(real);
            }
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(decl);
    }
  }
  return [...missing].sort();
}

test('every type in an exported signature of the package entry is exported', () => {
  const entry = path.join(repoRoot, 'dist', 'src', 'index.d.ts');
  assert.ok(fs.existsSync(entry), 'built declarations (npx tsc -p .)');
  const missing = unexportedTypes(entry, path.join(repoRoot, 'dist', 'src'));
  assert.equal(missing, [], `not exported from src/index.ts: ${missing.join(', ')}`);
});

test('the names the issue listed are exported as types', () => {
  const entry = path.join(repoRoot, 'dist', 'src', 'index.d.ts');
  const dir = tmpDir('gpt-api-');
  const names = ['EpName', 'LatencyStats', 'ModelRun', 'ModelProfile', 'PerNodeReport', 'AnalyzeOptions', 'StageAnalysis', 'ModelMetrics', 'Rule', 'HtmlOptions', 'ChartSeries', 'CostOptions'];
  const file = path.join(dir, 'uses.ts');
  fs.writeFileSync(file, `import type { ${names.join(', ')} } from ${JSON.stringify(entry.replace(/\.d\.ts$/, ''))};\nexport type All = [${names.join(', ')}];\n`);
  const program = ts.createProgram([file], { skipLibCheck: true, types: [], noEmit: true, strict: true, target: ts.ScriptTarget.ES2022, moduleResolution: ts.ModuleResolutionKind.Node10 });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(errors, []);
});

test('negative: an interface used by an exported function but not exported is reported', () => {
  const dir = tmpDir('gpt-api-');
  fs.writeFileSync(path.join(dir, 'inner.d.ts'), 'export interface Hidden { a: Deeper }\nexport interface Deeper { b: number }\nexport interface Shown { c: string }\n');
  fs.writeFileSync(path.join(dir, 'index.d.ts'), "import { Hidden } from './inner';\nexport type { Shown } from './inner';\nexport declare function f(x: Hidden): import('./inner').Shown;\n");
  const got = unexportedTypes(path.join(dir, 'index.d.ts'), dir);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(got, ['Deeper', 'Hidden']);
});

test.run();
