import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { ModelsService } from './service'
import { keyFileSecretBox, SecretsService } from '../secrets'
import { SettingsService } from '../settings'
import { memoryStore } from '../store'
import { Library } from '../../library/library'
import { MAX_SIDECAR_BYTES, readA1111, readCivitaiInfo } from '../../library/sidecars'
import { tempDir, tinyLora } from '../../library/test-support'

let home: string
let libDir: string
beforeEach(async () => {
  home = await tempDir('atelier-hostile-lib-')
  libDir = path.join(home, 'models')
})
afterEach(async () => {
  await fs.promises.rm(home, { recursive: true, force: true })
})

/** A sparse file of `bytes` that starts like a real sidecar (costs no disk). */
function hugeSidecar(file: string, bytes: number): void {
  fs.writeFileSync(file, '{"id": 1, "modelId": 2, "description": "')
  fs.truncateSync(file, bytes)
}

describe('sidecars (attack 9)', () => {
  it('300 MB .civitai.info and A1111 .json sidecars are ignored in milliseconds and never abort a scan', async () => {
    const a = await tinyLora(path.join(libDir, 'loras', 'a.safetensors'), 'sd-1', { seed: 1 })
    const b = await tinyLora(path.join(libDir, 'loras', 'b.safetensors'), 'sd-1', { seed: 2 })
    for (const f of [a, b]) {
      hugeSidecar(f.replace(/\.safetensors$/, '.civitai.info'), 300 * 1024 * 1024)
      hugeSidecar(f.replace(/\.safetensors$/, '.json'), 300 * 1024 * 1024)
    }
    const stem = a.replace(/\.safetensors$/, '')
    const before = process.memoryUsage().rss
    const t0 = performance.now()
    expect(await readCivitaiInfo(stem)).toBeNull()
    expect(await readA1111(stem)).toBeNull()
    const lib = await Library.open(home)
    const summary = await lib.scan()
    expect(performance.now() - t0).toBeLessThan(5000)
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024)
    expect(summary.models).toBe(2)
    expect(
      lib
        .list()
        .map((r) => r.name)
        .sort(),
    ).toEqual(['a', 'b'])
    const atelier = fs.statSync(`${stem}.atelier.json`).size
    expect(atelier).toBeLessThan(64 * 1024)
    expect(MAX_SIDECAR_BYTES).toBeLessThan(300 * 1024 * 1024)
  })

  it('a sidecar that is a link to a device is not read', async () => {
    const a = await tinyLora(path.join(libDir, 'loras', 'a.safetensors'), 'sd-1', { seed: 1 })
    fs.symlinkSync('/dev/zero', a.replace(/\.safetensors$/, '.civitai.info'))
    expect(await readCivitaiInfo(a.replace(/\.safetensors$/, ''))).toBeNull()
  })
})

describe('scan problems (attack 14)', () => {
  it('refused and corrupt files are reported, not skipped silently', async () => {
    // a plain folder (no type per subfolder): every file is typed by its probe
    const misc = path.join(home, 'downloads')
    await tinyLora(path.join(misc, 'good.safetensors'), 'sd-1', { seed: 1 })
    fs.writeFileSync(path.join(misc, 'garbage.safetensors'), 'not a model at all')
    // a pickle naming a forbidden global
    fs.writeFileSync(path.join(misc, 'evil.ckpt'), Buffer.from('\x80\x02cos\nsystem\nq\x00.', 'latin1'))
    const lib = await Library.open(home)
    await lib.addRoot(misc)
    const s = await lib.scan()
    expect(s.models).toBe(1)
    expect(s.problems).toBe(2)
    const w = lib.warnings.join('\n')
    expect(w).toMatch(/garbage\.safetensors: skipped/)
    expect(w).toMatch(/evil\.ckpt: skipped/)
  })
})

describe('library:preview (attack 10)', () => {
  it('never follows a preview symlink out of the library', async () => {
    const store = memoryStore()
    const bus = new EventBus()
    const settings = new SettingsService(store, home, bus, {})
    const secrets = new SecretsService(store, keyFileSecretBox(path.join(home, 'secret.key')), {})
    const models = new ModelsService({ home, settings, secrets, bus, jobs: new JobManager(bus) })
    const lib = await models.library()
    const dir = path.join(lib.libraryDir, 'loras')
    const a = await tinyLora(path.join(dir, 'a.safetensors'), 'sd-1', { seed: 1 })
    const b = await tinyLora(path.join(dir, 'b.safetensors'), 'sd-1', { seed: 2 })
    fs.symlinkSync('/etc/passwd', a.replace(/\.safetensors$/, '.preview.png'))
    fs.writeFileSync(b.replace(/\.safetensors$/, '.preview.png'), 'PNG')
    await lib.scan()
    const [ra, rb] = ['a', 'b'].map((n) => lib.list().find((r) => r.name === n))
    await expect(models.libraryPreview(ra?.id ?? '')).rejects.toThrow(/leaves the library/)
    expect(Buffer.from(await models.libraryPreview(rb?.id ?? '')).toString()).toBe('PNG')
  })
})
