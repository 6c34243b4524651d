/** Entry of the generation worker thread (bundled as generation-worker.mjs; run from source via tsx). */
import { parentPort } from 'node:worker_threads'
import type { ToWorker } from './protocol'
import { JobRunner } from './runner'

const port = parentPort
if (!port) throw new Error('generation worker: must run in a worker thread')
const runner = new JobRunner((m, transfer) => port.postMessage(m, transfer ?? []))
port.on('message', (m: ToWorker) => runner.handle(m))
port.postMessage({ type: 'ready' })
