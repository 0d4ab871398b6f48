import { Args, loadHelpClass } from '@oclif/core';
import { GptCommand } from '../cli/base';

export default class Help extends GptCommand {
  static override summary = 'Show help for gpt or for one command (the same as --help / -h).';
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help convert', '<%= config.bin %> help rules validate'];
  static override strict = false; // COMMAND may be two words (rules validate)
  static override args = { command: Args.string({ description: 'the command to explain', required: false }) };

  async run(): Promise<void> {
    const { argv } = await this.parse(Help);
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? {}).showHelp(argv as string[]);
  }
}
