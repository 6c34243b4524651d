import { safeStorage } from 'electron'
import type { SecretBox } from '../services/secrets'

/** Secrets encrypted with the OS keychain through Electron safeStorage. */
export function safeStorageSecretBox(): SecretBox {
  return {
    kind: 'safe-storage',
    encrypt(plain) {
      if (!safeStorage.isEncryptionAvailable())
        throw new Error('The OS keychain is not available; cannot store secrets.')
      return `ss1:${safeStorage.encryptString(plain).toString('base64')}`
    },
    decrypt(text) {
      if (!text.startsWith('ss1:')) throw new Error('The stored secret is not in a known format.')
      return safeStorage.decryptString(Buffer.from(text.slice(4), 'base64'))
    },
  }
}
