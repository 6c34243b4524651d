/**
 * The CLIP tokenizer files SD 1.x needs (`openai/clip-vit-large-patch14`: vocab.json + merges.txt), fetched
 * once through the download queue into `<home>/cache/tokenizers/openai-clip-vit-large-patch14`, where
 * engine/tokenizer/find.ts looks for them.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { DownloadManager } from '../../downloads/manager'
import type { DownloadRequest } from '../../downloads/types'
import { CLIP_L_TOKENIZER } from '../../engine/tokenizer/find'
import type { HuggingFaceClient } from '../../remote/huggingface/client'
import { AppError } from '../errors'
import { toJsonValue } from './install-meta'

export const CLIP_L_REPO = 'openai/clip-vit-large-patch14'
export const TOKENIZER_FILES = ['vocab.json', 'merges.txt'] as const

export function tokenizerDir(tokenizersRoot: string): string {
  return path.join(tokenizersRoot, CLIP_L_TOKENIZER)
}

export function hasTokenizer(dir: string): boolean {
  return TOKENIZER_FILES.every((f) => fs.existsSync(path.join(dir, f)))
}

/** Download the files into a temporary folder beside the target, then move them in (never half a tokenizer). */
export async function fetchClipTokenizer(
  tokenizersRoot: string,
  hf: HuggingFaceClient,
  downloads: DownloadManager,
): Promise<string> {
  const dir = tokenizerDir(tokenizersRoot)
  if (hasTokenizer(dir)) return dir
  const model = await hf.getModel(CLIP_L_REPO)
  const files = model.versions[0]?.files ?? []
  const tmp = `${dir}.partial-${crypto.randomUUID().slice(0, 8)}`
  const ids: string[] = []
  for (const name of TOKENIZER_FILES) {
    const f = files.find((x) => x.path === name)
    if (!f)
      throw new AppError('not-found', `${CLIP_L_REPO} has no ${name}; the CLIP tokenizer cannot be fetched.`)
    // A fetch interrupted by a restart resumes in its own job: reuse it rather than starting over.
    const earlier = downloads
      .list()
      .find(
        (j) =>
          j.request.url === f.downloadUrl &&
          j.request.meta?.install === 'tokenizer' &&
          (j.state === 'queued' ||
            j.state === 'downloading' ||
            j.state === 'paused' ||
            j.state === 'verifying' ||
            (j.state === 'done' && j.destPath !== null && fs.existsSync(j.destPath))),
      )
    if (earlier) {
      if (earlier.state === 'paused') downloads.resume(earlier.id)
      ids.push(earlier.id)
      continue
    }
    const job = await downloads.enqueue({
      url: f.downloadUrl,
      destDir: tmp,
      fileName: name,
      expectedSha256: f.sha256 ?? undefined,
      expectedSize: f.sizeBytes ?? undefined,
      source: 'huggingface',
      meta: toJsonValue({ install: 'tokenizer', label: `CLIP tokenizer ${name}` }) as DownloadRequest['meta'],
    })
    ids.push(job.id)
  }
  const settled = await Promise.all(ids.map((id) => downloads.whenSettled(id)))
  const bad = settled.find((j) => j.state !== 'done')
  if (bad) {
    await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined)
    throw new AppError(
      'unavailable',
      `Could not download the CLIP tokenizer (${bad.fileName ?? bad.request.fileName}): ${bad.error?.message ?? bad.state}.`,
    )
  }
  await fs.promises.mkdir(dir, { recursive: true })
  for (const j of settled) {
    if (!j.destPath) continue
    await fs.promises.rename(j.destPath, path.join(dir, j.request.fileName ?? path.basename(j.destPath)))
  }
  for (const d of new Set(settled.map((j) => j.request.destDir))) {
    await fs.promises.rm(d, { recursive: true, force: true }).catch(() => undefined)
  }
  for (const id of ids) downloads.remove(id)
  return dir
}
