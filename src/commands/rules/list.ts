import { Flags } from '@oclif/core';
import { listRules } from '../../analysis/rules';
import { table } from '../../report/format';
import { GptCommand, commonFlags } from '../../cli/base';
import { escapeStrings } from '../../report/escape';
import { envelope } from '../../report/envelope';
import { RulesReport, validateRulesReport } from '../../report/command-reports';

export default class RulesList extends GptCommand {
  static override summary = 'List the block rules: the shipped ones plus any given with --rules.';
  static override examples = ['<%= config.bin %> rules list', '<%= config.bin %> rules list --rules my-rules/ --json'];
  static override flags = {
    rules: commonFlags.rules,
    json: Flags.boolean({ description: 'print the list as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(RulesList);
    const rules = listRules(flags.rules ?? []);
    if (flags.json) {
      const report: RulesReport = { ...envelope('rules'), rules: rules.map((r) => ({ ...r, family: r.family ?? null })) };
      validateRulesReport(report);
      return this.printJson(report);
    }
    process.stdout.write(table(['rule', 'kind', 'family', 'description'], escapeStrings(rules).map((r) => [r.name, r.kind, r.family ?? '-', r.description])) + '\n');
  }
}
