import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { SecretName, SecretStatus } from '../../preload/contract-types'
import type { KeyValueStore } from './store'

/** Encrypts secrets at rest: Electron safeStorage in the desktop app, a user-only key file under serve/CLI. */
export interface SecretBox {
  readonly kind: string
  encrypt(plain: string): string
  decrypt(cipher: string): string
}

/** AES-256-GCM with a random 32-byte key kept in a file readable only by its owner (mode 0600). */
export function keyFileSecretBox(keyFile: string): SecretBox {
  let key: Buffer | undefined
  const loadKey = (): Buffer => {
    if (key) return key
    try {
      key = fs.readFileSync(keyFile)
      if (key.length !== 32) throw new Error(`The key file ${keyFile} is damaged (expected 32 bytes).`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      fs.mkdirSync(path.dirname(keyFile), { recursive: true })
      key = crypto.randomBytes(32)
      fs.writeFileSync(keyFile, key, { mode: 0o600, flag: 'wx' })
    }
    return key
  }
  return {
    kind: 'key-file',
    encrypt(plain) {
      const iv = crypto.randomBytes(12)
      const cipher = crypto.createCipheriv('aes-256-gcm', loadKey(), iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return [
        'v1',
        iv.toString('base64'),
        cipher.getAuthTag().toString('base64'),
        body.toString('base64'),
      ].join(':')
    },
    decrypt(text) {
      const [v, iv, tag, body] = text.split(':')
      if (v !== 'v1' || !iv || !tag || body === undefined)
        throw new Error('The stored secret is not in a known format.')
      const decipher = crypto.createDecipheriv('aes-256-gcm', loadKey(), Buffer.from(iv, 'base64'))
      decipher.setAuthTag(Buffer.from(tag, 'base64'))
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8')
    },
  }
}

const ENV: Record<SecretName, string> = { civitaiApiKey: 'ATELIER_CIVITAI_KEY', hfToken: 'ATELIER_HF_TOKEN' }
export const SECRET_NAMES: SecretName[] = ['civitaiApiKey', 'hfToken']

/** Secrets live encrypted in the store under `secrets.<name>`; env variables override. Values are never logged. */
export class SecretsService {
  constructor(
    private readonly store: KeyValueStore,
    private readonly box: SecretBox,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get(name: SecretName): string | undefined {
    const fromEnv = this.env[ENV[name]]
    if (fromEnv) return fromEnv
    const stored = this.store.get(`secrets.${name}`)
    if (typeof stored !== 'string') return undefined
    try {
      return this.box.decrypt(stored)
    } catch {
      return undefined
    }
  }

  set(name: SecretName, value: string): SecretStatus {
    if (value === '') this.store.delete(`secrets.${name}`)
    else this.store.set(`secrets.${name}`, this.box.encrypt(value))
    return this.status(name)
  }

  clear(name: SecretName): SecretStatus {
    return this.set(name, '')
  }

  status(name: SecretName): SecretStatus {
    const value = this.get(name)
    const source = this.env[ENV[name]] ? 'env' : value ? 'store' : 'none'
    return {
      name,
      isSet: Boolean(value),
      source,
      ...(value && value.length > 8 ? { hint: `…${value.slice(-4)}` } : {}),
    }
  }

  all(): SecretStatus[] {
    return SECRET_NAMES.map((n) => this.status(n))
  }
}
