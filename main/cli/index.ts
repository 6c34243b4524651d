import { Command, CommanderError } from 'commander'
import { registerCommands } from './commands'
import { CliError } from './errors'

export { CliError } from './errors'

export async function runCli(argv: string[]): Promise<number> {
  const program = new Command()
  program
    .name('atelier')
    .description('Atelier: Stable Diffusion studio on onnxruntime-node')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError()
  registerCommands(program)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    process.stderr.write(`atelier: ${err instanceof Error ? err.message : String(err)}\n`)
    return err instanceof CliError ? err.exitCode : 1
  }
}
