import type { Command } from 'commander'
import { registerServe } from './commands/serve'
import { registerProbe } from './commands/probe'
import { registerLibrary } from './commands/library'
import { registerReference } from './commands/reference'
import { registerConvert } from './commands/convert'
import { registerUpscale } from './commands/upscale'
import { registerGenerate } from './commands/generate'
import { registerModels } from './commands/models'
import { registerBlend } from './commands/blend'
import { registerPrompt } from './commands/prompt'
import { registerImagine } from './commands/imagine'

/** Every `atelier` subcommand registers here (one line each). */
export function registerCommands(program: Command): void {
  registerServe(program)
  registerProbe(program)
  registerLibrary(program)
  registerReference(program)
  registerConvert(program)
  registerUpscale(program)
  registerGenerate(program)
  registerModels(program)
  registerBlend(program)
  registerPrompt(program)
  registerImagine(program)
}
