import cliProgress from 'cli-progress'

/** A progress bar on stderr for long CLI work; silent when stderr is not a TTY unless forced. */
export function progressBar(
  label: string,
  total: number,
  unit = '',
): { update(n: number, extra?: string): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total}${unit} | ETA {eta_formatted} {extra}`,
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: process.env.ATELIER_PROGRESS === 'always',
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0, { extra: '' })
  return {
    update: (n, extra = '') => bar.update(n, { extra }),
    stop: () => bar.stop(),
  }
}
