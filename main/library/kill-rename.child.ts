/**
 * Child of kill-rename.test.ts: renames one LoRA (with its sidecars) back and forth until it is killed.
 * argv: <home>
 */
import { Library } from './library'

async function main(): Promise<void> {
  const home = process.argv[2] as string
  const lib = await Library.open(home)
  await lib.scan()
  const rec = lib.list().find((r) => r.type === 'lora')
  if (!rec) throw new Error('no LoRA in the library')
  process.stdout.write('ready\n')
  for (let i = 0; ; i++) await lib.rename(rec.id, i % 2 ? 'alpha' : 'beta')
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exit(1)
})
