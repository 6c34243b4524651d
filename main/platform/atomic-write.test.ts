import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { atomicTempName, writeFileAtomic, writeFileAtomicSync } from './atomic-write'

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-atomic-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))

describe('atomic writes', () => {
  it('temp files sit beside the target under the name library/recover.ts looks for', () => {
    const t = path.basename(atomicTempName(path.join(tmp, 'index.json')))
    expect(t).toMatch(new RegExp(`^\\.index\\.json\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`))
  })

  for (const [name, write] of [
    ['async', writeFileAtomic],
    ['sync', async (...a: Parameters<typeof writeFileAtomicSync>) => writeFileAtomicSync(...a)],
  ] as const) {
    it(`${name}: replaces the content whole, creates the folder when asked, leaves no temp file`, async () => {
      const dir = path.join(tmp, name, 'deep')
      const file = path.join(dir, 'a.json')
      await expect(write(file, '{}')).rejects.toMatchObject({ code: 'ENOENT' })
      await write(file, '{"v":1}', { mkdir: true })
      await write(file, new TextEncoder().encode('{"v":2}'), { fsync: true })
      expect(fs.readFileSync(file, 'utf8')).toBe('{"v":2}')
      expect(leftovers(dir)).toEqual([])
    })

    it(`${name}: a rename that fails removes the temp file and keeps the target`, async () => {
      const dir = path.join(tmp, `${name}-fail`)
      const target = path.join(dir, 'taken')
      fs.mkdirSync(path.join(target, 'child'), { recursive: true })
      await expect(write(target, 'x')).rejects.toThrow()
      expect(fs.statSync(target).isDirectory()).toBe(true)
      expect(leftovers(dir)).toEqual([])
    })
  }
})
