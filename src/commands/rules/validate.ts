import { Args } from '@oclif/core';
import { validateRuleFile } from '../../analysis/rules';
import { GptCommand } from '../../cli/base';
import { escapeText } from '../../report/escape';

export default class RulesValidate extends GptCommand {
  static override summary = 'Check a rule file against the rule schema and compile it.';
  static override examples = ['<%= config.bin %> rules validate my-rules/resnext-bottleneck.json'];
  static override args = { file: Args.string({ description: 'rule file (.json)', required: true }) };

  async run(): Promise<void> {
    const { args } = await this.parse(RulesValidate);
    const rule = validateRuleFile(args.file);
    process.stdout.write(`${escapeText(args.file)}: ok (rule '${escapeText(rule.name)}', kind ${rule.kind})\n`);
  }
}
