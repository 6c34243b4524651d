import type { Command } from 'commander'
import { repoRoot } from '../../platform/paths'
import { defaultRendererDir, rendererBuilt, startServer } from '../../server'
import { createApi } from '../../services/api'
import { CliError } from '../errors'
import { cliHome } from '../services'

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the Atelier UI to a browser on a loopback address (prints a URL with an access token)',
    )
    .option('--port <n>', 'port to listen on (0 = any free port)', '7860')
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--home <dir>', 'data folder (default: ATELIER_HOME or the per-user folder)')
    .action(async (o: { port: string; host: string; home?: string }) => {
      const port = Number(o.port)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new CliError(`--port must be 0..65535, got ${o.port}`)
      const home = cliHome(o.home)
      const rendererDir = process.env.ATELIER_RENDERER_DIR ?? defaultRendererDir(repoRoot())
      if (!rendererBuilt(rendererDir))
        throw new CliError(`The UI is not built (${rendererDir}): run \`npm run build\` first.`)
      if (!['127.0.0.1', 'localhost', '::1'].includes(o.host)) {
        process.stderr.write(
          `Warning: binding ${o.host} exposes Atelier beyond this machine; the token is the only guard.\n`,
        )
      }
      const { services, handlers } = createApi({ home, mode: 'server' })
      // ATELIER_TOKEN keeps the URL (and open pages) valid across restarts; otherwise a new random token.
      const token = process.env.ATELIER_TOKEN
      if (token !== undefined && !/^[\w-]{16,200}$/.test(token))
        throw new CliError('ATELIER_TOKEN must be 16–200 letters, digits, - or _.')
      const server = await startServer({
        services,
        handlers,
        rendererDir,
        host: o.host,
        port,
        ...(token ? { token } : {}),
      })
      process.stdout.write(`Atelier is running at ${server.url}\n`)
      let stopping = false
      const stop = (): void => {
        // A second signal, or a close that hangs (a stuck socket, a job that ignores cancel), still exits.
        if (stopping) process.exit(1)
        stopping = true
        setTimeout(() => process.exit(0), 3000).unref()
        void server
          .close()
          .then(() => services.dispose())
          .finally(() => process.exit(0))
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
      await new Promise<never>(() => {})
    })
}
