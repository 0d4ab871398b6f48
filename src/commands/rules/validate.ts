import { Args, Flags } from '@oclif/core';
import { validateRuleFile } from '../../analysis/rules';
import { GptCommand } from '../../cli/base';
import { escapeText } from '../../report/escape';
import { envelope } from '../../report/envelope';
import { RuleCheckReport, validateRuleCheckReport } from '../../report/command-reports';

export default class RulesValidate extends GptCommand {
  static override summary = 'Check a rule file against the rule schema and compile it.';
  static override examples = ['<%= config.bin %> rules validate my-rules/resnext-bottleneck.json'];
  static override args = { file: Args.string({ description: 'rule file (.json)', required: true }) };
  static override flags = { json: Flags.boolean({ description: 'print the result as JSON' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RulesValidate);
    const rule = validateRuleFile(args.file);
    if (flags.json) {
      const report: RuleCheckReport = { ...envelope('rule-check'), file: args.file, rule: rule.name, ruleKind: rule.kind };
      validateRuleCheckReport(report);
      return this.printJson(report);
    }
    process.stdout.write(`${escapeText(args.file)}: ok (rule '${escapeText(rule.name)}', kind ${rule.kind})\n`);
  }
}
