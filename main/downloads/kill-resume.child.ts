/**
 * Child process for kill-resume.test.ts: opens a DownloadManager on the given state folder, enqueues one
 * download and prints progress as JSON lines until the parent kills it with SIGKILL.
 * argv: stateDir url destDir expectedSha256
 */
import { DownloadManager } from './manager'

const [stateDir, url, destDir, expectedSha256] = process.argv.slice(2)
if (!stateDir || !url || !destDir || !expectedSha256) {
  process.stderr.write('usage: kill-resume.child.ts stateDir url destDir sha256\n')
  process.exit(2)
}
const manager = await DownloadManager.open({
  stateDir,
  progressIntervalMs: 20,
  credentials: () => 'civitai-test-key',
})
manager.on('progress', (p) => process.stdout.write(`${JSON.stringify({ id: p.id, bytes: p.bytes })}\n`))
manager.on('state', (j) => process.stdout.write(`${JSON.stringify({ id: j.id, state: j.state })}\n`))
await manager.enqueue({ url, destDir, expectedSha256, source: 'civitai' })
