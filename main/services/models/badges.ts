/**
 * "Installed" and "update available" from library records: a remote version is installed when a record carries
 * its Civitai version id or HF repo, or when one of its files has the SHA-256 of a local file.
 */
import type { ModelRecord } from '../../library/types'
import type { RemoteFile, RemoteModel, RemoteVersion } from '../../remote/types'

export class InstalledIndex {
  private readonly bySha = new Map<string, ModelRecord>()
  private readonly byCivitaiVersion = new Map<string, ModelRecord>()
  private readonly civitaiModels = new Set<string>()
  private readonly hfRepos = new Map<string, ModelRecord[]>()

  constructor(readonly records: ModelRecord[]) {
    for (const r of records) {
      if (r.sha256) this.bySha.set(r.sha256, r)
      if (r.civitai) {
        this.byCivitaiVersion.set(String(r.civitai.versionId), r)
        this.civitaiModels.add(String(r.civitai.modelId))
      }
      if (r.huggingface) {
        const key = r.huggingface.repo.toLowerCase()
        this.hfRepos.set(key, [...(this.hfRepos.get(key) ?? []), r])
      }
    }
  }

  get checkpoints(): ModelRecord[] {
    return this.records.filter((r) => r.type === 'checkpoint' && !r.problem)
  }

  /** The record a remote file is installed as, if any. */
  fileRecord(file: RemoteFile, model: { source: string; id: string }): ModelRecord | null {
    if (file.sha256) {
      const r = this.bySha.get(file.sha256)
      if (r) return r
    }
    if (model.source === 'huggingface') {
      const hit = (this.hfRepos.get(model.id.toLowerCase()) ?? []).find(
        (r) => r.huggingface?.path === file.path,
      )
      if (hit) return hit
    }
    return null
  }

  versionInstalled(v: RemoteVersion, model: { source: string; id: string }): boolean {
    if (model.source === 'civitai' && this.byCivitaiVersion.has(v.id)) return true
    if (model.source === 'huggingface' && this.hfRepos.has(model.id.toLowerCase())) return true
    return v.files.some((f) => f.sha256 !== null && this.bySha.has(f.sha256))
  }

  /** Installed version ids and whether the newest version is missing from them. */
  badges(m: RemoteModel): { installed: boolean; installedVersionIds: string[]; updateAvailable: boolean } {
    const installedVersionIds = m.versions.filter((v) => this.versionInstalled(v, m)).map((v) => v.id)
    let installed = installedVersionIds.length > 0
    if (m.source === 'civitai' && this.civitaiModels.has(m.id)) installed = true
    if (m.source === 'huggingface' && this.hfRepos.has(m.id.toLowerCase())) installed = true
    let updateAvailable = false
    const latest = m.versions[0]
    if (installed && latest) {
      if (m.source === 'civitai') {
        updateAvailable = !installedVersionIds.includes(latest.id) && !latest.earlyAccess
      } else {
        // HF: a single file changed its content, or (folders) the repo moved to another commit.
        updateAvailable = (this.hfRepos.get(m.id.toLowerCase()) ?? []).some((r) => {
          const ref = r.huggingface
          if (!ref) return false
          const file = ref.path ? latest.files.find((f) => f.path === ref.path) : undefined
          if (file?.sha256 && r.sha256) return file.sha256 !== r.sha256
          return !ref.path && /^[0-9a-f]{40}$/.test(latest.id) && ref.revision !== latest.id
        })
      }
    }
    return { installed, installedVersionIds, updateAvailable }
  }
}
