/**
 * Model references as people paste them: `civitai:<id>`, `hf:<owner/repo>[/<path>]`, or a page / download URL
 * of either service. Used by the CLI (`atelier models show|install`) and by the service's URL installs.
 */
import { AppError } from '../errors'

export type ModelRef =
  | { source: 'civitai'; modelId?: string; versionId?: string }
  | { source: 'huggingface'; repo: string; path?: string; revision?: string }

const HF_REPO = /^[\w.-]{1,96}\/[\w.-]{1,96}$/

function hfRef(rest: string): ModelRef {
  const parts = rest.split('/').filter(Boolean)
  const repo = parts.slice(0, 2).join('/')
  if (!HF_REPO.test(repo))
    throw new AppError('invalid-input', `"${rest}" is not a Hugging Face repo (owner/name).`)
  const path = parts.slice(2).join('/')
  return { source: 'huggingface', repo, ...(path ? { path } : {}) }
}

/**
 * Parse a reference. `civitaiId` says what a bare `civitai:<n>` means: the CLI's `install` takes version ids,
 * `show` takes model ids. Hosts other than the configured ones are recognised by their well-known names.
 */
export function parseModelRef(
  text: string,
  opts: { civitaiId: 'model' | 'version'; civitaiHosts?: string[]; hfHosts?: string[] },
): ModelRef {
  const ref = text.trim()
  let m: RegExpExecArray | null
  if ((m = /^civitai:(\d{1,12})$/i.exec(ref))) {
    return opts.civitaiId === 'model'
      ? { source: 'civitai', modelId: m[1] }
      : { source: 'civitai', versionId: m[1] }
  }
  if ((m = /^civitai:(?:model|m)\/(\d{1,12})$/i.exec(ref))) return { source: 'civitai', modelId: m[1] }
  if ((m = /^civitai:(?:version|v)\/(\d{1,12})$/i.exec(ref))) return { source: 'civitai', versionId: m[1] }
  if ((m = /^(?:hf|huggingface):(.+)$/i.exec(ref))) return hfRef(m[1] ?? '')
  let url: URL
  try {
    url = new URL(ref)
  } catch {
    throw new AppError(
      'invalid-input',
      `"${ref}" is not a model reference: use civitai:<id>, hf:<owner/repo>[/<file>], or a Civitai / Hugging Face URL.`,
    )
  }
  const host = url.host.toLowerCase()
  const civitaiHosts = ['civitai.com', 'www.civitai.com', 'civitai.green', ...(opts.civitaiHosts ?? [])]
  const hfHosts = ['huggingface.co', 'www.huggingface.co', 'hf.co', ...(opts.hfHosts ?? [])]
  if (civitaiHosts.includes(host)) {
    const version = url.searchParams.get('modelVersionId')
    if ((m = /^\/api\/download\/models\/(\d+)/.exec(url.pathname)))
      return { source: 'civitai', versionId: m[1] }
    if ((m = /^\/(?:api\/v1\/)?model-versions\/(\d+)/.exec(url.pathname)))
      return { source: 'civitai', versionId: m[1] }
    if ((m = /^\/(?:api\/v1\/)?models\/(\d+)/.exec(url.pathname))) {
      return {
        source: 'civitai',
        modelId: m[1],
        ...(version && /^\d+$/.test(version) ? { versionId: version } : {}),
      }
    }
    throw new AppError('invalid-input', `${ref} is not a Civitai model or download link.`)
  }
  if (hfHosts.includes(host)) {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
    const repo = parts.slice(0, 2).join('/')
    if (!HF_REPO.test(repo)) throw new AppError('invalid-input', `${ref} is not a Hugging Face model link.`)
    // /owner/name/(blob|resolve|tree)/<rev>/<path>
    if (parts[2] === 'blob' || parts[2] === 'resolve' || parts[2] === 'tree') {
      const revision = parts[3]
      const path = parts.slice(4).join('/')
      return { source: 'huggingface', repo, ...(revision ? { revision } : {}), ...(path ? { path } : {}) }
    }
    return { source: 'huggingface', repo }
  }
  throw new AppError('invalid-input', `${ref}: only Civitai and Hugging Face links can be installed.`)
}
