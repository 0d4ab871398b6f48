import { Flags } from '@oclif/core';
import { GptCommand } from '../cli/base';
import { envelope } from '../report/envelope';
import { VersionReport, validateVersionReport } from '../report/command-reports';

export default class Version extends GptCommand {
  static override summary = 'Show the version (the same as --version / -v); with --json, also the runtime.';
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];
  static override flags = { json: Flags.boolean({ description: 'print the versions as JSON' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Version);
    if (!flags.json) return void process.stdout.write(`${this.config.userAgent}\n`);
    let onnxruntime: string | null = null;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      onnxruntime = (require('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      onnxruntime = null; // not installed: profiling is unavailable, everything else works
    }
    const report: VersionReport = { ...envelope('version'), node: process.version, platform: process.platform, arch: process.arch, onnxruntime };
    validateVersionReport(report);
    this.printJson(report);
  }
}
