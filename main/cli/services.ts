/**
 * Every CLI command runs on the services the app runs on: the same container, settings, library folder (and the
 * folders added to it), stored keys and Civitai / Hugging Face base URLs, read from the same data folder.
 */
import path from 'node:path'
import { chooseDataFolder } from '../platform/paths'
import { createServices, type Services, type ServicesOptions } from '../services/container'
import { AppError } from '../services/errors'
import { toAppError } from '../services/models'
import { CliError } from './errors'

export type { Services } from '../services/container'

let noted = false

/** `--home`, else ATELIER_HOME or the folder the desktop app uses (notes once when another also holds data). */
export function cliHome(flag?: string): string {
  if (flag) return path.resolve(flag)
  const choice = chooseDataFolder()
  if (choice.unused && !noted) {
    noted = true
    process.stderr.write(
      `note: ${choice.unused} also holds Atelier data (the CLI's former folder); using ${choice.home}, ` +
        `which the desktop app shares. Set ATELIER_HOME=${choice.unused} to use the other one.\n`,
    )
  }
  return choice.home
}

export interface CliServicesOptions extends Omit<ServicesOptions, 'home' | 'mode'> {
  /** `--home` */
  home?: string
}

/**
 * Runs `fn` with the services of the data folder and disposes them after. Requests may name files anywhere
 * (the user types the paths); a service error becomes `atelier: <message>` with exit code 1 (130 when cancelled).
 * The download queue stays closed unless `downloads: true` (`atelier models`), so a command that only reads the
 * library never resumes, or races, the desktop app's downloads.
 */
export async function withServices<T>(
  opts: CliServicesOptions,
  fn: (services: Services) => Promise<T>,
): Promise<T> {
  const { home, ...rest } = opts
  const services = createServices({
    allowPaths: true,
    downloads: false,
    ...rest,
    home: cliHome(home),
    mode: 'server',
  })
  try {
    return await fn(services)
  } catch (thrown) {
    // Library and remote errors read as the app shows them.
    const err = toAppError(thrown)
    if (err instanceof AppError) throw new CliError(err.message, err.code === 'cancelled' ? 130 : 1)
    throw err
  } finally {
    await services.dispose()
  }
}
